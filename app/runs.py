"""Run services shared by the CLI and the dashboard: submit, sweep and re-run — each config goes
through the one validation path (psl_core.validation) before anything is stored."""

from __future__ import annotations

import re
from typing import Any

from app.settings import Settings
from psl_core.config import ConfigError, ExperimentConfig, apply_overrides, parse_config
from psl_core.sweep import sweep_configs
from psl_core.validation import validate_config
from storage import Store

MAX_SEED = 2**63 - 1


def submit(
    store: Store, config: ExperimentConfig, *, tags=(), notes: str = "", sweep_id: int | None = None
) -> int:
    """Check ``config`` (ConfigError if it has errors), then store it as a queued run; returns its id."""
    validate_config(config)
    return _store_queued(store, config, tags=tags, notes=notes, sweep_id=sweep_id)


def _store_queued(store: Store, config: ExperimentConfig, *, tags=(), notes: str = "", sweep_id=None) -> int:
    return store.create_run(
        name=config.name,
        config=config.model_dump(mode="json"),
        seed=config.seed,
        tags=list(tags),
        notes=notes,
        sweep_id=sweep_id,
    )


def submit_sweep(
    store: Store,
    base: ExperimentConfig,
    grid: dict[str, list[Any]],
    seeds: list[int],
    *,
    name: str | None = None,
    tags=(),
) -> tuple[int, list[int]]:
    """Check every point first (nothing is stored if one has errors), then queue them as one sweep."""
    configs = sweep_configs(base, grid, seeds)
    for config in configs:
        try:
            validate_config(config)
        except ConfigError as err:
            raise ConfigError(f"sweep point {config.name!r}: {err}") from None
    sweep_id = store.create_sweep(
        name or base.name, {"base": base.model_dump(mode="json"), "grid": grid, "seeds": seeds}
    )
    ids = [_store_queued(store, c, tags=tags, sweep_id=sweep_id) for c in configs]
    return sweep_id, ids


def rerun(store: Store, run_id: int, overrides: dict[str, Any] | None = None) -> int:
    """Queue a copy of a stored run, with edits (checked before anything is stored)."""
    record = store.get_run(run_id)
    config = apply_overrides(parse_config(record.config), overrides or {})
    return submit(store, config, tags=record.tags, notes=f"re-run of #{run_id}")


def parse_seed_list(text: str) -> list[int]:
    """``"0,1,2"`` → [0, 1, 2]; a clear ValueError for anything else."""
    seeds = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if not re.fullmatch(r"\d{1,19}", part) or int(part) > MAX_SEED:
            raise ValueError(
                f"seeds must be whole numbers from 0 to 2**63-1 separated by commas, got {part!r}"
            )
        seeds.append(int(part))
    if not seeds:
        raise ValueError("give at least one seed, e.g. --seeds 0,1,2")
    return seeds


def safe_file_stem(name: str, limit: int = 80) -> str:
    """A run name made safe as one path component (no separators, no '..', no control characters)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")[:limit]
    return stem or "run"


def delete_run(store: Store, settings: Settings, run_id: int) -> None:
    """Delete a run, its rows and its checkpoints (folder or object-store prefix).

    A running run is refused with :class:`storage.RunIsActive` ("cancel it first"): deleting it
    under its worker would throw away what the worker is writing. Cancel, wait until it stops,
    then delete. KeyError if there is no such run."""
    from app.worker.checkpoints import CheckpointLocation

    locations = store.delete_run(run_id)
    checkpoints = CheckpointLocation(settings)
    checkpoints.remove(locations, run_id)  # a stored location elsewhere inside the run's own place
    checkpoints.remove_run(run_id)


def delete_runs(store: Store, settings: Settings, run_ids) -> list[str]:  # noqa: ANN001 - any iterable
    """Delete each run that can be deleted; returns one message per run that was refused
    (running: "cancel it first"; already gone is not an error)."""
    from storage import RunIsActive

    refused = []
    for run_id in dict.fromkeys(int(r) for r in run_ids):
        try:
            delete_run(store, settings, run_id)
        except KeyError:
            continue
        except RunIsActive as err:
            refused.append(str(err))
    return refused
