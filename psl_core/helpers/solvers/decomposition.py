"""The paper's decomposition (Tirana et al., INFOCOM 2024), as implemented here.

(project definition) The paper alternates ADMM subproblems solved with Gurobi; this version keeps the
structure without a commercial solver: price iterations on the assignment (a helper whose makespan is
above the mean gets a higher price, clients are re-assigned greedily against the prices and the
memory), and for every assignment the paper's per-helper schedule — forward by Schrage's rule, backward
preemptive largest-tail-first, which is optimal for the backward problem with release dates and tails.
The best assignment seen over the iterations is returned.
"""

from __future__ import annotations

import time

import numpy as np

from psl_core.helpers.instance import HelperInputError, HelperInstance, schedule_makespan
from psl_core.helpers.solvers.common import SolveResult, decomposition_schedule
from psl_core.helpers.solvers.greedy import balanced_assignment


def priced_assignment(instance: HelperInstance, price: np.ndarray) -> np.ndarray:
    """Clients by decreasing chain length, each to the helper minimising estimated finish + price."""
    work = instance.p_fwd + instance.p_bwd
    path = instance.release + work + instance.gap + instance.tail
    order = np.argsort(-path.min(axis=1), kind="stable")
    load = np.zeros(instance.num_helpers)
    free = instance.mem_capacity.astype(float).copy()
    out = np.empty(instance.num_clients, dtype=int)
    for j in order:  # sequential by nature: each choice changes loads and free memory
        est = np.maximum(load + work[j] + instance.tail[j], path[j]) + price
        cost = np.where(free >= instance.mem_demand[j] - 1e-9, est, np.inf)
        h = int(np.argmin(cost))
        if not np.isfinite(cost[h]):
            raise HelperInputError("no helper has memory left for a client; give helpers more memory")
        out[j] = h
        load[h] += work[j, h]
        free[h] -= instance.mem_demand[j]
    return out


def helper_makespans(instance: HelperInstance, assignment: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-helper makespans (0 for idle helpers) of the decomposition schedule, and the overall one."""
    sched = decomposition_schedule(instance, assignment)
    idx = np.arange(instance.num_clients)
    done = sched.bwd_end + instance.tail[idx, assignment]
    per_helper = np.zeros(instance.num_helpers)
    np.maximum.at(per_helper, assignment, done)
    return per_helper, float(done.max())


def solve_decomposition(
    instance: HelperInstance, iterations: int = 20, step: float = 0.5, **_: object
) -> SolveResult:
    """Price iterations over assignments; the paper's per-helper forward/backward schedule for each."""
    t0 = time.perf_counter()
    best = balanced_assignment(instance)
    per_helper, best_val = helper_makespans(instance, best)
    price = np.zeros(instance.num_helpers)
    for _ in range(iterations):
        price = np.maximum(0.0, price + step * (per_helper - per_helper.mean()))
        cand = priced_assignment(instance, price)
        per_helper, val = helper_makespans(instance, cand)
        if val < best_val:
            best, best_val = cand, val
    sched = decomposition_schedule(instance, best)
    return SolveResult("decomposition", sched, schedule_makespan(instance, sched), time.perf_counter() - t0)
