"""The planner's input surface: fuzzed instances plan feasibly or fail with a clear message, and the
infeasible cases say which device/field and what would make them feasible."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from psl_core.devices import custom_device, load_catalog
from psl_core.models import cut_table, profile_arch
from psl_core.planner import (
    CutCosts,
    PlanningError,
    PlanningInstance,
    build_instance,
    check_target,
    compare_methods,
    evaluate,
    pareto_front,
    plan_exact,
)

CATALOG = load_catalog()
PROFILE = profile_arch("cnn", (1, 28, 28), 10)
CUTS = CutCosts.from_summaries(cut_table(PROFILE), profile=PROFILE)

positive = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def instances(draw):
    classes = draw(st.integers(1, 3))
    cuts = draw(st.integers(1, 4))
    flops = np.sort(np.array(draw(st.lists(st.floats(0, 1e9), min_size=cuts, max_size=cuts))))
    extra = draw(st.floats(0, 1e9))

    def arr(strategy, n):
        return np.array(draw(st.lists(strategy, min_size=n, max_size=n)), dtype=float)

    cost = CutCosts(
        cut=np.arange(1, cuts + 1),
        name=tuple(f"b{i}" for i in range(cuts)),
        client_flops=flops,
        server_flops=flops[-1] + extra - flops,
        bytes_up=arr(st.floats(1, 1e7), cuts),
        bytes_down=arr(st.floats(0, 1e7), cuts),
        client_param_bytes=arr(st.floats(0, 1e8), cuts),
        client_activation_bytes=arr(st.floats(0, 1e7), cuts),
        full_model_flops=float(flops[-1] + extra),
        full_model_param_bytes=1e6,
        full_model_activation_bytes=1e6,
    )
    count = arr(st.integers(1, 50), classes)
    samples = arr(st.floats(0.01, 512), classes)
    return PlanningInstance(
        cuts=cost,
        label=tuple(f"c{g}" for g in range(classes)),
        device_id=tuple(f"d{g}" for g in range(classes)),
        count=count,
        samples=samples,
        total_samples=samples * count,
        speed=arr(st.floats(1e6, 1e13), classes),
        up_bps=arr(st.floats(1e3, 1e10), classes),
        down_bps=arr(st.floats(1e3, 1e10), classes),
        latency_s=arr(st.floats(0, 1), classes),
        memory_bytes=arr(st.floats(1e3, 1e11), classes),
        power_busy_w=arr(st.floats(0, 100), classes),
        power_radio_w=arr(st.floats(0, 10), classes),
        share_cap=np.where(
            arr(st.booleans(), classes).astype(bool), arr(st.floats(1e-3, 1), classes), np.inf
        ),
        server_speed=draw(st.floats(1e6, 1e14)),
        uplink_bps=draw(st.one_of(st.none(), st.floats(1e3, 1e11))),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_fuzzed_instances_plan_feasibly_or_say_why(inst):
    try:
        comparison = compare_methods(inst, max_nodes=2_000)
    except PlanningError as err:
        assert "no cut fits device" in str(err) and "MiB" in str(err)
        assert not inst.fits_memory.any(axis=1).all()
        return
    for plan in comparison.plans.values():
        if plan is None:  # one cut for all: no common cut fits every memory
            assert not inst.fits_memory.all(axis=0).any()
            continue
        assert np.isfinite(plan.step_time_s) and plan.step_time_s > 0
        assert inst.fits_memory[np.arange(inst.num_classes), plan.cut_index].all()
        if inst.shared:
            assert (inst.count * plan.shares).sum() <= 1 + 1e-9
            assert np.all(plan.shares > 0) and np.all(plan.shares <= inst.share_cap * (1 + 1e-9))
        assert plan.step_time_s >= comparison.exact.lower_bound_s * (1 - 1e-9)
        recomputed = evaluate(inst, plan.cut_index, plan.shares).step[0]
        assert recomputed == pytest.approx(plan.step_time_s, rel=1e-9)


@settings(max_examples=25, deadline=None)
@given(
    uplink=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none()),
    samples=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=4),
)
def test_fuzzed_builder_inputs_raise_planning_errors_only(uplink, samples):
    devices = ["rpi4b"] * len(samples)
    try:
        inst = build_instance(
            CUTS, devices, samples, catalog=CATALOG, server_device=CATALOG["vm"], uplink_mbps=uplink
        )
        plan = plan_exact(inst)
    except PlanningError as err:
        assert str(err)
        return
    assert inst.num_clients >= 1
    assert np.isfinite(plan.step_time_s)


def test_no_cut_fits_names_the_device_and_what_would_fit():
    tiny = custom_device("tiny", "Tiny sensor", gflops=1, up_mbps=1, down_mbps=1, memory_mb=0.05)
    catalog = {**CATALOG, "tiny": tiny}
    inst = build_instance(
        CUTS, ["tiny", "rpi4b"], [32, 32], catalog=catalog, server_device=CATALOG["vm"], uplink_mbps=50
    )
    with pytest.raises(PlanningError) as err:
        plan_exact(inst)
    text = str(err.value)
    assert "'tiny'" in text and "rpi4b" not in text
    assert float(text.split("it has ")[1].split(" MiB")[0]) == pytest.approx(0.05, rel=1e-4)
    assert "samples per step" in text or "batch" in text
    need = float(text.split("needs ")[1].split(" MiB")[0])
    assert need == pytest.approx(CUTS.client_memory_bytes(np.array([32.0]))[0].min() / 2**20, rel=1e-3)


def test_memory_budget_within_reach_by_a_smaller_batch_says_how_small():
    budget = CUTS.client_memory_bytes(np.array([4.0]))[0].min() / 2**20 * 1.01  # fits 4 samples, not 64
    inst = build_instance(
        CUTS,
        ["rpi4b"],
        [64],
        catalog=CATALOG,
        server_device=CATALOG["vm"],
        uplink_mbps=50,
        memory_budget_mb={"rpi4b": budget},
    )
    with pytest.raises(PlanningError, match=r"at most [4-9] \(smaller batch"):
        inst.check_feasible()


def test_bad_uplink_and_samples_are_refused_by_name():
    with pytest.raises(PlanningError, match="shared uplink must be a positive"):
        build_instance(CUTS, ["rpi4b"], [8], catalog=CATALOG, server_device=CATALOG["vm"], uplink_mbps=0.0)
    with pytest.raises(PlanningError, match="no client has samples"):
        build_instance(CUTS, ["rpi4b"], [0], catalog=CATALOG, server_device=CATALOG["vm"], uplink_mbps=10)
    with pytest.raises(PlanningError, match="unknown device ids \\['nope'\\]"):
        build_instance(CUTS, ["nope"], [8], catalog=CATALOG, server_device=CATALOG["vm"], uplink_mbps=10)


def test_missed_target_says_which_uplink_would_meet_it():
    inst = build_instance(
        CUTS, ["rpi4b"] * 4, [16] * 4, catalog=CATALOG, server_device=CATALOG["vm"], uplink_mbps=2.0
    )
    plan = plan_exact(inst)
    target = plan.step_time_s * 0.8
    with pytest.raises(PlanningError, match="Mbit/s would meet the target") as err:
        check_target(inst, plan, target)
    needed = float(str(err.value).split("about ")[1].split(" Mbit/s")[0])
    assert needed > 2.0
    assert "longest uploads are those of device 'rpi4b'" in str(err.value)
    assert plan_exact(inst.with_uplink(needed * 1e6 * 1.001)).step_time_s <= target
    assert plan_exact(inst.with_uplink(needed * 1e6 * 0.99)).step_time_s > target


def test_target_only_a_higher_cap_meets_names_the_capped_device():
    """A cap is a device's top rate: a larger shared uplink cannot lift it, and the message says so."""
    inst = build_instance(
        CUTS,
        ["rpi4b", "jetson_gpu"],
        [16, 16],
        catalog=CATALOG,
        server_device=CATALOG["vm"],
        uplink_mbps=100.0,
        share_cap_mbps={"rpi4b": 0.5},
    )
    assert inst.with_uplink(200e6).share_cap[0] == pytest.approx(inst.share_cap[0] / 2)  # same 0.5 Mbit/s
    plan = plan_exact(inst)
    with pytest.raises(PlanningError, match="no shared uplink meets it: the uplink caps of 'rpi4b'"):
        check_target(inst, plan, plan.step_time_s * 0.9)


