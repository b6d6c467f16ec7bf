"""Every check an experiment config needs, in one place.

``check(config)`` returns a list of :class:`Problem` (field path, value, what to change, severity).
The command line (``psl config check | run | submit | sweep | import``), the run services, the
dashboard's form and the worker all call it, so a config that passes here does not fail in the worker
for a reason that could be known when it was submitted. Errors refuse the config; warnings are shown
and kept.

Checks come in two layers:
- the schema (pydantic: types, ranges, unknown keys, cross-field rules of :mod:`psl_core.config`);
- the experiment: device ids, cut points, CUDA, and — with ``deep=True`` (the default) — the same
  stages the engine runs before training (load the data, partition it, profile the model, build the
  device system and the helpers' plan), without building or training the model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from psl_core.config import ConfigError, ExperimentConfig, format_problem_lines
from psl_core.config_io import check_structure
from psl_core.problems import Problem, Severity, errors, schema_problems, unknown_field_message, warnings_of
from psl_core.section_checks import (
    STACKED_MEMORY_WARNING_BYTES,
    helper_memory_warnings,
    helper_problems,
    norm_group_problems,
    paradigm_problems,
    paradigm_size_problems,
    training_speed_problems,
    uplink_problems,
)

__all__ = [
    "STACKED_MEMORY_WARNING_BYTES",
    "Problem",
    "Severity",
    "check",
    "check_cached",
    "errors",
    "schema_problems",
    "unknown_field_message",
    "validate_config",
    "warnings_of",
]


def check(config: ExperimentConfig | Mapping[str, Any], *, deep: bool = True) -> list[Problem]:
    """All problems of ``config`` (a validated config or a raw dict), errors first."""
    if not isinstance(config, ExperimentConfig):
        if not isinstance(config, Mapping):
            return [Problem("", f"a config must be a mapping of sections, not a {type(config).__name__}")]
        try:  # a dict from YAML with aliases may expand exponentially: refuse before walking it
            check_structure(config)
        except ConfigError as err:
            return [Problem("", str(err))]
        try:
            config = ExperimentConfig.model_validate(dict(config))
        except ValidationError as err:
            return schema_problems(err)
    problems = _static_problems(config)
    if deep and not errors(problems):
        problems += _build_problems(config)
    return sorted(problems, key=lambda p: not p.is_error)


@lru_cache(maxsize=256)
def _check_json(config_json: str, deep: bool) -> tuple[Problem, ...]:
    return tuple(check(json.loads(config_json), deep=deep))


def check_cached(config: Mapping[str, Any], *, deep: bool = True) -> list[Problem]:
    """``check`` memoised on the config's content: for a form that re-checks the same config on
    every redraw. (Dataset files appearing or vanishing meanwhile are noticed at submit time.)"""
    try:
        check_structure(config)  # before json.dumps, which would expand an alias bomb
        key = json.dumps(config, sort_keys=True, allow_nan=True)
    except (TypeError, ValueError, RecursionError):  # ConfigError included: check() reports it
        return check(config, deep=deep)
    return list(_check_json(key, deep))


def validate_config(
    data: ExperimentConfig | Mapping[str, Any], *, deep: bool = True
) -> tuple[ExperimentConfig, list[Problem]]:
    """(the validated config, its warnings), or ConfigError listing every error, one line each."""
    problems = check(data, deep=deep)
    bad = errors(problems)
    if bad:
        raise ConfigError(format_problem_lines([(p.path, p.message, p.value) for p in bad]))
    config = data if isinstance(data, ExperimentConfig) else ExperimentConfig.model_validate(dict(data))
    return config, warnings_of(problems)


# ---------------------------------------------------------------- checks that need no data
def _static_problems(config: ExperimentConfig) -> list[Problem]:
    from psl_core.engine.setup import device_catalog
    from psl_core.models import block_names_for, resolve_cut_index
    from psl_core.models.zoo import resolve_cut_pair

    problems: list[Problem] = []
    if config.training.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            problems.append(
                Problem(
                    "training.device",
                    "is 'cuda' but this machine has no CUDA device; use 'auto' (CUDA where the worker has it) or 'cpu'",
                    "cuda",
                )
            )
    problems += training_speed_problems(config)
    try:
        catalog = device_catalog(config)
    except ValueError as err:
        return [*problems, Problem("system.custom_devices", str(err))]
    known = ", ".join(sorted(catalog))
    for i, group in enumerate(config.system.clients):
        if group.device not in catalog:
            problems.append(
                Problem(
                    f"system.clients.{i}.device",
                    f"unknown device {group.device!r}; use one of {known}",
                    group.device,
                )
            )
    if config.system.server_device not in catalog:
        problems.append(
            Problem(
                "system.server_device",
                f"unknown device {config.system.server_device!r}; use one of {known}",
                config.system.server_device,
            )
        )
    helpers = config.system.helpers
    if helpers.num_helpers and helpers.helper_device not in catalog:
        problems.append(
            Problem(
                "system.helpers.helper_device",
                f"unknown device {helpers.helper_device!r}; use one of {known}",
                helpers.helper_device,
            )
        )
    problems += helper_problems(config, catalog, known)
    if helpers.num_helpers > config.partition.num_clients:
        problems.append(
            Problem(
                "system.helpers.num_helpers",
                f"{helpers.num_helpers} helpers for {config.partition.num_clients} clients: some helpers stay idle",
                helpers.num_helpers,
                "warning",
            )
        )
    problems += uplink_problems(config)
    problems += paradigm_problems(config, catalog)
    problems += norm_group_problems(config)
    names = block_names_for(config.model.arch)
    try:
        cut, cut2 = resolve_cut_pair(names, config.model.cut, config.model.cut2)
    except ValueError as err:
        return [*problems, Problem("model.cut", str(err), config.model.cut)]
    for i, group in enumerate(config.system.clients):
        if group.cut is None:
            continue
        try:
            group_cut = resolve_cut_index(names, group.cut)
        except ValueError as err:
            problems.append(Problem(f"system.clients.{i}.cut", str(err), group.cut))
            continue
        if cut2 is not None and group_cut >= cut2:
            problems.append(
                Problem(
                    f"system.clients.{i}.cut",
                    f"per-device cut {group_cut} must come before model.cut2 ({cut2})",
                    group.cut,
                )
            )
    return problems


# ---------------------------------------------------------------- the engine's own build stages
def _build_problems(config: ExperimentConfig) -> list[Problem]:
    """Run the engine's pre-training stages (minus building the model) and report where one fails."""
    from psl_core.data import DatasetNotFoundError, load_labels
    from psl_core.engine.setup import experiment_partition, experiment_system
    from psl_core.models import profile_arch
    from psl_core.models.zoo import block_names_for, resolve_cut_pair

    d, p = config.data, config.partition
    try:
        # Labels and shapes only: the same subsets and errors as the engine's load, without normalising
        # every image (a form re-checks on each edit; Fashion-MNIST would cost a second each time).
        dataset = load_labels(d.dataset, data_dir=d.data_dir, train_limit=d.train_limit,
                              test_limit=d.test_limit, seed=config.seed)  # fmt: skip
    except DatasetNotFoundError as err:
        return [Problem("data.data_dir" if d.data_dir else "data.dataset", str(err), d.data_dir or d.dataset)]
    except (ValueError, OSError) as err:
        return [Problem("data", f"cannot load {d.dataset!r}: {err}", d.dataset)]
    labels = dataset.y_train
    n = len(labels)
    if p.num_clients > n:
        return [
            Problem(
                "partition.num_clients",
                f"K = {p.num_clients} clients but only {n} training samples; lower partition.num_clients"
                + (" or raise data.train_limit" if d.train_limit else ""),
                p.num_clients,
            )
        ]
    try:
        partition = experiment_partition(config, labels, dataset.num_classes)
    except ValueError as err:
        return [
            Problem(f"partition.{_partition_field(config)}", str(err), getattr(p, _partition_field(config)))
        ]
    problems = _sampling_warnings(config, partition.sizes)
    m = config.model
    try:
        profile = profile_arch(
            m.arch, tuple(dataset.input_shape), dataset.num_classes, m.client_norm, m.server_norm
        )
    except Exception as err:  # noqa: BLE001 - a model that cannot be built for this input, whatever torch raised
        return [
            *problems,
            Problem(
                "model.arch", f"cannot be built for {d.dataset} inputs {dataset.input_shape}: {err}", m.arch
            ),
        ]
    problems += paradigm_size_problems(config, partition.sizes, profile)
    cut, cut2 = resolve_cut_pair(block_names_for(m.arch), m.cut, m.cut2)
    try:
        parts = experiment_system(config, profile, cut, cut2, partition.sizes)
    except ValueError as err:
        path = "system.helpers" if config.system.helpers.num_helpers else "system.clients"
        problems.append(Problem(path, str(err)))
        return problems
    if parts.helpers is not None:
        problems += helper_memory_warnings(config, parts.helpers, partition.sizes)
    return problems


