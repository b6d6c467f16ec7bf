"""Balanced greedy of the paper: memory-aware load balancing, then first-come-first-served."""

from __future__ import annotations

import time

import numpy as np

from psl_core.helpers.instance import HelperInstance, schedule_makespan
from psl_core.helpers.solvers.baseline import fcfs_schedule
from psl_core.helpers.solvers.common import SolveResult, greedy_fill


def balanced_assignment(instance: HelperInstance) -> np.ndarray:
    """Clients by decreasing memory demand, then decreasing helper work (first-fit-decreasing order,
    so tight memory packs), each to the helper whose processing load after taking it is smallest
    among those with memory left; a stranded client triggers the bin-packing repair."""
    work = instance.p_fwd + instance.p_bwd
    order = np.lexsort((-work.min(axis=1), -instance.mem_demand))
    load = np.zeros(instance.num_helpers)

    def choose(j: int, ok: np.ndarray, free: np.ndarray) -> int:
        h = int(ok[np.argmin(load[ok] + work[j, ok])])
        load[h] += work[j, h]
        return h

    return greedy_fill(instance, order, choose)


def solve_greedy(instance: HelperInstance, variant: str = "non_preemptive", **_: object) -> SolveResult:
    """Balanced-greedy assignment + FCFS on every helper."""
    t0 = time.perf_counter()
    sched = fcfs_schedule(instance, balanced_assignment(instance), variant)
    return SolveResult("greedy", variant, sched, schedule_makespan(instance, sched), time.perf_counter() - t0)
