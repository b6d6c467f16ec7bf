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
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from pydantic import ValidationError

from psl_core.config import ConfigError, ExperimentConfig, format_problem_lines
from psl_core.config_io import check_structure

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config: where (dotted field path), what to change, and how bad."""

    path: str
    message: str
    value: Any = None
    severity: Severity = "error"

    def text(self) -> str:
        return f"{self.path or '(config)'}: {self.message}"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.is_error]


def warnings_of(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if not p.is_error]


def schema_problems(err: ValidationError) -> list[Problem]:
    """pydantic's errors as Problems (one per location, with the value that was given)."""
    problems = []
    for e in err.errors():
        message = e["msg"].removeprefix("Value error, ")
        path = ".".join(str(p) for p in e["loc"]) or _first_field_named(message)
        value = e.get("input")
        if isinstance(value, (dict, list)):
            value = None  # a whole section is no useful "got ..."
        problems.append(Problem(path, message, value))
    return problems


_FIELD_MENTION = re.compile(
    r"\b(?:data|partition|model|sampling|training|system|paradigm)\.[a-z_][\w.]*[a-z_0-9]"
)


def _first_field_named(message: str) -> str:
    """A cross-field rule has no location of its own: blame the first field its message names."""
    found = _FIELD_MENTION.search(message)
    return found.group(0) if found else ""


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
    if helpers.num_helpers > config.partition.num_clients:
        problems.append(
            Problem(
                "system.helpers.num_helpers",
                f"{helpers.num_helpers} helpers for {config.partition.num_clients} clients: some helpers stay idle",
                helpers.num_helpers,
                "warning",
            )
        )
    problems += _paradigm_problems(config, catalog)
    problems += _norm_group_problems(config)
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


def _norm_group_problems(config: ExperimentConfig) -> list[Problem]:
    """model.norm_groups must divide every normalised layer's channels, and only matters for GroupNorm."""
    from psl_core.models.zoo import normalised_channels

    m = config.model
    if m.norm_groups is None:
        return []
    if "group" not in (m.client_norm, m.server_norm):
        return [
            Problem(
                "model.norm_groups",
                "has no effect: neither model.client_norm nor model.server_norm is 'group'",
                m.norm_groups,
                "warning",
            )
        ]
    channels = normalised_channels(m.arch)
    bad = [c for c in channels if c % m.norm_groups]
    if not bad:
        return []
    common = [g for g in range(1, min(channels) + 1) if all(c % g == 0 for c in channels)]
    return [
        Problem(
            "model.norm_groups",
            f"{m.arch} normalises layers of {', '.join(map(str, channels))} channels and {m.norm_groups} "
            f"does not divide {', '.join(map(str, bad))}; use one of {', '.join(map(str, common))} or leave it "
            "empty (automatic)",
            m.norm_groups,
        )
    ]


# ---------------------------------------------------------------- the engine's own build stages
def _build_problems(config: ExperimentConfig) -> list[Problem]:
    """Run the engine's pre-training stages (minus building the model) and report where one fails."""
    from psl_core.data import DatasetNotFoundError
    from psl_core.engine.setup import experiment_dataset, experiment_partition, experiment_system
    from psl_core.models import profile_arch
    from psl_core.models.zoo import block_names_for, resolve_cut_pair

    d, p = config.data, config.partition
    try:
        dataset = experiment_dataset(config)
    except DatasetNotFoundError as err:
        return [Problem("data.data_dir" if d.data_dir else "data.dataset", str(err), d.data_dir or d.dataset)]
    except (ValueError, OSError) as err:
        return [Problem("data", f"cannot load {d.dataset!r}: {err}", d.dataset)]
    labels = dataset.y_train.numpy()
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
    problems += _paradigm_size_problems(config, partition.sizes, profile)
    cut, cut2 = resolve_cut_pair(block_names_for(m.arch), m.cut, m.cut2)
    try:
        experiment_system(config, profile, cut, cut2, partition.sizes)
    except ValueError as err:
        path = "system.helpers" if config.system.helpers.num_helpers else "system.clients"
        problems.append(Problem(path, str(err)))
    return problems


# ---------------------------------------------------------------- paradigms (SPEC §6)
_PARADIGM_DEFAULTS = {"local_epochs": 1, "local_batch": None, "client_fraction": 1.0, "fl_clients": 0.5}
# Stacked model copies beyond this many bytes get a warning (weights + gradients + optimiser state).
STACKED_MEMORY_WARNING_BYTES = 8 * 2**30


def _paradigm_problems(config: ExperimentConfig, catalog) -> list[Problem]:
    """fl_clients device ids that exist and are used; fields the chosen paradigm ignores (warnings)."""
    p, problems = config.paradigm, []
    used = sorted({g.device for g in config.system.clients})
    if isinstance(p.fl_clients, list):
        for device in p.fl_clients:
            if device not in catalog:
                message = f"unknown device {device!r}; use one of {', '.join(sorted(catalog))}"
                problems.append(Problem("paradigm.fl_clients", message, device))
            elif device not in used and p.name == "hsfl":
                message = f"no client group uses device {device!r}; the client groups use {', '.join(used)}"
                problems.append(Problem("paradigm.fl_clients", message, device))
    ignored = [
        name
        for name, default in _PARADIGM_DEFAULTS.items()
        if getattr(p, name) != default and (p.name == "psl" or (name == "fl_clients" and p.name != "hsfl"))
    ]
    for name in ignored:
        problems.append(
            Problem(
                f"paradigm.{name}", f"has no effect with paradigm {p.name!r}", getattr(p, name), "warning"
            )
        )
    if p.name != "psl" and (config.sampling.method != "ugs" or config.sampling.per_client_batch):
        problems.append(
            Problem(
                "sampling.method",
                f"only PSL samples global batches: paradigm {p.name!r} ignores it (sampling.batch_size still "
                "sets the default local batch B / K)",
                config.sampling.method,
                "warning",
            )
        )
    if (
        p.name in ("sflv1", "sflv2", "fedavg", "hsfl")
        and round(p.client_fraction * config.partition.num_clients) < 1
    ):
        problems.append(
            Problem(
                "paradigm.client_fraction",
                f"{p.client_fraction:g} of {config.partition.num_clients} clients rounds to none: one client per round is used",
                p.client_fraction,
                "warning",
            )
        )
    return problems


def _paradigm_size_problems(config: ExperimentConfig, sizes, profile) -> list[Problem]:
    """Local batch against the client sizes; memory of the stacked model copies."""
    from psl_core.paradigms.plan import default_local_batch, num_participants

    p, problems = config.paradigm, []
    if p.name == "psl":
        return problems
    b = p.local_batch or default_local_batch(config.sampling.batch_size, len(sizes))
    if b >= int(sizes.max()):
        problems.append(
            Problem(
                "paradigm.local_batch",
                f"b = {b} ≥ every client's data (at most {int(sizes.max())} samples): one local step per local epoch",
                p.local_batch,
                "warning",
            )
        )
    if p.name in ("sflv1", "sflv2", "fedavg", "hsfl"):
        copies = num_participants(len(sizes), p.client_fraction)
        need = 3 * copies * profile.total_param_bytes  # weights, gradients, optimiser state per copy
        if need > STACKED_MEMORY_WARNING_BYTES:
            problems.append(
                Problem(
                    "partition.num_clients",
                    f"{copies} model copies are trained together: about {need / 2**30:.1f} GiB for weights, "
                    "gradients and optimiser state alone; lower paradigm.client_fraction or the clients",
                    config.partition.num_clients,
                    "warning",
                )
            )
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
