"""Both variants of the helper problem: exact models against brute force, valid bounds, the schedule
model's consistency, determinism, and a fuzzed input surface (issue 14)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from psl_core.helpers import (
    VARIANTS,
    HelperInputError,
    HelperInstance,
    chain_bound,
    check_schedule,
    random_instance,
    solve,
)
from psl_core.helpers.bounds import best_subset, relaxation_bound
from psl_core.helpers.schedule_model import HelperModel
from psl_core.helpers.sequencing import batch_priority_schedule, decomposition_helper_schedule

FAST = ("baseline", "greedy", "decomposition", "local_search", "lns")


def slotted_instance(k: int, h: int, seed: int) -> HelperInstance:
    """Whole-slot times (slot = 1 ms): the time-indexed model rounds nothing."""
    rng = np.random.default_rng(seed)
    speed = rng.integers(1, 3, size=h)
    return HelperInstance(
        release=rng.integers(0, 4, (k, h)).astype(float),
        p_fwd=rng.integers(1, 3, (k, 1)) * speed,
        gap=rng.integers(0, 5, (k, h)).astype(float),
        p_bwd=rng.integers(1, 5, (k, 1)) * speed,
        tail=rng.integers(0, 6, (k, h)).astype(float),
        mem_demand=rng.integers(1, 3, k).astype(float),
        mem_capacity=np.full(h, 4.0),
        meta={"slot_ms": 1.0},
    )


@pytest.mark.parametrize("seed", range(6))
def test_time_indexed_preemptive_model_matches_brute_force(seed):
    inst = slotted_instance(4 if seed % 2 else 3, 2, seed)
    brute = solve(inst, "brute_force", variant="preemptive")
    exact = solve(inst, "exact", variant="preemptive")
    assert check_schedule(inst, exact.schedule, exact.makespan, variant="preemptive").feasible
    assert exact.status == "OPTIMAL"
    assert exact.makespan == pytest.approx(brute.makespan, abs=1e-9)
    assert exact.lower_bound <= brute.makespan + 1e-9


@pytest.mark.parametrize("seed", range(6))
def test_non_preemptive_model_matches_brute_force(seed):
    inst = random_instance(4 if seed % 2 else 3, 2, seed=100 + seed)
    brute = solve(inst, "brute_force")
    exact = solve(inst, "exact")
    assert check_schedule(inst, exact.schedule, exact.makespan, variant="non_preemptive").feasible
    assert exact.optimal and exact.makespan == pytest.approx(brute.makespan, rel=1e-5)
    assert exact.lower_bound <= brute.makespan * (1 + 1e-12)


def test_preemption_can_help_and_never_hurts():
    gains = []
    for seed in range(10):
        inst = slotted_instance(4, 2, 50 + seed)
        pre = solve(inst, "brute_force", variant="preemptive").makespan
        non = solve(inst, "brute_force", variant="non_preemptive").makespan
        assert pre <= non + 1e-9
        gains.append(non - pre)
    assert max(gains) > 0  # the variants are different models, so they are never compared silently


def test_checker_rejects_split_tasks_in_the_non_preemptive_variant():
    # The decomposition's backward is preemptive: find an instance where it splits a task.
    for seed in range(40):
        inst = random_instance(8, 2, seed=seed)
        res = solve(inst, "decomposition", variant="preemptive")
        if res.schedule.preemptive:
            assert check_schedule(inst, res.schedule, variant="preemptive").feasible
            assert "preemption" in check_schedule(inst, res.schedule, variant="non_preemptive").kinds
            return
    pytest.fail("no preemptive decomposition schedule found")


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_solver_returns_a_schedule_of_its_variant_with_its_own_makespan(variant):
    inst = random_instance(10, 3, seed=9)
    for method in FAST:
        res = solve(inst, method, variant=variant, seed=1, iterations=4, pair_dtime=0.05)
        report = check_schedule(inst, res.schedule, variant=variant)
        assert report.feasible, (method, report.violations)
        assert res.makespan == report.makespan  # recomputed from the schedule, digit for digit
        assert res.variant == variant
    # local search and LNS judge moves with the schedule model that builds what they return
    ls = solve(inst, "local_search", variant=variant)
    assert HelperModel(inst, variant).assignment_values(ls.schedule.helper).max() == ls.makespan


def _subset_bound_by_enumeration(rel, proc, follow) -> float:
    best = 0.0
    for size in range(1, len(rel) + 1):
        for s in itertools.combinations(range(len(rel)), size):
            s = list(s)
            best = max(best, rel[s].min() + proc[s].sum() + follow[s].min())
    return best


def test_subset_bound_equals_enumeration_over_all_subsets():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(1, 8))
        rel, proc, follow = rng.uniform(0, 10, n), rng.uniform(0, 5, n), rng.uniform(0, 10, n)
        assert best_subset(rel, proc, follow)[0] == pytest.approx(
            _subset_bound_by_enumeration(rel, proc, follow)
        )


@pytest.mark.parametrize("seed", range(5))
def test_lower_bounds_never_exceed_the_preemptive_optimum(seed):
    inst = random_instance(4, 2, seed=200 + seed)
    optimum = solve(inst, "brute_force", variant="preemptive").makespan  # the smaller of the two optima
    assert chain_bound(inst) <= optimum + 1e-9
    bound, _ = relaxation_bound(inst, upper_bound=optimum)
    assert bound <= optimum * (1 + 1e-12)


def test_priority_schedule_by_completion_order_finishes_every_task_no_later():
    """The lemma behind the preemptive exact models: run any preemptive schedule's tasks by its own
    completion order and each task ends no later than it did."""
    rng = np.random.default_rng(3)
    for _ in range(30):
        n = int(rng.integers(2, 7))
        r, pf, g = rng.uniform(0, 5, n), rng.uniform(0.1, 3, n), rng.uniform(0, 4, n)
        pb, q = rng.uniform(0.1, 3, n), rng.uniform(0, 6, n)
        fwd, pieces, _ = decomposition_helper_schedule(r, pf, g, pb, q)
        ends = np.concatenate([fwd + pf, [p[-1][1] for p in pieces]])
        inst = HelperInstance(
            release=r[:, None], p_fwd=pf[:, None], gap=g[:, None], p_bwd=pb[:, None], tail=q[:, None],
            mem_demand=np.zeros(n), mem_capacity=np.ones(1),
        )  # fmt: skip
        prio = -np.argsort(np.argsort(ends, kind="stable"), kind="stable").astype(float)[None, :]
        fe, be, _ = batch_priority_schedule(inst, np.arange(n)[None, :], np.ones((1, n), bool), [0], prio)
        assert np.all(np.concatenate([fe[0], be[0]]) <= ends + 1e-9)


@pytest.mark.parametrize("variant", VARIANTS)
def test_lns_is_reproducible_and_never_worse_than_local_search(variant):
    inst = random_instance(12, 3, seed=7)
    first = solve(inst, "lns", variant=variant, seed=5, iterations=6, pair_dtime=0.05)
    again = solve(inst, "lns", variant=variant, seed=5, iterations=6, pair_dtime=0.05)
    assert first.makespan == again.makespan
    assert np.array_equal(first.schedule.helper, again.schedule.helper)
    assert first.schedule.bwd_pieces == again.schedule.bwd_pieces
    assert first.makespan <= solve(inst, "local_search", variant=variant).makespan


def test_exact_preemptive_refuses_models_that_are_too_large():
    with pytest.raises(HelperInputError, match="Booleans"):
        solve(random_instance(40, 6, seed=1), "exact", variant="preemptive", max_slots=2000)


def test_unknown_variant_is_refused_with_the_choices():
    with pytest.raises(HelperInputError, match="non_preemptive, preemptive"):
        solve(random_instance(3, 1), "greedy", variant="sometimes")


@st.composite
def instances(draw):
    k, h = draw(st.integers(1, 7)), draw(st.integers(1, 3))
    times = st.floats(0, 50, allow_nan=False, allow_infinity=False)

    def grid(shape):
        return np.array(
            draw(st.lists(times, min_size=shape[0] * shape[1], max_size=shape[0] * shape[1]))
        ).reshape(shape)

    demand = np.array(draw(st.lists(st.floats(0, 5), min_size=k, max_size=k)))
    capacity = np.full(h, max(demand.sum(), demand.max(initial=0.0), 1e-3))  # memory never blocks here
    return HelperInstance(
        release=grid((k, h)), p_fwd=grid((k, h)), gap=grid((k, h)), p_bwd=grid((k, h)), tail=grid((k, h)),
        mem_demand=demand, mem_capacity=capacity,
    )  # fmt: skip


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inst=instances(), variant=st.sampled_from(VARIANTS))
def test_fuzzed_instances_give_checked_schedules_above_the_chain_bound(inst, variant):
    for method in ("baseline", "greedy", "decomposition", "local_search"):
        res = solve(inst, method, variant=variant)
        report = check_schedule(inst, res.schedule, res.makespan, variant=variant)
        assert report.feasible, (method, report.violations)
        assert res.makespan >= chain_bound(inst) - 1e-9
