"""Shared pieces of the helper solvers: the result type and memory-feasible assignments."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from psl_core.helpers.bounds import memory_units
from psl_core.helpers.instance import HelperInputError, HelperInstance, Schedule, memory_fits

#: Relative gap under which a makespan counts as proven optimal (integer models round times to
#: about 1e-6 of the horizon; see psl_core.helpers.bounds).
OPTIMAL_GAP = 1e-5


@dataclass(frozen=True)
class SolveResult:
    """Outcome of one solver run on one variant.

    ``gap`` = (makespan − lower_bound) / makespan where a valid lower bound was computed.
    ``solve_time_s`` is wall-clock time (informative only: budgets are deterministic, results do
    not depend on it); ``stats`` holds the deterministic work counters (steps, iterations).
    """

    method: str
    variant: str
    schedule: Schedule
    makespan: float
    solve_time_s: float
    lower_bound: float | None = None
    status: str = "FEASIBLE"
    stats: dict = field(default_factory=dict)

    @property
    def gap(self) -> float | None:
        if self.lower_bound is None:
            return None
        return max(0.0, (self.makespan - self.lower_bound) / max(self.makespan, 1e-300))

    @property
    def optimal(self) -> bool | None:
        """True when the bound proves the makespan optimal (to ``OPTIMAL_GAP``); None without a bound."""
        return None if self.gap is None else self.gap <= OPTIMAL_GAP


def proof_status(makespan: float, bound: float) -> str:
    """What a bound proves about a makespan, in words that claim no more than it proves.

    'OPTIMAL' when they agree to float precision; 'OPTIMAL within x %' when the gap is below
    ``OPTIMAL_GAP`` (the integer models round times to about 1e-8 of the makespan); else 'FEASIBLE'.
    """
    gap = max(0.0, makespan - bound) / max(makespan, 1e-300)
    if gap <= 1e-12:
        return "OPTIMAL"
    if gap <= OPTIMAL_GAP:
        return f"OPTIMAL within {100 * gap:.1g} %"
    return "FEASIBLE"


def check_assignment(instance: HelperInstance, assignment: np.ndarray) -> np.ndarray:
    """Validate an assignment vector (one helper id per client, memory respected)."""
    a = np.asarray(assignment, dtype=int)
    if a.shape != (instance.num_clients,) or a.min() < 0 or a.max() >= instance.num_helpers:
        raise HelperInputError(f"assignment must give each of the {instance.num_clients} clients a helper id")
    load = np.bincount(a, weights=instance.mem_demand, minlength=instance.num_helpers)
    if not np.all(memory_fits(load, instance.mem_capacity)):
        raise HelperInputError("assignment exceeds a helper's memory capacity; move clients off it")
    return a


def packing_assignment(
    instance: HelperInstance, prefer: np.ndarray | None = None, seed: int = 0
) -> np.ndarray:
    """A memory-feasible assignment by CP-SAT bin packing, keeping as many ``prefer`` choices as it can.

    Deterministic (one worker, fixed seed). Raises HelperInputError when no assignment fits.
    """
    from ortools.sat.python import cp_model

    k, h = instance.num_clients, instance.num_helpers
    dem, cap = memory_units(instance)
    m = cp_model.CpModel()
    x = [[m.new_bool_var(f"x{j}_{i}") for i in range(h)] for j in range(k)]
    for j in range(k):
        m.add_exactly_one(x[j])
    for i in range(h):
        m.add(sum(int(dem[j]) * x[j][i] for j in range(k)) <= int(cap[i]))
    if prefer is not None:
        m.maximize(sum(x[j][int(prefer[j])] for j in range(k) if 0 <= prefer[j] < h))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = int(seed)
    solver.parameters.max_deterministic_time = 10.0
    code = solver.solve(m)
    if code == cp_model.INFEASIBLE:
        raise HelperInputError(
            "no assignment of clients to helpers fits the helpers' memory; raise mem_capacity, add "
            "helpers or use fewer clients"
        )
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        raise HelperInputError("could not find a memory-feasible assignment; give the helpers more memory")
    out = np.array([next(i for i in range(h) if solver.value(x[j][i])) for j in range(k)])
    return check_assignment(instance, out)


def greedy_fill(
    instance: HelperInstance,
    order: np.ndarray,
    choose: Callable[[int, np.ndarray, np.ndarray], int],
    seed: int = 0,
) -> np.ndarray:
    """Assign clients in ``order``; ``choose(j, ok, free)`` picks among the helpers ``ok`` with room.

    A helper is offered only if, after taking j, the clients still to place could fit in the memory
    left overall. If the pass still strands a client (memory packing is NP-hard), the assignment is
    repaired by bin packing that keeps as many of the greedy choices as possible.
    """
    k = instance.num_clients
    d = instance.mem_demand
    free = instance.mem_capacity.astype(float).copy()
    out = np.full(k, -1, dtype=int)
    left = float(d.sum())
    for j in order:  # sequential by nature: each choice changes the free memory
        left -= d[j]
        room = memory_fits(d[j], free)
        ok = np.flatnonzero(room & memory_fits(left, free.sum() - d[j]))
        if len(ok) == 0:
            ok = np.flatnonzero(room)
        if len(ok) == 0:
            return packing_assignment(instance, prefer=out, seed=seed)
        out[j] = choose(int(j), ok, free)
        free[out[j]] -= d[j]
    return check_assignment(instance, out)
