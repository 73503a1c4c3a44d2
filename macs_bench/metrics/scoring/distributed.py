"""The process group of a score run under ``accelerate launch`` or torchrun (encoders shard the files)."""

from __future__ import annotations

import os


class TorchDistributed:
    """The process-group facts the encoder sharding needs, when accelerate does not manage the group (e.g. a
    CPU run under torchrun, where accelerate needs MPI)."""

    def __init__(self):
        import torch
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group(backend="gloo")
        self.dist = dist
        self.process_index = dist.get_rank()
        self.num_processes = dist.get_world_size()
        self.is_main_process = self.process_index == 0
        self.device = torch.device("cpu")

    def wait_for_everyone(self) -> None:
        self.dist.barrier()


def process_group():
    """The process group under ``accelerate launch`` (or torchrun) with several processes, else ``None``."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from accelerate import PartialState

    state = PartialState()
    if state.num_processes > 1:
        return state
    return TorchDistributed()


def finish(accelerator) -> None:
    """Wait for every process; then take down a process group this module made (under torchrun on CPU): a
    process that exits with gloo's threads still running aborts ('terminate called without an active
    exception'). accelerate's own group stays up for its owner, who may score again."""
    accelerator.wait_for_everyone()
    if isinstance(accelerator, TorchDistributed) and accelerator.dist.is_initialized():
        accelerator.dist.destroy_process_group()