def _partition_field(config: ExperimentConfig) -> str:
    """The field to blame when a partition is infeasible: the scheme's main knob."""
    return {
        "dirichlet": "min_partition_size",
        "extended_dirichlet": "classes_per_client",
        "pathological": "classes_per_client",
        "shards": "shards_per_client",
    }.get(config.partition.scheme, "scheme")


def _sampling_warnings(config: ExperimentConfig, sizes) -> list[Problem]:
    s = config.sampling
    n, k = int(sizes.sum()), len(sizes)
    problems = []
    if s.batch_size > n:
        problems.append(
            Problem(
                "sampling.batch_size",
                f"B = {s.batch_size} is larger than the {n} training samples: each epoch is one step of the whole set",
                s.batch_size,
                "warning",
            )
        )
    if s.method in ("fls", "fpls"):
        if s.method == "fls":
            per_client = s.per_client_batch or max(1, round(s.batch_size / k))
            realised = per_client * k
        else:
            realised = int(sum(max(1, round(s.batch_size * int(nk) / n)) for nk in sizes))
        if realised > 1.5 * s.batch_size and not s.per_client_batch:
            problems.append(
                Problem(
                    "sampling.method",
                    f"with K = {k} clients each sending at least one sample, {s.method.upper()}'s global batch "
                    f"is {realised}, not B = {s.batch_size}; raise B or use UGS",
                    s.method,
                    "warning",
                )
            )
    t = config.training
    if t.eval_every_unit == "steps":
        from psl_core.engine.plan import steps_per_epoch

        per_epoch = steps_per_epoch(s.method, sizes, s.batch_size, s.per_client_batch)
        total = min(per_epoch, t.max_steps_per_epoch or per_epoch) * t.epochs
        if t.eval_every >= total:
            problems.append(
                Problem(
                    "training.eval_every",
                    f"every {t.eval_every} steps in a {total}-step run: only the final evaluation happens; "
                    "lower training.eval_every to see a test curve",
                    t.eval_every,
                    "warning",
                )
            )

    norms = {config.model.server_norm} | ({config.model.client_norm} if s.method != "centralised" else set())
    if s.batch_size == 1 and "batch" in norms:
        # BatchNorm in training mode needs at least two samples per channel; one-sample steps fail
        problems.append(
            Problem(
                "sampling.batch_size",
                "B = 1 with BatchNorm in the model: a one-sample batch has no batch statistics; "
                "raise B or use model.server_norm / client_norm 'group' or 'layer'",
                1,
            )
        )
    if not math.isfinite(config.training.lr):  # the schema refuses this; kept for configs built in code
        problems.append(Problem("training.lr", "must be a finite number", config.training.lr))
    return problems
