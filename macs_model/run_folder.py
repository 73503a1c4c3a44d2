"""A training run's folder, shared by both stages: checkpoints, the ``latest`` pointer, RNG states, metrics.

Layout of a run folder::

    config.json                 the run's configs, run_info and versions
    metrics.jsonl               one JSON line per log step (step, epoch, loss terms, lr, seconds)
    checkpoint-<step>/          weights, optimizer.pt, scheduler.pt, rng-<rank>.pt, trainer_state.json
    latest                      name of the newest complete checkpoint, written last

A checkpoint directory is assembled under a temporary name and renamed into place, then ``latest`` is replaced
atomically, so a crash leaves either the old or the new checkpoint pointed at; a directory ``latest`` does not name
is never read.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import random
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from macs_bench.errors import MacsError
from macs_bench.io import atomic_write_bytes, atomic_write_text, dumps_json

LATEST = "latest"
METRICS = "metrics.jsonl"
CONFIG = "config.json"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "scheduler.pt"
STATE_FILE = "trainer_state.json"
TIMING_FIELDS = ("seconds",)  # metrics fields that legitimately differ between identical runs


def _rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG states as tensors / lists / ints, so torch.load(weights_only=True) reads them."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "state": list(internal), "gauss": gauss},
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state((npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                         npy["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _torch_bytes(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _load_pt(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user-facing problem
        raise MacsError(f"{path}: cannot read checkpoint file ({exc})") from exc


def run_versions() -> dict[str, str]:
    import accelerate
    import safetensors

    from macs_model import __version__

    return {"macs": __version__, "torch": torch.__version__, "accelerate": accelerate.__version__,
            "safetensors": safetensors.__version__, "numpy": np.__version__, "python": platform.python_version()}


def latest_checkpoint(out_dir: str | os.PathLike) -> Path | None:
    """The checkpoint directory ``out_dir/latest`` names, or None when there is no pointer yet."""
    pointer = Path(out_dir) / LATEST
    if not pointer.is_file():
        return None
    name = pointer.read_text(encoding="utf-8").strip()
    if not name.startswith("checkpoint-") or "/" in name or os.sep in name:
        raise MacsError(f"{pointer}: does not name a checkpoint directory ({name!r})")
    path = Path(out_dir) / name
    if not path.is_dir():
        raise MacsError(f"{pointer}: names {name}, which does not exist")
    return path


def load_model_weights(model: nn.Module, checkpoint: str | os.PathLike) -> None:
    """Load ``checkpoint/model.safetensors`` into ``model`` (strict)."""
    from safetensors.torch import load_file

    path = Path(checkpoint) / MODEL_FILE
    try:
        weights = load_file(str(path))
    except Exception as exc:  # noqa: BLE001
        raise MacsError(f"{path}: cannot read model weights ({exc})") from exc
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        raise MacsError(f"{path}: weights do not fit the model ({exc})") from exc


def trim_metrics(path: Path, upto_step: int) -> None:
    """Drop metrics lines after ``upto_step`` (logged after the checkpoint a resumed run restarts from)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by the interruption
            continue
        if isinstance(record, dict) and record.get("step", 0) <= upto_step:
            kept.append(line + "\n")
    atomic_write_text(path, "".join(kept))


