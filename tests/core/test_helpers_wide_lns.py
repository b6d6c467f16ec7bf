"""Wide LNS neighbourhoods (the last phase of our pipeline) and the benchmark's reference rows.

Schedules are judged by the independent evaluation of ``test_helpers_independent_eval`` (no code
shared with psl_core.helpers), never by the solver's own makespan.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from psl_core.helpers import VARIANTS, HelperInputError, generate_instance, solve
from psl_core.helpers.bounds import memory_units, relaxation_bound, time_unit
from psl_core.helpers.instance import Schedule
from psl_core.helpers.solvers.cpsat_model import solve_cpsat
from tests.bench_scripts import load_bench_script
from tests.core.test_helpers_independent_eval import evaluate

WIDE = {"iterations": 0, "ls_steps": 0, "full_pairs": 0, "wide_iterations": 4, "wide_dtime": 0.3,
        "wide_free": 0.3, "wide_patience": 4}  # fmt: skip
ROOT = Path(__file__).resolve().parents[2]


def _bench():
    return load_bench_script("bench_helpers")


@pytest.fixture(scope="module")
def inst():
    return generate_instance("corrected", "high", 14, 3, model="vgg19", seed=3)


@pytest.mark.parametrize("variant", VARIANTS)
def test_wide_phase_never_worse_than_its_start_and_its_makespan_is_the_schedules(inst, variant):
    start = solve(inst, "greedy", variant="non_preemptive", seed=0)  # FCFS: non-preemptive, so valid for both
    res = solve(inst, "lns", variant=variant, seed=0, start=start.schedule, **WIDE)
    problems, makespan = evaluate(inst, res.schedule, variant)
    assert problems == []
    assert res.makespan == pytest.approx(makespan, rel=1e-12, abs=1e-9)
    assert res.makespan < start.makespan * (1 - 1e-6)  # greedy + FCFS is far from good on this instance
    assert res.stats["lns_tried"] >= 1


def test_wide_phase_is_reproducible_to_the_last_digit(inst):
    start = solve(inst, "greedy", variant="non_preemptive", seed=0).schedule
    a = solve(inst, "lns", variant="non_preemptive", seed=5, start=start, **WIDE)
    b = solve(inst, "lns", variant="non_preemptive", seed=5, start=start, **WIDE)
    assert a.makespan == b.makespan
    assert np.array_equal(a.schedule.helper, b.schedule.helper)
    assert a.schedule.fwd_pieces == b.schedule.fwd_pieces and a.schedule.bwd_pieces == b.schedule.bwd_pieces


def test_wide_phase_spends_nothing_once_the_bound_is_within_the_target(inst):
    start = solve(inst, "greedy", variant="non_preemptive", seed=0)
    near = start.makespan * (1 - 0.004)  # a claimed bound 0.4 % below: within a 0.5 % target
    res = solve(inst, "lns", variant="non_preemptive", seed=0, start=start.schedule, lower_bound=near,
                target_gap=0.005, **{k: v for k, v in WIDE.items() if k != "target_gap"})  # fmt: skip
    assert res.stats["lns_tried"] == 0
    assert res.makespan == start.makespan
    far = solve(inst, "lns", variant="non_preemptive", seed=0, start=start.schedule,
                lower_bound=start.makespan * 0.5, target_gap=0.005, **WIDE)  # fmt: skip
    assert far.stats["lns_tried"] >= 1


def test_non_preemptive_start_is_kept_without_local_search_and_a_split_start_is_refused(inst):
    greedy = solve(inst, "greedy", variant="non_preemptive", seed=0)
    kept = solve(inst, "lns", variant="non_preemptive", seed=0, start=greedy.schedule,
                 **{**WIDE, "wide_iterations": 0})  # fmt: skip
    assert kept.makespan == greedy.makespan  # no phase ran: the start itself comes back
    s = greedy.schedule
    (a, b) = s.fwd_pieces[0][0]
    split = Schedule(
        s.helper, ((((a, (a + b) / 2), ((a + b) / 2, b))),) + tuple(s.fwd_pieces[1:]), s.bwd_pieces
    )
    with pytest.raises(HelperInputError, match="non-preemptive start"):
        solve(inst, "lns", variant="non_preemptive", seed=0, start=split, **WIDE)


def test_cpsat_keeps_fixed_clients_on_their_helper(inst):
    k, h = inst.num_clients, inst.num_helpers
    greedy = solve(inst, "greedy", variant="non_preemptive", seed=0)
    dem, cap = memory_units(inst)
    unit = time_unit(inst, greedy.makespan)
    fixed = {j: int(greedy.schedule.helper[j]) for j in range(0, k, 2)}  # every other client pinned
    res = solve_cpsat(inst, np.arange(k), np.arange(h), cap, dem, unit, int(greedy.makespan / unit) + 2,
                      dtime=0.5, fixed=fixed)  # fmt: skip
    assert res.sequences is not None
    where = {j: hh for hh, seq in res.sequences.items() for _, j in seq}
    assert all(where[j] == hh for j, hh in fixed.items())
    assert sorted(where) == list(range(k))


def test_reference_rows_join_the_best_known_and_raise_only_the_non_preemptive_bound():
    bench = _bench()
    key = {"scenario": "corrected", "model": "vgg19", "het": "high", "K": 20, "H": 5, "seed": 0}
    rows = []
    for variant, ours, other in (("non_preemptive", 100.0, 120.0), ("preemptive", 98.0, 110.0)):
        for method, mk in (("ours", ours), ("baseline", other)):
            rows.append({**key, "variant": variant, "method": method, "makespan": mk, "bound": 90.0,
                         "time_s": 1.0, "relax_s": 0.1, "best_known": ours})  # fmt: skip
    grid = pd.DataFrame(rows)
    ref = pd.DataFrame([
        {**key, "variant": v, "method": "reference", "makespan": 97.0, "reference_bound": b, "dtime": 30.0,
         "cpu_s": 5.0, "time_s": 5.0}
        for v, b in (("non_preemptive", 95.0), ("preemptive", float("nan")))
    ])  # fmt: skip
    out = bench.add_reference(grid, ref)
    assert len(out) == len(grid) + 2
    assert set(out["best_known"]) == {97.0}  # a non-preemptive schedule counts for both variants
    assert set(out.loc[out["variant"] == "non_preemptive", "bound"]) == {95.0}
    assert set(out.loc[out["variant"] == "preemptive", "bound"]) == {90.0}  # its bound is non-preemptive only
    assert bench.add_reference(grid, ref.iloc[0:0]).equals(grid)


@pytest.mark.parametrize("seed", range(4))
def test_more_cut_rounds_only_raise_the_bound_and_never_past_the_preemptive_optimum(seed):
    tiny = generate_instance("corrected", "high", 4, 2, model="vgg19", seed=300 + seed)
    optimum = solve(tiny, "brute_force", variant="preemptive").makespan  # below the non-preemptive one
    first, cuts = relaxation_bound(tiny, rounds=1)
    more, more_cuts = relaxation_bound(tiny, rounds=10, cuts=cuts)
    assert more >= first * (1 - 1e-12)
    assert more_cuts[: len(cuts)] == cuts  # an earlier call's cuts are kept, in order
    assert more <= optimum * (1 + 1e-12)
    # pruned by the optimum itself, the relaxation may prove it (bound = optimum) but never exceed it
    pruned, _ = relaxation_bound(tiny, upper_bound=optimum, rounds=10, cuts=cuts)
    assert first * (1 - 1e-12) <= pruned <= optimum * (1 + 1e-12)
