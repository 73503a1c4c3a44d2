"""One device resolver for every macs command: ``auto``, ``cpu``, ``cuda[:N]`` or ``mps``, validated up front."""

from __future__ import annotations

from macs_bench.errors import MacsError


def resolve_device(name: str | None = "auto"):
    """A ``torch.device``: ``auto``/``None`` picks cuda when available; anything unknown, or an accelerator that
    is not on this machine, is one MacsError naming the device."""
    import torch

    name = "auto" if name is None else str(name).strip()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise MacsError(f"device {name!r}: {exc}") from None
    available = {"cpu": lambda: True, "cuda": torch.cuda.is_available,
                 "mps": lambda: torch.backends.mps.is_available()}
    if device.type not in available:
        raise MacsError(f"device {name}: not supported; use auto, cpu, cuda, cuda:N or mps")
    if not available[device.type]():
        raise MacsError(f"device {name}: {device.type} is not available on this machine")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise MacsError(f"device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device
