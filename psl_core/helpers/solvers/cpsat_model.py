"""The non-preemptive CP-SAT model, for the whole instance (exact) or a few helpers (LNS moves).

Per (client, helper) pair an optional forward and backward interval, one NoOverlap per helper, a
memory knapsack per helper, and the makespan. Every time is rounded DOWN to integer units
(``psl_core.helpers.bounds``), which makes the model a relaxation: the true optimum, rounded down,
is feasible in it, so CP-SAT's bound times the unit is a valid lower bound. A model solution is
turned back into true milliseconds by keeping its assignment and per-helper task order and
retiming every task as early as that order allows (``HelperModel.retime_sequence``): the returned
schedule is judged in true milliseconds, never in rounded units.

Deterministic: one worker by default, a deterministic-time budget and a fixed random seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psl_core.helpers.bounds import floor_units, task_jobs
from psl_core.helpers.instance import HelperInstance, memory_fits
from psl_core.helpers.schedule_model import Fragment, HelperModel


@dataclass
class SubResult:
    """Outcome of one CP-SAT solve: status name, per-helper task orders (or None) and the bound."""

    status: str
    sequences: dict[int, list[tuple[str, int]]] | None
    bound_units: float
    objective_units: float | None


def hint_times(model: HelperModel, h: int, fragment: Fragment) -> dict[int, tuple[float, float]]:
    """Non-preemptive (fwd start, bwd start) of a fragment's clients, for hinting CP-SAT.

    A preemptive fragment is first turned into its non-preemptive retiming (same task order).
    """
    from psl_core.helpers.schedule_model import fragment_sequence

    if any(len(f) > 1 or len(b) > 1 for f, b in fragment.values()):
        fragment, _ = model.retime_sequence(h, fragment_sequence(fragment))
    return {j: (f[0][0], b[0][0]) for j, (f, b) in fragment.items()}


def solve_cpsat(
    instance: HelperInstance,
    clients: np.ndarray,
    helpers: np.ndarray,
    capacity_units: np.ndarray,
    demand_units: np.ndarray,
    unit: float,
    upper_bound_units: int,
    hint: dict[int, tuple[int, float, float]] | None = None,
    cuts: list[tuple[int, float, float]] = (),
    dtime: float = 1.0,
    seed: int = 0,
    num_workers: int = 1,
    time_limit_s: float | None = None,
    interleave: bool = False,
    fixed: dict[int, int] | None = None,
) -> SubResult:
    """Solve the model on ``clients`` x ``helpers`` (module docstring).

    ``capacity_units[i]`` is the memory left on ``helpers[i]`` for these clients; ``hint[j]`` =
    (helper, fwd start ms, bwd start ms) of a feasible non-preemptive schedule; ``cuts`` are subset
    cuts (helper, a, b) from ``psl_core.helpers.bounds`` that strengthen the LP bound.
    """
    from ortools.sat.python import cp_model

    r, pf, g, pb, q = (
        floor_units(getattr(instance, n), unit) for n in ("release", "p_fwd", "gap", "p_bwd", "tail")
    )
    ub = int(upper_bound_units)
    m = cp_model.CpModel()
    cmax = m.new_int_var(0, ub, "cmax")
    x, fs, bs = {}, {}, {}
    per_helper: dict[int, list] = {int(h): [] for h in helpers}
    fits_alone = memory_fits(instance.mem_demand[:, None], instance.mem_capacity[None, :])
    for j in clients:
        j = int(j)
        lits = []
        for i, h in enumerate(helpers):
            h = int(h)
            chain = r[j, h] + pf[j, h] + g[j, h] + pb[j, h] + q[j, h]
            if not fits_alone[j, h] or demand_units[j] > capacity_units[i] or chain > ub:
                continue
            if fixed is not None and fixed.get(j, h) != h:
                continue
            lit = m.new_bool_var(f"x{j}_{h}")
            f = m.new_int_var(int(r[j, h]), ub - int(pf[j, h] + g[j, h] + pb[j, h] + q[j, h]), f"f{j}_{h}")
            b = m.new_int_var(int(r[j, h] + pf[j, h] + g[j, h]), ub - int(pb[j, h] + q[j, h]), f"b{j}_{h}")
            per_helper[h].append(m.new_optional_fixed_size_interval_var(f, int(pf[j, h]), lit, f"F{j}_{h}"))
            per_helper[h].append(m.new_optional_fixed_size_interval_var(b, int(pb[j, h]), lit, f"B{j}_{h}"))
            m.add(b >= f + int(pf[j, h] + g[j, h])).only_enforce_if(lit)
            m.add(cmax >= b + int(pb[j, h] + q[j, h])).only_enforce_if(lit)
            x[j, h], fs[j, h], bs[j, h] = lit, f, b
            lits.append(lit)
        if not lits:
            return SubResult("INFEASIBLE", None, float("inf"), None)
        m.add_exactly_one(lits)
    for i, h in enumerate(helpers):
        h = int(h)
        m.add_no_overlap(per_helper[h])
        terms = [(int(demand_units[j]), x[j, h]) for j in clients if (int(j), h) in x]
        if terms:
            m.add(sum(c * v for c, v in terms) <= int(capacity_units[i]))
    for h, a, b_thr in cuts:  # subset cuts: valid for any schedule, they only tighten the LP
        if h not in per_helper:
            continue
        rel, proc, follow = task_jobs(instance, np.asarray(clients, dtype=int), h)
        n = len(clients)
        inside = (rel >= a) & (follow >= b_thr)
        w = floor_units(np.where(inside[:n], proc[:n], 0.0) + np.where(inside[n:], proc[n:], 0.0), unit)
        expr = [int(w[i]) * x[int(j), h] for i, j in enumerate(clients) if (int(j), h) in x and w[i] > 0]
        if expr:
            m.add(cmax >= int(floor_units(a, unit) + floor_units(b_thr, unit)) + sum(expr))
    m.minimize(cmax)
    if hint:
        lows_f = {key: (var, int(r[key])) for key, var in fs.items()}
        lows_b = {key: (var, int(r[key] + pf[key] + g[key])) for key, var in bs.items()}
        _add_hint(m, hint, x, lows_f, lows_b, cmax, unit, instance)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = int(num_workers)
    solver.parameters.random_seed = int(seed)
    solver.parameters.max_deterministic_time = float(dtime)
    if interleave:  # CP-SAT's portfolio (LNS workers included), interleaved deterministically
        solver.parameters.interleave_search = True
    if time_limit_s is not None:
        solver.parameters.max_time_in_seconds = float(time_limit_s)
    code = solver.solve(m)
    name = solver.status_name(code)
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return SubResult(
            name,
            None,
            float(solver.best_objective_bound) if code != cp_model.INFEASIBLE else float("inf"),
            None,
        )
    sequences: dict[int, list[tuple[str, int]]] = {}
    for h in per_helper:
        tasks = []
        for (j, hh), lit in x.items():
            if hh == h and solver.value(lit):
                tasks.append((solver.value(fs[j, h]), 0, j, "f"))
                tasks.append((solver.value(bs[j, h]), 1, j, "b"))
        sequences[h] = [(kind, j) for _, _, j, kind in sorted(tasks)]
    return SubResult(name, sequences, float(solver.best_objective_bound), float(solver.objective_value))


def _add_hint(m, hint, x, fs, bs, cmax, unit, instance) -> None:
    """A complete hint: the feasible schedule's times rounded down stay feasible in the model."""
    top = 0
    for (j, h), lit in x.items():
        hh, f_ms, b_ms = hint[j]
        on = hh == h
        m.add_hint(lit, on)
        if on:
            f, b = int(floor_units(f_ms, unit)), int(floor_units(b_ms, unit))
            f, b = max(f, fs[j, h][1]), max(b, bs[j, h][1])
            m.add_hint(fs[j, h][0], f)
            m.add_hint(bs[j, h][0], b)
            end = b + int(floor_units(instance.p_bwd[j, h], unit) + floor_units(instance.tail[j, h], unit))
            top = max(top, end)
        else:
            m.add_hint(fs[j, h][0], fs[j, h][1])
            m.add_hint(bs[j, h][0], bs[j, h][1])
    m.add_hint(cmax, top)
