"""Single-helper sequencing: given the clients of each helper, when does each task run?

Every function works on many (helper, client-set) *rows* at once, vectorised over the rows (the
Python loop is over task positions or events only). A row is ``members[b][mask[b]]`` on helper
``helpers[b]``; task ``i < m`` of a row is the forward task of member i, task ``m + i`` its backward.

- ``batch_list_schedule``: non-preemptive list schedule by a rule — ``fcfs`` (earliest arrival) or
  ``delivery`` (longest remaining path after the task: forward gap + bwd + tail, backward tail;
  Schrage's rule extended to the forward/backward chain);
- ``batch_priority_schedule``: preemptive schedule by fixed task priorities (a newly released task of
  higher priority interrupts the running one); with priorities = completion order of any feasible
  schedule it finishes every task no later than that schedule (earliest deadline first);
- ``batch_sequence_retime``: earliest start times for a fixed task order per row;
- ``decomposition_helper_schedule``: the paper's per-helper step (Schrage forward, then preemptive
  largest-tail-first backward in the time the forward tasks leave free).
"""

from __future__ import annotations

import heapq

import numpy as np

from psl_core.helpers.instance import HelperInstance

LIST_RULES = ("fcfs", "delivery")
#: Sequencing rules whose schedules are judged (and returned) per variant, best per helper.
VARIANT_RULES = {
    "non_preemptive": ("fcfs", "delivery"),
    "preemptive": ("fcfs", "delivery", "preemptive_delivery"),
}


def _row_data(instance: HelperInstance, members: np.ndarray, helpers: np.ndarray):
    hcol = np.asarray(helpers, dtype=int)[:, None]
    return tuple(
        getattr(instance, name)[members, hcol] for name in ("release", "p_fwd", "gap", "p_bwd", "tail")
    )


