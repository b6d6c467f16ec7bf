"""The paper's decomposition (Tirana et al., INFOCOM 2024), as implemented here.

(project definition) The paper alternates ADMM subproblems solved with Gurobi; this version keeps the
structure without a commercial solver: price iterations on the assignment (a helper whose makespan is
above the mean gets a higher price, clients are re-assigned greedily against the prices and the
memory), and for every assignment the paper's per-helper schedule — forward by Schrage's rule, backward
preemptive largest-tail-first, which is optimal for the backward problem with release dates and tails.
In the non-preemptive variant the same priorities are applied without preemption (the 'delivery'
list rule). The best assignment seen over the iterations is returned.
"""

from __future__ import annotations

import time

import numpy as np

from psl_core.helpers.instance import HelperInstance, Schedule, check_variant, schedule_makespan
from psl_core.helpers.schedule_model import HelperModel, assemble
from psl_core.helpers.sequencing import decomposition_helper_schedule, helper_groups
from psl_core.helpers.solvers.common import SolveResult, greedy_fill
from psl_core.helpers.solvers.greedy import balanced_assignment


def priced_assignment(instance: HelperInstance, price: np.ndarray) -> np.ndarray:
    """Clients by decreasing chain length, each to the helper minimising estimated finish + price."""
    work = instance.p_fwd + instance.p_bwd
    path = instance.chain
    order = np.lexsort((-path.min(axis=1), -instance.mem_demand))
    load = np.zeros(instance.num_helpers)

    def choose(j: int, ok: np.ndarray, free: np.ndarray) -> int:
        est = np.maximum(load[ok] + work[j, ok] + instance.tail[j, ok], path[j, ok]) + price[ok]
        h = int(ok[np.argmin(est)])
        load[h] += work[j, h]
        return h

    return greedy_fill(instance, order, choose)


def decomposition_schedule(instance: HelperInstance, assignment: np.ndarray) -> Schedule:
    """Forward by Schrage, backward preemptive largest-tail-first, helper by helper (the paper's steps)."""
    k = instance.num_clients
    fwd: list = [()] * k
    bwd: list = [()] * k
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
        for j, s, p in zip(grp, fs, ps):
            fwd[j] = ((float(s), float(s + instance.p_fwd[j, h])),)
            bwd[j] = tuple(p)
    return Schedule(np.asarray(assignment, dtype=int), tuple(fwd), tuple(bwd))


def _schedule(instance: HelperInstance, assignment: np.ndarray, variant: str) -> Schedule:
    if variant == "preemptive":
        return decomposition_schedule(instance, assignment)
    model = HelperModel(instance, variant)
    model.rules = ("delivery",)
    h = instance.num_helpers
    return assemble(instance, model.fragments(helper_groups(assignment, h), np.arange(h))[0])


def solve_decomposition(
    instance: HelperInstance,
    variant: str = "non_preemptive",
    iterations: int = 20,
    step: float = 0.5,
    **_: object,
) -> SolveResult:
    """Price iterations over assignments; the paper's per-helper forward/backward schedule for each."""
    check_variant(variant)
    t0 = time.perf_counter()

    def per_helper(assign):
        sched = _schedule(instance, assign, variant)
        idx = np.arange(instance.num_clients)
        done = sched.bwd_end + instance.tail[idx, assign]
        out = np.zeros(instance.num_helpers)
        np.maximum.at(out, assign, done)
        return sched, out

    best = balanced_assignment(instance)
    best_sched, values = per_helper(best)
    best_val = values.max()
    price = np.zeros(instance.num_helpers)
    for _ in range(iterations):
        price = np.maximum(0.0, price + step * (values - values.mean()))
        cand = priced_assignment(instance, price)
        sched, values = per_helper(cand)
        if values.max() < best_val:
            best, best_sched, best_val = cand, sched, values.max()
    return SolveResult(
        "decomposition", variant, best_sched, schedule_makespan(instance, best_sched), time.perf_counter() - t0,
        stats={"iterations": iterations},
    )  # fmt: skip