def read_trainer_state(checkpoint: Path) -> dict[str, Any]:
    """A checkpoint's ``trainer_state.json`` (with an integer ``step``); a damaged one is one error."""
    try:
        state = json.loads((checkpoint / STATE_FILE).read_text(encoding="utf-8"))
        state["step"] = int(state["step"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MacsError(f"{checkpoint / STATE_FILE}: cannot read trainer state ({exc})") from exc
    return state


def start_run(out_dir: Path, seed: int, rank: int, main: bool) -> None:
    """A fresh run: seed python, numpy and torch per process; drop an earlier run's pointer and log."""
    random.seed(seed + rank)
    np.random.seed(seed + rank)
    torch.manual_seed(seed + rank)
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / LATEST).unlink(missing_ok=True)
        (out_dir / METRICS).unlink(missing_ok=True)


def restore_states(checkpoint: Path, state: Mapping[str, Any], optimizer: Any, scheduler: Any, accelerator: Any,
                   out_dir: Path) -> int:
    """Resume at ``state["step"]`` (returned): optimiser, scheduler and this process's RNG states from the
    checkpoint, and the metrics log cut back to that step (a process the checkpoint has no RNG file for keeps
    its own, as when resuming with more processes)."""
    optimizer.load_state_dict(_load_pt(checkpoint / OPTIMIZER_FILE))
    scheduler.load_state_dict(_load_pt(checkpoint / SCHEDULER_FILE))
    rng_file = checkpoint / f"rng-{accelerator.process_index}.pt"
    if rng_file.exists():
        _set_rng_state(_load_pt(rng_file))
    if accelerator.is_main_process:
        trim_metrics(out_dir / METRICS, state["step"])
    return state["step"]


def write_checkpoint(accelerator: Any, out_dir: Path, at: int, optimizer: Any, scheduler: Any,
                     state: Mapping[str, Any], write_weights: Callable[[Path], None]) -> None:
    """``checkpoint-<at>``: every process's RNG state, and on the main process ``write_weights(folder)``, the
    optimiser and scheduler states and ``state``; assembled under a temporary name, renamed into place, then
    ``latest`` points at it (see the module docstring)."""
    main, rank = accelerator.is_main_process, accelerator.process_index
    name = f"checkpoint-{at}"
    tmp = out_dir / f".{name}.tmp"
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    atomic_write_bytes(tmp / f"rng-{rank}.pt", _torch_bytes(_rng_state()))
    if main:
        write_weights(tmp)
        atomic_write_bytes(tmp / OPTIMIZER_FILE, _torch_bytes(optimizer.state_dict()))
        atomic_write_bytes(tmp / SCHEDULER_FILE, _torch_bytes(scheduler.state_dict()))
        atomic_write_text(tmp / STATE_FILE, dumps_json({"step": at, **state}))
    accelerator.wait_for_everyone()
    if main:
        final = out_dir / name
        if final.exists():  # a leftover the pointer never named (or names no longer): replace it
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(out_dir)
        atomic_write_text(out_dir / LATEST, name + "\n")
    accelerator.wait_for_everyone()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def run_records(path: Path) -> list[dict[str, Any]]:
    """The readable ``config.json`` records of a run folder or of the run above one of its checkpoints (or of an
    ``adapter/`` folder), nearest first; both stages find their run's record this way."""
    records = []
    for candidate in (path / CONFIG, path.parent / CONFIG):
        try:
            record = json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def generator_run_info(adapter_run: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(run_info, generator_config) of a generator run folder (or of the run above a checkpoint)."""
    for saved in run_records(adapter_run):
        info, config = saved.get("run_info"), saved.get("generator_config")
        if isinstance(info, dict) and "conditioning" in info and isinstance(config, dict):
            return info, config
    raise MacsError(f"{adapter_run}: not a 'macs-model train generator' run folder (no config.json with run_info)")


def claim_plan(path: Path, record: Mapping[str, Any], *, what: str, hint: str = "delete that folder",
               ignore: tuple[str, ...] = ()) -> None:
    """Record in ``path`` the plan an experiment folder (a demo, an ablation table) holds, or, when it already
    holds one, refuse another before anything is overwritten. Keys named in ``ignore`` may change between runs
    (a rerun adds rows or redraws the table, reusing the rest)."""

    def kept(recorded: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in recorded.items() if k not in ignore}

    wanted = json.loads(dumps_json(dict(record)))
    if path.is_file():
        try:
            held = kept(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, AttributeError):
            held = None
        if held != kept(wanted):
            raise MacsError(f"{path.parent}: holds {what} with another plan ({path.name}); use another output "
                            f"folder or {hint}")
        return
    atomic_write_text(path, dumps_json(wanted))
