"""Rank and world helpers for training under ``torchrun``: joining and leaving the process group,
barriers, disjoint per-rank samplers, averaging logged values over ranks, and a check that every
rank holds the same weights.

One process per device. ``torchrun`` (or ``python -m torch.distributed.run``) sets ``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``; with ``WORLD_SIZE`` unset or 1
everything here is a no-op and training runs in one process as before.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Dataset, DistributedSampler, RandomSampler, Sampler

#: Seconds a rank waits in a collective before it gives up (env ``ACTIVE_DIST_TIMEOUT``). Other
#: ranks wait while rank 0 validates and writes checkpoints, so this must exceed that; it also
#: bounds how long a rank hangs when another one has died outside torchrun's supervision.
DEFAULT_TIMEOUT_S = 1800


@dataclass(frozen=True)
class Ranks:
    """Where this process stands: its rank, the world size, its local rank on the node, and
    whether it created the process group (and so must destroy it)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def launched_world_size() -> int:
    """The world size torchrun announced (1 when not launched by it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def setup(device: torch.device) -> tuple[Ranks, torch.device]:
    """Join the process group torchrun describes (``env://``; NCCL for CUDA, gloo for the CPU)
    and return this process's ranks and device (``cuda:LOCAL_RANK`` on a GPU server).

    A group that already exists (a caller set one up) is used as is and left to its owner.
    """
    if dist.is_available() and dist.is_initialized():
        owns = False
    elif launched_world_size() > 1:
        timeout = timedelta(seconds=float(os.environ.get("ACTIVE_DIST_TIMEOUT",
                                                         DEFAULT_TIMEOUT_S)))
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timeout)
        owns = True
    else:
        return Ranks(), device
    local = int(os.environ.get("LOCAL_RANK", "0"))
    ranks = Ranks(dist.get_rank(), dist.get_world_size(), local, owns)
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)  # NCCL's object collectives use the current device
    return ranks, device


def barrier(ranks: Ranks, device: torch.device) -> None:
    """Wait until every rank arrives (no-op in one process)."""
    if not ranks.distributed:
        return
    if device.type == "cuda":
        dist.barrier(device_ids=[device.index])
    else:
        dist.barrier()


def close(ranks: Ranks, device: torch.device) -> None:
    """Wait for every rank, then destroy the process group if ``setup`` created it, so the
    processes exit together and torchrun sees a clean end."""
    barrier(ranks, device)
    if ranks.owns_group:
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, ranks: Ranks, device: torch.device) -> torch.nn.Module:
    """``model`` in DistributedDataParallel (gradients averaged over ranks, parameters and
    buffers broadcast from rank 0 on construction), or ``model`` itself in one process.

    Wrap again whenever ``requires_grad`` changes (freeze training): DDP registers the trainable
    parameters once, when it is built.
    """
    if not ranks.distributed:
        return model
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None)


def sampler(dataset: Dataset, ranks: Ranks, seed: int, generator: torch.Generator) -> Sampler:
    """A shuffling sampler: over the whole dataset in one process; in several, a disjoint shard
    per rank (the shuffled order cut into ``world`` equal parts; the last ``len % world`` frames
    of each epoch's order are skipped rather than repeated). Call ``set_epoch`` each epoch."""
    if not ranks.distributed:
        return RandomSampler(dataset, generator=generator)
    if len(dataset) < ranks.world:
        raise ValueError(f"{len(dataset)} training frames cannot be shared by {ranks.world} "
                         "processes")
    return DistributedSampler(dataset, ranks.world, ranks.rank, shuffle=True, seed=seed,
                              drop_last=True)


def rank_seed(seed: int, stage: int, epoch: int, rank: int) -> int:
    """A torch seed for one rank's epoch: different on each rank (drop-connect masks), and a
    function of the position alone, so a resumed run draws what the uninterrupted one drew."""
    return int(np.random.SeedSequence((seed, stage, epoch, rank)).generate_state(1)[0])


def average(values: dict[str, float], ranks: Ranks, device: torch.device) -> dict[str, float]:
    """The mean of each value over ranks (every rank passes the same keys)."""
    if not ranks.distributed or not values:
        return values
    keys = list(values)  # the same order on every rank
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return {k: float(v) / ranks.world for k, v in zip(keys, t.tolist(), strict=True)}


def parameter_digest(model: torch.nn.Module) -> str:
    """SHA-256 of the names and bytes of ``model``'s parameters (not its buffers: BatchNorm
    running statistics are each rank's own between DDP's broadcasts from rank 0)."""
    model = getattr(model, "module", model)
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        h.update(name.encode())
        h.update(p.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def check_replicas(model: torch.nn.Module, ranks: Ranks) -> list[str]:
    """Every rank's :func:`parameter_digest`, rank 0 first; raises ``RuntimeError`` on every rank
    alike if they differ (the ranks would then be training different models)."""
    digest = parameter_digest(model)
    if not ranks.distributed:
        return [digest]
    digests: list[str] = [""] * ranks.world
    dist.all_gather_object(digests, digest)
    if len(set(digests)) > 1:
        raise RuntimeError(f"the {ranks.world} ranks hold different weights: {digests}")
    return digests
