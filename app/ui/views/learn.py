"""Pure computations behind the "Learn PSL" explainers: batch composition and stragglers.

Everything here runs in a fraction of a second on a toy federation (scikit-learn's digits labels, a
Dirichlet partition), so the page can recompute on every widget change. The split-point explainer
lives in ``app/learn_split.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from psl_core.data import Partition, load_dataset, partition_labels
from psl_core.devices import (
    ClientSystem,
    EpochTiming,
    StragglerModel,
    StragglerSpec,
    build_client_system,
    epoch_timing,
    load_catalog,
)
from psl_core.models import cut_summary, profile_arch
from psl_core.sampling import (
    ClientSampler,
    CountMatrix,
    LDSSampler,
    batch_deviation,
    epoch_counts,
    label_distribution,
)

#: The schedules the explainers compare, in the order the UI shows them.
EXPLAINED_METHODS = ("fls", "fpls", "ugs", "lds")
METHOD_LABELS = {"fls": "FLS", "fpls": "FPLS", "ugs": "UGS", "lds": "LDS"}
#: Clients never get fewer samples than this, so FLS/FPLS always have something to send.
MIN_CLIENT_SAMPLES = 2
#: Device that plays the server in the straggler explainer (the measured 8-vCPU VM).
SERVER_DEVICE = "vm"
#: Input shape used for the straggler workload (CIFAR-10-sized images make realistic step times).
TIMING_INPUT_SHAPE = (3, 32, 32)


class LearnInputError(ValueError):
    """An explainer was asked for something it cannot show; the message says what to change."""


@dataclass(frozen=True)
class ToyFederation:
    """Training labels of the digits dataset split among K clients."""

    labels: np.ndarray  # (N,) int64
    num_classes: int
    partition: Partition

    @property
    def client_sizes(self) -> np.ndarray:
        """(K,) samples per client."""
        return self.partition.sizes

    @property
    def num_clients(self) -> int:
        """K."""
        return len(self.partition.client_indices)

    @property
    def label_distribution(self) -> np.ndarray:
        """p(c) of the whole training set."""
        return label_distribution(self.labels, self.num_classes)


def toy_federation(num_clients: int, partition_alpha: float, seed: int = 0) -> ToyFederation:
    """Digits training labels (1,438 samples, 10 classes) split by a Dirichlet(partition α) partition.

    Raises ``PartitionError`` (a ValueError) when the partition is impossible, e.g. a tiny α with many
    clients cannot give every client ``MIN_CLIENT_SAMPLES`` samples.
    """
    dataset = load_dataset("digits")
    labels = dataset.y_train.numpy().astype(np.int64)
    partition = partition_labels(
        labels,
        int(num_clients),
        "dirichlet",
        num_classes=dataset.num_classes,
        seed=int(seed),
        alpha=float(partition_alpha),
        min_partition_size=MIN_CLIENT_SAMPLES,
    )
    return ToyFederation(labels, dataset.num_classes, partition)


@dataclass(frozen=True)
class ScheduleWalk:
    """One epoch of one schedule on a toy federation, with the labels of every global batch."""

    method: str
    counts: CountMatrix
    batch_labels: np.ndarray  # labels of all batches concatenated
    batch_clients: np.ndarray  # owner of every sample in batch_labels
    step_offsets: np.ndarray  # (T+1,)
    deviation: np.ndarray  # (T,) dev_t

    @property
    def num_steps(self) -> int:
        """Steps of the epoch T."""
        return self.counts.num_steps

    @property
    def mean_deviation(self) -> float:
        """Mean of dev_t over the epoch."""
        return float(self.deviation.mean())


def walk_schedule(
    federation: ToyFederation,
    method: str,
    batch_size: int,
    *,
    seed: int = 0,
    lds_c: float = 1.0,
    lds_delta: float = 0.0,
    latency_per_sample: np.ndarray | None = None,
) -> ScheduleWalk:
    """Count matrix, realised batches and batch deviation of one epoch of ``method``.

    ``lds_c``/``lds_delta`` are the LDS knobs (not the partition α); ``latency_per_sample`` is LDS's
    per-client latency input, needed only for δ > 0 to have an effect.
    """
    if method not in EXPLAINED_METHODS:
        raise LearnInputError(f"unknown method {method!r}; choose one of {', '.join(EXPLAINED_METHODS)}")
    sizes = federation.client_sizes
    rng = np.random.default_rng(seed)
    lds = None
    if method == "lds":
        lds = LDSSampler(sizes, batch_size, c=lds_c, delta=lds_delta, latency_per_sample=latency_per_sample)
    counts = epoch_counts(method, sizes, batch_size, rng, lds=lds)
    batches = ClientSampler(federation.partition.client_indices).epoch(counts, rng, streaming=method == "lds")
    labels = federation.labels[batches.sample_index]
    deviation = batch_deviation(labels, batches.step_offsets, federation.label_distribution)
    return ScheduleWalk(method, counts, labels, batches.client_id, batches.step_offsets, deviation)


def walk_all(federation: ToyFederation, batch_size: int, *, seed: int = 0, lds_c: float = 1.0) -> dict:
    """``walk_schedule`` for every method of ``EXPLAINED_METHODS`` on the same partition and seed."""
    return {m: walk_schedule(federation, m, batch_size, seed=seed, lds_c=lds_c) for m in EXPLAINED_METHODS}


def walk_summary(walks: dict[str, ScheduleWalk]) -> pd.DataFrame:
    """One row per method: steps per epoch, mean/max deviation, batch-size range, samples used."""
    rows = []
    for method, walk in walks.items():
        sizes = walk.counts.step_totals()
        rows.append(
            {
                "method": METHOD_LABELS[method],
                "steps per epoch": walk.num_steps,
                "mean deviation": walk.mean_deviation,
                "max deviation": float(walk.deviation.max()),
                "smallest batch": int(sizes.min()),
                "largest batch": int(sizes.max()),
                "samples used": int(sizes.sum()),
            }
        )
    return pd.DataFrame(rows)


def composition_frame(walks: dict[str, ScheduleWalk], by: str, max_steps: int) -> pd.DataFrame:
    """Long table (method, step, group, count) of the first ``max_steps`` batches, by "class" or "client"."""
    if by not in ("class", "client"):
        raise LearnInputError(f"composition is by 'class' or 'client', got {by!r}")
    frames = []
    for method, walk in walks.items():
        steps = min(max_steps, walk.num_steps)
        end = int(walk.step_offsets[steps])
        step_of = np.repeat(np.arange(steps), np.diff(walk.step_offsets[: steps + 1]))
        group = (walk.batch_labels if by == "class" else walk.batch_clients)[:end]
        width = int(group.max()) + 1 if group.size else 1
        hist = np.bincount(step_of * width + group, minlength=steps * width).reshape(steps, width)
        step_idx, group_idx = np.nonzero(hist)
        frames.append(
            pd.DataFrame(
                {
                    "method": METHOD_LABELS[method],
                    "step": step_idx,
                    by: group_idx,
                    "count": hist[step_idx, group_idx],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def step_class_shares(walks: dict[str, ScheduleWalk], step: int, p: np.ndarray) -> pd.DataFrame:
    """(method, class, share in batch, share in training set) at ``step`` (steps past an epoch's end: empty)."""
    rows = []
    for method, walk in walks.items():
        if step < walk.num_steps:
            lo, hi = walk.step_offsets[step], walk.step_offsets[step + 1]
            hist = np.bincount(walk.batch_labels[lo:hi], minlength=p.size) / max(hi - lo, 1)
        else:
            hist = np.zeros(p.size)
        rows += [
            {"method": METHOD_LABELS[method], "class": c, "batch share": hist[c], "dataset share": p[c]}
            for c in range(p.size)
        ]
    return pd.DataFrame(rows)


def deviation_frame(walks: dict[str, ScheduleWalk]) -> pd.DataFrame:
    """Long table (method, step, deviation) of every step of the epoch."""
    return pd.concat(
        [
            pd.DataFrame(
                {"method": METHOD_LABELS[m], "step": np.arange(w.num_steps), "deviation": w.deviation}
            )
            for m, w in walks.items()
        ],
        ignore_index=True,
    )


# --------------------------------------------------------------------------- stragglers


def straggler_system(device_ids: list[str], arch: str, cut: int | str, num_classes: int = 10) -> ClientSystem:
    """Per-client time model for ``arch`` cut at ``cut`` on CIFAR-sized input, one device id per client."""
    if not device_ids:
        raise LearnInputError("choose at least one device for the clients")
    profile = profile_arch(arch, TIMING_INPUT_SHAPE, num_classes)
    catalog = load_catalog()
    return build_client_system(
        device_ids, [cut_summary(profile, cut)], catalog[SERVER_DEVICE], catalog=catalog
    )


def assign_devices(device_mix: list[str], num_clients: int) -> list[str]:
    """Client k gets ``device_mix[k % len(device_mix)]`` (round robin over the chosen devices)."""
    if not device_mix:
        raise LearnInputError("choose at least one device for the clients")
    return [device_mix[k % len(device_mix)] for k in range(num_clients)]


@dataclass(frozen=True)
class StragglerEpoch:
    """One simulated epoch of a schedule under stragglers."""

    walk: ScheduleWalk
    timing: EpochTiming
    slowdown: np.ndarray  # (nnz,) factor per (step, client) entry


def straggler_epoch(
    federation: ToyFederation,
    system: ClientSystem,
    spec: StragglerSpec,
    method: str,
    batch_size: int,
    *,
    seed: int = 0,
    lds_delta: float = 0.0,
    lds_c: float = 1.0,
) -> StragglerEpoch:
    """Schedule + straggler draws + simulated time of one epoch (same straggler seed for every method).

    LDS's latency input is the expected per-sample client time times the persistent slowdown, as in the
    engine: a transient slowdown cannot be anticipated.
    """
    if system.num_clients != federation.num_clients:
        raise LearnInputError(
            f"the device system has {system.num_clients} clients but the federation {federation.num_clients}"
        )
    model = StragglerModel(system.num_clients, spec, seed)
    latency = system.expected_time_per_sample() * model.persistent
    walk = walk_schedule(
        federation,
        method,
        batch_size,
        seed=seed,
        lds_c=lds_c,
        lds_delta=lds_delta,
        latency_per_sample=latency,
    )
    counts = walk.counts
    slowdown = model.slowdowns(counts.client, np.random.default_rng(seed + 1))
    timing = epoch_timing(counts.step, counts.client, counts.count, counts.num_steps, system, slowdown)
    return StragglerEpoch(walk, timing, slowdown)


def step_timeline(run: StragglerEpoch, system: ClientSystem, step: int) -> pd.DataFrame:
    """Timeline of one synchronous step as the phases of the time model (docs/methods.md §4).

    Rows (client, device, phase, start, end) in seconds. Phase by phase, separated by barriers: every
    active client computes its forward and uploads; the server runs the global batch (U-shaped: its
    forward, then every client's head round trip, then its backward); every client downloads its
    gradient and runs its backward; every client synchronises its client part. A client that finishes
    a phase early waits ("waiting") for the slowest; inactive clients wait the whole step. Each
    client's busy bars add up to its busy time from ``epoch_timing``; the last row ends at the step time.
    """
    counts, timing = run.walk.counts, run.timing
    if not 0 <= step < counts.num_steps:
        raise LearnInputError(f"step must be in 0..{counts.num_steps - 1}, got {step}")
    lo, hi = np.searchsorted(counts.step, [step, step + 1])
    clients = counts.client[lo:hi]
    k = system.num_clients

    def dense(name: str) -> np.ndarray:
        values = np.zeros(k)
        values[clients] = timing.entry_phases[name][lo:hi]
        return values

    server = float(timing.server_time[step])
    u_shaped = bool(timing.head_phase[step] > 0)
    # (client phases run in this barrier phase, its length, server label or None)
    chain = [(("forward", "upload"), float(timing.fwd_phase[step]), None)]
    if u_shaped:
        chain += [
            ((), server / 3, "server forward"),
            (("head",), float(timing.head_phase[step]), None),
            ((), 2 * server / 3, "server backward"),
        ]
    else:
        chain.append(((), server, "server"))
    chain += [
        (("download", "backward"), float(timing.bwd_phase[step]), None),
        (("sync",), float(timing.sync_phase[step]), None),
    ]
    rows = []
    t0 = 0.0
    for phases, length, server_label in chain:
        if server_label is not None:
            rows.append((-1, server_label, t0, t0 + length))
            rows += [(c, "waiting", t0, t0 + length) for c in range(k)]
        else:
            done = np.full(k, t0)
            for name in phases:
                part = dense(name)
                rows += [(c, name, done[c], done[c] + part[c]) for c in range(k)]
                done += part
            rows += [(c, "waiting", done[c], t0 + length) for c in range(k)]
        t0 += length
    frame = pd.DataFrame(rows, columns=["client", "phase", "start", "end"])
    frame = frame[frame["end"] > frame["start"] + 1e-15].copy()
    devices = np.asarray(system.device_ids)
    frame["device"] = np.where(frame["client"] >= 0, devices[frame["client"].clip(lower=0)], SERVER_DEVICE)
    samples = np.zeros(k, dtype=np.int64)
    samples[clients] = counts.count[lo:hi]
    frame["samples"] = np.where(frame["client"] >= 0, samples[frame["client"].clip(lower=0)], 0)
    frame["who"] = np.where(
        frame["client"] >= 0, "client " + frame["client"].astype(str) + " · " + frame["device"], "server"
    )
    return frame.reset_index(drop=True)


def straggler_summary(runs: dict[str, StragglerEpoch], stragglers: np.ndarray) -> pd.DataFrame:
    """Per schedule: steps, mean/epoch simulated time, samples sent by persistent stragglers, deviation."""
    rows = []
    for label, run in runs.items():
        counts = run.walk.counts
        from_slow = counts.count[stragglers[counts.client]].sum()
        rows.append(
            {
                "schedule": label,
                "steps": counts.num_steps,
                "mean step time (s)": float(run.timing.step_time.mean()),
                "epoch time (s)": float(run.timing.step_time.sum()),
                "share of samples from persistent stragglers": float(from_slow / max(counts.total, 1)),
                "mean deviation": run.walk.mean_deviation,
            }
        )
    return pd.DataFrame(rows)
