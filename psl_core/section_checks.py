"""Checks of single config sections beyond the schema: the shared uplink, helpers, training speed
options (precision, compile, evaluation), normalisation groups and the paradigms. Each returns a list
of :class:`~psl_core.problems.Problem`; :mod:`psl_core.validation` runs them in order."""

from __future__ import annotations

import shutil

from psl_core.config import ExperimentConfig
from psl_core.problems import Problem


def uplink_problems(config: ExperimentConfig) -> list[Problem]:
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


def helper_problems(config: ExperimentConfig, catalog, known: str) -> list[Problem]:
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


def training_speed_problems(config: ExperimentConfig) -> list[Problem]:
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


def norm_group_problems(config: ExperimentConfig) -> list[Problem]:
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


def helper_memory_warnings(config: ExperimentConfig, plan, sizes) -> list[Problem]:
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


def paradigm_problems(config: ExperimentConfig, catalog) -> list[Problem]:
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


def paradigm_size_problems(config: ExperimentConfig, sizes, profile) -> list[Problem]:
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
