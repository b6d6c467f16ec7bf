"""One epoch's plan, computed before its first step: who sends how many samples, which samples,
the batch deviation of every step and the simulated time of every step — all vectorised.

Because the server only ever needs counts (methods §2), the whole epoch can be planned up front; the
training loop then just walks the plan. Plans are a pure function of (config, seed, epoch, the
sampler state at the start of the epoch), which is what makes mid-epoch resume exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from psl_core.devices import EpochTiming, epoch_timing
from psl_core.engine.setup import ExperimentSetup
from psl_core.helpers.in_training import step_makespans
from psl_core.sampling import (
    ClientSampler,
    CountMatrix,
    EpochBatches,
    LDSSampler,
    batch_deviation,
    epoch_counts,
    label_distribution,
)

# Separate random streams per purpose, so that e.g. turning stragglers on does not change batches.
_STREAM_SCHEDULE, _STREAM_STRAGGLERS = 1, 2


def helper_timing(timing: EpochTiming, counts: CountMatrix, slowdown: np.ndarray, helpers) -> EpochTiming:
    """Replace the one-server step times by the makespans of the helpers' schedules (methods §4, §5)."""
    makespan, busy, completion = step_makespans(
        helpers.costs,
        helpers.assignment,
        counts.step,
        counts.client,
        counts.count,
        counts.num_steps,
        slowdown,
        helpers.rule,
    )
    # The slowest client of a step is the one that completes last.
    last = np.lexsort((completion, counts.step))
    ends = (
        np.r_[np.flatnonzero(np.diff(counts.step[last])), len(last) - 1] if len(last) else np.array([], int)
    )
    slowest = np.full(counts.num_steps, -1)
    slowest[counts.step[last[ends]]] = counts.client[last[ends]]
    busy_total = np.bincount(counts.client, weights=busy, minlength=counts.num_clients)
    # The helpers' schedule interleaves clients, so the step is its makespan, not a chain of phases.
    none = np.zeros(counts.num_steps)
    return replace(
        timing,
        step_time=makespan,
        client_time=busy,
        server_time=none,
        slowest_client=slowest,
        busy_time=busy_total,
        idle_time=makespan.sum() - busy_total,
        fwd_phase=none,
        head_phase=none,
        bwd_phase=none,
        sync_phase=none,
        entry_phases={},
    )


@dataclass
class EpochPlan:
    epoch: int  # 0-based
    counts: CountMatrix
    batches: EpochBatches
    deviation: np.ndarray  # (T,)
    slowdown: np.ndarray  # (nnz,) straggler factor of every (step, client) entry of ``counts``
    timing: EpochTiming

    @property
    def num_steps(self) -> int:
        return self.counts.num_steps


def steps_per_epoch(
    method: str, client_sizes: np.ndarray, batch_size: int, per_client_batch: int | None
) -> int:
    """T of methods §2 without drawing anything: FLS/FPLS max_k ceil(N_k/b_k), else ceil(N/B)."""
    sizes = np.asarray(client_sizes)
    n, k = int(sizes.sum()), len(sizes)
    if method in ("fls", "fpls"):
        if method == "fls":
            b = np.full(k, per_client_batch or max(1, round(batch_size / k)))
        else:
            b = np.maximum(1, np.round(batch_size * sizes / n)).astype(int)
        nonempty = sizes > 0
        return int(np.max(np.ceil(sizes[nonempty] / b[nonempty])))
    return math.ceil(n / batch_size)


class EpochPlanner:
    """Owns the stateful parts of sampling (client streams, LDS) and plans one epoch at a time."""

    def __init__(self, setup: ExperimentSetup):
        cfg = setup.config
        self.setup = setup
        self.seed = cfg.seed
        self.method = cfg.sampling.method
        self.batch_size = cfg.sampling.batch_size
        self.per_client_batch = cfg.sampling.per_client_batch
        self.max_steps = cfg.training.max_steps_per_epoch
        self.sizes = setup.partition.sizes
        self.labels = setup.dataset.y_train.numpy()
        self.class_dist = label_distribution(self.labels, setup.dataset.num_classes)
        self.sampler = ClientSampler(setup.partition.client_indices)
        self.lds: LDSSampler | None = None
        if self.method == "lds":
            # LDS steers samples away from slow clients using the expected per-sample latency,
            # including the persistent straggler factor (a transient one cannot be anticipated).
            latency = setup.system.expected_time_per_sample() * setup.stragglers.persistent
            self.lds = LDSSampler(
                self.sizes,
                self.batch_size,
                c=cfg.sampling.lds_c,
                delta=cfg.sampling.lds_delta,
                latency_per_sample=latency,
            )

    @property
    def steps_per_epoch(self) -> int:
        t = steps_per_epoch(self.method, self.sizes, self.batch_size, self.per_client_batch)
        return min(t, self.max_steps) if self.max_steps else t

    def state_dict(self) -> dict:
        return {"sampler": self.sampler.state_dict(), "lds": self.lds.state_dict() if self.lds else None}

    def load_state_dict(self, state: dict) -> None:
        self.sampler.load_state_dict(state["sampler"])
        if self.lds is not None:
            self.lds.load_state_dict(state["lds"])

    def plan(self, epoch: int) -> EpochPlan:
        rng = np.random.default_rng([self.seed, epoch, _STREAM_SCHEDULE])
        counts = epoch_counts(
            self.method,
            self.sizes,
            self.batch_size,
            rng,
            per_client_batch=self.per_client_batch,
            lds=self.lds,
            max_steps=self.max_steps,
        )
        batches = self.sampler.epoch(counts, rng, streaming=self.method == "lds")
        deviation = batch_deviation(self.labels[batches.sample_index], batches.step_offsets, self.class_dist)
        slowdown = self.setup.stragglers.slowdowns(
            counts.client, np.random.default_rng([self.seed, epoch, _STREAM_STRAGGLERS])
        )
        timing = epoch_timing(
            counts.step, counts.client, counts.count, counts.num_steps, self.setup.system, slowdown
        )
        if self.setup.helpers is not None:
            timing = helper_timing(timing, counts, slowdown, self.setup.helpers)
        return EpochPlan(epoch, counts, batches, deviation, slowdown, timing)
