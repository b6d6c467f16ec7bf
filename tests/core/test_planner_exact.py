"""The exact split planner against an independent brute force on small random instances.

The brute force below is written from the time model's definition, not from the planner's code:
it tries every combination of cuts, and for each one finds the best uplink shares by a ternary
search over the forward-phase deadline with a bisection for the smallest sync deadline (the
planner uses golden section and Newton's method). Both must agree to 1e-9 relative.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from psl_core.planner import (
    CutCosts,
    PlanningInstance,
    evaluate,
    plan_alternating,
    plan_exact,
    plan_one_cut,
    plan_per_device,
)


def random_instance(rng, classes: int, cuts: int, *, shared: bool, caps: bool) -> PlanningInstance:
    client_flops = np.sort(rng.uniform(0, 1e9, cuts))
    total = client_flops[-1] * rng.uniform(1.0, 1.5)
    cost = CutCosts(
        cut=np.arange(1, cuts + 1),
        name=tuple(f"block{i}" for i in range(cuts)),
        client_flops=client_flops,
        server_flops=total - client_flops,
        bytes_up=rng.uniform(1e3, 1e5, cuts),
        bytes_down=rng.uniform(1e3, 1e5, cuts),
        client_param_bytes=np.sort(rng.uniform(0, 1e6, cuts)) * (rng.uniform() < 0.9),
        client_activation_bytes=rng.uniform(1e3, 1e5, cuts),
        full_model_flops=total,
        full_model_param_bytes=2e6,
        full_model_activation_bytes=1e6,
    )
    count = rng.integers(1, 4, classes).astype(float)
    samples = rng.integers(1, 9, classes).astype(float)
    cap = np.where(rng.uniform(size=classes) < 0.4, rng.uniform(0.05, 1, classes), np.inf)
    return PlanningInstance(
        cuts=cost,
        label=tuple(f"class{g}" for g in range(classes)),
        device_id=tuple(f"dev{g}" for g in range(classes)),
        count=count,
        samples=samples,
        total_samples=samples * count * rng.uniform(0.4, 1.0, classes).clip(1 / count),
        speed=rng.uniform(1e9, 5e10, classes),
        up_bps=rng.uniform(1e6, 1e8, classes),
        down_bps=rng.uniform(1e6, 1e8, classes),
        latency_s=rng.uniform(0, 0.01, classes),
        memory_bytes=np.full(classes, 1e15),
        power_busy_w=np.ones(classes),
        power_radio_w=np.ones(classes),
        share_cap=cap if caps else np.full(classes, np.inf),
        server_speed=rng.uniform(5e9, 1e11),
        uplink_bps=rng.uniform(1e6, 1e8) if shared else None,
    )


def brute_force(inst: PlanningInstance) -> float:
    """min over every cut combination of the step time with the best shares (independent code)."""
    combos = np.array(list(itertools.product(range(inst.cuts.num_cuts), repeat=inst.num_classes)))
    c, b = inst.cuts, inst.samples
    forward = b * c.client_flops[combos] / inst.speed
    a = forward + inst.latency_s
    backward_phase = (b * c.bytes_down[combos] * 8 / inst.down_bps + inst.latency_s + 2 * forward).max(axis=1)
    params = c.client_param_bytes[combos]
    y = np.where(params > 0, params * 8 / inst.down_bps + 2 * inst.latency_s, 0.0)
    server = 3 * (inst.total_samples * c.server_flops[combos]).sum(axis=1) / inst.server_speed
    if inst.uplink_bps is None:
        forward_phase = (a + b * c.bytes_up[combos] * 8 / inst.up_bps).max(axis=1)
        sync = (y + params * 8 / inst.up_bps).max(axis=1)
        return float((forward_phase + server + backward_phase + sync).min())
    w, n, cap = inst.uplink_bps, inst.count, inst.share_cap
    alpha, pi = b * c.bytes_up[combos] * 8 / w, params * 8 / w

    def used(tau_a, tau_y):  # uplink needed for the deadlines, inf where unreachable
        with np.errstate(divide="ignore", invalid="ignore"):
            xa = np.where(tau_a[:, None] > a, alpha / (tau_a[:, None] - a), np.inf)
            xy = np.where(pi > 0, np.where(tau_y[:, None] > y, pi / (tau_y[:, None] - y), np.inf), 0.0)
        x = np.maximum(xa, xy)
        x = np.where(x <= cap * (1 + 1e-13), x, np.inf)
        return (n * x).sum(axis=1)

    def smallest_sync(tau_a):
        lo = y.max(axis=1)
        hi = lo + 1.0
        for _ in range(200):  # grow until reachable (or give up: inf)
            bad = used(tau_a, hi) > 1
            if not bad.any():
                break
            hi = np.where(bad, lo + 2 * (hi - lo), hi)
        ok_hi = used(tau_a, hi) <= 1
        ok_lo = used(tau_a, lo) <= 1
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            ok = used(tau_a, mid) <= 1
            hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid)
        return np.where(ok_lo, y.max(axis=1), np.where(ok_hi, hi, np.inf))

    lo = a.max(axis=1)
    hi = lo + 1.0
    for _ in range(200):
        bad = ~np.isfinite(smallest_sync(hi))
        if not bad.any():
            break
        hi = np.where(bad, lo + 2 * (hi - lo), hi)
    hi = hi + smallest_sync(hi)
    for _ in range(80):  # ternary search; infinite values sit left of the feasible interval
        m1, m2 = lo + (hi - lo) / 3, hi - (hi - lo) / 3
        f1, f2 = m1 + smallest_sync(m1), m2 + smallest_sync(m2)
        left = np.isfinite(f1) & (f1 <= f2)
        hi, lo = np.where(left, m2, hi), np.where(left, lo, m1)
    share_time = hi + smallest_sync(hi)
    return float((share_time + server + backward_phase).min())


CASES = [
    (seed, shared, caps)
    for seed in range(5)
    for shared, caps in ((True, False), (True, True), (False, False))
]


@pytest.mark.parametrize(("seed", "shared", "caps"), CASES)
def test_exact_plan_matches_brute_force(seed, shared, caps):
    rng = np.random.default_rng([seed, shared, caps])
    inst = random_instance(rng, int(rng.integers(1, 4)), int(rng.integers(2, 5)), shared=shared, caps=caps)
    plan = plan_exact(inst)
    expected = brute_force(inst)
    assert plan.optimal
    assert plan.step_time_s == pytest.approx(expected, rel=1e-9)
    # The plan is feasible: shares fit the uplink and the caps, and its step time is what the time
    # model gives for its cuts and shares.
    if shared:
        assert (inst.count * plan.shares).sum() <= 1.0  # no tolerance: a plan never overbooks W
        assert np.all(plan.shares <= inst.share_cap * (1 + 1e-12))
    again = evaluate(inst, plan.cut_index, plan.shares).step[0]
    assert again == pytest.approx(plan.step_time_s, rel=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_no_method_beats_the_exact_plan(seed):
    rng = np.random.default_rng([seed, 99])
    inst = random_instance(rng, 3, 4, shared=True, caps=False)
    exact = plan_exact(inst)
    for plan in (plan_one_cut(inst), plan_per_device(inst), plan_alternating(inst)):
        assert plan.step_time_s >= exact.step_time_s * (1 - 1e-12)


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shared=st.booleans(),
    caps=st.booleans(),
    uplink_scale=st.sampled_from([1e-3, 1e-1, 1.0, 10.0, 1e3]),
)
def test_fuzzed_exact_plans_match_brute_force(seed, shared, caps, uplink_scale):
    """Random small instances, the uplink scaled from starved to ample: the exact plan equals the
    independent brute force, fits the uplink without tolerance, and its step time is recomputed."""
    rng = np.random.default_rng(seed)
    inst = random_instance(
        rng, int(rng.integers(1, 4)), int(rng.integers(1, 5)), shared=shared, caps=caps and shared
    )
    if shared:
        inst = inst.with_uplink(inst.uplink_bps * uplink_scale)
    plan = plan_exact(inst)
    assert plan.optimal
    assert plan.step_time_s == pytest.approx(brute_force(inst), rel=1e-9)
    if shared:
        assert (inst.count * plan.shares).sum() <= 1.0
        assert np.all(plan.shares <= inst.share_cap)
    assert evaluate(inst, plan.cut_index, plan.shares).step[0] == pytest.approx(plan.step_time_s, rel=1e-12)


def repeated_classes(inst: PlanningInstance, pattern: list[int]) -> PlanningInstance:
    """``inst`` with its classes copied per ``pattern`` (e.g. [0, 0, 1, 1]): identical classes."""
    idx = np.array(pattern)
    per_class = {
        name: getattr(inst, name)[idx]
        for name in (
            "count", "samples", "total_samples", "speed", "up_bps", "down_bps", "latency_s",
            "memory_bytes", "power_busy_w", "power_radio_w", "share_cap",
        )
    }  # fmt: skip
    return PlanningInstance(
        cuts=inst.cuts,
        label=tuple(f"copy{i} of class{g}" for i, g in enumerate(pattern)),
        device_id=tuple(inst.device_id[g] for g in pattern),
        server_speed=inst.server_speed,
        uplink_bps=inst.uplink_bps,
        **per_class,
    )


@pytest.mark.parametrize("seed", range(4))
def test_identical_classes_searched_once_still_optimal(seed):
    """Equal clients planned one by one (the per-client plans of FLS): the search keeps one order of
    their cuts; the plan still equals the brute force over every combination, which may mix cuts."""
    rng = np.random.default_rng([seed, 7])
    base = random_instance(rng, 2, 3, shared=True, caps=seed % 2 == 1)
    base = PlanningInstance(**{**{k: getattr(base, k) for k in ("cuts", "label", "device_id",
                               "samples", "speed", "up_bps", "down_bps", "latency_s", "memory_bytes",
                               "power_busy_w", "power_radio_w", "share_cap", "server_speed", "uplink_bps")},
                               "count": np.ones(2), "total_samples": base.samples.copy()})  # fmt: skip
    inst = repeated_classes(base, [0, 0, 0, 1, 1])
    plan = plan_exact(inst)
    assert plan.optimal
    assert plan.step_time_s == pytest.approx(brute_force(inst), rel=1e-9)
    assert (inst.count * plan.shares).sum() <= 1.0
