"""Step time against client energy: the Pareto front by the epsilon-constraint method.

For an energy budget epsilon the planner solves: minimise the step time over cuts and shares subject
to energy per step <= epsilon. Energy depends on the cuts (compute on the client, bytes moved) and, on
a shared uplink, on the shares too: a bigger share means less airtime, so the fastest shares are not
the most frugal ones. For fixed cuts and deadlines (tau_A, tau_Y) the least energy any feasible shares
reach is a water-filling: x_g = max(need_g, s sqrt(w_g / count_g)) with s such that the uplink is used
up (w_g: the class's radio energy at the whole of W). The set of deadlines meeting both the uplink and
the energy budget is convex, so the same golden-section search as for the fastest shares, with the
sync deadline found by bisection, solves each cut combination exactly; the front takes the best
combination for every budget (combinations are enumerated: the front is offered for instances with a
moderate number of cut combinations).

The chosen point: the least energy whose step time is within ``tolerance`` of the fastest plan.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from psl_core.planner.instance import PlanningError, PlanningInstance
from psl_core.planner.plan import Plan, best_shares, make_plan
from psl_core.planner.shares import _needs, hyperbola_root
from psl_core.planner.step_time import energy_split, phase_terms, step_energy

MAX_COMBINATIONS = 50_000
DEFAULT_POINTS = 15
DEFAULT_TOLERANCE = 0.10
_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


def water_fill_energy(floor: np.ndarray, weight: np.ndarray, count: np.ndarray, cap: np.ndarray):
    """Least sum_g weight_g / x_g with floor_g <= x_g <= cap_g and sum_g count_g x_g <= 1 ((M, G) rows).

    x_g(s) = clip(s sqrt(weight_g / count_g), floor_g, cap_g) is piecewise linear and nondecreasing in
    s; the uplink is used up at the s where sum_g count_g x_g(s) = 1, found exactly between the
    sorted breakpoints. Returns (energy (M,), shares (M, G)); energy is inf where the floors alone
    exceed the uplink.
    """
    ratio = np.sqrt(weight / count)
    top = np.maximum(cap, floor)
    with np.errstate(divide="ignore", invalid="ignore"):
        breaks = np.concatenate([floor / ratio, top / ratio], axis=1)
    breaks = np.sort(np.where(np.isfinite(breaks), breaks, np.inf), axis=1)

    def used(s):  # (M, B) uplink used at each candidate s
        x = np.clip(s[:, :, None] * ratio[:, None, :], floor[:, None, :], top[:, None, :])
        return (count * x).sum(axis=2)

    finite = np.where(np.isfinite(breaks), breaks, 0.0)
    at_breaks = used(finite)
    at_breaks = np.where(np.isfinite(breaks), at_breaks, np.inf)
    # The segment [s_i, s_{i+1}] where the use crosses 1; linear inside it.
    idx = np.clip((at_breaks <= 1.0).sum(axis=1) - 1, 0, breaks.shape[1] - 1)
    rows = np.arange(breaks.shape[0])
    s0, u0 = finite[rows, idx], at_breaks[rows, idx]
    # Right of s0 the use grows with the classes strictly between their floor and their top.
    free = (s0[:, None] * ratio >= floor * (1 - 1e-12)) & (s0[:, None] * ratio < top * (1 - 1e-12))
    slope = (count * ratio * free).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(slope > 0, s0 + (1.0 - u0) / slope, s0)
    s = np.where(u0 > 1.0, 0.0, s)  # the floors alone exceed the uplink (checked below)
    x = np.clip(s[:, None] * ratio, floor, top)
    ok = (count * floor).sum(axis=1) <= 1.0 + 1e-12
    with np.errstate(divide="ignore"):
        energy = np.where(ok, (weight / x).sum(axis=1), np.inf)
    return energy, x


_SEARCH_STEPS = 48  # golden section over tau_A and bisection over tau_Y: 1e-10 relative, ample for a front


def _fastest_within_budget(inst: PlanningInstance, cut_index: np.ndarray, budget: np.ndarray):
    """Smallest step time (M,) for the cut rows with energy <= budget, and the shares; inf if none."""
    t = phase_terms(inst, cut_index)
    fixed_energy, weight = energy_split(inst, cut_index)
    share_budget = budget - fixed_energy
    count, cap = inst.count, inst.share_cap
    zero = np.zeros_like(t.a)
    with np.errstate(divide="ignore"):
        floor_a = np.maximum(t.a.max(axis=1), (t.a + t.alpha / cap).max(axis=1))
        floor_y = np.maximum(t.y.max(axis=1), np.where(t.pi > 0, t.y + t.pi / cap, -np.inf).max(axis=1))

    def within(tau_a, tau_y):
        need = np.maximum(_needs(tau_a, t.a, t.alpha), _needs(tau_y, t.y, t.pi))
        return water_fill_energy(need, weight, count, cap)[0] <= share_budget

    def tau_y_star(tau_a):
        # The uplink alone needs tau_Y >= y_share; the energy budget may need more (bisection upwards).
        y_share = hyperbola_root(t.y, t.pi, _needs(tau_a, t.a, t.alpha), count, floor_y)
        finite = np.isfinite(y_share)
        safe = np.where(finite, y_share, floor_y)
        done = finite & within(tau_a, safe)
        hi = safe + np.maximum(np.abs(safe), 1e-9)
        for _ in range(60):
            ok = within(tau_a, hi)
            if np.all(ok | done | ~finite):
                break
            hi = np.where(ok | done, hi, safe + 2.0 * (hi - safe))
        reach = finite & ~done & within(tau_a, hi)
        lo, up = safe.copy(), hi.copy()
        for _ in range(_SEARCH_STEPS):
            mid = 0.5 * (lo + up)
            ok = within(tau_a, mid)
            up, lo = np.where(ok, mid, up), np.where(ok, lo, mid)
        return np.where(done, safe, np.where(reach, up, np.inf))

    def total(tau_a):
        return tau_a + tau_y_star(tau_a)

    low = hyperbola_root(t.a, t.alpha, zero, count, floor_a)
    # An upper end for tau_A: double past the first feasible point p; the optimum has tau_A <= F(p) - floor_y.
    probe = low + np.maximum(np.abs(low), 1e-9)
    value = total(probe)
    for _ in range(60):
        if np.all(np.isfinite(value)):
            break
        probe = np.where(np.isfinite(value), probe, low + 2.0 * (probe - low))
        value = total(probe)
    lo, hi = low, np.where(np.isfinite(value), np.maximum(value - floor_y, probe), probe)
    best_t, best_f = probe.copy(), value.copy()
    x1 = hi - _GOLDEN * (hi - lo)
    x2 = lo + _GOLDEN * (hi - lo)
    f1, f2 = total(x1), total(x2)
    for _ in range(_SEARCH_STEPS):
        for x, f in ((x1, f1), (x2, f2)):
            better = f < best_f
            best_t, best_f = np.where(better, x, best_t), np.where(better, f, best_f)
        # Infinite values lie left of the feasible interval: move right past them.
        left = np.isfinite(f1) & (f1 <= f2)
        hi = np.where(left, x2, hi)
        lo = np.where(left, lo, x1)
        new_x1 = np.where(left, hi - _GOLDEN * (hi - lo), x2)
        new_x2 = np.where(left, x1, lo + _GOLDEN * (hi - lo))
        new_f = total(np.where(left, new_x1, new_x2))
        f1, f2 = np.where(left, new_f, f2), np.where(left, f1, new_f)
        x1, x2 = new_x1, new_x2
    tau_y = tau_y_star(best_t)
    need = np.maximum(
        _needs(best_t, t.a, t.alpha), _needs(np.where(np.isfinite(tau_y), tau_y, floor_y), t.y, t.pi)
    )
    _, shares = water_fill_energy(need, weight, count, cap)
    step = best_t + tau_y + t.server + t.delta.max(axis=1)
    return np.where(np.isfinite(tau_y), step, np.inf), shares


@dataclass(frozen=True)
class ParetoFront:
    """Non-dominated plans from fastest to most frugal, and the chosen one with the reason."""

    plans: list[Plan]
    chosen: Plan
    explanation: str
    budgets: np.ndarray  # the epsilon values that were tried


def _combinations(inst: PlanningInstance) -> np.ndarray:
    options = [np.flatnonzero(inst.fits_memory[g]) for g in range(inst.num_classes)]
    total = int(np.prod([o.size for o in options], dtype=float))
    if total > MAX_COMBINATIONS:
        raise PlanningError(
            f"the energy front enumerates cut combinations: {total:,} here, more than {MAX_COMBINATIONS:,}; "
            "plan fewer client classes (merge device groups) to see it"
        )
    return np.array(list(itertools.product(*options)), dtype=np.int64)


def pareto_front(
    inst: PlanningInstance, *, points: int = DEFAULT_POINTS, tolerance: float = DEFAULT_TOLERANCE
) -> ParetoFront:
    """The step-time/energy front by the epsilon-constraint method over ``points`` energy budgets.

    Budgets run from the energy of the fastest plan down to the least energy of any plan (on a shared
    uplink the least-energy shares are slower than the fastest ones but finite).
    """
    if points < 2:
        raise PlanningError(f"the front needs at least 2 points, got {points}")
    if not tolerance >= 0:
        raise PlanningError(f"tolerance must be >= 0, got {tolerance}")
    inst.check_feasible()
    combos = _combinations(inst)
    steps, shares = best_shares(inst, combos)
    fastest_energy = step_energy(inst, combos, shares)
    fastest = int(np.argmin(steps))
    if inst.shared:
        fixed, weight = energy_split(inst, combos)
        floor, _ = water_fill_energy(np.zeros_like(weight), weight, inst.count, inst.share_cap)
        lowest = fixed + floor
    else:
        lowest = fastest_energy
    e_hi = float(fastest_energy[fastest])
    # The least energy is reached in finite time (shares proportional to sqrt(airtime energy)): aim a
    # hair above it so that the search has a feasible set to find.
    e_lo = float(lowest.min()) * (1 + 1e-9)
    budgets = np.array([e_hi]) if e_hi <= e_lo else np.linspace(e_hi, e_lo, points)
    order = np.argsort(steps, kind="stable")
    best_step = np.full(budgets.size, np.inf)
    best: list = [None] * budgets.size
    for b, eps in enumerate(budgets):  # combinations that fit the budget already at their fastest shares
        within = np.flatnonzero(fastest_energy[order] <= eps * (1 + 1e-12))
        if within.size:
            i = order[within[0]]
            best_step[b], best[b] = float(steps[i]), (combos[i], None if shares is None else shares[i])
    if inst.shared:
        _improve_with_shares(inst, combos, steps, lowest, fastest_energy, order, budgets, best_step, best)
    found = [entry for entry in best if entry is not None]
    plans = _non_dominated(inst, found)
    chosen, explanation = _choose(inst, plans, tolerance)
    return ParetoFront(plans=plans, chosen=chosen, explanation=explanation, budgets=budgets)


_CHUNK = 8


def _improve_with_shares(inst, combos, steps, lowest, fastest_energy, order, budgets, best_step, best):
    """Per budget, try the combinations that need slower shares to fit, fastest first, in chunks for all
    budgets at once, until no untried combination could beat the best step found (its fastest step
    is a lower bound)."""
    tried = np.zeros(budgets.size, dtype=int)
    for _ in range(combos.shape[0]):
        rows, row_budget, row_combo = [], [], []
        for b, eps in enumerate(budgets):
            pending = order[tried[b] :]
            candidates = pending[
                (lowest[pending] <= eps) & (fastest_energy[pending] > eps) & (steps[pending] < best_step[b])
            ][:_CHUNK]
            if candidates.size:
                last = int(np.flatnonzero(order == candidates[-1])[0])
                tried[b] = last + 1
                rows.append(np.full(candidates.size, b))
                row_combo.append(candidates)
                row_budget.append(np.full(candidates.size, eps))
        if not rows:
            return
        which, chosen_combos = np.concatenate(rows), np.concatenate(row_combo)
        values, new_shares = _fastest_within_budget(inst, combos[chosen_combos], np.concatenate(row_budget))
        for r in range(which.size):
            b = which[r]
            if values[r] < best_step[b]:
                best_step[b] = float(values[r])
                best[b] = (combos[chosen_combos[r]], new_shares[r])


def _non_dominated(inst: PlanningInstance, found) -> list[Plan]:
    candidates = [make_plan(inst, "pareto", cuts, shares) for cuts, shares in found]
    candidates.sort(key=lambda p: (p.step_time_s, p.energy_j))
    plans, lowest = [], np.inf
    for plan in candidates:
        if plan.energy_j < lowest * (1 - 1e-9):
            lowest = plan.energy_j
            plans.append(plan)
    return plans


def _choose(inst: PlanningInstance, plans: list[Plan], tolerance: float) -> tuple[Plan, str]:
    fastest = plans[0]
    limit = fastest.step_time_s * (1 + tolerance)
    chosen = min((p for p in plans if p.step_time_s <= limit), key=lambda p: p.energy_j)
    if chosen is fastest:
        text = (
            f"The fastest plan ({fastest.step_time_s:.4g} s, {fastest.energy_j:.4g} J per step) is chosen: "
            f"no plan within {100 * tolerance:.0f} % of its step time uses less energy."
        )
    else:
        slower = 100 * (chosen.step_time_s / fastest.step_time_s - 1)
        saved = 100 * (1 - chosen.energy_j / fastest.energy_j)
        moved = [
            f"{inst.label[g]} cut {int(inst.cuts.cut[fastest.cut_index[g]])}→{int(inst.cuts.cut[chosen.cut_index[g]])}"
            for g in range(inst.num_classes)
            if fastest.cut_index[g] != chosen.cut_index[g]
        ]
        how = ("; ".join(moved) + " and " if moved else "") + (
            "shares re-balanced for less airtime" if inst.shared else "the same links"
        )
        text = (
            f"Chosen: {chosen.step_time_s:.4g} s per step, {slower:.1f} % slower than the fastest plan, for "
            f"{chosen.energy_j:.4g} J per step, {saved:.1f} % less energy ({how}). Rule: the least energy "
            f"within {100 * tolerance:.0f} % of the fastest step time."
        )
    return chosen, text
