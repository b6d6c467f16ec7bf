"""Issue 14, defects D1–D8: each test failed on the code before the fix (commit a7fe39d)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from psl_core.helpers import (
    HelperInputError,
    HelperInstance,
    Schedule,
    check_schedule,
    low_heterogeneity_instance,
    random_instance,
    solve,
)

TIMES = ("release", "p_fwd", "gap", "p_bwd", "tail")


def tight_memory_instance() -> HelperInstance:
    """Memory [2, 2, 2, 3, 3] MB on two 6 MB helpers: only {3, 3} | {2, 2, 2} fits. Clients with
    the most work have the least memory, so filling by work strands the last 3 MB client."""
    work = np.array([5.0, 4.0, 3.0, 2.0, 1.0])[:, None] * np.ones((1, 2))
    return HelperInstance(
        release=np.zeros((5, 2)), p_fwd=work / 2, gap=np.ones((5, 2)), p_bwd=work / 2, tail=np.ones((5, 2)),
        mem_demand=np.array([2.0, 2.0, 2.0, 3.0, 3.0]), mem_capacity=np.array([6.0, 6.0]),
    )  # fmt: skip


@pytest.mark.parametrize("method", ["greedy", "decomposition", "local_search", "baseline"])
def test_d1_solvers_pack_tight_memory_instead_of_crashing(method):
    inst = tight_memory_instance()
    res = solve(inst, method, seed=3)
    assert check_schedule(inst, res.schedule, res.makespan).feasible
    assert sorted(np.bincount(res.schedule.helper, weights=inst.mem_demand, minlength=2)) == [6.0, 6.0]


def test_d2_exact_accepts_memory_that_is_exactly_full():
    # 0.1 + 0.2 is 0.30000000000000004 in floating point: exactly full, not over.
    inst = replace(
        random_instance(3, 2, seed=4), mem_demand=np.array([0.1, 0.2, 0.3]), mem_capacity=np.array([0.3, 0.3])
    )
    res = solve(inst, "exact")
    assert check_schedule(inst, res.schedule, res.makespan).feasible
    assert res.optimal and res.status.startswith("OPTIMAL")


def test_d3_brute_force_says_when_nothing_fits():
    # Total memory suffices (6 = 6) and each client fits alone, but no packing exists.
    inst = replace(
        random_instance(3, 2, seed=1), mem_demand=np.array([2.0, 2.0, 2.0]), mem_capacity=np.array([3.0, 3.0])
    )
    with pytest.raises(HelperInputError, match="fits the helpers' memory"):
        solve(inst, "brute_force")


def test_d4_checker_rejects_nan_times():
    inst = random_instance(4, 2, seed=2)
    res = solve(inst, "greedy")
    fwd = res.schedule.fwd_start.copy()
    fwd[1] = np.nan
    bad = Schedule.non_preemptive(inst, res.schedule.helper, fwd, res.schedule.bwd_start)
    report = check_schedule(inst, bad)
    assert not report.feasible


def test_d4_checker_tolerance_does_not_grow_with_the_horizon():
    # A long horizon (about 1e6 ms): a backward task 0.001 ms too early must still be caught.
    inst = random_instance(5, 2, seed=6)
    inst = replace(inst, **{n: getattr(inst, n) * 2e4 for n in TIMES})
    res = solve(inst, "greedy")
    j, h = 0, int(res.schedule.helper[0])
    ready = res.schedule.fwd_start[j] + inst.p_fwd[j, h] + inst.gap[j, h]
    bwd = res.schedule.bwd_start.copy()
    bwd[j] = ready - 1e-3
    early = Schedule.non_preemptive(inst, res.schedule.helper, res.schedule.fwd_start, bwd)
    assert "precedence" in check_schedule(inst, early).kinds


def test_d5_exact_lower_bound_never_exceeds_the_optimum():
    # Times of the order of hundredths of a millisecond make any rounding of durations visible.
    for seed in range(8):
        inst = random_instance(4, 2, seed=seed)
        small = replace(inst, **{n: getattr(inst, n) * 0.003 for n in TIMES})
        optimum = solve(small, "brute_force").makespan
        bound = solve(small, "exact").lower_bound
        assert bound <= optimum * (1 + 1e-12), seed


def test_d6_exact_is_never_worse_than_its_hint():
    for seed in (11, 18, 22, 25, 29):  # instances where the old exact model returned worse than its hint
        inst = random_instance(8, 2, seed=seed)
        hint = solve(inst, "local_search")
        exact = solve(inst, "exact", hint=hint.schedule)
        assert exact.makespan <= hint.makespan + 1e-9, seed
        assert check_schedule(inst, exact.schedule, exact.makespan).feasible


def test_d7_local_search_does_not_depend_on_the_clock(monkeypatch):
    import psl_core.helpers.solvers.local_search as ls

    inst = low_heterogeneity_instance(20, 5, model="vgg19", seed=0)
    calm = solve(inst, "local_search")
    clock = iter(np.arange(0.0, 1e6, 100.0))  # every reading of the clock is 100 s later
    monkeypatch.setattr(ls.time, "perf_counter", lambda: float(next(clock)))
    busy = solve(inst, "local_search")
    assert busy.makespan == calm.makespan
    assert np.array_equal(busy.schedule.helper, calm.schedule.helper)


def test_d8_training_runs_the_solvers_own_schedule():
    """With equal clients and B divisible by K every FLS step is the nominal batch, so each step
    must take exactly the makespan the solver reported (before: re-sequenced by another rule)."""
    from psl_core.config import ExperimentConfig, apply_overrides
    from psl_core.engine import MemorySink, build_experiment, run_experiment

    base = {
        "data.train_limit": 64, "partition.scheme": "iid", "partition.num_clients": 8,
        "sampling.method": "fls", "sampling.batch_size": 16, "model.cut": 1, "model.cut2": 3,
        "training.epochs": 1, "training.max_steps_per_epoch": 2,
        "system.clients": [{"device": "rpi4b", "fraction": 0.5}, {"device": "laptop_m1", "fraction": 0.5}],
        "system.helpers.num_helpers": 2, "system.helpers.helper_device": "jetson_cpu",
    }  # fmt: skip
    for solver in ("decomposition",):
        cfg = apply_overrides(ExperimentConfig(), {**base, "system.helpers.solver": solver})
        reported = build_experiment(cfg).helpers.nominal_makespan_s
        sink = MemorySink()
        run_experiment(cfg, sink)
        steps = [r["sim_step_time"] for r in sink.steps]
        assert steps and all(s == pytest.approx(reported, rel=1e-9) for s in steps), (solver, steps, reported)
