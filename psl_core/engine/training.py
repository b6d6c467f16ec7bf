"""What every training engine shares (PSL's trainer and the round-based paradigms): the result of a
run, the divergence error, the optimizer and the learning-rate schedule of ``training``."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch

from psl_core.config import ExperimentConfig


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the message says where and what to change."""


@dataclass
class RunResult:
    status: str  # 'completed' | 'cancelled'
    steps: int
    epochs: int
    final: dict[str, Any] | None  # the last epoch's metrics


def make_optimizer(
    model: torch.nn.Module, cfg: ExperimentConfig, *, fused: bool = False
) -> torch.optim.Optimizer:
    t = cfg.training
    # torch's default (foreach on a GPU) unless fused is asked: fp16 on a GPU (precision.py).
    extra = {"fused": True} if fused else {}
    if t.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay, **extra)
    return torch.optim.SGD(
        model.parameters(), lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay, **extra
    )


def learning_rate(cfg: ExperimentConfig, epoch: int, step: int, total_steps: int) -> float:
    """Learning rate at (0-based) ``epoch`` / global ``step``: a pure function, so resume needs no state."""
    t = cfg.training
    if t.lr_schedule == "step":
        return t.lr * t.lr_gamma ** (epoch // t.lr_step_epochs)
    if t.lr_schedule == "cosine":
        return t.lr * 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / max(1, total_steps)))
    return t.lr


@dataclass(frozen=True)
class FlushPolicy:
    """When buffered step rows go to the sink: every ``every`` steps, or — with ``interval_s`` — once
    that many seconds passed since the last flush (a worker writes at most once a second or so)."""

    every: int = 25
    interval_s: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "every", max(1, int(self.every)))

    def due(self, pending: int, last_flush: float) -> bool:
        if self.interval_s is None:
            return pending >= self.every
        return pending > 0 and time.perf_counter() - last_flush >= self.interval_s
