"""An experiment config as a planning instance, and a plan written back into a config.

Every device group of ``system.clients`` is one client class (its clients share the group's cut and
uplink share, which is what a config can express); ``per_client=True`` makes every client its own
class instead (per-client cuts and shares: exact per client, but not something a config can hold). A client's expected samples per step b_k come
from the sampling method and its data size N_k (N = sum N_k, B the global batch):

    fls     b_k = per-client batch, or max(1, round(B / K))
    fpls    b_k = max(1, round(B N_k / N))
    ugs/lds b_k = B N_k / N (expected share of a uniformly drawn batch; LDS with delta > 0 moves
            samples away from slow clients, which the planner does not anticipate)
    centralised  b_k = B (one client)
"""

from __future__ import annotations

import dataclasses

import numpy as np

from psl_core.config import ExperimentConfig, parse_config
from psl_core.planner.instance import CutCosts, PlanningError, PlanningInstance, build_instance
from psl_core.planner.plan import Plan


def expected_samples_per_step(
    method: str, sizes: np.ndarray, batch_size: int, per_client_batch: int | None = None
) -> np.ndarray:
    """(K,) expected samples each client contributes to one step of ``method`` (0 for empty clients)."""
    sizes = np.asarray(sizes, dtype=float)
    k, n = sizes.shape[0], float(sizes.sum())
    if k == 0 or n <= 0:
        raise PlanningError("the partition holds no samples: nothing to plan")
    has_data = sizes > 0
    if method == "fls":
        b = float(per_client_batch or max(1, round(batch_size / k)))
        return np.where(has_data, b, 0.0)
    if method == "fpls":
        return np.where(has_data, np.maximum(1.0, np.round(batch_size * sizes / n)), 0.0)
    if method in ("ugs", "lds", "centralised"):
        return min(batch_size, n) * sizes / n
    raise PlanningError(f"unknown sampling method {method!r}: use fls, fpls, ugs, lds or centralised")


def instance_from_config(
    config: ExperimentConfig,
    *,
    uplink_mbps: float | None = None,
    client_sizes: np.ndarray | None = None,
    profile=None,
    share_cap_mbps: dict[str, float] | None = None,
    per_client: bool = False,
) -> PlanningInstance:
    """The planning instance of ``config``'s device mix, model and schedule.

    ``uplink_mbps`` overrides ``system.shared_uplink_mbps`` (None keeps the config's; no shared uplink
    then means every device its own uplink and only cuts are planned). ``client_sizes`` are the
    partition's N_k (default: equal sizes); ``profile`` the model's profile (default: profiled here);
    ``share_cap_mbps`` caps a client's uplink rate per device id (e.g. its radio's top rate);
    ``per_client`` plans one class per client (class ids are then client indices, not group indices).
    """
    from psl_core.engine.setup import assign_client_groups, device_catalog
    from psl_core.models import cut_table, profile_arch

    if config.model.cut2 is not None:
        raise PlanningError(
            "the split planner plans single cuts; this experiment is U-shaped (model.cut2 is set): "
            "clear model.cut2 to plan it"
        )
    if profile is None:
        from psl_core.data import DATASETS

        info = DATASETS[config.data.dataset]
        profile = profile_arch(
            config.model.arch,
            tuple(info.input_shape),
            info.num_classes,
            config.model.client_norm,
            config.model.server_norm,
        )
    catalog = device_catalog(config)
    groups = config.system.clients
    for i, g in enumerate(groups):
        if g.device not in catalog:
            raise PlanningError(
                f"system.clients.{i}.device: unknown device {g.device!r}; known: {', '.join(sorted(catalog))}"
            )
    if config.system.server_device not in catalog:
        raise PlanningError(f"unknown server device {config.system.server_device!r}")
    k = config.partition.num_clients
    sizes = np.ones(k) if client_sizes is None else np.asarray(client_sizes, dtype=float)
    if sizes.shape != (k,):
        raise PlanningError(f"client_sizes must give one size per client ({k}), got {sizes.shape}")
    s = config.sampling
    samples = expected_samples_per_step(s.method, sizes, s.batch_size, s.per_client_batch)
    group_of = assign_client_groups(groups, k, config.seed)
    w = uplink_mbps if uplink_mbps is not None else config.system.shared_uplink_mbps
    links = {}
    for g in groups:
        if any(v is not None for v in (g.up_mbps, g.down_mbps, g.latency_ms)):
            if g.device in links and links[g.device] != (g.up_mbps, g.down_mbps, g.latency_ms):
                raise PlanningError(
                    f"two groups of device {g.device!r} override its link differently; the planner needs "
                    "one link per device — give them the same up/down/latency"
                )
            links[g.device] = (g.up_mbps, g.down_mbps, g.latency_ms)
    inst = build_instance(
        CutCosts.from_summaries(cut_table(profile), profile=profile),
        [groups[i].device for i in group_of],
        samples,
        catalog=catalog,
        server_device=catalog[config.system.server_device],
        uplink_mbps=w,
        class_of=np.arange(k) if per_client else group_of,
        class_labels=(
            [f"client {c} ({groups[group_of[c]].device})" for c in range(k)]
            if per_client
            else [f"group {i} ({g.device})" for i, g in enumerate(groups)]
        ),
        link_overrides=links,
        share_cap_mbps=share_cap_mbps,
    )
    return dataclasses.replace(inst, per_client=True) if per_client else inst


def class_groups(inst: PlanningInstance) -> list[int]:
    """The config group index of each class of an instance built by ``instance_from_config``."""
    return list(inst.class_id)


def apply_plan(config: ExperimentConfig, inst: PlanningInstance, plan: Plan) -> ExperimentConfig:
    """``config`` with the plan's cut per group and, on a shared uplink, its W and per-client shares.

    Groups without an active client keep their settings. The result is validated (ConfigError if the
    plan does not fit the config, which would be a bug)."""
    if inst.per_client:
        raise PlanningError(
            "a per-client plan cannot be written into a config: it holds one cut and one uplink share per "
            "device group (system.clients); plan per group (without per-client) to apply it"
        )
    data = config.model_dump(mode="json")
    cuts = plan.cuts(inst)
    system = data["system"]
    for cls, group in enumerate(class_groups(inst)):
        system["clients"][group]["cut"] = int(cuts[cls])
        if plan.shares is not None:
            system["clients"][group]["uplink_share"] = float(plan.shares[cls])
            system["clients"][group]["up_mbps"] = None
    if plan.shares is not None:
        system["shared_uplink_mbps"] = inst.uplink_bps / 1e6
        # Planned shares use the uplink fully up to rounding; never let rounding ask for more than W.
        total = sum(
            g["uplink_share"] * n
            for g, n in zip(system["clients"], _group_sizes(config), strict=True)
            if g.get("uplink_share") is not None
        )
        if total > 1.0:
            for g in system["clients"]:
                if g.get("uplink_share") is not None:
                    g["uplink_share"] = g["uplink_share"] / total * (1.0 - 1e-12)
    return parse_config(data)


def _group_sizes(config: ExperimentConfig) -> np.ndarray:
    from psl_core.engine.setup import client_group_sizes

    return client_group_sizes(config.system.clients, config.partition.num_clients)
