"""One cache for every model weight file macs uses: a pinned registry, verified atomic downloads, one offline error.

The cache is ``$MACS_HOME/weights`` (else ``$XDG_CACHE_HOME/macs/weights``, else ``~/.cache/macs/weights``). A file
is downloaded to ``<file>.part`` beside its final place, checked (size, sha256) and only then renamed into place, so
a partial or wrong download is never used. Entries without a published sha256 are trusted on first use: the hash
of the first good copy is recorded in ``SHA256SUMS.local`` and every later copy must match it. The hash of a large
file is remembered in ``<file>.verified.json`` keyed by (size, mtime_ns), so :func:`path` re-hashes only a file that
changed. A Hugging Face repository (Stable Diffusion) lives under ``hf/`` in the hub's own cache layout; its commit
pins every file's hash (sha256 for LFS files, git-sha1 for the rest), which the blob names carry and we check.
"""

from macs_bench.weights.download import fetch
from macs_bench.weights.registry import WEIGHTS, VerifyResult, WeightRow, WeightSpec, pin_kind
from macs_bench.weights.store import (LOCAL_SUMS, cache_dir, expected_sha256, list_weights, local_path, path,
                                     path_and_sha256, verify)

__all__ = ["WEIGHTS", "WeightSpec", "WeightRow", "VerifyResult", "LOCAL_SUMS", "cache_dir", "local_path", "path",
           "path_and_sha256", "expected_sha256", "verify", "list_weights", "fetch", "pin_kind"]
