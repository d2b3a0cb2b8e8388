"""The training loop's state: what an iteration advances and the hooks read and write."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .stats import HeadStats


@dataclass
class TrainState:
    """Where a run is.  ``loss_history`` and ``maps`` are ``(iteration, value)`` pairs of
    the whole run, kept across resumes; ``losses`` are this process's losses."""

    iteration: int = 0
    avg_loss: float = -1.0  # Darknet's running average, -1 before the first iteration
    losses: list[float] = field(default_factory=list)
    loss_history: list[tuple[int, float]] = field(default_factory=list)
    maps: list[tuple[int, float]] = field(default_factory=list)
    best_map: float = -1.0
    lr_factor: float = 1.0  # lowered by --nan-recovery
    grad_norm: float = 0.0  # of the last iteration's summed gradient
    last_stats: list[HeadStats] = field(default_factory=list)  # per-[yolo] figures
    stopped: bool = False  # by a signal
    final: Path | None = None  # _final.weights, once written