def test_target_below_the_compute_floor_says_no_uplink_helps():
    inst = build_instance(
        CUTS, ["rpi4b"] * 2, [64] * 2, catalog=CATALOG, server_device=CATALOG["vm"], uplink_mbps=100.0
    )
    plan = plan_exact(inst)
    with pytest.raises(PlanningError, match="even an unlimited uplink"):
        check_target(inst, plan, plan.phases.download_backward[0] * 0.5)
    check_target(inst, plan, plan.step_time_s * 1.01)  # a reachable target passes


def test_pareto_front_is_non_dominated_and_contains_the_fastest_plan():
    inst = build_instance(
        CUTS,
        ["rpi4b", "jetson_gpu", "jetson_cpu"],
        [8, 8, 8],
        catalog=CATALOG,
        server_device=CATALOG["vm"],
        uplink_mbps=20.0,
    )
    front = pareto_front(inst, points=8)
    steps = [p.step_time_s for p in front.plans]
    energies = [p.energy_j for p in front.plans]
    assert steps == sorted(steps) and energies == sorted(energies, reverse=True)
    assert steps[0] == pytest.approx(plan_exact(inst).step_time_s, rel=1e-9)
    assert front.chosen.step_time_s <= steps[0] * 1.1 + 1e-12
    assert "%" in front.explanation or "fastest plan" in front.explanation
    for plan in front.plans:
        assert (inst.count * plan.shares).sum() <= 1 + 1e-9


def test_pareto_budget_points_are_epsilon_constraint_optima_without_shared_uplink():
    """Without a shared uplink energy depends on the cuts only: every front point must be the fastest
    cut combination within its energy, which a direct enumeration confirms."""
    import itertools

    from psl_core.planner import best_shares, step_energy

    inst = build_instance(
        CUTS,
        ["rpi4b", "jetson_gpu"],
        [16, 4],
        catalog=CATALOG,
        server_device=CATALOG["vm"],
        uplink_mbps=None,
    )
    front = pareto_front(inst, points=6)
    combos = np.array(list(itertools.product(range(CUTS.num_cuts), repeat=2)))
    steps = best_shares(inst, combos)[0]
    energy = step_energy(inst, combos)
    for plan in front.plans:
        fits = energy <= plan.energy_j * (1 + 1e-12)
        assert plan.step_time_s == pytest.approx(steps[fits].min(), rel=1e-12)
