"""Previews of an experiment that need no training: partition, model split, sampling schedule, device mix.

Pure functions (no Streamlit): arrays and configs in, pandas out. The page caches the dataset load
and the partition; everything here is vectorised and takes well under a second for the presets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from psl_core.config import ExperimentConfig
from psl_core.devices import ClientSystem, epoch_timing
from psl_core.engine import build_client_system_for, build_stragglers, device_catalog
from psl_core.models import ModelProfile, cut_summary
from psl_core.models.zoo import resolve_cut_index
from psl_core.sampling import ClientSampler, LDSSampler, batch_deviation, epoch_counts, label_distribution

MAX_HEATMAP_CLIENTS = 40
MAX_CURVE_POINTS = 1500
PREVIEW_STEPS = 12
# Streams separate from the engine's, so the preview never pretends to be the run's exact batches.
_PREVIEW_STREAM = 99


# ---------------------------------------------------------------- partition
def partition_heatmap_frame(
    counts: np.ndarray, class_names: list[str], max_clients: int = MAX_HEATMAP_CLIENTS
) -> tuple[pd.DataFrame, str | None]:
    """Long frame (client, class, count) of the client × class counts, plus a note when only a
    readable subset of clients (evenly spread over the ids) is shown."""
    counts = np.asarray(counts)
    num_clients, num_classes = counts.shape
    if len(class_names) != num_classes:
        raise ValueError(
            f"class_names has {len(class_names)} names for {num_classes} classes; pass one per class"
        )
    note = None
    clients = np.arange(num_clients)
    if num_clients > max_clients:
        clients = np.unique(np.linspace(0, num_clients - 1, max_clients).round().astype(int))
        note = f"showing {clients.size} of {num_clients} clients (evenly spread over the client ids)"
    sub = counts[clients]
    frame = pd.DataFrame(
        {
            "client": np.repeat(clients, num_classes),
            "class": np.tile(np.asarray(class_names, dtype=object), clients.size),
            "count": sub.ravel(),
            "client_size": np.repeat(sub.sum(axis=1), num_classes),
        }
    )
    return frame, note


# ---------------------------------------------------------------- model split
def per_client_batch(config: ExperimentConfig) -> int:
    """Samples one client processes per step on average: b (vanilla PSL) or max(1, round(B / K))."""
    s = config.sampling
    return s.per_client_batch or max(1, round(s.batch_size / config.partition.num_clients))


def model_split_frame(profile: ModelProfile, cut: int | str, cut2: int | str | None = None) -> pd.DataFrame:
    """One row per block: index, block, side (client/server), forward FLOPs, params, output bytes."""
    summary = cut_summary(profile, cut, cut2)
    rows = []
    for b in profile.blocks:
        on_client = b.index < summary.cut or (summary.cut2 is not None and b.index >= summary.cut2)
        rows.append(
            {
                "index": b.index,
                "block": b.name,
                "side": "client" if on_client else "server",
                "flops": b.flops_per_sample,
                "params": b.params,
                "out_bytes": b.out_bytes_per_sample,
                "out_shape": "×".join(str(d) for d in b.out_shape),
            }
        )
    return pd.DataFrame(rows)


def cut_overview(profile: ModelProfile, config: ExperimentConfig) -> dict[str, float]:
    """The chosen cut in numbers: client/server FLOPs per sample, client memory at the per-client
    batch, smashed bytes per sample (client → server activations)."""
    summary = cut_summary(profile, config.model.cut, config.model.cut2)
    batch = per_client_batch(config)
    return {
        "cut": summary.cut,
        "cut_name": summary.cut_name,
        "client_flops_per_sample": summary.client_flops_per_sample,
        "server_flops_per_sample": summary.server_flops_per_sample,
        "client_share_of_flops": summary.client_flops_per_sample / max(profile.total_flops_per_sample, 1.0),
        "per_client_batch": batch,
        "client_memory_bytes": summary.client_memory_bytes(batch),
        "smashed_bytes_per_sample": summary.smashed_bytes_per_sample,
        "bytes_up_per_sample": summary.bytes_up_per_sample,
        "bytes_down_per_sample": summary.bytes_down_per_sample,
    }


def group_cuts_frame(profile: ModelProfile, config: ExperimentConfig) -> pd.DataFrame:
    """One row per client group: its device, cut, client FLOPs, smashed bytes and memory vs the device's."""
    catalog = device_catalog(config)
    batch = per_client_batch(config)
    rows = []
    for g in config.system.clients:
        cut = resolve_cut_index(profile.block_names, g.cut if g.cut is not None else config.model.cut)
        summary = cut_summary(profile, cut, config.model.cut2)
        memory = summary.client_memory_bytes(batch)
        device = catalog[g.device]
        rows.append(
            {
                "device": g.device,
                "fraction": g.fraction,
                "cut": cut,
                "cut_after": summary.cut_name,
                "client_flops_per_sample": summary.client_flops_per_sample,
                "smashed_bytes_per_sample": summary.smashed_bytes_per_sample,
                "client_memory_mb": memory / 2**20,
                "device_memory_mb": device.memory_bytes / 2**20,
                "fits": memory <= device.memory_bytes,
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- devices
def client_system(profile: ModelProfile, config: ExperimentConfig) -> tuple[ClientSystem, np.ndarray]:
    """The per-client time model of ``config`` (exactly as the engine builds it) and each client's group."""
    cut2 = (
        None if config.model.cut2 is None else cut_summary(profile, config.model.cut, config.model.cut2).cut2
    )
    system, group_of, _ = build_client_system_for(config, profile, cut2, device_catalog(config))
    return system, group_of


def persistent_slowdown(config: ExperimentConfig) -> np.ndarray:
    """(K,) persistent straggler factors, as the engine draws them for this seed."""
    return build_stragglers(config).persistent


def device_mix_frame(config: ExperimentConfig, system: ClientSystem, group_of: np.ndarray) -> pd.DataFrame:
    """One row per client group: clients, per-sample compute/transfer time and the expected client time
    of one step at the average per-client batch (persistent stragglers included, transient ones not)."""
    batch = per_client_batch(config)
    slow = persistent_slowdown(config)
    compute = system.compute_time_per_sample() * slow
    transfer = system.transfer_time_per_sample()
    per_step = batch * (compute + transfer) + 2 * system.latency_s
    rows = []
    for i, g in enumerate(config.system.clients):
        mine = group_of == i
        if not mine.any():
            continue
        rows.append(
            {
                "group": f"{i}: {g.device}",
                "device": g.device,
                "clients": int(mine.sum()),
                "stragglers": int((slow[mine] > 1).sum()),
                "compute_ms_per_sample": float(np.median(compute[mine]) * 1e3),
                "transfer_ms_per_sample": float(np.median(transfer[mine]) * 1e3),
                "latency_ms": float(np.median(system.latency_s[mine]) * 2e3),
                "client_step_ms": float(np.median(per_step[mine]) * 1e3),
                "slowest_client_step_ms": float(per_step[mine].max() * 1e3),
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- schedule
@dataclass
class SchedulePreview:
    """Batch composition of the first steps and per-step curves of one epoch, chosen method vs UGS."""

    by_client: pd.DataFrame  # step, client, count (first steps, chosen method)
    by_class: pd.DataFrame  # step, class, count (first steps, chosen method)
    curves: pd.DataFrame  # method, step, deviation, batch, step_time_s (step_time_s NaN without a system)
    summary: pd.DataFrame  # method, steps, mean_deviation, mean_step_time_s, epoch_time_s


def _epoch(method, sizes, client_indices, config, rng, latency):
    s = config.sampling
    lds = None
    if method == "lds":
        lds = LDSSampler(sizes, s.batch_size, c=s.lds_c, delta=s.lds_delta, latency_per_sample=latency)
    pcb = s.per_client_batch if method == "fls" else None
    counts = epoch_counts(method, sizes, s.batch_size, rng, per_client_batch=pcb, lds=lds)
    batches = ClientSampler(client_indices).epoch(counts, rng, streaming=method == "lds")
    return counts, batches


def schedule_preview(
    labels: np.ndarray,
    client_indices: list[np.ndarray],
    class_names: list[str],
    config: ExperimentConfig,
    *,
    system: ClientSystem | None = None,
    slowdown: np.ndarray | None = None,
    first_steps: int = PREVIEW_STEPS,
) -> SchedulePreview:
    """Plan one epoch (epoch 0) of the chosen method and of UGS from the partition alone — no training.

    ``system`` and ``slowdown`` ((K,) persistent factors) add the simulated step time of every step.
    """
    labels = np.asarray(labels, dtype=np.int64)
    num_classes = len(class_names)
    sizes = np.array([len(ix) for ix in client_indices], dtype=np.int64)
    p = label_distribution(labels, num_classes)
    chosen = config.sampling.method
    latency = None
    if system is not None:
        latency = system.expected_time_per_sample() * (slowdown if slowdown is not None else 1.0)
    methods = [chosen] if chosen in ("ugs", "centralised") else [chosen, "ugs"]
    curves, summary = [], []
    by_client = by_class = None
    for method in methods:
        rng = np.random.default_rng([config.seed, _PREVIEW_STREAM])
        counts, batches = _epoch(method, sizes, client_indices, config, rng, latency)
        dev = batch_deviation(labels[batches.sample_index], batches.step_offsets, p)
        step_time = np.full(counts.num_steps, np.nan)
        if system is not None:
            factor = (
                np.ones(counts.nnz) if slowdown is None else np.asarray(slowdown, dtype=float)[counts.client]
            )
            timing = epoch_timing(counts.step, counts.client, counts.count, counts.num_steps, system, factor)
            step_time = timing.step_time
        curves.append(
            pd.DataFrame(
                {
                    "method": method,
                    "step": np.arange(counts.num_steps),
                    "deviation": dev,
                    "batch": np.diff(batches.step_offsets),
                    "step_time_s": step_time,
                }
            )
        )
        summary.append(
            {
                "method": method,
                "steps": counts.num_steps,
                "mean_deviation": float(dev.mean()),
                "mean_step_time_s": float(np.mean(step_time)),
                "epoch_time_s": float(np.sum(step_time)),
            }
        )
        if method == chosen:
            head = counts.step < first_steps
            by_client = pd.DataFrame(
                {"step": counts.step[head], "client": counts.client[head], "count": counts.count[head]}
            )
            end = batches.step_offsets[min(first_steps, counts.num_steps)]
            step_of = np.repeat(np.arange(counts.num_steps), np.diff(batches.step_offsets))[:end]
            hist = np.bincount(step_of * num_classes + labels[batches.sample_index[:end]],
                               minlength=(step_of.max(initial=-1) + 1) * num_classes)  # fmt: skip
            hist = hist.reshape(-1, num_classes)
            by_class = pd.DataFrame(
                {
                    "step": np.repeat(np.arange(hist.shape[0]), num_classes),
                    "class": np.tile(np.asarray(class_names, dtype=object), hist.shape[0]),
                    "count": hist.ravel(),
                }
            )
    return SchedulePreview(by_client, by_class, pd.concat(curves, ignore_index=True), pd.DataFrame(summary))


def downsample_steps(frame: pd.DataFrame, max_points: int = MAX_CURVE_POINTS) -> pd.DataFrame:
    """Per method, average consecutive steps into at most ``max_points`` bins (keeps the first step of
    each bin as x), so long epochs draw at the chart's width."""
    parts = []
    for method, part in frame.groupby("method", sort=False):
        n = len(part)
        if n <= max_points:
            parts.append(part)
            continue
        bins = np.arange(n) * max_points // n
        agg = part.groupby(bins).agg(
            {"step": "first", "deviation": "mean", "batch": "mean", "step_time_s": "mean"}
        )
        parts.append(agg.assign(method=method).reset_index(drop=True))
    return pd.concat(parts, ignore_index=True)[list(frame.columns)]


def split_advice(
    profile: ModelProfile, config: ExperimentConfig, memory_budget_mb: dict[str, float] | None = None
) -> tuple[dict[str, int], pd.DataFrame]:
    """The split advisor (psl_core.devices.advise_cuts) for the config's device mix: the cut per device
    that minimises its expected step time within its memory budget (default: the device's memory),
    and the per-cut table behind the choice. With a U-shaped model only cuts before cut2 are tried."""
    from psl_core.devices import advise_cuts
    from psl_core.engine import device_catalog
    from psl_core.models import resolve_cut_index

    catalog = device_catalog(config)
    cut2 = (
        None if config.model.cut2 is None else resolve_cut_index(list(profile.block_names), config.model.cut2)
    )
    last = cut2 if cut2 is not None else profile.num_blocks
    summaries = [cut_summary(profile, c, cut2) for c in range(1, last)]
    devices = list(dict.fromkeys(g.device for g in config.system.clients))
    budgets = {d: int(mb * 2**20) for d, mb in (memory_budget_mb or {}).items()}
    advice = advise_cuts(
        summaries,
        devices,
        samples_per_step=per_client_batch(config),
        catalog=catalog,
        server_device=catalog[config.system.server_device],
        memory_budget_bytes=budgets,
    )
    table = pd.DataFrame(
        [
            {
                "device": o.device_id,
                "cut": o.cut,
                "after block": o.cut_name,
                "step time (ms)": round(o.step_time_s * 1e3, 3),
                "compute (ms)": round(o.compute_s * 1e3, 3),
                "transfer (ms)": round(o.transfer_s * 1e3, 3),
                "client memory (MiB)": round(o.client_memory_bytes / 2**20, 3),
                "fits memory": o.fits_memory,
                "best": advice.best_cut[o.device_id] == o.cut,
            }
            for o in advice.table
        ]
    )
    return advice.best_cut, table
