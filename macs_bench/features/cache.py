"""On-disk feature cache: one ``.npy`` per (encoder id, file content hash), written atomically, checked on read.

The key includes the encoder's weights hash and preprocessing version (:attr:`Encoder.id`), so scoring a second
model against the same ground truth encodes only the new images, and changing weights never reuses old numbers.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from macs_bench.io import atomic_write_bytes, atomic_write_text, dumps_json

CACHE_FORMAT = "macs-features-v1"


class FeatureCache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def _folder(self, encoder_id: str) -> Path:
        return self.root / hashlib.sha256(encoder_id.encode()).hexdigest()[:20]

    def _path(self, encoder_id: str, content_hash: str) -> Path:
        return self._folder(encoder_id) / content_hash[:2] / f"{content_hash}.npy"

    def get(self, encoder_id: str, content_hash: str, dim: int) -> np.ndarray | None:
        """The cached feature, or ``None`` when absent or invalid (wrong shape, non-finite, unreadable)."""
        path = self._path(encoder_id, content_hash)
        try:
            feature = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        if feature.shape != (dim,) or feature.dtype != np.float32 or not np.isfinite(feature).all():
            return None
        return feature

    def put(self, encoder_id: str, content_hash: str, feature: np.ndarray) -> None:
        about = self._folder(encoder_id) / "encoder.json"
        if not about.exists():
            atomic_write_text(about, dumps_json({"format": CACHE_FORMAT, "encoder": encoder_id}))
        buf = io.BytesIO()
        np.save(buf, np.asarray(feature, dtype=np.float32), allow_pickle=False)
        atomic_write_bytes(self._path(encoder_id, content_hash), buf.getvalue())

    def encoders(self) -> list[str]:
        """Encoder ids with a folder in the cache."""
        out = []
        for about in sorted(self.root.glob("*/encoder.json")):
            try:
                out.append(json.loads(about.read_text())["encoder"])
            except (OSError, ValueError, KeyError):
                continue
        return out
