"""Benchmark of the split planner (issue 16): plan time and step time of every method vs the exact plan.

    PYTHONPATH=. .venv/bin/python bench/bench_planner.py            # the tables of docs/results.md
    PYTHONPATH=. .venv/bin/python bench/bench_planner.py --quick    # fewer seeds

Instances: K clients drawn (seeded) from the shipped catalog's four client devices (Raspberry Pi
4B / 3B+, Jetson CPU / GPU), server ``vm``, vanilla PSL with b = 8 samples per client and step, a
shared uplink of W = 10 Mbit/s per client on average (W = 10 K Mbit/s), Fashion-MNIST-shaped
models of the zoo. Clients of one device are one class (the planner's decision space: a cut and a
per-client share per device group). Every plan is evaluated by the same time model.

Part 1 — per K and model: plan seconds of each method (median of the repeats) and its step time
relative to the exact optimum; where the alternating method stops above the optimum, the classes
whose cuts differ. Part 2 — per-client decisions (one class per client, K = 8): the same on random
seeds. Part 3 — why branch and bound: the per-client bisection of the single-bottleneck model
(for a target, every client takes the cut needing the least uplink share; the server's work is
blind to the cuts) against the exact optimum on random small instances.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from psl_core.devices import load_catalog  # noqa: E402
from psl_core.models import cut_table, profile_arch  # noqa: E402
from psl_core.planner import (  # noqa: E402
    CutCosts,
    best_shares,
    build_instance,
    compare_methods,
    plan_alternating,
    plan_exact,
    plan_one_cut,
    plan_per_device,
)
from psl_core.planner.shares import _needs  # noqa: E402
from psl_core.planner.step_time import phase_terms  # noqa: E402

CLIENT_DEVICES = ("rpi4b", "rpi3bplus", "jetson_cpu", "jetson_gpu")
SAMPLES_PER_CLIENT = 8
MBPS_PER_CLIENT = 10.0
METHODS = ("exact", "one_cut", "per_device", "alternating")


def catalog_instance(arch: str, k: int, seed: int, *, per_client: bool = False):
    catalog = load_catalog()
    profile = profile_arch(arch, (1, 28, 28), 10)
    cuts = CutCosts.from_summaries(cut_table(profile), profile=profile)
    devices = np.random.default_rng(seed).choice(CLIENT_DEVICES, size=k)
    return build_instance(
        cuts,
        list(devices),
        [SAMPLES_PER_CLIENT] * k,
        catalog=catalog,
        server_device=catalog["vm"],
        uplink_mbps=MBPS_PER_CLIENT * k,
        class_of=list(range(k)) if per_client else None,
    )


def timed(fn, repeats: int, *args):
    """(result, median CPU seconds): CPU time, because the 2-core machine is shared with other jobs
    (wall time under contention measures the neighbours, not the planner)."""
    times, result = [], None
    for _ in range(repeats):
        began = time.process_time()
        result = fn(*args)
        times.append(time.process_time() - began)
    return result, statistics.median(times)


def part1(seeds: range, repeats: int) -> pd.DataFrame:
    rows = []
    for arch in ("cnn", "resnet8", "resnet20"):
        for k in (10, 100, 10_000):
            for seed in seeds:
                inst, build_s = timed(catalog_instance, 1, arch, k, seed)
                comparison = compare_methods(inst)  # warm-up and the seeds of the exact search
                exact = comparison.exact
                plans = {
                    "exact": timed(plan_exact, repeats, inst),
                    "one_cut": timed(plan_one_cut, repeats, inst),
                    "per_device": timed(plan_per_device, repeats, inst),
                    "alternating": timed(plan_alternating, repeats, inst),
                }
                assert plans["exact"][0].optimal
                row = {"model": arch, "K": k, "seed": seed, "classes": inst.num_classes, "build s": build_s}
                for m in METHODS:
                    plan, seconds = plans[m]
                    row[f"{m} s"] = seconds
                    row[f"{m} ×"] = np.nan if plan is None else plan.step_time_s / exact.step_time_s
                ao = plans["alternating"][0]
                stuck = [
                    f"{inst.label[g]} {int(inst.cuts.cut[ao.cut_index[g]])}→{int(inst.cuts.cut[exact.cut_index[g]])}"
                    for g in range(inst.num_classes)
                    if ao.cut_index[g] != exact.cut_index[g]
                ]
                row["AO stuck at"] = (
                    "; ".join(stuck) if stuck else ("shares only" if row["alternating ×"] > 1 + 1e-9 else "-")
                )
                row["exact step s"] = exact.step_time_s
                rows.append(row)
    return pd.DataFrame(rows)


def part2(seeds: range) -> pd.DataFrame:
    rows = []
    for seed in seeds:
        inst = catalog_instance("cnn", 8, seed, per_client=True)
        exact, seconds = timed(plan_exact, 1, inst)
        row = {"seed": seed, "exact s": seconds, "nodes": exact.iterations, "optimal": exact.optimal}
        for m, fn in (
            ("one_cut", plan_one_cut),
            ("per_device", plan_per_device),
            ("alternating", plan_alternating),
        ):
            plan = fn(inst)
            row[f"{m} ×"] = plan.step_time_s / exact.step_time_s
        rows.append(row)
    return pd.DataFrame(rows)


def random_instance(rng, classes: int, cuts: int):
    """The same random family as the exact-vs-brute-force test (server 5-100x a client's speed)."""
    from psl_core.planner import PlanningInstance

    client_flops = np.sort(rng.uniform(0, 1e9, cuts))
    total = client_flops[-1] * rng.uniform(1.0, 1.5)
    cost = CutCosts(
        cut=np.arange(1, cuts + 1),
        name=tuple(f"b{i}" for i in range(cuts)),
        client_flops=client_flops,
        server_flops=total - client_flops,
        bytes_up=rng.uniform(1e3, 1e5, cuts),
        bytes_down=rng.uniform(1e3, 1e5, cuts),
        client_param_bytes=np.sort(rng.uniform(0, 1e6, cuts)),
        client_activation_bytes=rng.uniform(1e3, 1e5, cuts),
        full_model_flops=total,
        full_model_param_bytes=2e6,
        full_model_activation_bytes=1e6,
    )
    count = np.ones(classes)
    samples = rng.integers(1, 9, classes).astype(float)
    return PlanningInstance(
        cuts=cost,
        label=tuple(f"c{g}" for g in range(classes)),
        device_id=tuple(f"d{g}" for g in range(classes)),
        count=count,
        samples=samples,
        total_samples=samples,
        speed=rng.uniform(1e9, 5e10, classes),
        up_bps=rng.uniform(1e6, 1e8, classes),
        down_bps=rng.uniform(1e6, 1e8, classes),
        latency_s=rng.uniform(0, 0.01, classes),
        memory_bytes=np.full(classes, 1e15),
        power_busy_w=np.ones(classes),
        power_radio_w=np.ones(classes),
        share_cap=np.full(classes, np.inf),
        server_speed=rng.uniform(5e9, 1e11),
        uplink_bps=rng.uniform(1e6, 1e8),
    )


def server_blind_bisection(inst) -> float:
    """SPEC §7's bisection as if the step had one bottleneck and the server's work ignored the cuts:
    for phase deadlines (the downlink/backward and sync maxima are enumerated over their candidate
    values, the forward deadline bisected), every client takes the cut needing the least uplink
    share; the resulting cuts are then given their optimal shares and timed by the time model."""
    c = inst.cuts.num_cuts
    every = np.tile(np.arange(c)[:, None], (1, inst.num_classes))
    t = phase_terms(inst, every)  # (C, G)
    best = np.inf
    for tau_d in np.unique(t.delta):
        for tau_y in np.unique(t.y + t.pi):  # sync deadline candidates (with the whole uplink)
            allowed = (t.delta <= tau_d) & (t.y < tau_y)
            if not allowed.any(axis=0).all():
                continue
            lo, hi = 0.0, float((t.a + t.alpha).max() * inst.num_classes + 1.0)
            for _ in range(80):
                mid = 0.5 * (lo + hi)
                need = np.maximum(_needs(np.full(c, mid), t.a, t.alpha), _needs(np.full(c, tau_y), t.y, t.pi))
                need = np.where(allowed, need, np.inf)
                if (inst.count * need.min(axis=0)).sum() <= 1:
                    hi = mid
                else:
                    lo = mid
            need = np.maximum(_needs(np.full(c, hi), t.a, t.alpha), _needs(np.full(c, tau_y), t.y, t.pi))
            cuts = np.where(allowed, need, np.inf).argmin(axis=0)
            best = min(best, float(best_shares(inst, cuts)[0][0]))
    return best


def part3(count: int) -> dict:
    gaps = []
    for seed in range(count):
        rng = np.random.default_rng([seed, 2024])
        inst = random_instance(rng, int(rng.integers(2, 4)), int(rng.integers(2, 5)))
        exact = plan_exact(inst).step_time_s
        combos = np.array(list(itertools.product(range(inst.cuts.num_cuts), repeat=inst.num_classes)))
        assert abs(best_shares(inst, combos)[0].min() - exact) <= 1e-9 * exact
        gaps.append(server_blind_bisection(inst) / exact - 1)
    gaps = np.array(gaps)
    return {
        "instances": count,
        "bisection misses the optimum (> 1e-9)": int((gaps > 1e-9).sum()),
        "median gap when it misses": float(np.median(gaps[gaps > 1e-9])) if (gaps > 1e-9).any() else 0.0,
        "worst gap": float(gaps.max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one seed, one repeat")
    args = parser.parse_args()
    seeds = range(1) if args.quick else range(3)
    repeats = 1 if args.quick else 3
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    one = part1(seeds, repeats)
    cols = (
        ["model", "K", "classes", "build s"] + [f"{m} s" for m in METHODS] + [f"{m} ×" for m in METHODS[1:]]
    )
    summary = one.groupby(["model", "K"], sort=False)[cols[2:]].agg(
        {
            **{c: "median" for c in cols[2:] if c.endswith(" s") or c == "classes"},
            **{f"{m} ×": "max" for m in METHODS[1:]},
        }
    )
    print("Part 1 — plan CPU seconds (median) and step time / exact (worst over seeds)")
    print(summary.to_string(float_format=lambda v: f"{v:.4g}"))
    print("\nWhere the alternating method stops (cut of a class: AO → exact), per seed")
    print(
        one[["model", "K", "seed", "alternating ×", "AO stuck at"]].to_string(
            index=False, float_format=lambda v: f"{v:.4f}"
        )
    )
    print("\nPart 2 — per-client decisions, K = 8 (one class per client), CNN")
    print(part2(range(5 if not args.quick else 2)).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print("\nPart 3 — per-client bisection (server-blind) vs the exact plan, random small instances")
    for key, value in part3(40 if not args.quick else 10).items():
        print(f"  {key}: {value:.4g}" if isinstance(value, float) else f"  {key}: {value}")


if __name__ == "__main__":
    main()
