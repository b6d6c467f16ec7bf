"""Our method: assignment local search with fast per-helper list schedules (not in the paper).

The makespan is the largest per-helper makespan, so every step works on the critical helper: try
moving each of its clients to every other helper with memory left, and (when no move helps) swapping
one of its clients with a client of another helper. All candidate client sets are scheduled in one
vectorised batch (``batch_list_schedule``), each with the better of two list rules. A step is taken
only if both changed helpers end strictly below the old critical value, so the sorted vector of helper
makespans decreases lexicographically and the search cannot cycle. It starts from the better of the
balanced-greedy and decomposition assignments, and the final assignment is scheduled helper by helper
with the best of the list rules and the paper's preemptive schedule; if the decomposition's own
solution is still better it is returned, so the result is never worse than the decomposition.
"""

from __future__ import annotations

import time

import numpy as np

from psl_core.helpers.instance import HelperInstance
from psl_core.helpers.solvers.common import SolveResult, best_schedule
from psl_core.helpers.solvers.decomposition import solve_decomposition
from psl_core.helpers.solvers.greedy import balanced_assignment
from psl_core.helpers.solvers.sequencing import LIST_RULES, batch_list_schedule, helper_groups, pad_groups


def _eval_sets(
    instance: HelperInstance, members: np.ndarray, mask: np.ndarray, helpers: np.ndarray
) -> np.ndarray:
    """Best per-row makespan over the list rules."""
    return np.min([batch_list_schedule(instance, members, mask, helpers, r)[2] for r in LIST_RULES], axis=0)


def _all_values(instance: HelperInstance, assignment: np.ndarray) -> np.ndarray:
    members, mask = pad_groups(helper_groups(assignment, instance.num_helpers))
    return _eval_sets(instance, members, mask, np.arange(instance.num_helpers))


def _best_move(instance, assign, crit, free):
    """Best relocation of one client of ``crit``: (new pair max, client, target) or None."""
    h_count = instance.num_helpers
    groups = helper_groups(assign, h_count)
    s = groups[crit]
    n = len(s)
    if n == 0 or h_count == 1:
        return None
    rem = _eval_sets(instance, np.tile(s, (n, 1)), ~np.eye(n, dtype=bool), np.full(n, crit))
    others = np.array([o for o in range(h_count) if o != crit])
    ok = free[others][None, :] >= instance.mem_demand[s][:, None] - 1e-9  # (n, H-1)
    jj, oo = np.nonzero(ok)
    if len(jj) == 0:
        return None
    padded, pmask = pad_groups(groups)
    tgt = others[oo]
    members = np.concatenate([padded[tgt], s[jj][:, None]], axis=1)
    mask = np.concatenate([pmask[tgt], np.ones((len(jj), 1), dtype=bool)], axis=1)
    ins = _eval_sets(instance, members, mask, tgt)
    new = np.maximum(rem[jj], ins)
    b = int(np.argmin(new))
    return new[b], int(s[jj[b]]), int(tgt[b])


def _best_swap(instance, assign, crit, free, rng, max_candidates):
    """Best exchange of a client of ``crit`` with a client elsewhere: (new pair max, j, k) or None."""
    groups = helper_groups(assign, instance.num_helpers)
    s = groups[crit]
    outside = np.flatnonzero(assign != crit)
    if len(s) == 0 or len(outside) == 0:
        return None
    jj, kk = np.meshgrid(np.arange(len(s)), outside, indexing="ij")
    jj, kk = jj.ravel(), kk.ravel()
    d = instance.mem_demand
    ok = (free[crit] + d[s[jj]] >= d[kk] - 1e-9) & (free[assign[kk]] + d[kk] >= d[s[jj]] - 1e-9)
    jj, kk = jj[ok], kk[ok]
    if len(jj) > max_candidates:
        keep = rng.choice(len(jj), size=max_candidates, replace=False)
        jj, kk = jj[keep], kk[keep]
    if len(jj) == 0:
        return None
    m1 = np.tile(s, (len(jj), 1))
    m1[np.arange(len(jj)), jj] = kk
    v1 = _eval_sets(instance, m1, np.ones_like(m1, dtype=bool), np.full(len(jj), crit))
    padded, pmask = pad_groups(groups)
    o = assign[kk]
    m2 = padded[o].copy()
    m2[m2 == kk[:, None]] = -1  # mark k's slot (client ids are unique within a helper)
    m2 = np.where((m2 == -1) & pmask[o], s[jj][:, None], np.maximum(m2, 0))
    v2 = _eval_sets(instance, m2, pmask[o], o)
    new = np.maximum(v1, v2)
    b = int(np.argmin(new))
    return new[b], int(s[jj[b]]), int(kk[b])


def solve_local_search(
    instance: HelperInstance,
    seed: int = 0,
    time_limit_s: float = 5.0,
    max_swap_candidates: int = 4000,
    **_: object,
) -> SolveResult:
    """Local search over assignments (moves, then swaps) on the critical helper; see module docstring.

    ``time_limit_s`` bounds the whole call; the search stops early enough to leave time for the final
    per-helper scheduling (measured on the warm start).
    """
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    decomp = solve_decomposition(instance)
    starts = [balanced_assignment(instance), decomp.schedule.helper.copy()]
    start_vals = [_all_values(instance, a) for a in starts]
    best_i = int(np.argmin([v.max() for v in start_vals]))
    assign, values = starts[best_i].copy(), start_vals[best_i]
    load = np.bincount(assign, weights=instance.mem_demand, minlength=instance.num_helpers)
    free = instance.mem_capacity - load
    steps = 0
    t_polish = time.perf_counter()
    best_schedule(instance, assign)
    deadline = t0 + time_limit_s - 2 * (time.perf_counter() - t_polish)
    while time.perf_counter() < deadline:
        crit = int(np.argmax(values))
        target = values[crit] * (1 - 1e-9)
        move = _best_move(instance, assign, crit, free)
        if move is not None and move[0] < target:
            _, j, h = move
            src = [crit, h]
            free[crit] += instance.mem_demand[j]
            free[h] -= instance.mem_demand[j]
            assign[j] = h
        else:
            swap = _best_swap(instance, assign, crit, free, rng, max_swap_candidates)
            if swap is None or swap[0] >= target:
                break
            _, j, k = swap
            h = int(assign[k])
            src = [crit, h]
            delta = instance.mem_demand[j] - instance.mem_demand[k]
            free[crit] += delta
            free[h] -= delta
            assign[j], assign[k] = h, crit
        values = values.copy()
        groups = helper_groups(assign, instance.num_helpers)
        members, mask = pad_groups([groups[x] for x in src])
        values[src] = _eval_sets(instance, members, mask, np.array(src))
        steps += 1
    sched, makespan = best_schedule(instance, assign)
    status = f"FEASIBLE ({steps} improving steps)"
    if decomp.makespan < makespan:
        sched, makespan, status = decomp.schedule, decomp.makespan, status + ", kept decomposition"
    return SolveResult("local_search", sched, makespan, time.perf_counter() - t0, status=status)
