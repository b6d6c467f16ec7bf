"""Helpers inside training: every step runs the solver's own schedule (methods §4–5, issue 14)."""

from __future__ import annotations

import numpy as np
import pytest

from psl_core.config import ConfigError, ExperimentConfig, apply_overrides
from psl_core.engine import MemorySink, build_experiment, run_experiment
from psl_core.helpers import HelperInputError, HelperInstance, check_schedule
from psl_core.helpers.in_training import HelperCosts, entry_times, plan_helpers, step_makespans
from psl_core.helpers.schedule_model import HelperModel, fragment_sequence, split_fragments


def unit_costs(k: int, h: int, capacity: float = 1.0, per_sample_mb: float = 0.0) -> HelperCosts:
    one, links = np.ones(k), np.zeros((k, h))
    return HelperCosts(
        part1_fwd=one, part1_bwd=one, part3_train=one, up1=links, down1=links, up2=links, down2=links,
        latency=links, helper_fwd=np.ones(h), helper_bwd=2 * np.ones(h), mem_per_sample_mb=per_sample_mb,
        mem_fixed_mb=0.0, helper_capacity_mb=np.full(h, capacity),
    )  # fmt: skip


def test_a_step_retimes_the_solvers_order_by_hand():
    # Nominal batch: client 0 sends 1 sample, client 1 sends 2, one helper. Per client (r, pf, g, pb, q):
    # c0 = (1, 1, 1, 2, 1), c1 = (2, 2, 2, 4, 2). Greedy = FCFS: c0 fwd [1,2], c1 fwd [2,4], c0 bwd [4,6],
    # c1 bwd [6,10] -> makespan 12 (seconds here; the plan stores ms).
    plan = plan_helpers(unit_costs(2, 1), np.array([1.0, 2.0]), "greedy", "non_preemptive", 0)
    assert plan.nominal_makespan_s == pytest.approx(12.0)
    # A step in which client 0 sends 3 samples: (3, 3, 3, 6, 3). Same order: c0 fwd [3,6], c1 fwd [6,8],
    # c0 bwd [9,15] (ready at 9), c1 bwd [15,19] -> completions 18 and 21.
    makespan, busy, completion = step_makespans(
        plan, np.array([0, 0]), np.array([0, 1]), np.array([3, 2]), 1, np.ones(2)
    )
    assert makespan.tolist() == pytest.approx([21.0])
    assert completion.tolist() == pytest.approx([18.0, 21.0])
    assert busy.tolist() == pytest.approx([9.0, 6.0])  # release + gap + tail


@pytest.mark.parametrize("variant", ["non_preemptive", "preemptive"])
def test_nominal_steps_take_the_reported_makespan_and_other_steps_are_checked_schedules(variant):
    rng = np.random.default_rng(3)
    k, h, steps = 9, 3, 4
    costs = unit_costs(k, h)
    nominal = rng.integers(1, 5, k).astype(float)
    plan = plan_helpers(costs, nominal, "local_search", variant, 0)
    step = np.repeat(np.arange(steps), k)
    client = np.tile(np.arange(k), steps)
    count = np.concatenate([nominal, rng.integers(1, 5, (steps - 1) * k)])
    slowdown = np.concatenate([np.ones(k), rng.uniform(1, 3, (steps - 1) * k)])
    makespan, _, _ = step_makespans(plan, step, client, count, steps, slowdown)
    if variant == "non_preemptive":
        assert makespan[0] == pytest.approx(plan.nominal_makespan_s, rel=1e-12)
    else:  # earliest-deadline-first on the solver's completion order: never later than the solver
        assert makespan[0] <= plan.nominal_makespan_s * (1 + 1e-12)
    if variant == "preemptive":
        return
    frags = split_fragments(plan.nominal.schedule, h)
    for t in range(1, steps):  # rebuild each step's schedule independently and check it
        sel = step == t
        times = entry_times(costs, client[sel], plan.assignment[client[sel]], count[sel], slowdown[sel])
        inst = HelperInstance(
            **{n: np.repeat(v[:, None], h, 1) * 1e3 for n, v in times.items()},
            mem_demand=np.zeros(k), mem_capacity=np.ones(h),
        )  # fmt: skip
        model = HelperModel(inst, "non_preemptive")
        pieces = [model.retime_sequence(m, fragment_sequence(frags[m])) for m in range(h)]
        worst = max(v for _, v in pieces)
        from psl_core.helpers.schedule_model import assemble

        sched = assemble(inst, [f for f, _ in pieces])
        report = check_schedule(inst, sched, variant="non_preemptive")
        assert report.feasible and report.makespan == pytest.approx(worst)
        assert makespan[t] == pytest.approx(worst / 1e3, rel=1e-12)


