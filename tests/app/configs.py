"""Small experiment configs for tests that train through the worker (digits, an MLP, a few steps)."""

from __future__ import annotations

from psl_core.config import ExperimentConfig, apply_overrides


def tiny_config(name: str, /, *, steps_per_epoch: int, **overrides) -> ExperimentConfig:
    """Digits, 3 clients, an MLP, one epoch of ``steps_per_epoch`` steps; ``overrides`` by dotted path
    (``name=`` among them renames the run)."""
    base = {
        "name": name,
        "data.dataset": "digits",
        "data.train_limit": 300,
        "data.test_limit": 100,
        "partition.num_clients": 3,
        "model.arch": "mlp",
        "sampling.batch_size": 32,
        "training.epochs": 1,
        "training.max_steps_per_epoch": steps_per_epoch,
    }
    return apply_overrides(ExperimentConfig(), {**base, **overrides})
