"""hsfl planning: FL/SL mode and cut per class with exact shares, against an independent brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from psl_core.planner import PlanningError
from psl_core.planner.hsfl import FL, hsfl_round_time, plan_hsfl, steps_per_round
from tests.core.test_planner_exact import random_instance


def brute_force_round(inst, steps) -> float:
    """min over modes/cuts of the best round (see ``best_round_for``)."""
    c, b = inst.cuts, inst.samples
    full_mem = 3 * c.full_model_param_bytes + np.ceil(b) * c.full_model_activation_bytes
    options = [([FL] if full_mem[g] <= inst.memory_bytes[g] else []) + list(np.flatnonzero(inst.fits_memory[g]))
               for g in range(inst.num_classes)]  # fmt: skip
    return min(best_round_for(inst, steps, np.array(modes)) for modes in itertools.product(*options))


def best_round_for(inst, steps, modes) -> float:
    """The best round of fixed modes/cuts, shares by bisection on the round R: for a target R each FL
    member needs P_model 8 / (W (R - p)); the SL members need the least total share over the split of
    R between their per-step forward phase and the end upload (ternary search on the cap-feasible
    interval)."""
    c, b, lat, w = inst.cuts, inst.samples, inst.latency_s, inst.uplink_bps
    n, cap = inst.count, inst.share_cap
    fl = modes == FL
    sl = ~fl
    ci = np.where(fl, 0, modes)
    fl_p = (
        c.full_model_param_bytes * 8 / inst.down_bps
        + 2 * lat
        + steps * 3 * b * c.full_model_flops / inst.speed
    )
    fl_q = c.full_model_param_bytes * 8 / w
    s = steps[sl].max() if sl.any() else 0
    fwd = b * c.client_flops[ci] / inst.speed
    bits = c.client_param_bytes[ci] * 8
    fixed = 0.0
    if sl.any():
        fixed = (bits / inst.down_bps + lat)[sl].max() + s * (
            3 * (inst.total_samples * c.server_flops[ci])[sl].sum() / inst.server_speed
            + (b * c.bytes_down[ci] * 8 / inst.down_bps + lat + 2 * fwd)[sl].max()
        )
    a, alpha = s * (fwd + lat), s * b * c.bytes_up[ci] * 8 / w
    e, eps = lat, bits / w

    def sl_share(budget):  # least SL share for the SL round within the budget
        if not sl.any():
            return 0.0
        left = budget - fixed
        with np.errstate(divide="ignore"):
            lo = max(a[sl].max(), (a + alpha / cap)[sl].max())
            hi = left - max(e[sl].max(), np.where(eps > 0, e + eps / cap, -np.inf)[sl].max())
        if hi <= lo:
            return np.inf

        def used(t):
            xa = np.where(t > a, alpha / np.maximum(t - a, 1e-300), np.inf)
            xe = np.where(
                eps > 0, np.where(left - t > e, eps / np.maximum(left - t - e, 1e-300), np.inf), 0.0
            )
            x = np.maximum(xa, xe)
            return np.inf if np.any(x[sl] > cap[sl] * (1 + 1e-13)) else float((n * x)[sl].sum())

        for _ in range(100):
            m1, m2 = lo + (hi - lo) / 3, hi - (hi - lo) / 3
            if used(m1) <= used(m2):
                hi = m2
            else:
                lo = m1
        return used(0.5 * (lo + hi))

    def feasible(r):
        used_fl = 0.0
        if fl.any():
            gap = r - fl_p[fl]
            if np.any(gap <= 0):
                return False
            x = fl_q / gap
            if np.any(x > cap[fl] * (1 + 1e-13)):
                return False
            used_fl = float((n[fl] * x).sum())
        return used_fl + sl_share(r) <= 1.0

    lo, hi = 0.0, 1.0
    while not feasible(hi):
        hi *= 2
    for _ in range(70):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if feasible(mid) else (mid, hi)
    return hi


@pytest.mark.parametrize("seed", range(6))
def test_hsfl_plan_matches_brute_force(seed):
    rng = np.random.default_rng([seed, 31])
    inst = random_instance(
        rng, int(rng.integers(1, 3)), int(rng.integers(1, 4)), shared=True, caps=seed % 2 == 1
    )
    steps = rng.integers(1, 6, inst.num_classes).astype(float)
    plan = plan_hsfl(inst, steps)
    assert plan.optimal
    assert plan.round_time_s == pytest.approx(brute_force_round(inst, steps), rel=1e-7)
    assert (inst.count * plan.shares).sum() <= 1 + 1e-9
    assert hsfl_round_time(inst, steps, plan.mode, plan.shares) == pytest.approx(plan.round_time_s, rel=1e-9)
    assert plan.round_time_s == pytest.approx(max(plan.fl_time_s, plan.sl_time_s), rel=1e-12)


def test_a_slow_device_goes_split_and_a_fast_one_federated():
    """A class with a tiny device trains through the cut; a fast device with a big model download
    budget trains the whole model — the planner's choice follows the devices."""
    rng = np.random.default_rng(5)
    inst = random_instance(rng, 2, 3, shared=True, caps=False)
    from psl_core.planner.instance import _replace

    inst = _replace(inst, speed=np.array([1e7, 1e13]), uplink_bps=1e9)  # class 0 crawls, class 1 flies
    plan = plan_hsfl(inst, np.array([3.0, 3.0]))
    assert plan.mode[0] != FL and plan.mode[1] == FL


def test_hsfl_refuses_without_a_shared_uplink_and_counts_steps():
    rng = np.random.default_rng(1)
    inst = random_instance(rng, 2, 2, shared=False, caps=False)
    with pytest.raises(PlanningError, match="shared uplink"):
        plan_hsfl(inst, np.array([1.0, 1.0]))
    assert list(steps_per_round([10, 0, 33], local_batch=8, local_epochs=2)) == [4.0, 0.0, 10.0]
