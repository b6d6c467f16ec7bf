"""From a config to everything training needs: data, partition, model and cut, devices, schedule.

Each piece comes from its own module of psl_core; this file only wires them, so the UI's previews
(partition heatmap, model split, device mix) can call the same functions without training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from psl_core.config import ClientGroup, ExperimentConfig
from psl_core.data import Dataset, Partition, load_dataset, partition_labels
from psl_core.devices import (
    ClientSystem,
    DeviceProfile,
    StragglerModel,
    StragglerSpec,
    build_client_system,
    custom_device,
    load_catalog,
)
from psl_core.helpers.in_training import HelperCosts, HelperPlan, plan_helpers
from psl_core.models import BlockModel, ModelProfile, build_model, cut_summary, profile_model
from psl_core.models.profile import CutSummary

_STREAM_HELPER_LINKS = 3  # random stream of drawn client-helper links (see engine/plan.py for 1, 2)


@dataclass
class ExperimentSetup:
    """Everything built from one config, before any training step."""

    config: ExperimentConfig
    dataset: Dataset
    partition: Partition
    model: BlockModel
    profile: ModelProfile
    cut: int
    cut2: int | None
    client_cut_summaries: list[CutSummary]  # per client: its own cut (cost only, methods §4)
    client_device_ids: list[str]
    system: ClientSystem
    stragglers: StragglerModel
    device: torch.device
    helpers: HelperPlan | None = None


def resolve_torch_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("training.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def device_catalog(config: ExperimentConfig) -> dict[str, DeviceProfile]:
    """The shipped catalog plus the config's custom devices (custom ids may not shadow shipped ones)."""
    catalog = dict(load_catalog())
    for c in config.system.custom_devices:
        if c.id in catalog:
            raise ValueError(f"custom device id {c.id!r} clashes with a catalog device; rename it")
        catalog[c.id] = custom_device(
            c.id,
            c.name or c.id,
            gflops=c.gflops,
            up_mbps=c.up_mbps,
            down_mbps=c.down_mbps,
            latency_ms=c.latency_ms,
            memory_mb=c.memory_mb,
            busy_watts=c.busy_watts,
            radio_watts=c.radio_watts,
        )
    return catalog


def client_group_sizes(groups: list[ClientGroup], num_clients: int) -> np.ndarray:
    """Clients per group: the fractions of ``num_clients`` rounded by largest remainder (no seed)."""
    fractions = np.array([g.fraction for g in groups])
    exact = fractions / fractions.sum() * num_clients
    sizes = np.floor(exact).astype(int)
    sizes[np.argsort(-(exact - sizes))[: num_clients - sizes.sum()]] += 1
    return sizes


def assign_client_groups(groups: list[ClientGroup], num_clients: int, seed: int) -> np.ndarray:
    """Group index of every client: group sizes follow the fractions (largest remainder), shuffled
    with the seed so that devices are not correlated with the partition's client order."""
    labels = np.repeat(np.arange(len(groups)), client_group_sizes(groups, num_clients))
    return np.random.default_rng([seed, 17]).permutation(labels)


def group_uplink_shares(config: ExperimentConfig) -> np.ndarray | None:
    """Per group, the share of the shared uplink each of its clients gets (None: no shared uplink).

    Groups with an ``uplink_share`` keep it; the others split what is left equally per client.
    Raises ValueError naming the groups when the shares ask for more than the whole uplink or leave
    nothing for the groups without one.
    """
    system = config.system
    groups = system.clients
    if system.shared_uplink_mbps is None:
        given = [i for i, g in enumerate(groups) if g.uplink_share is not None]
        if given:
            raise ValueError(
                f"system.clients.{given[0]}.uplink_share needs a shared uplink: set system.shared_uplink_mbps "
                "(or remove the share)"
            )
        return None
    sizes = client_group_sizes(groups, config.partition.num_clients)
    explicit = np.array([g.uplink_share if g.uplink_share is not None else 0.0 for g in groups])
    used = float((explicit * sizes).sum())
    if used > 1.0 + 1e-9:
        detail = ", ".join(
            f"group {i} ({g.device}): {sizes[i]} x {g.uplink_share:g}"
            for i, g in enumerate(groups)
            if g.uplink_share is not None
        )
        raise ValueError(
            f"the uplink shares add up to {used:.4g} of the shared uplink ({detail}); lower them so that "
            "clients x share sums to at most 1"
        )
    rest = [i for i, g in enumerate(groups) if g.uplink_share is None and sizes[i] > 0]
    shares = explicit.copy()
    if rest:
        left = 1.0 - used
        if left <= 1e-12:
            raise ValueError(
                f"the uplink shares use the whole shared uplink, leaving nothing for group(s) {rest}: "
                "give them a share or lower the others"
            )
        shares[rest] = left / sizes[rest].sum()
    return shares


