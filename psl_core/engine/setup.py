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
from psl_core.models import BlockModel, ModelProfile, build_model, cut_summary, profile_model
from psl_core.models.profile import CutSummary


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
    client_cut_summaries: list[CutSummary]  # per client: its own cut (cost only, SPEC §4)
    client_device_ids: list[str]
    system: ClientSystem
    stragglers: StragglerModel
    device: torch.device


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


def build_experiment(config: ExperimentConfig, *, dataset: Dataset | None = None) -> ExperimentSetup:
    """Build data, partition, model, per-client cut costs and the device system of ``config``."""
    torch.manual_seed(config.seed)
    device = resolve_torch_device(config.training.device)
    d = config.data
    if dataset is None:
        dataset = load_dataset(
            d.dataset,
            data_dir=d.data_dir,
            train_limit=d.train_limit,
            test_limit=d.test_limit,
            seed=config.seed,
        )
    p = config.partition
    partition = partition_labels(
        dataset.y_train.numpy(),
        p.num_clients,
        p.scheme,
        num_classes=dataset.num_classes,
        seed=config.seed,
        **p.scheme_params(),
    )
    m = config.model
    model = build_model(
        m.arch,
        input_shape=dataset.input_shape,
        num_classes=dataset.num_classes,
        cut=m.cut,
        cut2=m.cut2,
        client_norm=m.client_norm,
        server_norm=m.server_norm,
    ).to(device)
    cut = model.resolve_cut(m.cut)
    cut2 = model.resolve_cut(m.cut2) if m.cut2 is not None else None
    if cut2 is not None and cut2 <= cut:
        raise ValueError(f"model.cut2 ({cut2}) must come after model.cut ({cut}) for U-shaped PSL")
    profile = profile_model(model)

    catalog = device_catalog(config)
    groups = config.system.clients
    for g in groups:
        if g.device not in catalog:
            raise ValueError(f"unknown client device {g.device!r}; known: {', '.join(sorted(catalog))}")
    if config.system.server_device not in catalog:
        raise ValueError(
            f"unknown server device {config.system.server_device!r}; known: {', '.join(sorted(catalog))}"
        )
    group_of = assign_client_groups(groups, p.num_clients, config.seed)
    group_summaries = []
    for g in groups:
        g_cut = model.resolve_cut(g.cut) if g.cut is not None else cut
        if cut2 is not None and g_cut >= cut2:
            raise ValueError(f"per-device cut {g.cut!r} of {g.device!r} must come before model.cut2")
        group_summaries.append(cut_summary(profile, g_cut, cut2))
    summaries = [group_summaries[i] for i in group_of]
    device_ids = [groups[i].device for i in group_of]

    def per_client_link(attr: str, default_of) -> np.ndarray:
        # A group override wins; otherwise the client keeps its device's default link.
        return np.array(
            [
                getattr(groups[i], attr)
                if getattr(groups[i], attr) is not None
                else default_of(catalog[groups[i].device])
                for i in group_of
            ],
            dtype=float,
        )

    system = build_client_system(
        device_ids,
        summaries,
        catalog[config.system.server_device],
        catalog=catalog,
        up_mbps=per_client_link("up_mbps", lambda dev: dev.up_bps / 1e6),
        down_mbps=per_client_link("down_mbps", lambda dev: dev.down_bps / 1e6),
        latency_ms=per_client_link("latency_ms", lambda dev: dev.latency_s * 1e3),
    )
    s = config.system.stragglers
    stragglers = StragglerModel(
        p.num_clients,
        StragglerSpec(
            persistent_fraction=s.persistent_fraction,
            persistent_factor=s.persistent_factor,
            transient_prob=s.transient_prob,
            transient_dist=s.transient_dist,
            transient_scale=s.transient_scale,
        ),
        seed=config.seed,
    )
    return ExperimentSetup(
        config,
        dataset,
        partition,
        model,
        profile,
        cut,
        cut2,
        summaries,
        device_ids,
        system,
        stragglers,
        device,
    )
