"""MACS and MACS without separation as models of the harness protocol: a trained (or imported) generator run.

Which of the two a run is, its ``config.json`` says (``conditioning.no_separation``). The training ids come
from the run's manifest and fold; an imported release adapter records none, so its rows are stamped "may have
seen the test clips" unless ``held_out`` lists ids known to be outside its training data.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from macs_bench.models.protocol import Item, RowInfo

RELEASE_NOTE = ("release adapter trained on most of the benchmark's clips: may have seen the test clips")


class MacsRun:
    """``AudioToImagePipeline.from_pretrained(run)`` behind ``generate(items, seed)``."""

    def __init__(self, run: str | os.PathLike, *, clap: str | None = None, base: str | os.PathLike | None = None,
                 device: str = "auto", top_k: int | None = None,
                 slots: Sequence[int] | None = None, held_out: Sequence[str] | None = None):
        from macs_model.generation.audio_to_image import AudioToImagePipeline

        self.run = Path(run).expanduser()
        self.pipe = AudioToImagePipeline.from_pretrained(self.run, clap=clap, base=base, device=device)
        self.pipe.check_top_k(top_k, slots)
        self.top_k, self.slots = top_k, None if slots is None else list(slots)
        self.held_out = set(held_out) if held_out is not None else None
        info = self.pipe.run_info
        self.no_separation = bool(info["conditioning"]["no_separation"])
        self.imported = info.get("imported") is not None
        self.evaluated_held_out = False  # set by prepare(): every evaluated id is in held_out

    def prepare(self, manifest: Path, media: Path, fold: int | None) -> None:
        from macs_bench.models.runner import fold_samples

        ids = fold_samples(manifest, fold, None if fold is not None else "test").ids
        self.evaluated_held_out = self.held_out is not None and set(ids) <= self.held_out

    @property
    def name(self) -> str:
        name = "MACS w/o separation" if self.no_separation else "MACS"
        return name + (" (release weights)" if self.imported else "")

    def trained_ids(self) -> set[str] | None:
        from macs_model.generation.api import fold_ids

        info = self.pipe.run_info
        if self.imported or info.get("manifest") is None:
            return None
        return set(fold_ids(info["manifest"], info.get("fold"))[0])

    def row_info(self) -> RowInfo:
        if self.imported and not self.evaluated_held_out:
            return RowInfo("model", "computed", True, RELEASE_NOTE)
        return RowInfo("model", "computed", False, "imported release weights on ids known to be held out"
                       if self.imported else "")

    def provenance(self) -> dict[str, Any]:
        info = self.pipe.run_info
        return {"model": self.name, "run": str(self.run), "components": self.pipe.components.source,
                "conditioning": info["conditioning"], "trained_on": {k: info.get(k) for k in ("manifest", "fold")},
                "imported": info.get("imported"), "top_k": self.top_k, "slots": self.slots,
                "licence": "macs MIT; SD v1.4 CreativeML OpenRAIL-M; LAION-CLAP Apache-2.0"}

    def generate(self, items: Sequence[Item], seed: int) -> list[Any]:
        import torch

        conditioner = self.pipe.conditioner
        embedded = []
        for item in items:
            wave = torch.as_tensor(item.waveform, dtype=torch.float32)
            if item.sample_rate != conditioner.sample_rate:
                import torchaudio.functional as AF

                wave = AF.resample(wave, item.sample_rate, conditioner.sample_rate)
            embedded.append((item.sample_id, conditioner.embed(wave)))
        return self.pipe.draw(embedded, top_k=self.top_k, slots=self.slots, seed=seed, batch_size=max(1, len(items)))
