"""A plan (cut and share per client class) and the best shares for given cuts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psl_core.planner.instance import PlanningInstance
from psl_core.planner.shares import optimal_shares
from psl_core.planner.step_time import Phases, evaluate, phase_terms, step_energy

USABLE_UPLINK = 1.0 - 1e-12  # the most of the shared uplink a plan hands out (sum_g count_g x_g)


@dataclass(frozen=True)
class Plan:
    """One method's answer. ``cut_index`` indexes ``instance.cuts``; shares are per member of a class
    (None without a shared uplink). ``optimal`` is True only when the method proved optimality, and
    ``lower_bound_s`` is then the step time itself (a proven bound otherwise, NaN if none)."""

    method: str
    cut_index: np.ndarray
    shares: np.ndarray | None
    phases: Phases
    energy_j: float
    optimal: bool = False
    lower_bound_s: float = float("nan")
    seconds: float = 0.0
    note: str = ""
    iterations: int = 0

    @property
    def step_time_s(self) -> float:
        return float(self.phases.step[0])

    def cuts(self, inst: PlanningInstance) -> np.ndarray:
        """The cut numbers (client runs blocks [0, cut)) per class."""
        return inst.cuts.cut[self.cut_index]


def best_shares(inst: PlanningInstance, cut_index) -> tuple[np.ndarray, np.ndarray | None]:
    """Step times (M,) of the plans with these cuts ((M, G) or (G,)) and their optimal shares (M, G)
    (None without a shared uplink, where the cuts alone fix the step time)."""
    ci = np.atleast_2d(np.asarray(cut_index, dtype=np.int64))
    terms = phase_terms(inst, ci)
    fixed = terms.server + terms.delta.max(axis=1)
    if not inst.shared:
        own = (terms.a + terms.own_upload_a).max(axis=1) + (terms.y + terms.own_upload_y).max(axis=1)
        return own + fixed, None
    solution = optimal_shares(terms, inst.count, inst.share_cap)
    return solution.share_time + fixed, solution.shares


def make_plan(inst: PlanningInstance, method: str, cut_index, shares=None, **info) -> Plan:
    """A Plan with its phases and energy evaluated by the time model of ``step_time``."""
    ci = np.asarray(cut_index, dtype=np.int64).reshape(-1)
    x = None if shares is None else np.asarray(shares, dtype=float).reshape(-1)
    if x is not None:
        x = np.minimum(x, inst.share_cap)  # a share solved up to rounding never passes its cap
        # Shares that use the uplink up to rounding get a relative 1e-12 of headroom, so that the sum
        # stays <= 1 however a reader adds them up (the phases below are evaluated for these shares).
        used = float((inst.count * x).sum())
        if used > USABLE_UPLINK:
            x = x * (USABLE_UPLINK / used)
    phases = evaluate(inst, ci[None, :], None if x is None else x[None, :])
    energy = float(step_energy(inst, ci[None, :], None if x is None else x[None, :])[0])
    return Plan(method=method, cut_index=ci, shares=x, phases=phases, energy_j=energy, **info)


def plan_with_best_shares(inst: PlanningInstance, method: str, cut_index, **info) -> Plan:
    """The plan with these cuts and the time-optimal shares for them."""
    _, shares = best_shares(inst, cut_index)
    return make_plan(inst, method, cut_index, None if shares is None else shares[0], **info)
