"""Single-helper sequencing: given the clients of each helper, when does each task run?

``batch_list_schedule`` runs a non-preemptive list schedule on many (helper, client-set) rows at once,
vectorised over the rows (the loop is over task positions only, 2 × the largest set). Rules:
- ``fcfs``: the task that arrived first (forward at its release, backward at fwd end + gap);
- ``delivery``: the available task with the longest remaining path after it (forward: gap + bwd +
  tail; backward: tail) — Schrage's rule extended to the forward/backward chain.
``decomposition_helper_schedule`` is the paper's per-helper step: forward tasks by Schrage's rule,
then backward tasks preemptively by largest-tail-first in the helper's idle time.
"""

from __future__ import annotations

import heapq

import numpy as np

from psl_core.helpers.instance import HelperInstance

LIST_RULES = ("fcfs", "delivery")


def batch_list_schedule(
    instance: HelperInstance,
    members: np.ndarray,
    mask: np.ndarray,
    helpers: np.ndarray,
    rule: str = "delivery",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-preemptive list schedules of B rows; row b = clients ``members[b][mask[b]]`` on ``helpers[b]``.

    Returns (fwd_start, bwd_start, makespan): (B, m), (B, m), (B,); padded cells are NaN, an empty
    row has makespan 0.
    """
    if rule not in LIST_RULES:
        raise ValueError(f"unknown sequencing rule {rule!r}; use one of {LIST_RULES}")
    members = np.asarray(members, dtype=int)
    mask = np.asarray(mask, dtype=bool)
    bsz, m = members.shape
    hcol = np.asarray(helpers, dtype=int)[:, None]
    r = instance.release[members, hcol]
    pf, g = instance.p_fwd[members, hcol], instance.gap[members, hcol]
    pb, q = instance.p_bwd[members, hcol], instance.tail[members, hcol]
    inf = np.inf
    fwd_arr = np.where(mask, r, inf)  # arrival time of a task not yet run; inf = done or not yet known
    bwd_arr = np.full((bsz, m), inf)
    fwd_start, bwd_start = np.full((bsz, m), np.nan), np.full((bsz, m), np.nan)
    t = np.zeros(bsz)
    rows = np.arange(bsz)
    if rule == "delivery":
        prio = np.concatenate([g + pb + q, q], axis=1)
    for _ in range(2 * m):
        arr = np.concatenate([fwd_arr, bwd_arr], axis=1)
        nxt = arr.min(axis=1)
        active = np.isfinite(nxt)
        if not active.any():
            break
        t = np.where(active, np.maximum(t, nxt), t)
        avail = arr <= t[:, None]
        if rule == "fcfs":  # earliest arrival; forward before backward on ties (concat order)
            pick = np.argmin(np.where(avail, arr, inf), axis=1)
        else:
            pick = np.argmax(np.where(avail, prio, -inf), axis=1)
        is_fwd = pick < m
        col = np.where(is_fwd, pick, pick - m)
        rf, cf = rows[active & is_fwd], col[active & is_fwd]
        rb, cb = rows[active & ~is_fwd], col[active & ~is_fwd]
        fwd_start[rf, cf] = t[rf]
        fwd_arr[rf, cf] = inf
        t[rf] += pf[rf, cf]
        bwd_arr[rf, cf] = t[rf] + g[rf, cf]
        bwd_start[rb, cb] = t[rb]
        bwd_arr[rb, cb] = inf
        t[rb] += pb[rb, cb]
    done = np.where(mask, bwd_start + pb + q, -inf)
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
