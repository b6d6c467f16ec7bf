"""Shared pieces of the helper solvers: the result type and assignment → schedule builders."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psl_core.helpers.instance import HelperInputError, HelperInstance, Schedule, schedule_makespan
from psl_core.helpers.solvers.sequencing import (
    batch_list_schedule,
    decomposition_helper_schedule,
    helper_groups,
    pad_groups,
)


@dataclass(frozen=True)
class SolveResult:
    """Outcome of one solver run. ``gap`` = (makespan − lower_bound) / makespan where a bound exists."""

    method: str
    schedule: Schedule
    makespan: float
    solve_time_s: float
    optimal: bool | None = None
    gap: float | None = None
    lower_bound: float | None = None
    status: str = "FEASIBLE"


def check_assignment(instance: HelperInstance, assignment: np.ndarray) -> np.ndarray:
    """Validate an assignment vector (one helper id per client, memory respected)."""
    a = np.asarray(assignment, dtype=int)
    if a.shape != (instance.num_clients,) or a.min() < 0 or a.max() >= instance.num_helpers:
        raise HelperInputError(f"assignment must give each of the {instance.num_clients} clients a helper id")
    load = np.bincount(a, weights=instance.mem_demand, minlength=instance.num_helpers)
    if np.any(load > instance.mem_capacity * (1 + 1e-12)):
        raise HelperInputError("assignment exceeds a helper's memory capacity; move clients off it")
    return a


def helper_values(instance: HelperInstance, assignment: np.ndarray, rule: str) -> np.ndarray:
    """Per-helper makespan of an assignment under a non-preemptive list rule, all helpers in one batch."""
    members, mask = pad_groups(helper_groups(assignment, instance.num_helpers))
    return batch_list_schedule(instance, members, mask, np.arange(instance.num_helpers), rule)[2]


def list_schedule(instance: HelperInstance, assignment: np.ndarray, rule: str) -> Schedule:
    """Schedule every helper's clients with a non-preemptive list rule ('fcfs' or 'delivery')."""
    groups = helper_groups(assignment, instance.num_helpers)
    members, mask = pad_groups(groups)
    fs, bs, _ = batch_list_schedule(instance, members, mask, np.arange(instance.num_helpers), rule)
    fwd, bwd = np.zeros(instance.num_clients), np.zeros(instance.num_clients)
    fwd[members[mask]], bwd[members[mask]] = fs[mask], bs[mask]
    return Schedule.non_preemptive(instance, assignment, fwd, bwd)


def decomposition_schedule(instance: HelperInstance, assignment: np.ndarray) -> Schedule:
    """Forward by Schrage, backward preemptive largest-tail-first, helper by helper (the paper's steps)."""
    k = instance.num_clients
    fwd = np.zeros(k)
    pieces: list = [None] * k
    for h, grp in enumerate(helper_groups(assignment, instance.num_helpers)):
        if len(grp) == 0:
            continue
        cols = (grp, h)
        fs, ps, _ = decomposition_helper_schedule(
            instance.release[cols],
            instance.p_fwd[cols],
            instance.gap[cols],
            instance.p_bwd[cols],
            instance.tail[cols],
        )
        fwd[grp] = fs
        for j, p in zip(grp, ps):
            pieces[j] = tuple(p)
    return Schedule(np.asarray(assignment, dtype=int), fwd, tuple(pieces))


def best_schedule(instance: HelperInstance, assignment: np.ndarray) -> tuple[Schedule, float]:
    """Best of the list rules and the decomposition schedule, chosen helper by helper."""
    candidates = [list_schedule(instance, assignment, r) for r in ("delivery", "fcfs")]
    candidates.append(decomposition_schedule(instance, assignment))
    idx = np.arange(instance.num_clients)
    helper = np.asarray(assignment, dtype=int)
    per_client = [s.bwd_end + instance.tail[idx, helper] for s in candidates]
    per_helper = np.stack(
        [
            np.maximum.reduceat(np.r_[pc[np.argsort(helper, kind="stable")]], _starts(helper))
            for pc in per_client
        ]
    )
    chosen = np.argmin(per_helper, axis=0)  # per non-empty helper
    used = np.unique(helper)
    pick = dict(zip(used.tolist(), chosen.tolist()))
    fwd = np.array([candidates[pick[h]].fwd_start[j] for j, h in enumerate(helper)])
    pieces = tuple(candidates[pick[h]].bwd_pieces[j] for j, h in enumerate(helper))
    sched = Schedule(helper, fwd, pieces)
    return sched, schedule_makespan(instance, sched)


def _starts(helper: np.ndarray) -> np.ndarray:
    sorted_h = np.sort(helper, kind="stable")
    return np.flatnonzero(np.r_[True, sorted_h[1:] != sorted_h[:-1]])
