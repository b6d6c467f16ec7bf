"""Split planner (SPEC section 7): per-client-class cuts and shares of a shared uplink, exactly.

``instance``: what is planned (cut costs, client classes, server, uplink); ``step_time``: the time
model's phases and the energy of a plan; ``shares``: the optimal shares for fixed cuts; ``exact``:
branch and bound over cuts; ``baselines``: one cut for all, per-device cuts, alternating optimisation;
``pareto``: the step-time/energy front by the epsilon-constraint method; ``compare``: all methods side
by side.
"""

from psl_core.planner.baselines import (
    DeviceCutRow,
    device_cut_table,
    per_device_cuts,
    plan_alternating,
    plan_one_cut,
    plan_per_device,
)
from psl_core.planner.compare import (
    METHOD_TITLES,
    Comparison,
    check_target,
    class_table,
    compare_methods,
    methods_table,
)
from psl_core.planner.exact import plan_exact
from psl_core.planner.from_config import apply_plan, expected_samples_per_step, instance_from_config
from psl_core.planner.instance import CutCosts, PlanningError, PlanningInstance, build_instance
from psl_core.planner.pareto import ParetoFront, pareto_front
from psl_core.planner.plan import Plan, best_shares, make_plan
from psl_core.planner.shares import optimal_shares
from psl_core.planner.step_time import Phases, evaluate, phase_terms, step_energy

__all__ = [
    "METHOD_TITLES",
    "Comparison",
    "CutCosts",
    "ParetoFront",
    "apply_plan",
    "check_target",
    "class_table",
    "compare_methods",
    "expected_samples_per_step",
    "instance_from_config",
    "methods_table",
    "pareto_front",
    "DeviceCutRow",
    "Phases",
    "Plan",
    "PlanningError",
    "PlanningInstance",
    "best_shares",
    "build_instance",
    "device_cut_table",
    "evaluate",
    "make_plan",
    "optimal_shares",
    "per_device_cuts",
    "phase_terms",
    "plan_alternating",
    "plan_exact",
    "plan_one_cut",
    "plan_per_device",
    "step_energy",
]
