"""Training over several processes: one per device, DDP with NCCL (CUDA) or gloo (CPU).

``-gpus 0,1`` (or ``--cpu-processes N``) starts the processes here on one machine;
``torchrun --nnodes N --nproc_per_node G -m darknet_py detector train ...`` starts them
itself, on one or many machines, and each process joins through the env:// rendezvous
(RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT).  Every process samples its own
share of each mini-batch; rank 0 alone prints and writes checkpoints.
"""

from __future__ import annotations

import copy
import dataclasses
import os

import torch

from .trainer import TrainConfig, TrainResult, train


def launched_by_torchrun() -> bool:
    """Whether this process was started by torchrun (its rendezvous variables are set)."""
    return all(k in os.environ for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))


def train_torchrun(config: TrainConfig, on_iteration=None, on_message=None) -> TrainResult:
    """This process's part of a torchrun job: its device is ``cuda:LOCAL_RANK`` when
    ``config.device`` is CUDA, else the CPU (gloo)."""
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ["LOCAL_RANK"])
    cuda = config.device.startswith("cuda")
    device = f"cuda:{local}" if cuda else "cpu"
    if cuda:
        torch.cuda.set_device(torch.device(device))
    torch.distributed.init_process_group("nccl" if cuda else "gloo", init_method="env://")
    try:
        cfg = dataclasses.replace(config, rank=rank, world=world, device=device)
        main = rank == 0
        return train(cfg, on_iteration if main else (lambda r: None),
                     on_message if main else (lambda m: None))
    finally:
        torch.distributed.destroy_process_group()


def _ddp_worker(rank: int, world: int, config: TrainConfig, port: int, devices: list[str]):
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ["MASTER_PORT"] = str(port)
    backend = "nccl" if devices[rank].startswith("cuda") else "gloo"
    torch.distributed.init_process_group(backend, rank=rank, world_size=world)
    try:
        cfg = copy.copy(config)
        cfg.rank, cfg.world, cfg.device = rank, world, devices[rank]
        if cfg.device.startswith("cuda"):
            torch.cuda.set_device(torch.device(cfg.device))
        train(cfg, on_message=(None if rank == 0 else (lambda m: None)))
    finally:
        torch.distributed.destroy_process_group()


def train_distributed(config: TrainConfig, devices: list[str], port: int = 29517) -> None:
    """Train with one process per device (``-gpus 0,1``; gloo for CPU, NCCL for CUDA)."""
    torch.multiprocessing.spawn(_ddp_worker, args=(len(devices), config, port, devices),
                                nprocs=len(devices), join=True)
