"""What the model half runs on: torch build and device, torchsort's kernels, ffmpeg."""

from __future__ import annotations

import shutil
import subprocess
from importlib.metadata import version
from typing import Any


def environment_report() -> dict[str, Any]:
    """Versions and capabilities a run depends on; every value is measured, none assumed."""
    import torch
    import torchsort

    x = torch.tensor([[3.0, 1.0, 2.0]], requires_grad=True)
    ranks = torchsort.soft_rank(x, regularization_strength=1e-3)
    ranks.sum().backward()
    ffmpeg = shutil.which("ffmpeg")
    ffmpeg_version = None
    if ffmpeg:
        first = subprocess.run([ffmpeg, "-hide_banner", "-version"], capture_output=True, text=True, timeout=30)
        ffmpeg_version = first.stdout.splitlines()[0] if first.stdout else None
    return {
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "torchsort": version("torchsort"),
        "torchsort_cpu_soft_rank": ranks.detach().round().tolist()[0],
        "torchsort_cuda_kernels": _torchsort_has_cuda(),
        "ffmpeg": ffmpeg,
        "ffmpeg_version": ffmpeg_version,
    }


def _torchsort_has_cuda() -> bool:
    try:
        from torchsort import isotonic_cuda  # noqa: F401  built only with CUDA
    except ImportError:
        return False
    return True
