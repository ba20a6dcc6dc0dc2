"""Data parallel with the launchers that exist: `torchrun` / `accelerate launch` set RANK, WORLD_SIZE and
LOCAL_RANK (multi-node through torchrun's rendezvous the same way); `eval` and `curate first-turn` read them.

Each rank takes every WORLD_SIZE-th episode of the run's selection (taken before resume filtering, so every
rank agrees on the split whatever is already done), runs on `cuda:LOCAL_RANK` where CUDA exists, and writes
its own file; after a barrier (torch.distributed, gloo: CPU-only machines too) rank 0 merges the ranks' work
into the one results file. Multi-node runs need the results path on a shared filesystem (or use `--shard I/N`
per machine and `proactivebench merge`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Mapping, Sequence, TypeVar

T = TypeVar("T")

# Ranks that finish early wait at the final barrier for the slowest: as long as a whole run may take.
BARRIER_TIMEOUT = timedelta(hours=48)


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Ranks":
        env = os.environ if env is None else env
        try:
            rank, world = int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1))
            local = int(env.get("LOCAL_RANK", rank))
        except ValueError:
            raise ValueError(
                f"RANK / WORLD_SIZE / LOCAL_RANK must be integers, got {env.get('RANK')!r} / "
                f"{env.get('WORLD_SIZE')!r} / {env.get('LOCAL_RANK')!r}"
            ) from None
        if not (world >= 1 and 0 <= rank < world and local >= 0):
            raise ValueError(f"RANK {rank} / WORLD_SIZE {world}: expected 0 <= RANK < WORLD_SIZE")
        return cls(rank, world, local)

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def take(self, items: Sequence[T]) -> list[T]:
        return list(items[self.rank :: self.world])

    def device(self, requested: str | None) -> str | None:
        """`auto` (or nothing) becomes this rank's own GPU when CUDA exists; anything asked for explicitly stays."""
        if not self.active or requested not in (None, "auto"):
            return requested
        try:
            import torch
        except ImportError:
            return requested
        return f"cuda:{self.local_rank}" if torch.cuda.is_available() else requested

    def barrier(self) -> None:
        """Every rank reaches this point before any goes on (no-op for one process)."""
        if not self.active:
            return
        import torch.distributed as dist

        if not dist.is_initialized():
            if "MASTER_ADDR" not in os.environ:
                raise ValueError(
                    "WORLD_SIZE > 1 but no MASTER_ADDR: start the ranks with torchrun or accelerate launch "
                    "(or run separate --shard I/N jobs and `proactivebench merge`)"
                )
            dist.init_process_group("gloo", rank=self.rank, world_size=self.world, timeout=BARRIER_TIMEOUT)
        dist.barrier()

    def close(self) -> None:
        if self.active:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
