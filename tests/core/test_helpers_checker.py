"""The independent checker must fire on every kind of violation."""

import numpy as np
import pytest

from psl_core.helpers import (
    InfeasibleScheduleError,
    Schedule,
    assert_feasible,
    check_schedule,
    random_instance,
    solve,
)
from psl_core.helpers.checker import VIOLATION_KINDS


@pytest.fixture(scope="module")
def solved():
    inst = random_instance(6, 2, seed=3)
    res = solve(inst, "greedy")
    assert check_schedule(inst, res.schedule, res.makespan).feasible
    return inst, res


def _with(sched: Schedule, **changes) -> Schedule:
    fields = {
        "helper": sched.helper.copy(),
        "fwd_start": sched.fwd_start.copy(),
        "bwd_pieces": sched.bwd_pieces,
    }
    fields.update(changes)
    return Schedule(**fields)


def _shift_bwd(sched: Schedule, j: int, dt: float) -> tuple:
    pieces = list(sched.bwd_pieces)
    pieces[j] = tuple((s + dt, e + dt) for s, e in pieces[j])
    return tuple(pieces)


def test_valid_schedule_passes_and_makespan_is_recomputed(solved):
    inst, res = solved
    rep = check_schedule(inst, res.schedule)
    assert rep.feasible and rep.makespan == pytest.approx(res.makespan)


def test_release_violation(solved):
    inst, res = solved
    fwd = res.schedule.fwd_start.copy()
    fwd[0] = inst.release[0, res.schedule.helper[0]] - 0.5
    assert "release" in check_schedule(inst, _with(res.schedule, fwd_start=fwd)).kinds


def test_precedence_violation(solved):
    inst, res = solved
    j, h = 1, res.schedule.helper[1]
    early = res.schedule.fwd_start[j] + inst.p_fwd[j, h] + inst.gap[j, h] - 0.1
    pieces = _shift_bwd(res.schedule, j, early - res.schedule.bwd_start[j])
    assert "precedence" in check_schedule(inst, _with(res.schedule, bwd_pieces=pieces)).kinds


def test_overlap_violation(solved):
    inst, res = solved
    h = res.schedule.helper
    a, b = np.flatnonzero(h == h[0])[:2]
    fwd = res.schedule.fwd_start.copy()
    fwd[b] = fwd[a] = max(fwd[a], fwd[b])  # two forward tasks at the same time on one helper
    assert "overlap" in check_schedule(inst, _with(res.schedule, fwd_start=fwd)).kinds


def test_memory_violation(solved):
    inst, res = solved
    everyone_on_0 = np.zeros(inst.num_clients, dtype=int)
    assert inst.mem_demand.sum() > inst.mem_capacity[0]
    assert "memory" in check_schedule(inst, _with(res.schedule, helper=everyone_on_0)).kinds


def test_duration_violation(solved):
    inst, res = solved
    pieces = list(res.schedule.bwd_pieces)
    s, e = pieces[2][0]
    pieces[2] = ((s, e - 0.5),)
    assert "duration" in check_schedule(inst, _with(res.schedule, bwd_pieces=tuple(pieces))).kinds


def test_wrong_makespan_violation(solved):
    inst, res = solved
    assert "makespan" in check_schedule(inst, res.schedule, res.makespan * 0.99).kinds
    with pytest.raises(InfeasibleScheduleError, match="makespan"):
        assert_feasible(inst, res.schedule, res.makespan * 0.99)


def test_assignment_violation(solved):
    inst, res = solved
    bad = res.schedule.helper.copy()
    bad[0] = inst.num_helpers  # no such helper
    assert check_schedule(inst, _with(res.schedule, helper=bad)).kinds == {"assignment"}


def test_preemptive_pieces_are_checked_for_overlap(solved):
    inst, res = solved
    j = 0
    ((s, e),) = res.schedule.bwd_pieces[j]
    mid = (s + e) / 2
    other = int(np.flatnonzero(res.schedule.helper == res.schedule.helper[j])[1])
    pieces = list(res.schedule.bwd_pieces)
    pieces[j] = ((s, mid), (res.schedule.fwd_start[other], res.schedule.fwd_start[other] + e - mid))
    rep = check_schedule(inst, _with(res.schedule, bwd_pieces=tuple(pieces)))
    assert "overlap" in rep.kinds and "duration" not in rep.kinds


def test_every_kind_is_covered():
    assert set(VIOLATION_KINDS) == {
        "assignment",
        "memory",
        "release",
        "duration",
        "precedence",
        "overlap",
        "makespan",
    }
