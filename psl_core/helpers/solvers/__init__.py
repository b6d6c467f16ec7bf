"""Solvers for the helper problem and their registry (``SOLVERS``) with titles for the UI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from psl_core.helpers.instance import HelperInputError, HelperInstance
from psl_core.helpers.solvers.baseline import solve_baseline
from psl_core.helpers.solvers.common import SolveResult
from psl_core.helpers.solvers.decomposition import solve_decomposition
from psl_core.helpers.solvers.exact import solve_brute_force, solve_exact
from psl_core.helpers.solvers.greedy import solve_greedy
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
        "Clients by decreasing work to the helper with the least processing load and memory left; FCFS.",
    ),
    "decomposition": SolverInfo(
        solve_decomposition,
        "Paper's decomposition",
        "Price iterations on the assignment (project version of the paper's ADMM); per helper forward by "
        "Schrage's rule and preemptive largest-tail-first backward.",
    ),
    "local_search": SolverInfo(
        solve_local_search,
        "Local search (ours)",
        "Moves and swaps of clients off the critical helper, each candidate scheduled by fast list rules in "
        "one vectorised batch; warm-started from greedy and the decomposition.",
    ),
    "exact": SolverInfo(
        solve_exact,
        "Exact (CP-SAT)",
        "OR-Tools CP-SAT with optional interval variables, time-limited; reports the optimality gap. "
        "Small instances only.",
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
    instance: HelperInstance, method: str, *, seed: int = 0, time_limit_s: float | None = None, **opts
) -> SolveResult:
    """Solve ``instance`` with the solver registered as ``method`` (see ``SOLVERS``).

    ``time_limit_s`` bounds the anytime solvers ('local_search', 'exact'); None = the solver's default.
    """
    if method not in SOLVERS:
        raise HelperInputError(f"unknown method {method!r}; choose one of {', '.join(SOLVERS)}")
    if time_limit_s is not None:
        opts["time_limit_s"] = time_limit_s
    return SOLVERS[method].func(instance, seed=seed, **opts)


__all__ = ["SOLVERS", "SolveResult", "SolverInfo", "solve"]