def batch_list_schedule(
    instance: HelperInstance,
    members: np.ndarray,
    mask: np.ndarray,
    helpers: np.ndarray,
    rule: str = "delivery",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-preemptive list schedules of B rows (see the module docstring).

    Returns (fwd_start, bwd_start, makespan): (B, m), (B, m), (B,); padded cells are NaN, an empty
    row has makespan 0.
    """
    if rule not in LIST_RULES:
        raise ValueError(f"unknown sequencing rule {rule!r}; use one of {LIST_RULES}")
    members = np.asarray(members, dtype=int)
    mask = np.asarray(mask, dtype=bool)
    bsz, m = members.shape
    r, pf, g, pb, q = _row_data(instance, members, helpers)
    inf = np.inf
    # arrival time of each task not yet run (forward i, backward m + i); inf = done or not yet known
    arr = np.concatenate([np.where(mask, r, inf), np.full((bsz, m), inf)], axis=1)
    fwd_start, bwd_start = np.full((bsz, m), np.nan), np.full((bsz, m), np.nan)
    t = np.zeros(bsz)
    rows = np.arange(bsz)
    prio = np.concatenate([g + pb + q, q], axis=1) if rule == "delivery" else None
    for _ in range(2 * m):
        nxt = arr.min(axis=1)
        active = np.isfinite(nxt)
        if not active.any():
            break
        if not active.all():
            rows_a = rows[active]
        else:
            rows_a = rows
        ta = np.maximum(t[rows_a], nxt[rows_a])
        sub = arr[rows_a]
        avail = sub <= ta[:, None]
        if prio is None:  # earliest arrival; forward before backward on ties (column order)
            pick = np.argmin(np.where(avail, sub, inf), axis=1)
        else:
            pick = np.argmax(np.where(avail, prio[rows_a], -inf), axis=1)
        arr[rows_a, pick] = inf
        is_fwd = pick < m
        rf, cf = rows_a[is_fwd], pick[is_fwd]
        rb, cb = rows_a[~is_fwd], pick[~is_fwd] - m
        fwd_start[rf, cf] = ta[is_fwd]
        t[rf] = ta[is_fwd] + pf[rf, cf]
        arr[rf, cf + m] = t[rf] + g[rf, cf]
        bwd_start[rb, cb] = ta[~is_fwd]
        t[rb] = ta[~is_fwd] + pb[rb, cb]
    done = np.where(mask, bwd_start + pb + q, -inf)
    makespan = np.maximum(done.max(axis=1), 0.0) if m else np.zeros(bsz)
    return fwd_start, bwd_start, makespan


def delivery_priorities(instance: HelperInstance, members, helpers) -> np.ndarray:
    """(B, 2m) priorities of the preemptive delivery rule: forward gap + bwd + tail, backward tail."""
    _, _, g, pb, q = _row_data(instance, np.asarray(members, dtype=int), helpers)
    return np.concatenate([g + pb + q, q], axis=1)


def batch_priority_schedule(
    instance: HelperInstance,
    members: np.ndarray,
    mask: np.ndarray,
    helpers: np.ndarray,
    priority: np.ndarray,
    want_pieces: bool = False,
):
    """Preemptive schedules of B rows by fixed task priorities (higher runs first).

    At any time the helper runs the released, unfinished task of highest priority; a task released
    later with a higher priority interrupts it. Returns (fwd_end, bwd_end, makespan) and, when
    ``want_pieces``, a list per row of {task index: [(start, end), ...]} as well.
    """
    members = np.asarray(members, dtype=int)
    mask = np.asarray(mask, dtype=bool)
    bsz, m = members.shape
    r, pf, g, pb, q = _row_data(instance, members, helpers)
    inf = np.inf
    mask2 = np.concatenate([mask, mask], axis=1)
    rem = np.where(mask2, np.concatenate([pf, pb], axis=1), 0.0)
    # release of each unfinished task (inf once finished, or while a backward waits for its forward)
    rel = np.concatenate([np.where(mask, r, inf), np.full((bsz, m), inf)], axis=1)
    left_tasks = mask2.sum(axis=1)
    end = np.full((bsz, 2 * m), np.nan)
    prio = np.asarray(priority, dtype=float)
    t = np.zeros(bsz)
    rows = np.arange(bsz)
    log = []
    while True:
        ra = rows[left_tasks > 0]
        if len(ra) == 0:
            break
        rl, pa = rel[ra], prio[ra]
        ta = np.maximum(t[ra], rl.min(axis=1))  # jump over idle time
        avail = rl <= ta[:, None]
        pick = np.argmax(np.where(avail, pa, -inf), axis=1)
        ppick = pa[np.arange(len(ra)), pick]
        arrival = np.where((rl > ta[:, None]) & (pa > ppick[:, None]), rl, inf).min(axis=1)
        left = rem[ra, pick]
        completes = ta + left <= arrival
        stop = np.where(completes, ta + left, arrival)
        if want_pieces:
            log.append((ra, pick, ta, stop))
        rem[ra, pick] = np.where(completes, 0.0, left - (stop - ta))
        t[ra] = stop
        fin_rows, fin_task, fin_t = ra[completes], pick[completes], stop[completes]
        rel[fin_rows, fin_task] = inf
        left_tasks[fin_rows] -= 1
        end[fin_rows, fin_task] = fin_t
        fwd = fin_task < m
        rel[fin_rows[fwd], fin_task[fwd] + m] = fin_t[fwd] + g[fin_rows[fwd], fin_task[fwd]]
    fwd_end, bwd_end = end[:, :m], end[:, m:]
    makespan = np.maximum(np.where(mask, bwd_end + q, -inf).max(axis=1), 0.0) if m else np.zeros(bsz)
    if not want_pieces:
        return fwd_end, bwd_end, makespan
    return fwd_end, bwd_end, makespan, _assemble_pieces(log, bsz)


def _assemble_pieces(log, bsz: int) -> list[dict[int, list[tuple[float, float]]]]:
    """Group the (row, task, start, end) log into contiguous pieces per row and task."""
    out: list[dict[int, list[tuple[float, float]]]] = [{} for _ in range(bsz)]
    if not log:
        return out
    rows = np.concatenate([e[0] for e in log])
    task = np.concatenate([e[1] for e in log])
    start = np.concatenate([e[2] for e in log])
    stop = np.concatenate([e[3] for e in log])
    order = np.lexsort((start, task, rows))
    for b, i, s, e in zip(
        rows[order].tolist(), task[order].tolist(), start[order].tolist(), stop[order].tolist()
    ):
        pieces = out[b].setdefault(i, [])
        if pieces and pieces[-1][1] == s:
            pieces[-1] = (pieces[-1][0], e)
        elif e > s or not pieces:
            pieces.append((s, e))
    return out


def batch_sequence_retime(
    instance: HelperInstance,
    members: np.ndarray,
    mask: np.ndarray,
    helpers: np.ndarray,
    order: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Earliest non-preemptive start times when each row runs its tasks in the given order.

    ``order[b]`` lists task indices (forward i < m, backward m + i) in run order, padded with -1;
    tasks of masked-out members are skipped. A backward task listed before its forward task is an
    error. Returns (fwd_start, bwd_start, makespan) like ``batch_list_schedule``.
    """
    members = np.asarray(members, dtype=int)
    mask = np.asarray(mask, dtype=bool)
    order = np.asarray(order, dtype=int)
    bsz, m = members.shape
    r, pf, g, pb, q = _row_data(instance, members, helpers)
    fwd_start, bwd_start = np.full((bsz, m), np.nan), np.full((bsz, m), np.nan)
    t = np.zeros(bsz)
    rows = np.arange(bsz)
    for pos in range(order.shape[1]):
        task = order[:, pos]
        col = np.where(task >= m, task - m, np.maximum(task, 0))
        live = (task >= 0) & mask[rows, col]
        is_fwd = live & (task < m)
        is_bwd = live & (task >= m)
        rf, cf = rows[is_fwd], col[is_fwd]
        fwd_start[rf, cf] = np.maximum(t[rf], r[rf, cf])
        t[rf] = fwd_start[rf, cf] + pf[rf, cf]
        rb, cb = rows[is_bwd], col[is_bwd]
        ready = fwd_start[rb, cb] + pf[rb, cb] + g[rb, cb]
        if np.any(np.isnan(ready)):
            raise ValueError("a backward task is ordered before its forward task")
        bwd_start[rb, cb] = np.maximum(t[rb], ready)
        t[rb] = bwd_start[rb, cb] + pb[rb, cb]
    done = np.where(mask, bwd_start + pb + q, -np.inf)
    makespan = np.maximum(done.max(axis=1), 0.0) if m else np.zeros(bsz)
    return fwd_start, bwd_start, makespan


def pad_groups(groups: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Stack client-id arrays of unequal length into (members, mask), padding with client 0."""
    width = max((len(gr) for gr in groups), default=0)
    members = np.zeros((len(groups), max(width, 1)), dtype=int)
    mask = np.zeros_like(members, dtype=bool)
    for i, gr in enumerate(groups):
        members[i, : len(gr)] = gr
        mask[i, : len(gr)] = True
    return members, mask


def helper_groups(assignment: np.ndarray, num_helpers: int) -> list[np.ndarray]:
    """Client ids of each helper, in client order."""
    assignment = np.asarray(assignment, dtype=int)
    order = np.argsort(assignment, kind="stable")
    bounds = np.searchsorted(assignment[order], np.arange(num_helpers + 1))
    return [order[bounds[h] : bounds[h + 1]] for h in range(num_helpers)]


def decomposition_helper_schedule(
    r: np.ndarray, pf: np.ndarray, g: np.ndarray, pb: np.ndarray, q: np.ndarray
) -> tuple[np.ndarray, list[list[tuple[float, float]]], float]:
    """Paper's per-helper step for one helper's clients (1-D arrays, one entry per client).

    Forward: non-preemptive Schrage (longest gap + bwd + tail first among released). Backward:
    preemptive largest-tail-first in the time the forward blocks leave free — optimal for the
    backward problem with release dates and tails once the forward blocks are fixed.
    Returns (fwd_start, bwd_pieces, helper makespan).
    """
    n = len(r)
    fwd_start = np.zeros(n)
    order = np.argsort(r, kind="stable")
    t, i, ready = 0.0, 0, []
    blocks = []
    for _ in range(n):
        if not ready and i < n:
            t = max(t, r[order[i]])
        while i < n and r[order[i]] <= t:
            j = order[i]
            heapq.heappush(ready, (-(g[j] + pb[j] + q[j]), r[j], j))
            i += 1
        _, _, j = heapq.heappop(ready)
        fwd_start[j] = t
        blocks.append((t, t + pf[j]))
        t += pf[j]
    bwd_rel = fwd_start + pf + g
    remaining = pb.astype(float).copy()
    pieces: list[list[tuple[float, float]]] = [[] for _ in range(n)]
    order = np.argsort(bwd_rel, kind="stable")
    blocks.sort()
    t, i, ready, b, finished = 0.0, 0, [], 0, 0
    while finished < n:
        while i < n and bwd_rel[order[i]] <= t:
            j = order[i]
            heapq.heappush(ready, (-q[j], bwd_rel[j], j))
            i += 1
        if not ready:
            t = bwd_rel[order[i]]
            continue
        while b < len(blocks) and blocks[b][1] <= t:
            b += 1
        if b < len(blocks) and blocks[b][0] <= t:  # helper busy with a forward block
            t = blocks[b][1]
            continue
        j = ready[0][2]
        stop = t + remaining[j]
        if b < len(blocks):
            stop = min(stop, blocks[b][0])
        if i < n:  # a later release may preempt (all releases <= t are admitted already)
            stop = min(stop, bwd_rel[order[i]])
        if pieces[j] and pieces[j][-1][1] == t:
            pieces[j][-1] = (pieces[j][-1][0], stop)
        else:
            pieces[j].append((t, stop))
        remaining[j] -= stop - t
        t = stop
        if remaining[j] <= 1e-9 * max(1.0, pb[j]):
            heapq.heappop(ready)
            total = sum(e - s for s, e in pieces[j])
            pieces[j][-1] = (pieces[j][-1][0], pieces[j][-1][1] + (pb[j] - total))  # absorb float drift
            t = max(t, pieces[j][-1][1])
            finished += 1
    ends = np.array([p[-1][1] for p in pieces]) if n else np.zeros(0)
    makespan = float(np.max(ends + q)) if n else 0.0
    return fwd_start, pieces, makespan
