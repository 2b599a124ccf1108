"""Data-parallel training under `torchrun` (PyTorch's DistributedDataParallel, nothing home-made).

`torchrun --nproc_per_node N fin3r train ...` sets WORLD_SIZE / RANK / LOCAL_RANK; `from_environment`
joins the process group (nccl on CUDA, gloo on CPU). Every rank draws the same global micro-batch and
takes its own contiguous share of it (`share`); DDP averages the gradients, so N ranks at batch B
train as one process at batch B. Only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from fin3r_lib.training.config import ConfigError


@dataclass(frozen=True)
class Distributed:
    """This process's place in the run: `rank` of `world` processes (one process: 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        """More than one process: gradients and logged values are averaged across them."""
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """The process that writes logs, checkpoints and adapters."""
        return self.rank == 0

    def share(self, count: int, what: str) -> slice:
        """This rank's contiguous part of `count` items (`what` names them in the error)."""
        if count % self.world:
            raise ConfigError(
                f"{what}: expected a multiple of the {self.world} processes (each takes an equal share), got {count}"
            )
        size = count // self.world
        return slice(self.rank * size, (self.rank + 1) * size)

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """`model` in DistributedDataParallel when active, else `model` itself."""
        if not self.active:
            return model
        ids = [device.index if device.index is not None else self.local_rank] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """The mean of each value over the ranks (the same dict on every rank)."""
        if not self.active or not values:
            return values
        keys = sorted(values)
        tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64)
        dist.all_reduce(tensor)
        return {k: float(v) / self.world for k, v in zip(keys, tensor.tolist(), strict=True)}

    def barrier(self) -> None:
        """Wait until every rank got here (a no-op for one process)."""
        if self.active:
            dist.barrier()

    def close(self) -> None:
        """Leave the process group (a no-op for one process)."""
        if self.active and dist.is_initialized():
            dist.destroy_process_group()


SINGLE = Distributed()


def from_environment(device: str) -> Distributed:
    """Join torchrun's process group when WORLD_SIZE > 1 (CUDA: this rank's GPU becomes the current one).

    On CUDA, tensors on the GPU go through nccl and CPU tensors (the logged values `mean` reduces)
    through gloo: nccl alone has no CPU collectives.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device != "cpu" and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group("cpu:gloo,cuda:nccl" if cuda else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), local_rank)
