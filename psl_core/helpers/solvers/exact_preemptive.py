"""Exact preemptive model: time-indexed CP-SAT (the paper's slotted formulation), small instances.

Time is cut into slots of ``slot_ms`` (the instance's own slot when it has one, so nothing is
rounded; else the makespan of the hint / ``max_slots``). Every duration and release is rounded DOWN
to whole slots, which makes the model a relaxation of the continuous preemptive problem: with
integer data some optimal preemptive schedule switches tasks only at whole slots (it is the
priority schedule of its own completion order, whose events are all integers), and shrinking data
cannot lengthen the optimum. So the model's bound times the slot is a valid lower bound.

Variables: helper choice y[j,h]; a[j,h,t] / b[j,h,t] = slot t of helper h runs client j's forward /
backward task. The model's task completion order becomes the priority order of a preemptive
schedule on the true (unrounded) data, which is what is returned.
"""

from __future__ import annotations

import time

import numpy as np

from psl_core.helpers.bounds import chain_bound, floor_units, memory_units
from psl_core.helpers.instance import (
    HelperInputError,
    HelperInstance,
    Schedule,
    memory_fits,
    schedule_makespan,
)
from psl_core.helpers.schedule_model import assemble
from psl_core.helpers.sequencing import batch_priority_schedule
from psl_core.helpers.solvers.common import SolveResult, proof_status

#: The model has about K·H·T Booleans per task kind; beyond this many it is refused.
MAX_BOOLEANS = 60_000


def priority_schedule(instance: HelperInstance, assignment: np.ndarray, rank: np.ndarray) -> Schedule:
    """Preemptive schedule on the true data from a per-task rank (K, 2): lower rank runs first."""
    frags = []
    for h in range(instance.num_helpers):
        clients = np.flatnonzero(assignment == h)
        if len(clients) == 0:
            frags.append({})
            continue
        n = len(clients)
        prio = -np.concatenate([rank[clients, 0], rank[clients, 1]])[None, :].astype(float)
        members = clients[None, :]
        _, _, _, pieces = batch_priority_schedule(
            instance, members, np.ones_like(members, bool), [h], prio, True
        )
        frags.append({int(j): (tuple(pieces[0][i]), tuple(pieces[0][n + i])) for i, j in enumerate(clients)})
    return assemble(instance, frags)


