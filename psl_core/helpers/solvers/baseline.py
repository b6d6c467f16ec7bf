"""Baseline of the paper: a random memory-feasible assignment, then first-come-first-served."""

from __future__ import annotations

import time

import numpy as np

from psl_core.helpers.instance import HelperInstance
from psl_core.helpers.schedule_model import HelperModel, assemble
from psl_core.helpers.sequencing import helper_groups
from psl_core.helpers.solvers.common import SolveResult, greedy_fill


def random_assignment(instance: HelperInstance, rng: np.random.Generator) -> np.ndarray:
    """Clients in random order, each to a uniformly random helper that still has memory for it."""
    return greedy_fill(
        instance,
        rng.permutation(instance.num_clients),
        lambda j, ok, free: int(rng.choice(ok)),
        seed=int(rng.integers(2**31)),
    )


def fcfs_schedule(instance: HelperInstance, assignment: np.ndarray, variant: str):
    """Every helper serves its tasks first-come-first-served (a non-preemptive list rule)."""
    model = HelperModel(instance, variant)
    model.rules = ("fcfs",)
    h = instance.num_helpers
    fragments, _ = model.fragments(helper_groups(assignment, h), np.arange(h))
    sched = assemble(instance, fragments)
    return sched


def solve_baseline(
    instance: HelperInstance, variant: str = "non_preemptive", seed: int = 0, **_: object
) -> SolveResult:
    """Random feasible assignment + FCFS on every helper (the same schedule in both variants)."""
    from psl_core.helpers.instance import schedule_makespan

    t0 = time.perf_counter()
    sched = fcfs_schedule(instance, random_assignment(instance, np.random.default_rng(seed)), variant)
    return SolveResult(
        "baseline", variant, sched, schedule_makespan(instance, sched), time.perf_counter() - t0
    )
