"""The torchrun world a command runs in: its rank, size and device, on PyTorch's own ``torch.distributed``.

``torchrun --nproc-per-node N [--nnodes M ...] -m avemo extract ...`` starts N processes per machine and sets
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; without them a command runs as a world of one and never touches
``torch.distributed``. Processes talk over ``gloo`` on CPUs and ``nccl`` on GPUs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # the CLI reads the rank before torch is imported
    import torch

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0  # the process's index on its machine: its GPU

    @property
    def main(self) -> bool:
        """Rank 0 alone writes shared files (index, reports) and talks to the user."""
        return self.rank == 0

    def shard(self, items: list[T]) -> list[T]:
        """This rank's share of ``items``: every ``size``-th from ``rank`` on, the same on every run."""
        return items[self.rank::self.size]

    def barrier(self) -> None:
        if self.size > 1:
            import torch.distributed

            torch.distributed.barrier()

    def gather(self, value: Any) -> list[Any]:
        """``value`` of every rank, in rank order, on every rank (picklable objects)."""
        if self.size == 1:
            return [value]
        import torch.distributed

        out: list[Any] = [None] * self.size
        torch.distributed.all_gather_object(out, value)
        return out

    def device(self, device: torch.device) -> torch.device:
        """Each rank of a CUDA world takes the GPU of its local rank."""
        if device.type == "cuda" and self.size > 1:
            import torch

            return torch.device("cuda", self.local_rank)
        return device


def launched_size() -> int:
    """How many processes torchrun started (1 when it did not)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def launched_rank() -> int:
    """This process's rank as torchrun set it, before joining the process group (0 alone)."""
    return int(os.environ.get("RANK", "0")) if launched_size() > 1 else 0


def join(device: torch.device) -> World:
    """The world torchrun started this process in (joining its process group), or a world of one."""
    if launched_size() == 1:
        return World()
    import torch
    import torch.distributed

    if not torch.distributed.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        # Ranks that finish their share early wait for the others at the end; the default timeout (10 min
        # for nccl) would kill a long run whose shares are uneven.
        torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo",
                                             timeout=timedelta(hours=24))
    return World(torch.distributed.get_rank(), torch.distributed.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def leave(world: World) -> None:
    """Close the process group ``join`` opened."""
    if world.size == 1:
        return
    import torch.distributed

    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
