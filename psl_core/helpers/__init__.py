"""Workflow optimisation with helper servers (methods §5; Tirana et al., INFOCOM 2024).

K clients train a U-shaped three-part model; part-2 runs on one of H helpers. Choose each client's
helper (memory permitting) and each helper's task order to minimise the batch makespan.
"""

from psl_core.helpers.checker import CheckReport, InfeasibleScheduleError, assert_feasible, check_schedule
from psl_core.helpers.instance import HelperInputError, HelperInstance, Schedule, schedule_makespan
from psl_core.helpers.scenarios import (
    DEFAULT_CUTS,
    SCENARIO_GENERATORS,
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
    "CheckReport",
    "HelperInputError",
    "HelperInstance",
    "InfeasibleScheduleError",
    "Schedule",
    "SolveResult",
    "SolverInfo",
    "assert_feasible",
    "check_schedule",
    "high_heterogeneity_instance",
    "low_heterogeneity_instance",
    "part_times",
    "random_instance",
    "schedule_makespan",
    "solve",
]
