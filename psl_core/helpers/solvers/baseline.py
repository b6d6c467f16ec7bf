"""Baseline of the paper: a random memory-feasible assignment, then first-come-first-served."""

from __future__ import annotations

import time

import numpy as np

from psl_core.helpers.instance import HelperInputError, HelperInstance, schedule_makespan
from psl_core.helpers.solvers.common import SolveResult, list_schedule


def random_assignment(instance: HelperInstance, rng: np.random.Generator, max_tries: int = 100) -> np.ndarray:
    """Clients in random order, each to a uniformly random helper that still has memory for it."""
    k = instance.num_clients
    for _ in range(max_tries):
        free = instance.mem_capacity.astype(float).copy()
        out = np.empty(k, dtype=int)
        for j in rng.permutation(k):  # sequential by nature: each choice changes the free memory
            ok = np.flatnonzero(free >= instance.mem_demand[j] - 1e-9)
            if len(ok) == 0:
                break
            out[j] = rng.choice(ok)
            free[out[j]] -= instance.mem_demand[j]
        else:
            return out
    raise HelperInputError(
        f"no random feasible assignment found in {max_tries} tries; give helpers more memory"
    )


def solve_baseline(instance: HelperInstance, seed: int = 0, **_: object) -> SolveResult:
    """Random feasible assignment + FCFS on every helper."""
    t0 = time.perf_counter()
    assignment = random_assignment(instance, np.random.default_rng(seed))
    sched = list_schedule(instance, assignment, "fcfs")
    return SolveResult("baseline", sched, schedule_makespan(instance, sched), time.perf_counter() - t0)
