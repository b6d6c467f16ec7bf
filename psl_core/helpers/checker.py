"""Independent feasibility checker for helper schedules.

It trusts nothing the solver computed: it recomputes durations and the makespan from the instance
and reports every violated rule by kind, so tests can show that each check fires. It is strict:
any non-finite time is a violation, and the time tolerance is a fixed number of milliseconds
(``TOL_MS``) that does not grow with the horizon.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from psl_core.helpers.instance import HelperInstance, Schedule, check_variant, memory_fits

VIOLATION_KINDS = (
    "assignment",
    "value",
    "memory",
    "release",
    "duration",
    "preemption",
    "precedence",
    "overlap",
    "makespan",
)
#: Absolute time tolerance (ms): float round-off of sums of at most a few thousand terms of < 1e7 ms.
TOL_MS = 1e-6


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


def _piece_problems(pieces, need: float, what: str, tol: float) -> list[tuple[str, str]]:
    """Shape, order and total length of one task's pieces."""
    if len(pieces) == 0:
        return [("duration", f"{what} has no pieces")]
    arr = np.asarray(pieces, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != 2:
        return [("value", f"{what} pieces must be (start, end) pairs")]
    if not np.all(np.isfinite(arr)):
        return [("value", f"{what} has a non-finite time (NaN or infinity)")]
    out = []
    if np.any(arr[:, 1] < arr[:, 0]):
        out.append(("duration", f"{what} has a piece that ends before it starts"))
    if np.any(arr[1:, 0] < arr[:-1, 1] - tol):
        out.append(("duration", f"{what} pieces are not in time order or overlap each other"))
    busy = float(np.sum(arr[:, 1] - arr[:, 0]))
    if abs(busy - need) > tol:
        out.append(("duration", f"{what} runs {busy:.6f} ms, needs {need:.6f}"))
    return out


def check_schedule(
    instance: HelperInstance,
    schedule: Schedule,
    reported_makespan: float | None = None,
    variant: str = "preemptive",
    tol_ms: float = TOL_MS,
) -> CheckReport:
    """Check every rule of methods §5 for ``variant`` and recompute the makespan.

    ``variant='non_preemptive'`` also rejects any task split into several pieces; the default
    'preemptive' accepts both kinds of schedule (a non-preemptive schedule is a preemptive one).
    """
    check_variant(variant)
    k, h = instance.num_clients, instance.num_helpers
    nan = float("nan")
    helper = np.asarray(schedule.helper)
    if helper.shape != (k,) or len(schedule.fwd_pieces) != k or len(schedule.bwd_pieces) != k:
        return CheckReport(nan, [("assignment", f"schedule must cover exactly the {k} clients")])
    if not np.issubdtype(helper.dtype, np.integer) or np.any((helper < 0) | (helper >= h)):
        return CheckReport(nan, [("assignment", f"helper ids must be integers in [0, {h})")])
    if reported_makespan is not None and not np.isfinite(reported_makespan):
        return CheckReport(nan, [("value", f"reported makespan {reported_makespan} is not finite")])
    out: list[tuple[str, str]] = []
    load = np.bincount(helper, weights=instance.mem_demand, minlength=h)
    for m in np.flatnonzero(~memory_fits(load, instance.mem_capacity)):
        out.append(("memory", f"helper {m} holds {load[m]:.6f} MB > capacity {instance.mem_capacity[m]:.6f}"))

    tasks: list[list[tuple[float, float, str]]] = [[] for _ in range(h)]
    completion = np.full(k, nan)
    for j in range(k):
        m = int(helper[j])
        fwd, bwd = schedule.fwd_pieces[j], schedule.bwd_pieces[j]
        bad = _piece_problems(fwd, instance.p_fwd[j, m], f"client {j} forward", tol_ms)
        bad += _piece_problems(bwd, instance.p_bwd[j, m], f"client {j} backward", tol_ms)
        out.extend(bad)
        if any(kind == "value" for kind, _ in bad) or not len(fwd) or not len(bwd):
            continue
        if variant == "non_preemptive" and (len(fwd) > 1 or len(bwd) > 1):
            out.append(
                ("preemption", f"client {j}: a task is split into pieces in the non-preemptive variant")
            )
        if fwd[0][0] < instance.release[j, m] - tol_ms:
            out.append(("release", f"client {j} forward starts at {fwd[0][0]:.6f} before its release"))
        ready = fwd[-1][1] + instance.gap[j, m]
        if bwd[0][0] < ready - tol_ms:
            out.append(
                ("precedence", f"client {j} backward starts at {bwd[0][0]:.6f} before forward end + gap")
            )
        completion[j] = bwd[-1][1] + instance.tail[j, m]
        # A zero-length piece (a task of zero duration) occupies no helper time.
        tasks[m].extend((float(s), float(e), f"fwd {j}") for s, e in fwd if e > s)
        tasks[m].extend((float(s), float(e), f"bwd {j}") for s, e in bwd if e > s)

    for m, items in enumerate(tasks):
        items.sort()
        for (s0, e0, a), (s1, _, b) in zip(items, items[1:]):
            if s1 < e0 - tol_ms:
                out.append(
                    ("overlap", f"helper {m}: {a} [{s0:.6f}, {e0:.6f}) overlaps {b} starting {s1:.6f}")
                )

    makespan = float(np.max(completion)) if np.all(np.isfinite(completion)) else nan
    if reported_makespan is not None and not abs(reported_makespan - makespan) <= tol_ms:
        out.append(("makespan", f"reported makespan {reported_makespan:.6f} != recomputed {makespan:.6f}"))
    return CheckReport(makespan, out)


def assert_feasible(
    instance: HelperInstance,
    schedule: Schedule,
    reported_makespan: float | None = None,
    variant: str = "preemptive",
) -> float:
    """Raise InfeasibleScheduleError listing the violations; return the recomputed makespan."""
    report = check_schedule(instance, schedule, reported_makespan, variant)
    if not report.feasible:
        lines = "; ".join(f"[{k}] {m}" for k, m in report.violations[:10])
        raise InfeasibleScheduleError(f"schedule infeasible ({len(report.violations)} violations): {lines}")
    return report.makespan
