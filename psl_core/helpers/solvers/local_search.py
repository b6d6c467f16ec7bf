"""Assignment local search with the variant's schedule model (not in the paper).

The makespan is the largest per-helper makespan, so every step works on the critical helper: try
moving each of its clients to every other helper with memory left, and (when no move helps) swapping
one of its clients with a client of another helper. All candidate client sets are valued in one
vectorised batch by ``HelperModel.values`` — the same rules that build the returned schedule, so the
reported makespan is the value the search optimised. A step is taken only if both changed helpers
end strictly below the old critical value, so the sorted vector of helper makespans decreases
lexicographically and the search cannot cycle. It starts from the better of the balanced-greedy and
decomposition assignments.

Every choice is deterministic (ties go to the lowest index; the seed is not used). The budget is a
number of improving steps (``max_steps``), the ``max_targets`` least loaded helpers as destinations
and the ``max_swap_candidates`` most promising exchanges per step — never wall-clock time: the same
instance and variant give the same schedule on any machine and under any load.
"""

from __future__ import annotations

import time

import numpy as np

from psl_core.helpers.instance import HelperInstance, check_variant, memory_fits, schedule_makespan
from psl_core.helpers.schedule_model import HelperModel, assemble
from psl_core.helpers.sequencing import helper_groups, pad_groups
from psl_core.helpers.solvers.common import SolveResult
from psl_core.helpers.solvers.decomposition import solve_decomposition
from psl_core.helpers.solvers.greedy import balanced_assignment


def _targets(values: np.ndarray, crit: int, max_targets: int) -> np.ndarray:
    """The helpers a client of ``crit`` may go to: the ``max_targets`` least loaded others."""
    others = np.array([o for o in range(len(values)) if o != crit], dtype=int)
    if len(others) > max_targets:
        others = np.sort(others[np.argsort(values[others], kind="stable")[:max_targets]])
    return others


def _best_move(model: HelperModel, assign, values, crit, free, max_targets):
    """Best relocation of one client of ``crit``: (new pair max, client, target) or None."""
    instance = model.instance
    groups = helper_groups(assign, instance.num_helpers)
    s = groups[crit]
    n = len(s)
    others = _targets(values, crit, max_targets)
    if n == 0 or len(others) == 0:
        return None
    rem = model.values(np.tile(s, (n, 1)), ~np.eye(n, dtype=bool), np.full(n, crit))
    ok = memory_fits(instance.mem_demand[s][:, None], free[others][None, :])  # (n, targets)
    jj, oo = np.nonzero(ok)
    if len(jj) == 0:
        return None
    padded, pmask = pad_groups(groups)
    tgt = others[oo]
    members = np.concatenate([padded[tgt], s[jj][:, None]], axis=1)
    mask = np.concatenate([pmask[tgt], np.ones((len(jj), 1), dtype=bool)], axis=1)
    new = np.maximum(rem[jj], model.values(members, mask, tgt))
    b = int(np.argmin(new))
    return new[b], int(s[jj[b]]), int(tgt[b])


