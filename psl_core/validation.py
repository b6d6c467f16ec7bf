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

import difflib
import json
import math
import re
import shutil
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
        if e["type"] == "extra_forbidden":
            message = unknown_field_message(e["loc"])
        path = ".".join(str(p) for p in _field_loc(e["loc"])) or _first_field_named(message)
        value = e.get("input")
        if isinstance(value, (dict, list)):
            value = None  # a whole section is no useful "got ..."
        same = next((p for p in problems if p.path == path and p.value == value), None)
        if same is not None:  # each member of a union (e.g. a fraction or a list) failed: one problem
            problems[problems.index(same)] = Problem(path, f"{same.message}, or: {message}", value)
            continue
        problems.append(Problem(path, message, value))
    return problems


def _field_loc(loc: tuple) -> tuple:
    """pydantic's error location without its union-member tags: for ``fl_clients: float | list[str]``
    it reports ``paradigm.fl_clients.float``; the user's field is ``paradigm.fl_clients``."""
    import typing

    from pydantic import BaseModel

    model: Any = ExperimentConfig
    kept: list = []
    for part in loc:
        if isinstance(part, int):
            kept.append(part)
            continue
        if model is None:
            continue  # below a plain field: a union member's tag, not a field
        kept.append(part)
        field = model.model_fields.get(str(part))
        if field is None:
            model = None
            continue
        candidates = [field.annotation, *typing.get_args(field.annotation)]
        candidates += [a for c in candidates for a in typing.get_args(c)]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
    return tuple(kept)


def _section_model(loc: tuple) -> type | None:
    """The pydantic model that holds the field at ``loc`` (None when the path leaves the config)."""
    import typing

    from pydantic import BaseModel

    model: Any = ExperimentConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue  # a list item: the model is the list's element type, found below
        field = model.model_fields.get(str(part)) if isinstance(model, type) else None
        if field is None:
            return None
        annotation = field.annotation
        candidates = [annotation, *typing.get_args(annotation)]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return None
    return model


def unknown_field_message(loc: tuple) -> str:
    """'unknown field' with the closest valid name at that place, or the valid names."""
    model = _section_model(tuple(loc))
    if model is None:
        return "unknown field"
    names = list(model.model_fields)
    prefix = ".".join(str(p) for p in loc[:-1])
    close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.5)
    if close:
        return f"unknown field; did you mean {prefix + '.' if prefix else ''}{close[0]}?"
    return f"unknown field; the fields here are {', '.join(names)}"


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
    problems += _training_speed_problems(config)
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
    problems += _helper_problems(config, catalog, known)
    if helpers.num_helpers > config.partition.num_clients:
        problems.append(
            Problem(
                "system.helpers.num_helpers",
                f"{helpers.num_helpers} helpers for {config.partition.num_clients} clients: some helpers stay idle",
                helpers.num_helpers,
                "warning",
            )
        )
    problems += _uplink_problems(config)
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


def _uplink_problems(config: ExperimentConfig) -> list[Problem]:
    """The shared uplink: shares need it, fit in it, and replace the groups' own uplinks."""
    from psl_core.engine.setup import group_uplink_shares

    problems: list[Problem] = []
    system = config.system
    if system.shared_uplink_mbps is not None:
        for i, group in enumerate(system.clients):
            if group.up_mbps is not None:
                problems.append(
                    Problem(
                        f"system.clients.{i}.up_mbps",
                        "a shared uplink (system.shared_uplink_mbps) replaces the devices' own uplinks: "
                        "remove up_mbps or give the group an uplink_share instead",
                        group.up_mbps,
                    )
                )
    try:
        group_uplink_shares(config)
    except ValueError as err:
        text = str(err)
        given = [i for i, g in enumerate(system.clients) if g.uplink_share is not None]
        path = f"system.clients.{given[0]}.uplink_share" if given else "system.shared_uplink_mbps"
        problems.append(Problem(path, text, system.clients[given[0]].uplink_share if given else None))
    return problems


