"""Independent feasibility checker for helper schedules.

It trusts nothing the solver computed: it recomputes durations and the makespan from the instance
and reports every violated rule by kind, so tests can show that each check fires.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from psl_core.helpers.instance import HelperInstance, Schedule

VIOLATION_KINDS = ("assignment", "memory", "release", "duration", "precedence", "overlap", "makespan")


class InfeasibleScheduleError(ValueError):
    """A schedule broke a rule of the helper problem; the message lists the violations."""


@dataclass
class CheckReport:
    """Outcome of a check: the recomputed makespan and the violations found (kind, message)."""

    makespan: float
    violations: list[tuple[str, str]] = field(default_factory=list)

    @property
    def feasible(self) -> bool:
        return not self.violations

    @property
    def kinds(self) -> set[str]:
        return {k for k, _ in self.violations}


def check_schedule(
    instance: HelperInstance, schedule: Schedule, reported_makespan: float | None = None, tol: float = 1e-6
) -> CheckReport:
    """Check every rule of methods §5 and recompute the makespan; ``tol`` is relative to the horizon."""
    k, h = instance.num_clients, instance.num_helpers
    out: list[tuple[str, str]] = []
    helper = np.asarray(schedule.helper)
    if helper.shape != (k,) or len(schedule.fwd_start) != k or len(schedule.bwd_pieces) != k:
        return CheckReport(float("nan"), [("assignment", f"schedule must cover exactly the {k} clients")])
    if not np.issubdtype(helper.dtype, np.integer) or np.any((helper < 0) | (helper >= h)):
        return CheckReport(float("nan"), [("assignment", f"helper ids must be integers in [0, {h})")])
    horizon = float(instance.release.max() + instance.p_fwd.sum(0).max() + instance.gap.max())
    horizon += float(instance.p_bwd.sum(0).max() + instance.tail.max())
    eps = tol * max(horizon, 1.0)
    idx = np.arange(k)

    load = np.bincount(helper, weights=instance.mem_demand, minlength=h)
    for m in np.flatnonzero(load > instance.mem_capacity + eps):
        out.append(("memory", f"helper {m} holds {load[m]:.3f} MB > capacity {instance.mem_capacity[m]:.3f}"))

    fwd_s = np.asarray(schedule.fwd_start, dtype=float)
    fwd_e = fwd_s + instance.p_fwd[idx, helper]
    for j in np.flatnonzero(fwd_s < instance.release[idx, helper] - eps):
        out.append(("release", f"client {j} forward starts at {fwd_s[j]:.4f} before its release"))

    tasks: list[list[tuple[float, float, str]]] = [[] for _ in range(h)]
    bwd_end = np.empty(k)
    for j in range(k):
        pieces = schedule.bwd_pieces[j]
        if not pieces or any(e < s - eps for s, e in pieces):
            out.append(("duration", f"client {j} backward pieces are empty or reversed"))
            bwd_end[j] = np.nan
            continue
        busy = sum(e - s for s, e in pieces)
        if abs(busy - instance.p_bwd[j, helper[j]]) > eps:
            out.append(
                (
                    "duration",
                    f"client {j} backward runs {busy:.4f} ms, needs {instance.p_bwd[j, helper[j]]:.4f}",
                )
            )
        first = min(s for s, _ in pieces)
        if first < fwd_e[j] + instance.gap[j, helper[j]] - eps:
            out.append(("precedence", f"client {j} backward starts at {first:.4f} before forward end + gap"))
        bwd_end[j] = max(e for _, e in pieces)
        tasks[helper[j]].append((fwd_s[j], fwd_e[j], f"fwd {j}"))
        tasks[helper[j]].extend((s, e, f"bwd {j}") for s, e in pieces)

    for m, items in enumerate(tasks):
        items.sort()
        for (s0, e0, a), (s1, _, b) in zip(items, items[1:]):
            if s1 < e0 - eps:
                out.append(
                    ("overlap", f"helper {m}: {a} [{s0:.4f}, {e0:.4f}) overlaps {b} starting {s1:.4f}")
                )

    makespan = float(np.max(bwd_end + instance.tail[idx, helper]))
    if reported_makespan is not None and not abs(reported_makespan - makespan) <= eps:
        out.append(("makespan", f"reported makespan {reported_makespan:.4f} != recomputed {makespan:.4f}"))
    return CheckReport(makespan, out)


def assert_feasible(
    instance: HelperInstance, schedule: Schedule, reported_makespan: float | None = None
) -> float:
    """Raise InfeasibleScheduleError listing the violations; return the recomputed makespan."""
    report = check_schedule(instance, schedule, reported_makespan)
    if not report.feasible:
        lines = "; ".join(f"[{k}] {m}" for k, m in report.violations[:10])
        raise InfeasibleScheduleError(f"schedule infeasible ({len(report.violations)} violations): {lines}")
    return report.makespan
