"""Exact solvers: CP-SAT per variant, and brute force for tiny instances (both variants).

- non-preemptive: the interval model of ``cpsat_model`` on the whole instance;
- preemptive: a time-indexed CP-SAT model (``exact_preemptive``), small instances only.

Both are warm-started with a schedule (by default our local search) and return the better of that
schedule and the model's, judged in true milliseconds: an exact run is never worse than its hint.
The lower bound is the model's bound (a relaxation: times rounded down) combined with the chain
bound; the status says what the bound proves (``proof_status``).
"""

from __future__ import annotations

import itertools
import time

import numpy as np

from psl_core.helpers.bounds import chain_bound, memory_units, time_unit
from psl_core.helpers.instance import (
    HelperInputError,
    HelperInstance,
    Schedule,
    check_variant,
    memory_fits,
    schedule_makespan,
)
from psl_core.helpers.schedule_model import HelperModel, assemble, split_fragments
from psl_core.helpers.sequencing import batch_priority_schedule, batch_sequence_retime
from psl_core.helpers.solvers.common import SolveResult, proof_status
from psl_core.helpers.solvers.cpsat_model import hint_times, solve_cpsat


def solve_exact(
    instance: HelperInstance,
    variant: str = "non_preemptive",
    seed: int = 0,
    dtime: float = 20.0,
    num_workers: int = 1,
    hint: Schedule | None = None,
    time_limit_s: float | None = None,
    cuts: list[tuple[int, float, float]] = (),
    interleave: bool = False,
    **opts: object,
) -> SolveResult:
    """CP-SAT model of ``variant`` (module docstring); ``dtime`` = CP-SAT deterministic time budget.

    ``cuts`` are subset cuts from ``psl_core.helpers.bounds.relaxation_bound`` (they tighten the
    non-preemptive model's bound). ``time_limit_s`` is an optional wall-clock safety cap: when it is
    what stops the search, the result may depend on machine load (the status says so).
    """
    check_variant(variant)
    if variant == "preemptive":
        from psl_core.helpers.solvers.exact_preemptive import solve_exact_preemptive

        return solve_exact_preemptive(
            instance,
            seed=seed,
            dtime=dtime,
            num_workers=num_workers,
            hint=hint,
            time_limit_s=time_limit_s,
            **opts,
        )
    t0 = time.perf_counter()
    if hint is None:
        from psl_core.helpers.solvers.local_search import solve_local_search

        hint = solve_local_search(instance, variant, seed=seed).schedule
    model = HelperModel(instance, variant)
    frags = split_fragments(hint, instance.num_helpers)
    hint_val = schedule_makespan(instance, hint)
    unit = time_unit(instance, hint_val)
    dem, cap = memory_units(instance)
    hint_map = {}
    for h, frag in enumerate(frags):
        for j, (f, b) in hint_times(model, h, frag).items():
            hint_map[j] = (h, f, b)
    k, h_count = instance.num_clients, instance.num_helpers
    res = solve_cpsat(
        instance, np.arange(k), np.arange(h_count), cap, dem, unit,
        int(np.ceil(hint_val / unit)) + 1, hint_map, list(cuts), dtime, seed, num_workers, time_limit_s, interleave,
    )  # fmt: skip
    if res.status == "INFEASIBLE":
        raise HelperInputError(
            "no assignment of clients to helpers fits the helpers' memory; give helpers more memory"
        )
    best, best_val = hint, hint_val
    if res.sequences is not None:
        new = [model.retime_sequence(h, res.sequences.get(h, [])) for h in range(h_count)]
        sched = assemble(instance, [f for f, _ in new])
        val = schedule_makespan(instance, sched)
        if val < best_val:
            best, best_val = sched, val
    bound = max(chain_bound(instance), res.bound_units * unit)
    status = proof_status(best_val, bound)
    if time_limit_s is not None and status == "FEASIBLE":
        status += " (wall-clock cap)"
    return SolveResult(
        "exact", variant, best, best_val, time.perf_counter() - t0, lower_bound=min(bound, best_val), status=status,
        stats={"cpsat_status": res.status, "unit_ms": unit, "dtime": dtime},
    )  # fmt: skip


