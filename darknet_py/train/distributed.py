"""Training over several processes: one per device, DDP with NCCL (CUDA) or gloo (CPU)."""

from __future__ import annotations

import copy
import os

import torch

from .trainer import TrainConfig, train


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
