"""Training one model in several processes, launched by torchrun (DDP): NCCL on GPUs, gloo on CPUs.

``torchrun --nproc_per_node N -m validation.cli train ...`` starts N copies of the command. Each
process cuts the same step-seeded batch of crops (map_core.training.train) and keeps its own
contiguous share of it, ``batch / N`` crops; DistributedDataParallel averages the gradients, which
is the gradient of the whole batch's mean loss. So the weights do not depend on how the batch was
split beyond floating-point order, except for dropout: its masks are drawn per process for that
process's share, so with dropout > 0 the run is a different (equally valid) draw.
Process 0 writes the checkpoints and shows progress; the others wait for it at a barrier.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from map_core.errors import MapSuiteError


def launch() -> tuple:
    """(rank, world size, local rank) of a torchrun launch; (0, 1, 0) for a plain process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def start(device: torch.device, batch: int) -> tuple:
    """Join the process group if torchrun launched this process. Returns (rank, world size, device):
    on CUDA each process takes the GPU of its local rank."""
    rank, world, local = launch()
    if world == 1:
        return 0, 1, device
    check_batch(batch, world)
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def check_batch(batch: int, world: int) -> None:
    if batch % world:
        raise MapSuiteError(f"--batch {batch} must be a multiple of the {world} torchrun processes (each takes an equal share)")


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


class Objective(nn.Module):
    """The training loss of `model` under its `kind` (``ModelKind.loss``) as a module's forward, so that
    DistributedDataParallel sees the call (and syncs gradients); `autocast_dtype` as the kind's loss takes it."""

    def __init__(self, kind, model, autocast_dtype=None):
        super().__init__()
        self.kind, self.model, self.autocast_dtype = kind, model, autocast_dtype

    def forward(self, crops):
        return self.kind.loss(self.model, crops, self.autocast_dtype)


def wrap(objective: nn.Module, device: torch.device, world: int):
    """What the loss is computed with: the `Objective` itself, or DDP over it when several processes train."""
    if world == 1:
        return objective
    return DistributedDataParallel(objective, device_ids=[device.index] if device.type == "cuda" else None)


def share(specs, rank: int, world: int):
    """This process's contiguous share of the batch's crop specs (rows)."""
    per = len(specs) // world
    return specs[rank * per:(rank + 1) * per]


def mean_over_processes(value: torch.Tensor, world: int) -> torch.Tensor:
    """The mean of a scalar tensor over the processes (the whole batch's loss); itself for one process."""
    if world == 1:
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / world


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()
