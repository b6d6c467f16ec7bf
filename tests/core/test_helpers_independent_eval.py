"""Every solver's schedule judged by a second, independent evaluation of the helper problem.

``evaluate`` below is written from the problem statement (methods §5) with plain Python loops and
shares no code with ``psl_core.helpers`` (not its checker, not its schedule model, not its
makespan): it re-derives feasibility and the makespan from the raw instance arrays and the
schedule's pieces. Solvers must return schedules it accepts, with the makespan it computes, and no
reported lower bound may exceed that makespan.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from psl_core.helpers import VARIANTS, HelperInstance, Schedule, chain_bound, generate_instance, solve
from psl_core.helpers.bounds import lower_bound

TOL = 1e-6  # ms, fixed (does not grow with the horizon)
MEM_RTOL = 1e-9  # "exactly full" memory must fit even when the sums are taken in another order
CHEAP_LNS = {"iterations": 4, "pair_dtime": 0.05, "triple_dtime": 0.05, "ls_steps": 200, "full_dtime": 0.2}


def evaluate(inst: HelperInstance, sched: Schedule, variant: str) -> tuple[list[str], float]:
    """(problems, makespan) of ``sched`` from first principles; makespan is NaN when undefined."""
    k, h = len(inst.release), len(inst.release[0])
    problems: list[str] = []
    helper = [int(x) for x in np.asarray(sched.helper).tolist()]
    if len(helper) != k or any(m < 0 or m >= h for m in helper):
        return ["assignment"], math.nan
    load = [0.0] * h
    for j in range(k):
        load[helper[j]] += float(inst.mem_demand[j])
    for m in range(h):
        if load[m] > float(inst.mem_capacity[m]) * (1 + MEM_RTOL):
            problems.append(f"memory of helper {m}")
    busy: list[list[tuple[float, float]]] = [[] for _ in range(h)]
    makespan = -math.inf
    for j in range(k):
        m = helper[j]
        tasks = {"fwd": list(sched.fwd_pieces[j]), "bwd": list(sched.bwd_pieces[j])}
        need = {"fwd": float(inst.p_fwd[j][m]), "bwd": float(inst.p_bwd[j][m])}
        for name, pieces in tasks.items():
            if not pieces or any(not (math.isfinite(s) and math.isfinite(e)) for s, e in pieces):
                return problems + [f"client {j} {name}: missing or non-finite pieces"], math.nan
            if variant == "non_preemptive" and len(pieces) != 1:
                problems.append(f"client {j} {name}: split in the non-preemptive variant")
            total, last_end = 0.0, -math.inf
            for s, e in pieces:
                if e < s or s < last_end - TOL:
                    problems.append(f"client {j} {name}: pieces out of order")
                total += e - s
                last_end = e
                if e > s:
                    busy[m].append((float(s), float(e)))
            if abs(total - need[name]) > TOL:
                problems.append(f"client {j} {name}: runs {total}, needs {need[name]}")
        if tasks["fwd"][0][0] < float(inst.release[j][m]) - TOL:
            problems.append(f"client {j}: forward before its release")
        if tasks["bwd"][0][0] < tasks["fwd"][-1][1] + float(inst.gap[j][m]) - TOL:
            problems.append(f"client {j}: backward before forward end + gap")
        makespan = max(makespan, tasks["bwd"][-1][1] + float(inst.tail[j][m]))
    for m in range(h):  # one task at a time: sweep the pieces by start, remembering the latest end
        latest = -math.inf
        for s, e in sorted(busy[m]):
            if s < latest - TOL:
                problems.append(f"helper {m}: two tasks at once near {s}")
            latest = max(latest, e)
    return problems, makespan


def independent_chain_bound(inst: HelperInstance) -> float:
    """max over clients of min over helpers that can hold it alone of its whole chain there."""
    k, h = inst.release.shape
    best = []
    for j in range(k):
        fits = [m for m in range(h) if inst.mem_demand[j] <= inst.mem_capacity[m] * (1 + MEM_RTOL)]
        best.append(
            min(
                inst.release[j, m] + inst.p_fwd[j, m] + inst.gap[j, m] + inst.p_bwd[j, m] + inst.tail[j, m]
                for m in fits
            )
        )
    return max(best)


def assert_judged_ok(inst: HelperInstance, res, variant: str) -> float:
    problems, makespan = evaluate(inst, res.schedule, variant)
    assert not problems, (res.method, variant, problems[:5])
    assert abs(res.makespan - makespan) <= TOL, (res.method, res.makespan, makespan)
    if res.lower_bound is not None:
        assert res.lower_bound <= makespan + TOL, (res.method, res.lower_bound, makespan)
    return makespan


# ---- the evaluator itself must catch every kind of fault --------------------------------------


@pytest.fixture(scope="module")
def solved():
    inst = generate_instance("corrected", "high", 8, 2, model="vgg19", seed=3)
    return inst, solve(inst, "local_search", variant="non_preemptive")


def _replace(sched: Schedule, j: int, fwd=None, bwd=None) -> Schedule:
    fwd_pieces, bwd_pieces = list(sched.fwd_pieces), list(sched.bwd_pieces)
    if fwd is not None:
        fwd_pieces[j] = fwd
    if bwd is not None:
        bwd_pieces[j] = bwd
    return Schedule(np.asarray(sched.helper).copy(), tuple(fwd_pieces), tuple(bwd_pieces))


def test_evaluator_accepts_the_solution_and_catches_each_fault(solved):
    inst, res = solved
    assert evaluate(inst, res.schedule, "non_preemptive")[0] == []
    sched = res.schedule
    j = int(np.argmax(sched.bwd_end))
    m = int(sched.helper[j])
    (fs, fe), (bs, be) = sched.fwd_pieces[j][0], sched.bwd_pieces[j][0]
    early = inst.release[j, m] - 1.0
    faults = {
        "release": _replace(sched, j, fwd=((early, early + fe - fs),)),
        "precedence": _replace(sched, j, bwd=((fe, fe + be - bs),)) if inst.gap[j, m] > 0 else None,
        "duration": _replace(sched, j, bwd=((bs, be + 1.0),)),
        "split": _replace(sched, j, bwd=((bs, bs + (be - bs) / 2), (be + 5, be + 5 + (be - bs) / 2))),
        "nan": _replace(sched, j, bwd=((math.nan, be),)),
    }
    others = [i for i in range(inst.num_clients) if sched.helper[i] == m and i != j]
    if others:  # put another task of the same helper on top of this backward task
        i = others[0]
        (ibs, ibe) = sched.bwd_pieces[i][0]
        faults["overlap"] = _replace(sched, i, bwd=((bs, bs + ibe - ibs),))
    for name, bad in faults.items():
        if bad is not None:
            assert evaluate(inst, bad, "non_preemptive")[0], name
    # a split task is legal in the preemptive variant (when its pieces collide with nothing)
    assert evaluate(inst, faults["split"], "preemptive")[1] > res.makespan
    full = Schedule(np.zeros(inst.num_clients, dtype=int), sched.fwd_pieces, sched.bwd_pieces)
    if inst.mem_demand.sum() > inst.mem_capacity[0] * (1 + MEM_RTOL):
        assert any("memory" in p for p in evaluate(inst, full, "non_preemptive")[0])


# ---- every solver, both variants, both scenarios ----------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(
    "scenario, model, het, k, h, seed",
    [
        ("corrected", "vgg19", "low", 12, 3, 0),
        ("corrected", "resnet101", "high", 10, 2, 1),
        ("tirana2024", "vgg19", "high", 10, 3, 42),
        ("tirana2024", "resnet101", "low", 12, 2, 43),
    ],
)
def test_every_solver_passes_the_independent_evaluation(scenario, model, het, k, h, seed, variant):
    inst = generate_instance(scenario, het, k, h, model=model, seed=seed)
    chain = independent_chain_bound(inst)
    assert chain_bound(inst) == pytest.approx(chain, rel=1e-12)
    bound = lower_bound(inst, rounds=2, dtime_per_round=0.2).value
    makespans = {}
    for method in ("baseline", "greedy", "decomposition", "local_search", "lns"):
        res = solve(inst, method, variant=variant, seed=seed, **(CHEAP_LNS if method == "lns" else {}))
        makespans[method] = assert_judged_ok(inst, res, variant)
        assert makespans[method] >= max(chain, bound) - TOL, method
    exact = solve(inst, "exact", variant=variant, seed=seed, dtime=1.0, hint=None)
    assert_judged_ok(inst, exact, variant)
    assert exact.lower_bound is not None
    assert makespans["lns"] <= makespans["local_search"] + TOL  # LNS starts from local search


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("seed", range(3))
def test_exact_and_brute_force_agree_with_the_evaluation_on_tiny_instances(variant, seed):
    inst = generate_instance("corrected", "high", 4, 2, model="vgg19", seed=seed)
    brute = solve(inst, "brute_force", variant=variant)
    optimum = assert_judged_ok(inst, brute, variant)
    for method in ("baseline", "greedy", "decomposition", "local_search", "lns"):
        res = solve(inst, method, variant=variant, seed=seed, **(CHEAP_LNS if method == "lns" else {}))
        assert assert_judged_ok(inst, res, variant) >= optimum - TOL, method
    assert lower_bound(inst, rounds=2, dtime_per_round=0.2).value <= optimum + TOL


@st.composite
def tight_instances(draw):
    """Random instances whose memory is tight: capacities sized from a random feasible assignment."""
    k, h = draw(st.integers(1, 8)), draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    demand = rng.uniform(0.5, 3.0, k)
    owner = rng.integers(0, h, k)
    capacity = np.bincount(owner, weights=demand, minlength=h)
    capacity = np.maximum(capacity, demand.max()) * draw(st.sampled_from([1.0, 1.05, 1.5]))
    ms = lambda lo, hi: rng.uniform(lo, hi, (k, h)) * rng.choice([0.0, 1.0], (k, h), p=[0.1, 0.9])  # noqa: E731
    return HelperInstance(
        release=ms(0, 40), p_fwd=ms(1, 30), gap=ms(0, 40), p_bwd=ms(1, 60), tail=ms(0, 40),
        mem_demand=demand, mem_capacity=capacity,
    )  # fmt: skip


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inst=tight_instances(), variant=st.sampled_from(VARIANTS))
def test_fuzzed_tight_memory_schedules_pass_the_independent_evaluation(inst, variant):
    chain = independent_chain_bound(inst)
    for method in ("baseline", "greedy", "decomposition", "local_search", "lns"):
        res = solve(inst, method, variant=variant, seed=0, **(CHEAP_LNS if method == "lns" else {}))
        assert assert_judged_ok(inst, res, variant) >= chain - TOL, method


@pytest.mark.parametrize("scenario, seed", [("corrected", 2), ("tirana2024", 44)])
def test_the_benchmarks_pipeline_passes_the_independent_evaluation(scenario, seed):
    """As bench/bench_helpers.py runs 'ours': LNS, the full model with the relaxation's cuts from its
    schedule, then the preemptive LNS continued from that schedule without its own local search."""
    from psl_core.helpers.bounds import relaxation_bound

    inst = generate_instance(scenario, "high", 10, 3, model="vgg19", seed=seed)
    lns = solve(inst, "lns", variant="non_preemptive", seed=seed, **{**CHEAP_LNS, "full_pairs": 0})
    upper = assert_judged_ok(inst, lns, "non_preemptive")
    relax, cuts = relaxation_bound(inst, upper_bound=upper, seed=seed, rounds=2, dtime_per_round=0.2)
    exact = solve(inst, "exact", variant="non_preemptive", seed=seed, dtime=0.5, hint=lns.schedule, cuts=cuts)
    best_np = assert_judged_ok(inst, exact, "non_preemptive")
    assert best_np <= upper + TOL  # never worse than its hint
    assert max(relax, exact.lower_bound) <= best_np + TOL
    lns_p = solve(
        inst, "lns", variant="preemptive", seed=seed, start=exact.schedule, **{**CHEAP_LNS, "ls_steps": 0}
    )
    assert assert_judged_ok(inst, lns_p, "preemptive") <= best_np + TOL  # continues from its start
    assert relax <= lns_p.makespan + TOL
