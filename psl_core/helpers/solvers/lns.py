"""Large-neighbourhood search: CP-SAT re-solves a few helpers at a time, from local search (ours).

Start: the local-search schedule (``local_search``); in the preemptive variant the better of that
and the non-preemptive LNS schedule (a non-preemptive schedule is a preemptive one). Each iteration
frees the clients of the critical helper (the one that sets the makespan) — first alone (to re-order
its tasks), then with one partner helper, and once every pair with it is exhausted with two partners
drawn by a seeded generator favouring slack — and re-solves that sub-problem with the
non-preemptive CP-SAT model (``cpsat_model``), warm-started with the current schedule. The new
per-helper task orders are retimed in true milliseconds; in the preemptive variant each changed
helper also tries the variant's preemptive rules on its new client set and keeps whichever is
shorter. A move is accepted only if the sorted makespans of the touched helpers decrease
lexicographically — judged on the very schedules that are kept, so the result's makespan is the
value the search optimised, and the search cannot cycle. A helper, or pair, whose re-solve did not
improve is not tried again until one of its helpers changes.

On small instances (K·H <= ``full_pairs``) a last re-solve takes the whole instance
(``full_dtime``). The budget is deterministic: at most ``iterations`` re-solves of ``pair_dtime`` /
``triple_dtime`` CP-SAT deterministic seconds, one worker, fixed seeds — the same input gives the
same schedule to the last digit on any machine. It stops early after ``patience`` fruitless
three-helper re-solves, or when a lower bound is reached (to ``OPTIMAL_GAP``).

Wide neighbourhoods (``wide_iterations``, default none): the critical helper and its partners can
be a local optimum that only a move elsewhere breaks, so each wide re-solve takes EVERY helper at
once — all task orders free, the critical helper's clients and a seeded share ``wide_free`` of the
others free to change helper, the remaining clients kept on their helpers — for ``wide_dtime``
deterministic seconds, accepted by the same lexicographic rule over all helpers. It stops after
``wide_patience`` fruitless re-solves, or as soon as the makespan is within ``target_gap`` of the
lower bound: extra effort goes only where the bound says it may be missing.
"""

from __future__ import annotations

import time

import numpy as np

from psl_core.helpers.bounds import chain_bound, memory_units, time_unit
from psl_core.helpers.instance import (
    HelperInputError,
    HelperInstance,
    Schedule,
    check_variant,
    schedule_makespan,
)
from psl_core.helpers.schedule_model import HelperModel, assemble, fragment_value, split_fragments
from psl_core.helpers.solvers.common import OPTIMAL_GAP, SolveResult
from psl_core.helpers.solvers.cpsat_model import hint_times, solve_cpsat
from psl_core.helpers.solvers.local_search import solve_local_search


def _slack_partners(values: np.ndarray, crit: int, count: int, rng: np.random.Generator) -> list[int]:
    others = np.array([h for h in range(len(values)) if h != crit])
    if len(others) == 0 or count == 0:
        return []
    slack = values[crit] - values[others] + 1e-9 * max(values[crit], 1.0)
    return sorted(
        int(h) for h in rng.choice(others, size=min(count, len(others)), replace=False, p=slack / slack.sum())
    )


