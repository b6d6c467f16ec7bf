"""Workflow optimisation with helper servers (methods §5; Tirana et al., INFOCOM 2024).

K clients train a U-shaped three-part model; part-2 runs on one of H helpers. Choose each client's
helper (memory permitting) and each helper's task order to minimise the batch makespan, in the
non-preemptive or the preemptive variant of the problem.
"""

from psl_core.helpers.bounds import BoundReport, chain_bound, lower_bound
from psl_core.helpers.checker import CheckReport, InfeasibleScheduleError, assert_feasible, check_schedule
from psl_core.helpers.instance import (
    VARIANTS,
    HelperInputError,
    HelperInstance,
    Schedule,
    check_variant,
    schedule_makespan,
)
from psl_core.helpers.scenarios import (
    DEFAULT_CUTS,
    SCENARIO_GENERATORS,
    generate_instance,
    high_heterogeneity_instance,
    low_heterogeneity_instance,
    part_times,
    random_instance,
)
from psl_core.helpers.solvers import SOLVERS, SolveResult, SolverInfo, solve

__all__ = [
    "DEFAULT_CUTS",
    "SCENARIO_GENERATORS",
    "SOLVERS",
    "VARIANTS",
    "BoundReport",
    "CheckReport",
    "HelperInputError",
    "HelperInstance",
    "InfeasibleScheduleError",
    "Schedule",
    "SolveResult",
    "SolverInfo",
    "assert_feasible",
    "chain_bound",
    "check_schedule",
    "check_variant",
    "generate_instance",
    "high_heterogeneity_instance",
    "low_heterogeneity_instance",
    "lower_bound",
    "part_times",
    "random_instance",
    "schedule_makespan",
    "solve",
]
