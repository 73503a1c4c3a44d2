"""What the model half runs on: torch build and device, torchsort's kernels, ffmpeg."""

from __future__ import annotations

import shutil
from typing import Any

from macs_bench.provenance import ffmpeg_version, package_versions


def environment_report() -> dict[str, Any]:
    """Versions and capabilities a run depends on; every value is measured, none assumed."""
    import torch
    import torchsort

    x = torch.tensor([[3.0, 1.0, 2.0]], requires_grad=True)
    ranks = torchsort.soft_rank(x, regularization_strength=1e-3)
    ranks.sum().backward()
    return {
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "torchsort": package_versions("torchsort")["torchsort"],
        "torchsort_cpu_soft_rank": ranks.detach().round().tolist()[0],
        "torchsort_cuda_kernels": _torchsort_has_cuda(),
        "ffmpeg": shutil.which("ffmpeg"),
        "ffmpeg_version": ffmpeg_version(),
    }


def _torchsort_has_cuda() -> bool:
    try:
        from torchsort import isotonic_cuda  # noqa: F401  built only with CUDA
    except ImportError:
        return False
    return True