def _orders(n: int) -> np.ndarray:
    """All orders of the 2n tasks of n clients with each forward before its backward (task ids:
    forward i, backward n + i)."""
    rows = []
    for perm in itertools.permutations(range(2 * n)):
        pos = np.empty(2 * n, dtype=int)
        pos[list(perm)] = np.arange(2 * n)
        if np.all(pos[:n] < pos[n:]):
            rows.append(perm)
    return np.array(rows, dtype=int).reshape(-1, 2 * n)


def _helper_optimum(instance: HelperInstance, h: int, clients: list[int], variant: str):
    """Best single-helper schedule over every task order: (value, fragment)."""
    if not clients:
        return 0.0, {}
    n = len(clients)
    orders = _orders(n)
    members = np.tile(np.array(clients), (len(orders), 1))
    mask = np.ones_like(members, dtype=bool)
    helpers = np.full(len(orders), h)
    if variant == "non_preemptive":
        fs, bs, val = batch_sequence_retime(instance, members, mask, helpers, orders)
        b = int(np.argmin(val))
        frag = {
            j: (
                ((fs[b, i], fs[b, i] + instance.p_fwd[j, h]),),
                ((bs[b, i], bs[b, i] + instance.p_bwd[j, h]),),
            )
            for i, j in enumerate(clients)
        }
        return float(val[b]), frag
    # Preemptive: an optimal schedule is the priority schedule of its own completion order (the
    # earliest-deadline-first argument in docs/methods.md), so trying every order is exhaustive.
    prio = np.empty_like(orders)
    prio[np.arange(len(orders))[:, None], orders] = 2 * n - np.arange(2 * n)[None, :]
    _, _, val = batch_priority_schedule(instance, members, mask, helpers, prio)
    b = int(np.argmin(val))
    _, _, _, pieces = batch_priority_schedule(
        instance, members[[b]], mask[[b]], helpers[[b]], prio[[b]], True
    )
    frag = {j: (tuple(pieces[0][i]), tuple(pieces[0][n + i])) for i, j in enumerate(clients)}
    return float(val[b]), frag


def solve_brute_force(instance: HelperInstance, variant: str = "non_preemptive", **_: object) -> SolveResult:
    """Optimal schedule of ``variant`` by full enumeration (K <= 4 clients, H <= 2 helpers)."""
    check_variant(variant)
    k, h = instance.num_clients, instance.num_helpers
    if k > 4 or h > 2:
        raise HelperInputError(f"brute force is for K <= 4 and H <= 2 (got K={k}, H={h}); use method='exact'")
    t0 = time.perf_counter()
    best_val, best = np.inf, None
    cache: dict = {}
    for assign in itertools.product(range(h), repeat=k):
        a = np.array(assign)
        if not np.all(
            memory_fits(np.bincount(a, weights=instance.mem_demand, minlength=h), instance.mem_capacity)
        ):
            continue
        parts = []
        for m in range(h):
            key = (m, tuple(np.flatnonzero(a == m)))
            if key not in cache:
                cache[key] = _helper_optimum(instance, m, list(key[1]), variant)
            parts.append(cache[key])
        val = max(p[0] for p in parts)
        if val < best_val:
            best_val, best = val, [p[1] for p in parts]
    if best is None:
        raise HelperInputError(
            "no assignment of clients to helpers fits the helpers' memory; give helpers more memory"
        )
    sched = assemble(instance, best)
    makespan = schedule_makespan(instance, sched)
    return SolveResult(
        "brute_force",
        variant,
        sched,
        makespan,
        time.perf_counter() - t0,
        lower_bound=makespan,
        status="OPTIMAL",
    )
