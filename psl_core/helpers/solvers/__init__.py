"""Solvers for the helper problem and their registry (``SOLVERS``) with titles for the UI.

Every solver takes ``variant`` ('non_preemptive' | 'preemptive') and returns a schedule of that
variant; budgets are deterministic (steps, iterations, CP-SAT deterministic time), so the same
instance, variant, method and seed give the same schedule on any machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from psl_core.helpers.instance import HelperInputError, HelperInstance, check_variant
from psl_core.helpers.solvers.baseline import solve_baseline
from psl_core.helpers.solvers.common import OPTIMAL_GAP, SolveResult
from psl_core.helpers.solvers.decomposition import solve_decomposition
from psl_core.helpers.solvers.exact import solve_brute_force, solve_exact
from psl_core.helpers.solvers.greedy import solve_greedy
from psl_core.helpers.solvers.lns import solve_lns
from psl_core.helpers.solvers.local_search import solve_local_search


@dataclass(frozen=True)
class SolverInfo:
    """A registered solver: the function, a short title and a one-paragraph description."""

    func: Callable[..., SolveResult]
    title: str
    description: str
    small_only: bool = False


SOLVERS: dict[str, SolverInfo] = {
    "baseline": SolverInfo(
        solve_baseline,
        "Random + FCFS (baseline)",
        "Random memory-feasible assignment; each helper serves tasks first-come-first-served.",
    ),
    "greedy": SolverInfo(
        solve_greedy,
        "Balanced greedy + FCFS",
        "Clients by decreasing memory, then work, to the helper with the least processing load that has "
        "memory left; first-come-first-served.",
    ),
    "decomposition": SolverInfo(
        solve_decomposition,
        "Paper's decomposition",
        "Price iterations on the assignment (project version of the paper's ADMM); per helper forward by "
        "Schrage's rule and backward largest-tail-first (preemptive in the preemptive variant).",
    ),
    "local_search": SolverInfo(
        solve_local_search,
        "Local search (ours)",
        "Moves and swaps of clients off the critical helper, every candidate valued by the variant's "
        "schedule rules in one vectorised batch; a fixed number of steps.",
    ),
    "lns": SolverInfo(
        solve_lns,
        "Local search + CP-SAT neighbourhoods (ours, strongest)",
        "Starts from local search, then re-solves the critical helper with one to three partners exactly "
        "with CP-SAT, keeping only strict improvements; deterministic budget.",
    ),
    "exact": SolverInfo(
        solve_exact,
        "Exact (CP-SAT)",
        "Non-preemptive: interval model; preemptive: time-indexed model. Warm-started from local search, "
        "reports a valid lower bound and the gap. Small instances.",
        small_only=True,
    ),
    "brute_force": SolverInfo(
        solve_brute_force,
        "Brute force",
        "Enumerates every assignment and task order; K <= 4, H <= 2 only.",
        small_only=True,
    ),
}


def solve(
    instance: HelperInstance, method: str, *, variant: str = "non_preemptive", seed: int = 0, **opts
) -> SolveResult:
    """Solve ``instance`` in ``variant`` with the solver registered as ``method`` (see ``SOLVERS``).

    ``opts`` go to the solver: budgets such as ``max_steps`` (local search), ``iterations`` and
    ``sub_dtime`` (lns), ``dtime`` and ``hint`` (exact).
    """
    if method not in SOLVERS:
        raise HelperInputError(f"unknown method {method!r}; choose one of {', '.join(SOLVERS)}")
    check_variant(variant)
    return SOLVERS[method].func(instance, variant=variant, seed=seed, **opts)


__all__ = ["OPTIMAL_GAP", "SOLVERS", "SolveResult", "SolverInfo", "solve"]