def solve_exact_preemptive(
    instance: HelperInstance,
    seed: int = 0,
    dtime: float = 20.0,
    num_workers: int = 1,
    hint: Schedule | None = None,
    time_limit_s: float | None = None,
    slot_ms: float | None = None,
    max_slots: int = 400,
    **_: object,
) -> SolveResult:
    """Time-indexed CP-SAT for the preemptive variant (module docstring)."""
    from ortools.sat.python import cp_model

    t0 = time.perf_counter()
    if hint is None:
        from psl_core.helpers.solvers.local_search import solve_local_search

        hint = solve_local_search(instance, "preemptive", seed=seed).schedule
    ub = schedule_makespan(instance, hint)
    slot = float(slot_ms or instance.meta.get("slot_ms") or ub / max_slots)
    k, h_count = instance.num_clients, instance.num_helpers
    r, pf, g, pb, q = (
        floor_units(getattr(instance, n), slot) for n in ("release", "p_fwd", "gap", "p_bwd", "tail")
    )
    horizon = int(np.floor(ub / slot * (1 + 1e-12) + 1e-9))  # the rounded optimum is at most ub / slot
    if k * h_count * horizon * 2 > MAX_BOOLEANS:
        raise HelperInputError(
            f"the time-indexed preemptive model would need {k * h_count * horizon * 2} Booleans "
            f"(K={k}, H={h_count}, {horizon} slots of {slot:.3g} ms); use fewer clients or a longer slot_ms"
        )
    dem, cap = memory_units(instance)
    fits = memory_fits(instance.mem_demand[:, None], instance.mem_capacity[None, :])
    m = cp_model.CpModel()
    cmax = m.new_int_var(0, horizon, "cmax")
    fend = [m.new_int_var(0, horizon, f"F{j}") for j in range(k)]
    bend = [m.new_int_var(0, horizon, f"C{j}") for j in range(k)]
    y, slots_f, slots_b = {}, {}, {}
    busy: dict[tuple[int, int], list] = {}
    for j in range(k):
        lits = []
        for h in range(h_count):
            if not fits[j, h] or r[j, h] + pf[j, h] + g[j, h] + pb[j, h] + q[j, h] > horizon:
                continue
            lit = y[j, h] = m.new_bool_var(f"y{j}_{h}")
            lits.append(lit)
            fa = [m.new_bool_var(f"a{j}_{h}_{t}") for t in range(r[j, h], horizon)]
            fb_lo = r[j, h] + pf[j, h] + g[j, h]
            fb = [m.new_bool_var(f"b{j}_{h}_{t}") for t in range(fb_lo, horizon - q[j, h])]
            m.add(sum(fa) == int(pf[j, h]) * lit)
            m.add(sum(fb) == int(pb[j, h]) * lit)
            for t, v in zip(range(r[j, h], horizon), fa):
                m.add(fend[j] >= t + 1).only_enforce_if(v)
                busy.setdefault((h, t), []).append(v)
            for t, v in zip(range(fb_lo, horizon - q[j, h]), fb):
                m.add(fend[j] + int(g[j, h]) <= t).only_enforce_if(v)
                m.add(bend[j] >= t + 1).only_enforce_if(v)
                busy.setdefault((h, t), []).append(v)
            m.add(fend[j] >= int(r[j, h] + pf[j, h])).only_enforce_if(lit)
            m.add(bend[j] >= fend[j] + int(g[j, h] + pb[j, h])).only_enforce_if(lit)
            m.add(cmax >= bend[j] + int(q[j, h])).only_enforce_if(lit)
            slots_f[j, h], slots_b[j, h] = fa, fb
        if not lits:
            raise HelperInputError(
                f"client {j} fits on no helper within the hint's makespan; check the instance"
            )
        m.add_exactly_one(lits)
    for lits in busy.values():
        m.add_at_most_one(lits)
    for h in range(h_count):
        terms = [int(dem[j]) * y[j, h] for j in range(k) if (j, h) in y]
        if terms:
            m.add(sum(terms) <= int(cap[h]))
    m.minimize(cmax)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = int(num_workers)
    solver.parameters.random_seed = int(seed)
    solver.parameters.max_deterministic_time = float(dtime)
    if time_limit_s is not None:
        solver.parameters.max_time_in_seconds = float(time_limit_s)
    code = solver.solve(m)
    if code == cp_model.INFEASIBLE:
        raise HelperInputError(
            "no assignment of clients to helpers fits the helpers' memory; give helpers more memory"
        )
    best, best_val = hint, ub
    if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        assign = np.array(
            [next(h for h in range(h_count) if (j, h) in y and solver.value(y[j, h])) for j in range(k)]
        )
        done = np.array([[solver.value(fend[j]), solver.value(bend[j])] for j in range(k)], dtype=float)
        rank = np.argsort(
            np.argsort(np.stack([done[:, 0] * 2, done[:, 1] * 2 + 1], axis=1).ravel(), kind="stable")
        )
        sched = priority_schedule(instance, assign, rank.reshape(k, 2))
        val = schedule_makespan(instance, sched)
        if val < best_val:
            best, best_val = sched, val
    bound = max(chain_bound(instance), float(solver.best_objective_bound) * slot)
    status = proof_status(best_val, bound)
    if time_limit_s is not None and status == "FEASIBLE":
        status += " (wall-clock cap)"
    return SolveResult(
        "exact", "preemptive", best, best_val, time.perf_counter() - t0, lower_bound=min(bound, best_val),
        status=status, stats={"cpsat_status": solver.status_name(code), "slot_ms": slot, "slots": horizon},
    )  # fmt: skip
