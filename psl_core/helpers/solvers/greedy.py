"""Balanced greedy: each client to the memory-feasible helper with the least processing load."""

from __future__ import annotations

import time

import numpy as np

from psl_core.helpers.instance import HelperInputError, HelperInstance, schedule_makespan
from psl_core.helpers.solvers.common import SolveResult, list_schedule


def balanced_assignment(instance: HelperInstance) -> np.ndarray:
    """Longest-processing-time-first: clients by decreasing helper work, each to the helper whose
    load (sum of fwd + bwd times) after adding it is smallest among those with memory left."""
    work = instance.p_fwd + instance.p_bwd
    order = np.argsort(-work.min(axis=1), kind="stable")
    load = np.zeros(instance.num_helpers)
    free = instance.mem_capacity.astype(float).copy()
    out = np.empty(instance.num_clients, dtype=int)
    for j in order:  # sequential by nature: each choice changes the loads
        cost = np.where(free >= instance.mem_demand[j] - 1e-9, load + work[j], np.inf)
        h = int(np.argmin(cost))
        if not np.isfinite(cost[h]):
            raise HelperInputError("greedy found no helper with memory left; give helpers more memory")
        out[j] = h
        load[h] += work[j, h]
        free[h] -= instance.mem_demand[j]
    return out


def solve_greedy(instance: HelperInstance, **_: object) -> SolveResult:
    """Balanced-greedy assignment + FCFS on every helper."""
    t0 = time.perf_counter()
    assignment = balanced_assignment(instance)
    sched = list_schedule(instance, assignment, "fcfs")
    return SolveResult("greedy", sched, schedule_makespan(instance, sched), time.perf_counter() - t0)
