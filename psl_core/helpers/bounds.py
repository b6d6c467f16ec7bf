"""Valid lower bounds on the optimal makespan, for both variants of the problem.

Every bound here holds for the preemptive variant, hence also for the non-preemptive one (whose
schedules are a subset). Integer models round every duration and threshold DOWN (and scale
memory so that rounding can only admit more assignments): the integer optimum is then at most the
true optimum divided by the time unit, so any bound on it, times the unit, bounds the true optimum.

- Chain bound: every client needs its whole chain (release, part-2 forward, gap, part-2 backward,
  tail) on some helper that can hold it.
- Subset (load) bound for a helper and a set S of its tasks (forward task: released at r, followed
  by gap + bwd + tail; backward task: released at r + fwd + gap, followed by its tail):
  makespan >= min release(S) + total processing(S) + min follow-up(S). For a fixed assignment the
  best subset is the preemptive Jackson value of the helper (``helper_jackson``).
- Assignment relaxation (``relaxation_bound``): over all memory-feasible assignments, the smallest
  makespan allowed by the chain bound and a family of subset cuts, solved with CP-SAT; cuts are added
  by separating the subset bound of the relaxation's own assignment (a few deterministic rounds).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from psl_core.helpers.instance import HelperInstance, memory_fits

#: Integer models use this many time units per reference makespan (rounding a chain of n tasks
#: loses < (3n + 2) units, i.e. < 1e-5 relative for n <= 300).
TIME_UNITS = 100_000_000


@dataclass
class BoundReport:
    """A lower bound (ms) and where it came from."""

    value: float
    source: str
    parts: dict[str, float] = field(default_factory=dict)


def time_unit(instance: HelperInstance, reference: float | None = None, units: int = TIME_UNITS) -> float:
    """ms per integer unit: the instance's slot length when it has one (times are whole slots, so
    nothing is rounded), else ``reference`` (a known makespan; default: a crude horizon) / ``units``."""
    slot = instance.meta.get("slot_ms")
    if slot:
        return float(slot)
    if reference is None:
        reference = float(instance.chain.max() + (instance.p_fwd + instance.p_bwd).max(1).sum())
    return max(reference, 1e-9) / units


def floor_units(values, unit: float) -> np.ndarray:
    """Durations in integer units, rounded down (a tiny relative slack absorbs float noise)."""
    return np.floor(np.asarray(values, dtype=float) / unit * (1 + 1e-12) + 1e-9).astype(np.int64)


def memory_units(instance: HelperInstance) -> tuple[np.ndarray, np.ndarray]:
    """Demands and capacities as integers such that every truly feasible assignment stays feasible.

    Demands are rounded down and capacities (with the library's tolerance) down, at a scale so fine
    (1e13 per largest capacity) that an integer-feasible assignment overshoots by < 1e-9 relative;
    callers still verify solutions with ``memory_fits``.
    """
    from psl_core.helpers.instance import MEMORY_RTOL

    scale = 1e13 / max(float(instance.mem_capacity.max()), 1e-300)
    dem = np.floor(instance.mem_demand * scale).astype(np.int64)
    cap = np.floor(instance.mem_capacity * (1 + MEMORY_RTOL) * scale).astype(np.int64)
    return dem, cap


def allowed_helpers(instance: HelperInstance) -> np.ndarray:
    """(K, H) bool: helper h could hold client j alone."""
    return memory_fits(instance.mem_demand[:, None], instance.mem_capacity[None, :])


def chain_bound(instance: HelperInstance) -> float:
    """max over clients of its shortest chain on a helper that can hold it."""
    chain = np.where(allowed_helpers(instance), instance.chain, np.inf)
    return float(chain.min(axis=1).max())


def task_jobs(instance: HelperInstance, clients: np.ndarray, h: int):
    """Release, processing and follow-up of the forward and backward tasks of ``clients`` on ``h``."""
    r, pf = instance.release[clients, h], instance.p_fwd[clients, h]
    g, pb, q = instance.gap[clients, h], instance.p_bwd[clients, h], instance.tail[clients, h]
    rel = np.concatenate([r, r + pf + g])
    proc = np.concatenate([pf, pb])
    follow = np.concatenate([g + pb + q, q])
    return rel, proc, follow


def best_subset(rel: np.ndarray, proc: np.ndarray, follow: np.ndarray) -> tuple[float, float, float]:
    """max over thresholds (a, b) of a + b + Σ{proc : rel >= a, follow >= b}: (value, a, b).

    This is the optimum of the preemptive one-machine relaxation with release dates and tails
    (every job subset's bound is dominated by the threshold set of its own minima).
    """
    if len(rel) == 0:
        return 0.0, 0.0, 0.0
    order = np.argsort(-follow, kind="stable")
    rel, proc, follow = rel[order], proc[order], follow[order]
    a_values = np.unique(rel)
    inside = rel[None, :] >= a_values[:, None]  # (A, n), jobs by decreasing follow-up
    cum = np.cumsum(np.where(inside, proc[None, :], 0.0), axis=1)
    value = np.where(inside, a_values[:, None] + cum + follow[None, :], -np.inf)
    ia, ib = np.unravel_index(np.argmax(value), value.shape)
    return float(value[ia, ib]), float(a_values[ia]), float(follow[ib])


def helper_jackson(instance: HelperInstance, assignment: np.ndarray) -> np.ndarray:
    """(H,) subset bound of each helper for a fixed assignment (a bound on that assignment only)."""
    out = np.zeros(instance.num_helpers)
    for h in range(instance.num_helpers):
        clients = np.flatnonzero(assignment == h)
        out[h] = best_subset(*task_jobs(instance, clients, h))[0]
    return out


def relaxation_bound(
    instance: HelperInstance,
    upper_bound: float | None = None,
    rounds: int = 8,
    dtime_per_round: float = 1.0,
    seed: int = 0,
    cuts: list[tuple[int, float, float]] = (),
) -> tuple[float, list[tuple[int, float, float]]]:
    """Assignment relaxation (module docstring) solved by CP-SAT; returns (bound ms, cuts used).

    Deterministic: one worker, deterministic time per round, fixed seed. ``upper_bound`` (a known
    makespan) only prunes assignments that could not be optimal, so the bound stays valid; when no
    assignment is left the bound is ``upper_bound`` itself (that makespan is then proven optimal).
    ``cuts`` (from an earlier call) continue that separation: every subset cut is valid for any
    schedule, so more rounds can only raise the bound.
    """
    from ortools.sat.python import cp_model

    k, h = instance.num_clients, instance.num_helpers
    unit = time_unit(instance, upper_bound)
    allowed = allowed_helpers(instance)
    chain_u = floor_units(instance.chain, unit)
    ub_u = None if upper_bound is None else int(np.ceil(upper_bound / unit)) + 1
    dem, cap = memory_units(instance)
    cuts = list(cuts)
    for hh in range(h):  # start with the plain load cut: everything after the earliest release
        rel, _, follow = task_jobs(instance, np.arange(k), hh)
        if (load := (hh, float(rel.min()), float(follow.min()))) not in cuts:
            cuts.append(load)
    best = chain_bound(instance)
    for round_no in range(rounds):
        m = cp_model.CpModel()
        top = int(
            ub_u
            if ub_u is not None
            else chain_u.max() + floor_units(instance.p_fwd + instance.p_bwd, unit).sum()
        )
        cmax = m.new_int_var(0, top, "cmax")
        y = {}
        for j in range(k):
            lits = []
            for hh in range(h):
                if not allowed[j, hh] or (ub_u is not None and chain_u[j, hh] > ub_u):
                    continue
                y[j, hh] = m.new_bool_var(f"y{j}_{hh}")
                lits.append(y[j, hh])
                m.add(cmax >= int(chain_u[j, hh])).only_enforce_if(y[j, hh])
            if not lits:
                return best, cuts
            m.add_exactly_one(lits)
        for hh in range(h):
            terms = [(int(dem[j]), y[j, hh]) for j in range(k) if (j, hh) in y]
            m.add(sum(c * v for c, v in terms) <= int(cap[hh]))
        for hh, a, b in cuts:
            r, pf = instance.release[:, hh], instance.p_fwd[:, hh]
            g, pb, q = instance.gap[:, hh], instance.p_bwd[:, hh], instance.tail[:, hh]
            w = np.where((r >= a) & (g + pb + q >= b), pf, 0.0) + np.where(
                (r + pf + g >= a) & (q >= b), pb, 0.0
            )
            wu = floor_units(w, unit)
            const = int(floor_units(a, unit) + floor_units(b, unit))
            m.add(cmax >= const + sum(int(wu[j]) * y[j, hh] for j in range(k) if (j, hh) in y and wu[j] > 0))
        m.minimize(cmax)
        solver = cp_model.CpSolver()
        solver.parameters.num_workers = 1
        solver.parameters.random_seed = int(seed)
        solver.parameters.linearization_level = 2  # an assignment model: the LP bound is the point
        solver.parameters.max_deterministic_time = float(dtime_per_round)
        code = solver.solve(m)
        if code == cp_model.INFEASIBLE:
            if ub_u is None:
                raise ValueError("no memory-feasible assignment exists (the relaxation is infeasible)")
            # Nothing at or below the upper bound: every schedule is at least that long.
            return max(best, float(upper_bound)), cuts
        best = max(best, float(solver.best_objective_bound) * unit)
        if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE) or round_no == rounds - 1:
            break
        assign = np.array(
            [next(hh for hh in range(h) if (j, hh) in y and solver.value(y[j, hh])) for j in range(k)]
        )
        found = solver.objective_value * unit
        new = []
        for hh in range(h):
            value, a, b = best_subset(*task_jobs(instance, np.flatnonzero(assign == hh), hh))
            if value > found * (1 + 1e-9) + unit and (hh, a, b) not in cuts:
                new.append((hh, a, b))
        if not new:
            break
        cuts.extend(new)
    return best, cuts


def lower_bound(instance: HelperInstance, upper_bound: float | None = None, **relax_opts) -> BoundReport:
    """The best of the chain bound and the assignment relaxation (valid for both variants)."""
    chain = chain_bound(instance)
    relax, _ = relaxation_bound(instance, upper_bound, **relax_opts)
    parts = {"chain": chain, "relaxation": relax}
    source = max(parts, key=parts.get)
    return BoundReport(max(parts.values()), source, parts)