def _best_swap(model: HelperModel, assign, values, crit, free, max_targets, max_candidates):
    """Best exchange of a client of ``crit`` with a client elsewhere: (new pair max, j, k) or None.

    Candidates are ranked by the larger of the two helpers' processing loads after the exchange
    (a cheap, deterministic surrogate); the best ``max_candidates`` are scheduled exactly.
    """
    instance = model.instance
    groups = helper_groups(assign, instance.num_helpers)
    s = groups[crit]
    others = _targets(values, crit, max_targets)
    outside = np.flatnonzero(np.isin(assign, others))
    if len(s) == 0 or len(outside) == 0:
        return None
    jj, kk = np.meshgrid(np.arange(len(s)), outside, indexing="ij")
    jj, kk = jj.ravel(), kk.ravel()
    d = instance.mem_demand
    ok = memory_fits(d[kk], free[crit] + d[s[jj]]) & memory_fits(d[s[jj]], free[assign[kk]] + d[kk])
    jj, kk = jj[ok], kk[ok]
    if len(jj) == 0:
        return None
    if len(jj) > max_candidates:
        work = instance.p_fwd + instance.p_bwd
        load = np.zeros(instance.num_helpers)
        np.add.at(load, assign, work[np.arange(instance.num_clients), assign])
        o = assign[kk]
        est = np.maximum(
            load[crit] - work[s[jj], crit] + work[kk, crit], load[o] - work[kk, o] + work[s[jj], o]
        )
        keep = np.sort(np.argsort(est, kind="stable")[:max_candidates])
        jj, kk = jj[keep], kk[keep]
    m1 = np.tile(s, (len(jj), 1))
    m1[np.arange(len(jj)), jj] = kk
    v1 = model.values(m1, np.ones_like(m1, dtype=bool), np.full(len(jj), crit))
    padded, pmask = pad_groups(groups)
    o = assign[kk]
    m2 = padded[o].copy()
    m2[m2 == kk[:, None]] = -1  # mark k's slot (client ids are unique within a helper)
    m2 = np.where((m2 == -1) & pmask[o], s[jj][:, None], np.maximum(m2, 0))
    new = np.maximum(v1, model.values(m2, pmask[o], o))
    b = int(np.argmin(new))
    return new[b], int(s[jj[b]]), int(kk[b])


def local_search_assignment(
    model: HelperModel, start: np.ndarray, max_steps: int, max_targets: int, max_swap_candidates: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Run the search from ``start``: (assignment, per-helper values, improving steps taken)."""
    instance = model.instance
    assign = np.asarray(start, dtype=int).copy()
    values = model.assignment_values(assign)
    free = instance.mem_capacity - np.bincount(
        assign, weights=instance.mem_demand, minlength=instance.num_helpers
    )
    steps = 0
    while steps < max_steps:
        crit = int(np.argmax(values))
        target = values[crit] * (1 - 1e-12)
        move = _best_move(model, assign, values, crit, free, max_targets)
        if move is not None and move[0] < target:
            _, j, h = move
            free[crit] += instance.mem_demand[j]
            free[h] -= instance.mem_demand[j]
            assign[j] = h
        else:
            swap = _best_swap(model, assign, values, crit, free, max_targets, max_swap_candidates)
            if swap is None or swap[0] >= target:
                break
            _, j, k = swap
            h = int(assign[k])
            delta = instance.mem_demand[j] - instance.mem_demand[k]
            free[crit] += delta
            free[h] -= delta
            assign[j], assign[k] = h, crit
        groups = helper_groups(assign, instance.num_helpers)
        members, mask = pad_groups([groups[crit], groups[h]])
        values = values.copy()
        values[[crit, h]] = model.values(members, mask, np.array([crit, h]))
        steps += 1
    return assign, values, steps


def solve_local_search(
    instance: HelperInstance,
    variant: str = "non_preemptive",
    seed: int = 0,
    max_steps: int = 2000,
    max_targets: int = 12,
    max_swap_candidates: int = 600,
    **_: object,
) -> SolveResult:
    """Local search over assignments (moves, then swaps) on the critical helper; see module docstring."""
    check_variant(variant)
    t0 = time.perf_counter()
    model = HelperModel(instance, variant)
    starts = [balanced_assignment(instance), solve_decomposition(instance, variant).schedule.helper]
    start = min(starts, key=lambda a: model.assignment_values(a).max())
    assign, _, steps = local_search_assignment(model, start, max_steps, max_targets, max_swap_candidates)
    h = instance.num_helpers
    fragments, _ = model.fragments(helper_groups(assign, h), np.arange(h))
    sched = assemble(instance, fragments)
    return SolveResult(
        "local_search", variant, sched, schedule_makespan(instance, sched), time.perf_counter() - t0,
        status=f"FEASIBLE ({steps} improving steps)", stats={"steps": steps},
    )  # fmt: skip
