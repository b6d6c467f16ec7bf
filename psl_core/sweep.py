"""Sweeps: a grid over any config fields × seeds, one config per point (for grouped comparison)."""

from __future__ import annotations

import itertools
from typing import Any

from psl_core.config import ConfigError, ExperimentConfig, apply_overrides

MAX_SWEEP_RUNS = 1000


def sweep_configs(
    base: ExperimentConfig, grid: dict[str, list[Any]], seeds: list[int] | None = None
) -> list[ExperimentConfig]:
    """Every combination of ``grid`` (dotted field path → values) for every seed, validated.

    Each run is named after the base name and the values that vary, e.g. ``demo sampling.method=lds seed=1``.
    """
    seeds = list(seeds) if seeds else [base.seed]
    for path, values in grid.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(f"sweep field {path!r} needs a non-empty list of values, got {values!r}")
    points = list(itertools.product(*grid.values())) if grid else [()]
    total = len(points) * len(seeds)
    if total > MAX_SWEEP_RUNS:
        raise ConfigError(
            f"the sweep would create {total} runs (limit {MAX_SWEEP_RUNS}); shrink the grid or seeds"
        )
    configs = []
    for point in points:
        for seed in seeds:
            overrides = dict(zip(grid.keys(), point))
            label = " ".join(f"{k}={v}" for k, v in overrides.items())
            overrides["seed"] = seed
            # cut to the schema's 200 characters: a long grid label must not refuse the sweep
            overrides["name"] = f"{base.name} {label} seed={seed}".replace("  ", " ")[:200].strip()
            configs.append(apply_overrides(base, overrides))
    return configs