def experiment_dataset(config: ExperimentConfig) -> Dataset:
    """The run's data (train/test limits and seed applied); raises DatasetNotFoundError or ValueError."""
    d = config.data
    return load_dataset(
        d.dataset, data_dir=d.data_dir, train_limit=d.train_limit, test_limit=d.test_limit, seed=config.seed
    )


def experiment_partition(config: ExperimentConfig, labels: np.ndarray, num_classes: int) -> Partition:
    """The run's non-IID partition of ``labels``; raises PartitionError (a ValueError) if infeasible."""
    p = config.partition
    return partition_labels(
        labels, p.num_clients, p.scheme, num_classes=num_classes, seed=config.seed, **p.scheme_params()
    )


@dataclass(frozen=True)
class SystemParts:
    """The simulated deployment of a run: per-client devices and cut costs, stragglers, helpers."""

    system: ClientSystem
    group_of: np.ndarray
    client_cut_summaries: list[CutSummary]
    client_device_ids: list[str]
    stragglers: StragglerModel
    helpers: HelperPlan | None


def experiment_system(
    config: ExperimentConfig, profile: ModelProfile, cut: int, cut2: int | None, client_sizes: np.ndarray
) -> SystemParts:
    """Devices, links, per-client cuts, stragglers and helpers of ``config``; raises ValueError."""
    catalog = device_catalog(config)
    system, group_of, summaries = build_client_system_for(config, profile, cut2, catalog)
    device_ids = [config.system.clients[i].device for i in group_of]
    helpers = None
    if config.system.helpers.num_helpers:
        helpers = build_helper_plan(config, profile, cut, cut2, system, catalog, client_sizes)
    return SystemParts(system, group_of, summaries, device_ids, build_stragglers(config), helpers)


def build_experiment(config: ExperimentConfig, *, dataset: Dataset | None = None) -> ExperimentSetup:
    """Build data, partition, model, per-client cut costs and the device system of ``config``.

    psl_core.validation.check runs the same stages (without building the model) so that a config it
    accepts builds here."""
    torch.manual_seed(config.seed)
    device = resolve_torch_device(config.training.device)
    if dataset is None:
        dataset = experiment_dataset(config)
    partition = experiment_partition(config, dataset.y_train.numpy(), dataset.num_classes)
    m = config.model
    model = build_model(
        m.arch,
        input_shape=dataset.input_shape,
        num_classes=dataset.num_classes,
        cut=m.cut,
        cut2=m.cut2,
        client_norm=m.client_norm,
        server_norm=m.server_norm,
        norm_groups=m.norm_groups,
    ).to(device)
    cut = model.resolve_cut(m.cut)
    cut2 = model.resolve_cut(m.cut2) if m.cut2 is not None else None
    if cut2 is not None and cut2 <= cut:
        raise ValueError(f"model.cut2 ({cut2}) must come after model.cut ({cut}) for U-shaped PSL")
    profile = profile_model(model)
    parts = experiment_system(config, profile, cut, cut2, partition.sizes)
    return ExperimentSetup(
        config,
        dataset,
        partition,
        model,
        profile,
        cut,
        cut2,
        parts.client_cut_summaries,
        parts.client_device_ids,
        parts.system,
        parts.stragglers,
        device,
        parts.helpers,
    )


def build_client_system_for(
    config: ExperimentConfig, profile: ModelProfile, cut2: int | None, catalog: dict[str, DeviceProfile]
) -> tuple[ClientSystem, np.ndarray, list[CutSummary]]:
    """The per-client time model of ``config``: (system, group index of each client, per-client cut
    summaries). Each group's own cut changes cost only (methods §4); links default to the device's."""
    groups = config.system.clients
    for g in groups:
        if g.device not in catalog:
            raise ValueError(f"unknown client device {g.device!r}; known: {', '.join(sorted(catalog))}")
    if config.system.server_device not in catalog:
        raise ValueError(
            f"unknown server device {config.system.server_device!r}; known: {', '.join(sorted(catalog))}"
        )
    group_of = assign_client_groups(groups, config.partition.num_clients, config.seed)
    group_summaries = []
    for g in groups:
        summary = cut_summary(profile, g.cut if g.cut is not None else config.model.cut, cut2)
        if cut2 is not None and summary.cut >= cut2:
            raise ValueError(f"per-device cut {g.cut!r} of {g.device!r} must come before model.cut2")
        group_summaries.append(summary)
    summaries = [group_summaries[i] for i in group_of]

    def per_client_link(attr: str, default_of) -> np.ndarray:
        # A group override wins; otherwise the client keeps its device's default link.
        values = [
            getattr(g, attr) if getattr(g, attr) is not None else default_of(catalog[g.device])
            for g in groups
        ]
        return np.asarray(values, dtype=float)[group_of]

    shares = group_uplink_shares(config)
    if shares is None:
        up_mbps = per_client_link("up_mbps", lambda dev: dev.up_bps / 1e6)
    else:  # a shared uplink: every client uploads at its share of W (methods, split planner)
        up_mbps = shares[group_of] * config.system.shared_uplink_mbps
    system = build_client_system(
        [groups[i].device for i in group_of],
        summaries,
        catalog[config.system.server_device],
        catalog=catalog,
        up_mbps=up_mbps,
        down_mbps=per_client_link("down_mbps", lambda dev: dev.down_bps / 1e6),
        latency_ms=per_client_link("latency_ms", lambda dev: dev.latency_s * 1e3),
    )
    return system, group_of, summaries