def _helper_problems(config: ExperimentConfig, catalog, known: str) -> list[Problem]:
    """Mixed helper devices, the exact solvers' size limits (issue 14)."""
    from psl_core.helpers.in_training import EXACT_MAX_CLIENTS

    helpers, k = config.system.helpers, config.partition.num_clients
    if not helpers.num_helpers:
        return []
    problems = [
        Problem(f"system.helpers.helper_devices.{i}", f"unknown device {d!r}; use one of {known}", d)
        for i, d in enumerate(helpers.helper_devices)
        if d not in catalog
    ]
    limit = EXACT_MAX_CLIENTS.get(helpers.solver)
    if limit is not None and k > limit:
        problems.append(
            Problem(
                "system.helpers.solver",
                f"{helpers.solver!r} is offered for at most {limit} clients (K = {k}); use 'lns' or 'local_search'",
                helpers.solver,
            )
        )
    return problems


def _cuda_would_be_used(device: str) -> bool:
    if device == "cpu":
        return False
    import torch

    return torch.cuda.is_available()


def _training_speed_problems(config: ExperimentConfig) -> list[Problem]:
    """Precision, torch.compile and evaluation settings that cannot work, or defeat themselves."""
    t = config.training
    problems: list[Problem] = []
    on_cuda = _cuda_would_be_used(t.device)
    if t.precision == "fp16" and not on_cuda:
        problems.append(
            Problem(
                "training.precision",
                "fp16 on a CPU is emulated (slower than fp32) and needs loss scaling; use 'bf16' or 'fp32' on a CPU",
                t.precision,
                "warning",
            )
        )
    if t.precision == "bf16" and on_cuda:
        import torch

        if not torch.cuda.is_bf16_supported():
            problems.append(
                Problem(
                    "training.precision",
                    "this GPU has no bfloat16 support; use 'fp16' (with loss scaling) or 'fp32'",
                    t.precision,
                )
            )
    if t.compile and not on_cuda and not any(shutil.which(cc) for cc in ("c++", "g++", "clang++", "cc")):
        problems.append(
            Problem(
                "training.compile",
                "torch.compile on a CPU needs a C++ compiler and none was found on PATH; install g++ or clang, "
                "or turn training.compile off",
                t.compile,
            )
        )
    if t.eval_every_unit == "epochs" and t.eval_every > t.epochs:
        problems.append(
            Problem(
                "training.eval_every",
                f"every {t.eval_every} epochs in a {t.epochs}-epoch run: only the final evaluation happens; "
                "lower training.eval_every to see a test curve",
                t.eval_every,
                "warning",
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
    problems += _paradigm_size_problems(config, partition.sizes, profile)
    cut, cut2 = resolve_cut_pair(block_names_for(m.arch), m.cut, m.cut2)
    try:
        parts = experiment_system(config, profile, cut, cut2, partition.sizes)
    except ValueError as err:
        path = "system.helpers" if config.system.helpers.num_helpers else "system.clients"
        problems.append(Problem(path, str(err)))
        return problems
    if parts.helpers is not None:
        problems += _helper_memory_warnings(config, parts.helpers, partition.sizes)
    return problems


def _helper_memory_warnings(config: ExperimentConfig, plan, sizes) -> list[Problem]:
    """Warn when a step's counts could overflow a helper: helper memory is checked per step (issue 14)."""
    import numpy as np

    from psl_core.helpers.instance import memory_fits

    s, costs = config.sampling, plan.costs
    k = len(sizes)
    if s.method == "fls":
        peak = np.full(k, s.per_client_batch or max(1, round(s.batch_size / k)), dtype=float)
    elif s.method == "fpls":
        peak = np.maximum(1, np.round(s.batch_size * sizes / sizes.sum()))
    else:  # UGS, LDS: any client may send up to min(B, N_k) samples in one step
        peak = np.minimum(s.batch_size, sizes).astype(float)
    load = np.bincount(
        plan.assignment,
        weights=costs.mem_fixed_mb + costs.mem_per_sample_mb * peak,
        minlength=costs.num_helpers,
    )
    over = np.flatnonzero(~memory_fits(load, costs.helper_capacity_mb))
    if not len(over):
        return []
    h = int(over[0])
    return [
        Problem(
            "system.helpers.num_helpers",
            f"helper {h} could need {load[h]:.0f} MB in a step where its clients send their most samples "
            f"(capacity {costs.helper_capacity_mb[h]:.0f} MB); memory is checked per step and such a step stops "
            "the run: add helpers or lower sampling.batch_size",
            config.system.helpers.num_helpers,
            "warning",
        )
    ]


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
