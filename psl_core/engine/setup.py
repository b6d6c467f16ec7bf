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
from psl_core.helpers.in_training import HelperCosts, assign_clients
from psl_core.models import BlockModel, ModelProfile, build_model, cut_summary, profile_model
from psl_core.models.profile import CutSummary


@dataclass(frozen=True)
class HelperPlan:
    """Helpers of a run: per-sample costs, the solver's client → helper assignment, the list rule."""

    costs: HelperCosts
    assignment: np.ndarray
    nominal_makespan_s: float
    rule: str


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


def assign_client_groups(groups: list[ClientGroup], num_clients: int, seed: int) -> np.ndarray:
    """Group index of every client: group sizes follow the fractions (largest remainder), shuffled
    with the seed so that devices are not correlated with the partition's client order."""
    fractions = np.array([g.fraction for g in groups])
    exact = fractions / fractions.sum() * num_clients
    sizes = np.floor(exact).astype(int)
    sizes[np.argsort(-(exact - sizes))[: num_clients - sizes.sum()]] += 1
    labels = np.repeat(np.arange(len(groups)), sizes)
    return np.random.default_rng([seed, 17]).permutation(labels)


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

    system = build_client_system(
        [groups[i].device for i in group_of],
        summaries,
        catalog[config.system.server_device],
        catalog=catalog,
        up_mbps=per_client_link("up_mbps", lambda dev: dev.up_bps / 1e6),
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


def build_helper_plan(config, profile, cut, cut2, system, catalog, sizes) -> HelperPlan:
    """Per-sample task costs of the three-part model and the run's client → helper assignment."""
    hc = config.system.helpers
    if hc.helper_device not in catalog:
        raise ValueError(f"unknown helper device {hc.helper_device!r}; known: {', '.join(sorted(catalog))}")
    blocks = profile.blocks
    f1 = sum(b.flops_per_sample for b in blocks[:cut])
    f2 = sum(b.flops_per_sample for b in blocks[cut:cut2])
    f3 = sum(b.flops_per_sample for b in blocks[cut2:])
    act1, act2 = blocks[cut - 1].out_bytes_per_sample * 8, blocks[cut2 - 1].out_bytes_per_sample * 8  # bits
    helper = catalog[hc.helper_device]
    h = hc.num_helpers
    speed = system.speed_flops
    costs = HelperCosts(
        part1_fwd=f1 / speed,
        part1_bwd=2 * f1 / speed,  # backward ≈ 2 × forward (methods §4)
        part3_train=3 * f3 / speed,
        up1=act1 / system.up_bps,
        down1=act1 / system.down_bps,
        up2=act2 / system.up_bps,
        down2=act2 / system.down_bps,
        latency=system.latency_s,
        helper_fwd=np.full(h, f2 / helper.train_flops_per_s),
        helper_bwd=np.full(h, 2 * f2 / helper.train_flops_per_s),
        mem_per_sample_mb=sum(b.out_bytes_per_sample for b in blocks[cut:cut2]) / 1e6,
        mem_fixed_mb=3 * sum(b.param_bytes for b in blocks[cut:cut2]) / 1e6,  # weights, grads, momentum
        helper_capacity_mb=np.full(h, helper.memory_bytes / 1e6),
    )
    nominal = config.sampling.batch_size * sizes / max(1, sizes.sum())
    assignment, makespan = assign_clients(costs, nominal, hc.solver, config.seed)
    return HelperPlan(costs, assignment, makespan, "fcfs" if hc.solver == "baseline" else "delivery")