def build_stragglers(config: ExperimentConfig) -> StragglerModel:
    """The run's seeded straggler model (persistent factors are fixed per seed)."""
    s = config.system.stragglers
    spec = StragglerSpec(
        persistent_fraction=s.persistent_fraction,
        persistent_factor=s.persistent_factor,
        transient_prob=s.transient_prob,
        transient_dist=s.transient_dist,
        transient_scale=s.transient_scale,
    )
    return StragglerModel(config.partition.num_clients, spec, seed=config.seed)


def helper_links(
    config: ExperimentConfig, system: ClientSystem, num_helpers: int
) -> tuple[np.ndarray, np.ndarray]:
    """(K, H) up and down bandwidths (bit/s) of every client-helper link (methods §5)."""
    hc = config.system.helpers
    k = len(system.up_bps)
    if hc.link_mbps is not None:
        bw = np.asarray(hc.link_mbps, dtype=float) * 1e6
        return bw, bw
    if hc.link_mbps_range is not None:
        lo, hi = hc.link_mbps_range
        rng = np.random.default_rng([config.seed, _STREAM_HELPER_LINKS])
        bw = rng.uniform(lo, hi, size=(k, num_helpers)) * 1e6
        return bw, bw
    return np.repeat(system.up_bps[:, None], num_helpers, 1), np.repeat(
        system.down_bps[:, None], num_helpers, 1
    )


def build_helper_plan(config, profile, cut, cut2, system, catalog, sizes) -> HelperPlan:
    """Per-sample task costs of the three-part model and the solver's schedule of a nominal batch."""
    hc = config.system.helpers
    h = hc.num_helpers
    device_ids = list(hc.helper_devices) or [hc.helper_device] * h
    unknown = sorted({d for d in device_ids if d not in catalog})
    if unknown:
        raise ValueError(f"unknown helper devices {unknown}; known: {', '.join(sorted(catalog))}")
    helpers = [catalog[d] for d in device_ids]
    blocks = profile.blocks
    f1 = sum(b.flops_per_sample for b in blocks[:cut])
    f2 = sum(b.flops_per_sample for b in blocks[cut:cut2])
    f3 = sum(b.flops_per_sample for b in blocks[cut2:])
    act1, act2 = blocks[cut - 1].out_bytes_per_sample * 8, blocks[cut2 - 1].out_bytes_per_sample * 8  # bits
    speed = system.speed_flops
    helper_speed = np.array([d.train_flops_per_s for d in helpers])
    up, down = helper_links(config, system, h)
    costs = HelperCosts(
        part1_fwd=f1 / speed,
        part1_bwd=2 * f1 / speed,  # backward ≈ 2 × forward (methods §4)
        part3_train=3 * f3 / speed,
        up1=act1 / up,
        down1=act1 / down,
        up2=act2 / up,
        down2=act2 / down,
        latency=np.repeat(system.latency_s[:, None], h, 1),
        helper_fwd=f2 / helper_speed,
        helper_bwd=2 * f2 / helper_speed,
        mem_per_sample_mb=sum(b.out_bytes_per_sample for b in blocks[cut:cut2]) / 1e6,
        mem_fixed_mb=3 * sum(b.param_bytes for b in blocks[cut:cut2]) / 1e6,  # weights, grads, momentum
        helper_capacity_mb=np.array([d.memory_bytes / 1e6 for d in helpers]),
    )
    nominal = config.sampling.batch_size * sizes / max(1, sizes.sum())
    return plan_helpers(costs, nominal, hc.solver, hc.variant, config.seed)
