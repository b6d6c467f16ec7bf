"""Exact solvers: a time-limited OR-Tools CP-SAT model and brute force for tiny instances.

Both are non-preemptive (every backward task runs in one piece). CP-SAT works in integer time
units of ``resolution_ms`` (durations rounded to the nearest unit); the returned schedule keeps the
model's assignment and per-helper order and is re-timed in exact milliseconds (every task as early
as its order allows), so the checker sees true durations. The gap is CP-SAT's (obj − bound) / obj.
"""

from __future__ import annotations

import itertools
import time

import numpy as np

from psl_core.helpers.instance import HelperInputError, HelperInstance, Schedule, schedule_makespan
from psl_core.helpers.solvers.common import SolveResult


def retime(
    instance: HelperInstance, assignment: np.ndarray, sequences: list[list[tuple[str, int]]]
) -> Schedule:
    """Earliest start times for given per-helper task orders; ``sequences[h]`` = [("f"|"b", client)]."""
    k = instance.num_clients
    fwd, bwd = np.zeros(k), np.zeros(k)
    for h, seq in enumerate(sequences):
        t = 0.0
        for kind, j in seq:
            if kind == "f":
                fwd[j] = t = max(t, instance.release[j, h])
                t += instance.p_fwd[j, h]
            else:
                bwd[j] = t = max(t, fwd[j] + instance.p_fwd[j, h] + instance.gap[j, h])
                t += instance.p_bwd[j, h]
    return Schedule.non_preemptive(instance, assignment, fwd, bwd)


def _helper_best_order(instance: HelperInstance, h: int, clients: list[int]) -> tuple[float, list]:
    """Enumerate all task orders of one helper (forward before backward per client)."""
    tasks = [("f", j) for j in clients] + [("b", j) for j in clients]
    best, best_seq = (0.0, []) if not clients else (np.inf, None)
    for perm in itertools.permutations(tasks):
        seen, ok = set(), True
        for kind, j in perm:
            if kind == "b" and j not in seen:
                ok = False
                break
            seen.add(j)
        if not ok:
            continue
        t, fend, val = 0.0, {}, 0.0
        for kind, j in perm:
            if kind == "f":
                t = max(t, instance.release[j, h]) + instance.p_fwd[j, h]
                fend[j] = t
            else:
                t = max(t, fend[j] + instance.gap[j, h]) + instance.p_bwd[j, h]
                val = max(val, t + instance.tail[j, h])
        if val < best:
            best, best_seq = val, list(perm)
    return best, best_seq


def solve_brute_force(instance: HelperInstance, **_: object) -> SolveResult:
    """Optimal non-preemptive schedule by full enumeration (K <= 4 clients, H <= 2 helpers)."""
    k, h = instance.num_clients, instance.num_helpers
    if k > 4 or h > 2:
        raise HelperInputError(f"brute force is for K <= 4 and H <= 2 (got K={k}, H={h}); use method='exact'")
    t0 = time.perf_counter()
    best_val, best = np.inf, None
    for assign in itertools.product(range(h), repeat=k):
        a = np.array(assign)
        if np.any(np.bincount(a, weights=instance.mem_demand, minlength=h) > instance.mem_capacity + 1e-9):
            continue
        parts = [_helper_best_order(instance, m, [j for j in range(k) if a[j] == m]) for m in range(h)]
        val = max(p[0] for p in parts)
        if val < best_val:
            best_val, best = val, (a, [p[1] for p in parts])
    sched = retime(instance, best[0], best[1])
    return SolveResult("brute_force", sched, schedule_makespan(instance, sched), time.perf_counter() - t0, True, 0.0,
                       schedule_makespan(instance, sched), "OPTIMAL")  # fmt: skip


