"""Helpers inside a training run: the simulated step time becomes the makespan of a helper schedule.

With H helpers the model is U-shaped (methods §5): part-1 and part-3 on the client, part-2 on the
client's helper. Once per run the chosen solver assigns clients to helpers for a nominal batch
(each client's expected share of B); then, for every step, each helper sequences the tasks of its
active clients — with that step's batch sizes and straggler slowdowns — by a list rule (FCFS for
the baseline, longest-remaining-path first otherwise). All steps of an epoch are scheduled in one
vectorised call (rows = (step, helper) pairs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psl_core.helpers.instance import HelperInstance
from psl_core.helpers.solvers import solve
from psl_core.helpers.solvers.sequencing import batch_list_schedule

MS = 1e3  # helper instances are in milliseconds


@dataclass(frozen=True)
class HelperCosts:
    """Per-sample seconds of each task piece; client arrays are (K,), helper arrays (H,)."""

    part1_fwd: np.ndarray  # client compute of part-1 forward
    part1_bwd: np.ndarray
    part3_train: np.ndarray  # client part-3 forward + backward (with the loss)
    up1: np.ndarray  # upload of cut-1 activations (and of cut-2 gradients: same size as cut-2 activations)
    down1: np.ndarray
    up2: np.ndarray
    down2: np.ndarray
    latency: np.ndarray  # (K,) per message
    helper_fwd: np.ndarray  # (H,) part-2 forward per sample
    helper_bwd: np.ndarray  # (H,) part-2 backward per sample
    mem_per_sample_mb: float  # part-2 activation memory per sample on a helper
    mem_fixed_mb: float  # part-2 weights + gradients + optimiser state
    helper_capacity_mb: np.ndarray  # (H,)


def entry_times(costs: HelperCosts, client, helper, count, slowdown) -> dict[str, np.ndarray]:
    """release, p_fwd, gap, p_bwd, tail (seconds) of each (step, client) entry on its helper."""
    b, s, lat = count.astype(float), slowdown, costs.latency[client]
    return {
        "release": b * costs.part1_fwd[client] * s + b * costs.up1[client] + lat,
        "p_fwd": b * costs.helper_fwd[helper],
        "gap": 2 * lat + b * costs.down2[client] + b * costs.part3_train[client] * s + b * costs.up2[client],
        "p_bwd": b * costs.helper_bwd[helper],
        "tail": lat + b * costs.down1[client] + b * costs.part1_bwd[client] * s,
    }


def assign_clients(
    costs: HelperCosts, nominal_counts: np.ndarray, solver: str, seed: int
) -> tuple[np.ndarray, float]:
    """Client → helper assignment by ``solver`` for one nominal batch; returns (assignment, makespan s)."""
    k, h = len(nominal_counts), len(costs.helper_fwd)
    clients = np.repeat(np.arange(k), h)
    helpers = np.tile(np.arange(h), k)
    times = entry_times(costs, clients, helpers, np.repeat(nominal_counts, h), np.ones(k * h))
    instance = HelperInstance(
        **{name: (v * MS).reshape(k, h) for name, v in times.items()},
        mem_demand=costs.mem_fixed_mb + costs.mem_per_sample_mb * nominal_counts,
        mem_capacity=costs.helper_capacity_mb,
    )
    result = solve(instance, solver, seed=seed)
    return np.asarray(result.schedule.helper, dtype=int), result.makespan / MS


def step_makespans(
    costs: HelperCosts,
    assignment: np.ndarray,
    step: np.ndarray,
    client: np.ndarray,
    count: np.ndarray,
    num_steps: int,
    slowdown: np.ndarray,
    rule: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per step makespan (T,), and per entry: client busy time and completion time (nnz,)."""
    helper = assignment[client]
    times = entry_times(costs, client, helper, count, slowdown)
    nnz = len(client)
    busy = times["release"] + times["gap"] + times["tail"]
    if nnz == 0:
        return np.zeros(num_steps), busy, busy
    # Rows are (step, helper) groups; members are entry ids, padded to the largest group.
    num_helpers = len(costs.helper_fwd)
    group = step * num_helpers + helper
    order = np.argsort(group, kind="stable")
    uniq, start, sizes = np.unique(group[order], return_index=True, return_counts=True)
    pos = np.arange(nnz) - np.repeat(start, sizes)
    row = np.repeat(np.arange(len(uniq)), sizes)
    members = np.zeros((len(uniq), sizes.max()), dtype=int)
    mask = np.zeros_like(members, dtype=bool)
    members[row, pos], mask[row, pos] = order, True
    # One virtual "helper" column: every entry's times are already those of its own helper.
    instance = HelperInstance(
        **{name: (v * MS)[:, None] for name, v in times.items()},
        mem_demand=np.zeros(nnz),
        mem_capacity=np.ones(1),
    )
    _, bwd_start, _ = batch_list_schedule(instance, members, mask, np.zeros(len(uniq), dtype=int), rule)
    completion = np.empty(nnz)
    completion[members[mask]] = (
        bwd_start[mask] + instance.p_bwd[members[mask], 0] + instance.tail[members[mask], 0]
    ) / MS
    makespan = np.zeros(num_steps)
    np.maximum.at(makespan, step, completion)
    return makespan, busy, completion