def test_step_memory_is_checked_and_names_the_step_and_helper():
    costs = unit_costs(4, 2, capacity=10.0, per_sample_mb=1.0)
    plan = plan_helpers(costs, np.array([2.0, 2.0, 2.0, 2.0]), "greedy", "non_preemptive", 0)
    ok = np.array([2, 2, 2, 2])
    step_makespans(plan, np.zeros(4, int), np.arange(4), ok, 1, np.ones(4))
    crowded = np.array([9, 9, 9, 9])  # LDS may send many more samples than nominal in one step
    with pytest.raises(HelperInputError, match=r"step 1: helper \d would hold"):
        step_makespans(
            plan, np.repeat([0, 1], 4), np.tile(np.arange(4), 2), np.concatenate([ok, crowded]), 2, np.ones(8)
        )


def test_exact_solver_is_offered_for_small_k_only():
    plan = plan_helpers(unit_costs(4, 2), np.ones(4), "exact", "non_preemptive", 0)
    assert plan.nominal.optimal
    with pytest.raises(HelperInputError, match="at most 10 clients"):
        plan_helpers(unit_costs(12, 2), np.ones(12), "exact", "non_preemptive", 0)


BASE = {
    "data.train_limit": 200, "model.cut": 1, "model.cut2": 3, "partition.num_clients": 8, "training.epochs": 1,
    "training.max_steps_per_epoch": 3, "system.clients": [{"device": "jetson_gpu"}],
    "system.helpers.helper_device": "rpi4b",
}  # fmt: skip


def test_training_with_helpers_changes_time_not_arithmetic():
    plain, helped = MemorySink(), MemorySink()
    run_experiment(apply_overrides(ExperimentConfig(), BASE), plain)
    cfg = apply_overrides(ExperimentConfig(), {**BASE, "system.helpers.num_helpers": 2})
    run_experiment(cfg, helped)
    assert [r["loss"] for r in plain.steps] == [r["loss"] for r in helped.steps]
    # Slow helpers (a Raspberry Pi) serving fast clients stretch every step.
    assert all(h["sim_step_time"] > p["sim_step_time"] for p, h in zip(plain.steps, helped.steps))
    setup = build_experiment(cfg)
    assert set(setup.helpers.assignment) <= {0, 1} and len(setup.helpers.assignment) == 8


def test_mixed_helper_devices_and_per_link_bandwidths_reach_the_plan():
    links = [[1.0, 1000.0]] * 8  # every client has a slow link to helper 0 and a fast one to helper 1
    cfg = apply_overrides(
        ExperimentConfig(),
        {**BASE, "system.helpers.num_helpers": 2, "system.helpers.helper_devices": ["vm", "rpi4b"],
         "system.helpers.link_mbps": links, "system.helpers.solver": "lns"},
    )  # fmt: skip
    plan = build_experiment(cfg).helpers
    costs = plan.costs
    assert costs.helper_fwd[0] < costs.helper_fwd[1]  # the VM is faster than the Raspberry Pi
    np.testing.assert_allclose(costs.up1[:, 0] / costs.up1[:, 1], 1000.0)
    drawn = apply_overrides(
        ExperimentConfig(),
        {**BASE, "system.helpers.num_helpers": 2, "system.helpers.link_mbps_range": [5, 50]},
    )
    up = build_experiment(drawn).helpers.costs.up1
    assert up.shape == (8, 2) and len(np.unique(np.round(up, 12))) == 16  # one draw per link


def test_helper_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="set model.cut2"):
        apply_overrides(ExperimentConfig(), {"system.helpers.num_helpers": 2})
    with pytest.raises(ConfigError, match="helper_devices lists 1 devices"):
        apply_overrides(
            ExperimentConfig(),
            {**BASE, "system.helpers.num_helpers": 2, "system.helpers.helper_devices": ["vm"]},
        )
    with pytest.raises(ConfigError, match="link_mbps has 1 rows"):
        apply_overrides(
            ExperimentConfig(),
            {**BASE, "system.helpers.num_helpers": 2, "system.helpers.link_mbps": [[1, 2]]},
        )