def solve_lns(
    instance: HelperInstance,
    variant: str = "non_preemptive",
    seed: int = 0,
    iterations: int = 30,
    pair_dtime: float = 0.2,
    triple_dtime: float = 0.1,
    max_sub_clients: int = 40,
    patience: int = 4,
    ls_steps: int = 2000,
    max_swap_candidates: int = 600,
    full_pairs: int = 200,
    full_dtime: float = 2.0,
    lower_bound: float | None = None,
    start: Schedule | None = None,
    partners: int = 2,
    wide_iterations: int = 0,
    wide_dtime: float = 1.0,
    wide_free: float = 0.3,
    wide_patience: int = 3,
    target_gap: float = OPTIMAL_GAP,
    **_: object,
) -> SolveResult:
    """LNS from the local-search schedule (module docstring).

    ``lower_bound`` (a valid bound, e.g. from ``psl_core.helpers.bounds``) only lets the search stop
    as soon as it is reached; the chain bound is always used that way. In the preemptive variant the
    search starts from the better of the preemptive local search (skipped when ``start`` is given and
    ``ls_steps`` is 0) and ``start`` — by default the non-preemptive LNS schedule, which is also a
    preemptive schedule. When K·H <= ``full_pairs`` the last neighbourhood is the whole instance.
    A non-preemptive ``start`` with ``ls_steps`` = 0 is used as it is (no local search): the result
    is then never worse than ``start``.
    """
    check_variant(variant)
    if (
        variant == "non_preemptive"
        and start is not None
        and any(len(p) > 1 for pieces in (start.fwd_pieces, start.bwd_pieces) for p in pieces)
    ):
        raise HelperInputError("start splits a task: a non-preemptive LNS needs a non-preemptive start")
    t0 = time.perf_counter()
    opts = {"iterations": iterations, "pair_dtime": pair_dtime, "triple_dtime": triple_dtime,
            "max_sub_clients": max_sub_clients, "patience": patience, "ls_steps": ls_steps,
            "max_swap_candidates": max_swap_candidates,
            "full_pairs": full_pairs, "full_dtime": full_dtime, "lower_bound": lower_bound,
            "partners": partners, "wide_iterations": wide_iterations, "wide_dtime": wide_dtime,
            "wide_free": wide_free, "wide_patience": wide_patience, "target_gap": target_gap}  # fmt: skip
    model = HelperModel(instance, variant)
    h_count, k = instance.num_helpers, instance.num_clients
    initial, ls_done = start, 0
    if start is None or ls_steps > 0:
        ls = solve_local_search(
            instance, variant, seed=seed, max_steps=ls_steps, max_swap_candidates=max_swap_candidates
        )
        ls_done = ls.stats.get("steps", 0)
        if variant == "preemptive" and start is None:
            start = solve_lns(instance, "non_preemptive", seed=seed, **opts).schedule
        use_ls = start is None or ls.makespan <= schedule_makespan(instance, start)
        initial = ls.schedule if use_ls else start
    frags = split_fragments(initial, h_count)
    values = np.array([fragment_value(instance, h, f) for h, f in enumerate(frags)])
    if variant == "preemptive":  # a non-preemptive start: let each helper try the preemptive rules first
        alt, alt_values = model.fragments([np.array(sorted(f), dtype=int) for f in frags], np.arange(h_count))
        for h in np.flatnonzero(alt_values < values):
            frags[h], values[h] = alt[h], float(alt_values[h])
    dem, cap = memory_units(instance)
    rng = np.random.default_rng(seed)
    floor = max(chain_bound(instance), lower_bound or 0.0)
    exhausted: set[frozenset] = set()  # helpers (with their clients) alone or in pairs that did not improve
    counts = {"tried": 0, "accepted": 0}

    def key(h: int) -> tuple:
        return (h, tuple(sorted(frags[h])))

    def at_bound(gap: float = OPTIMAL_GAP) -> bool:
        return values.max() - floor <= gap * values.max()

    def resolve(chosen: list[int], dtime: float, sub_seed: int, free: set[int] | None = None) -> bool:
        """Re-solve the clients of ``chosen`` on ``chosen``; keep the result if it is better.

        With ``free``, only those clients may change helper; the others keep theirs (orders stay free).
        """
        clients = np.array(sorted(j for h in chosen for j in frags[h]), dtype=int)
        fixed = None if free is None else {j: h for h in chosen for j in frags[h] if j not in free}
        hint = {j: (h, f, b) for h in chosen for j, (f, b) in hint_times(model, h, frags[h]).items()}
        old = np.sort(values[chosen])[::-1]
        unit = time_unit(instance, old[0])
        res = solve_cpsat(
            instance, clients, np.array(chosen), cap[chosen], dem, unit, int(np.ceil(old[0] / unit)) + 1, hint,
            dtime=dtime, seed=sub_seed, fixed=fixed,
        )  # fmt: skip
        counts["tried"] += 1
        if res.sequences is None:
            return False
        new_frags, new_vals = {}, {}
        for h in chosen:
            frag, val = model.retime_sequence(h, res.sequences.get(h, []))
            if variant == "preemptive" and frag:
                alt, alt_val = model.fragments([np.array(sorted(frag), dtype=int)], np.array([h]))
                if alt_val[0] < val:
                    frag, val = alt[0], float(alt_val[0])
            new_frags[h], new_vals[h] = frag, val
        if not _lex_less(np.sort([new_vals[h] for h in chosen])[::-1], old):
            return False
        for h in chosen:
            frags[h], values[h] = new_frags[h], new_vals[h]
        counts["accepted"] += 1
        return True

    stale = 0
    for it in range(iterations if h_count > 1 else 0):
        if stale >= patience or at_bound():
            break
        crit = int(np.argmax(values))
        by_slack = [int(h) for h in np.argsort(values, kind="stable") if h != crit]
        fresh = [
            h
            for h in by_slack
            if frozenset((key(crit), key(h))) not in exhausted
            and len(frags[crit]) + len(frags[h]) <= max_sub_clients
        ]
        alone = frozenset((key(crit),)) not in exhausted  # first re-order the critical helper by itself
        if alone:
            chosen = [crit]
        else:
            chosen = sorted(
                [crit, fresh[0]] if fresh else [crit, *_slack_partners(values, crit, partners, rng)]
            )
        small = alone or bool(fresh)
        if resolve(chosen, pair_dtime if small else triple_dtime, seed * 7919 + it):
            stale = 0
        elif small:
            exhausted.add(frozenset(key(h) for h in chosen))
        else:
            stale += 1
    if (
        k * h_count <= full_pairs and not at_bound()
    ):  # small instances: the whole instance is the neighbourhood
        resolve(list(range(h_count)), full_dtime, seed * 7919 + iterations)
    # Wide neighbourhoods: every helper re-sequenced at once, the critical helper's clients and a seeded
    # share of the others free to change helper; stops once within ``target_gap`` of the bound.
    stale, everyone = 0, list(range(h_count))
    for it in range(wide_iterations if h_count > 1 else 0):
        if stale >= wide_patience or at_bound(max(target_gap, OPTIMAL_GAP)):
            break
        crit = int(np.argmax(values))
        others = np.array([j for h in everyone if h != crit for j in sorted(frags[h])], dtype=int)
        picked = (
            rng.choice(others, size=int(round(wide_free * len(others))), replace=False) if len(others) else []
        )
        free = set(frags[crit]) | {int(j) for j in picked}
        if resolve(everyone, wide_dtime, seed * 7919 + iterations + 1 + it, free=free):
            stale = 0
        else:
            stale += 1
    sched = assemble(instance, frags)
    return SolveResult(
        "lns", variant, sched, schedule_makespan(instance, sched), time.perf_counter() - t0,
        status=f"FEASIBLE ({counts['accepted']} of {counts['tried']} re-solves accepted)",
        stats={"ls_steps": ls_done, "lns_tried": counts["tried"], "lns_accepted": counts["accepted"]},
    )  # fmt: skip


def _lex_less(new: np.ndarray, old: np.ndarray) -> bool:
    """Is the descending vector ``new`` lexicographically smaller than ``old`` (beyond float noise)?"""
    for a, b in zip(new, old):
        tol = 1e-12 * max(abs(b), 1.0)
        if a < b - tol:
            return True
        if a > b + tol:
            return False
    return False
