"""One training run reduced to what the reproduction tables report (shared by the reproduction benches)."""

from __future__ import annotations

import statistics
import time

from psl_core.config import ExperimentConfig
from psl_core.engine import MemorySink, TrainingDivergedError, run_experiment


def train_summary(config: ExperimentConfig) -> dict:
    """Train ``config``: test accuracy per epoch, steps per epoch, mean deviation and batch, wall time.

    A run whose loss became NaN predicts one class: it is reported at chance accuracy (0.1 for ten
    classes) and marked with the step where it diverged.
    """
    sink = MemorySink()
    t0 = time.perf_counter()
    diverged_at = None
    try:
        run_experiment(config, sink)
    except TrainingDivergedError:
        diverged_at = sink.steps[-1]["step"]
        sink.epochs.append({"test_acc": 0.1})
    return {
        "test_acc": [e["test_acc"] for e in sink.epochs],
        "steps_per_epoch": sink.info.steps_per_epoch,
        "mean_deviation": statistics.fmean(r["deviation"] for r in sink.steps),
        "mean_batch": statistics.fmean(r["batch_size"] for r in sink.steps),
        "wall_s": time.perf_counter() - t0,
        "diverged_at_step": diverged_at,
    }