def solve_exact(
    instance: HelperInstance,
    time_limit_s: float = 10.0,
    resolution_ms: float = 0.01,
    num_workers: int = 2,
    hint=None,
    **_: object,
) -> SolveResult:
    """CP-SAT: optional fwd/bwd intervals per (client, helper), NoOverlap per helper, memory knapsacks.

    ``hint`` (a Schedule, e.g. from local search) warm-starts the search.
    """
    from ortools.sat.python import cp_model

    t0 = time.perf_counter()
    k, h = instance.num_clients, instance.num_helpers

    def units(x):
        return np.rint(np.asarray(x) / resolution_ms).astype(np.int64)

    r, pf, g, pb, q = (
        units(a) for a in (instance.release, instance.p_fwd, instance.gap, instance.p_bwd, instance.tail)
    )
    horizon = int(r.max() + pf.sum(0).max() + g.max() + pb.sum(0).max() + q.max() + 1)
    m = cp_model.CpModel()
    x = [[m.new_bool_var(f"x{j}_{i}") for i in range(h)] for j in range(k)]
    cmax = m.new_int_var(0, horizon, "cmax")
    fs_vars, bs_vars = {}, {}
    per_helper: list[list] = [[] for _ in range(h)]
    for j in range(k):
        m.add_exactly_one(x[j])
        for i in range(h):
            fs = m.new_int_var(int(r[j, i]), horizon, f"fs{j}_{i}")
            bs = m.new_int_var(0, horizon, f"bs{j}_{i}")
            per_helper[i].append(
                m.new_optional_fixed_size_interval_var(fs, int(pf[j, i]), x[j][i], f"F{j}_{i}")
            )
            per_helper[i].append(
                m.new_optional_fixed_size_interval_var(bs, int(pb[j, i]), x[j][i], f"B{j}_{i}")
            )
            m.add(bs >= fs + int(pf[j, i] + g[j, i])).only_enforce_if(x[j][i])
            m.add(cmax >= bs + int(pb[j, i] + q[j, i])).only_enforce_if(x[j][i])
            fs_vars[j, i], bs_vars[j, i] = fs, bs
    scale = 1000.0 / max(float(instance.mem_demand.max()), 1e-12)  # memory as integers, rounded up
    dem = np.ceil(instance.mem_demand * scale - 1e-9).astype(np.int64)
    cap = np.floor(instance.mem_capacity * scale + 1e-9).astype(np.int64)
    for i in range(h):
        m.add_no_overlap(per_helper[i])
        m.add(sum(int(dem[j]) * x[j][i] for j in range(k)) <= int(cap[i]))
    m.minimize(cmax)
    if hint is not None:
        for j in range(k):
            for i in range(h):
                m.add_hint(x[j][i], int(hint.helper[j] == i))
            m.add_hint(fs_vars[j, int(hint.helper[j])], int(np.ceil(hint.fwd_start[j] / resolution_ms)))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = float(time_limit_s)
    solver.parameters.num_workers = int(num_workers)
    code = solver.solve(m)
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        raise HelperInputError(f"CP-SAT found no schedule within {time_limit_s} s; raise time_limit_s")
    assign = np.array([next(i for i in range(h) if solver.value(x[j][i])) for j in range(k)])
    seqs = []
    for i in range(h):
        tasks = [(solver.value(fs_vars[j, i]), 0, "f", j) for j in range(k) if assign[j] == i]
        tasks += [(solver.value(bs_vars[j, i]), 1, "b", j) for j in range(k) if assign[j] == i]
        seqs.append([(kind, j) for _, _, kind, j in sorted(tasks)])
    sched = retime(instance, assign, seqs)
    makespan = schedule_makespan(instance, sched)
    bound = solver.best_objective_bound * resolution_ms
    obj = solver.objective_value
    gap = 0.0 if code == cp_model.OPTIMAL else max(0.0, (obj - solver.best_objective_bound) / max(obj, 1e-12))
    status = "OPTIMAL" if code == cp_model.OPTIMAL else "FEASIBLE"
    return SolveResult(
        "exact", sched, makespan, time.perf_counter() - t0, code == cp_model.OPTIMAL, gap, bound, status
    )
