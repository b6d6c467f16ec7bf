"""Benchmark of the helper-scheduling solvers on the paper's grid (SPEC §5, issue 6).

    .venv/bin/python bench/bench_helpers.py --quick            # 2 seeds, K in {20, 50}, H = 5
    .venv/bin/python bench/bench_helpers.py --out docs/results_helpers.md   # full grid, 10 seeds

Prints, per cell (model, heterogeneity, K, H), the mean makespan of each method relative to the
baseline (random + FCFS), the mean solve time, and whether our local search is no worse than the
decomposition on average. Gaps against the exact CP-SAT model are measured on small instances
(K = 8, H = 2 and K = 12, H = 3, time-limited) where it can prove optimality. Ends with the
K = 1000, H = 50 scaling line.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from psl_core.helpers import SCENARIO_GENERATORS, check_schedule, solve  # noqa: E402

METHODS = ("baseline", "greedy", "decomposition", "local_search")


def run_cell(model: str, het: str, k: int, h: int, seeds: range, ls_limit: float) -> dict:
    rel = {m: [] for m in METHODS}
    times = {m: [] for m in METHODS}
    for seed in seeds:
        inst = SCENARIO_GENERATORS[het](k, h, model=model, seed=seed)
        base = None
        for m in METHODS:
            res = solve(inst, m, seed=seed, **({"time_limit_s": ls_limit} if m == "local_search" else {}))
            rep = check_schedule(inst, res.schedule, res.makespan)
            if not rep.feasible:
                raise SystemExit(f"infeasible schedule from {m}: {rep.violations[:3]}")
            base = res.makespan if m == "baseline" else base
            rel[m].append(res.makespan / base)
            times[m].append(res.solve_time_s)
    row = {"model": model, "het": het, "K": k, "H": h}
    for m in METHODS:
        row[f"{m} rel"] = float(np.mean(rel[m]))
    for m in METHODS:
        row[f"{m} s"] = float(np.mean(times[m]))
    row["best vs base"] = 1 - min(min(rel["local_search"]), 1.0)
    row["LS<=decomp"] = bool(np.mean(rel["local_search"]) <= np.mean(rel["decomposition"]) + 1e-12)
    return row


def gap_rows(seeds: range, exact_limit: float) -> pd.DataFrame:
    rows = []
    for model in ("resnet101", "vgg19"):
        for het in ("low", "high"):
            for k, h in ((8, 2), (12, 3)):
                for seed in seeds:
                    inst = SCENARIO_GENERATORS[het](k, h, model=model, seed=seed)
                    ls = solve(inst, "local_search", seed=seed)
                    ex = solve(inst, "exact", time_limit_s=exact_limit, hint=ls.schedule)
                    assert check_schedule(inst, ex.schedule, ex.makespan).feasible
                    row = {
                        "model": model,
                        "het": het,
                        "K": k,
                        "H": h,
                        "seed": seed,
                        "exact status": ex.status,
                    }
                    row["exact gap"] = ex.gap
                    for m in METHODS:
                        res = ls if m == "local_search" else solve(inst, m, seed=seed)
                        row[f"{m} vs exact"] = res.makespan / ex.makespan - 1
                    rows.append(row)
    df = pd.DataFrame(rows)
    cols = ["exact gap"] + [f"{m} vs exact" for m in METHODS]
    opt = df[df["exact status"] == "OPTIMAL"]
    out = opt.groupby(["model", "het", "K", "H"])[cols].mean()
    out["proved optimal"] = df.groupby(["model", "het", "K", "H"])["exact status"].apply(
        lambda s: f"{(s == 'OPTIMAL').sum()}/{len(s)}"
    )
    return out.reset_index()


def scaling_line(ls_limit: float) -> str:
    inst = SCENARIO_GENERATORS["low"](1000, 50, model="resnet101", seed=0)
    t0 = time.perf_counter()
    res = solve(inst, "local_search", time_limit_s=ls_limit)
    wall = time.perf_counter() - t0
    ok = check_schedule(inst, res.schedule, res.makespan).feasible
    base = solve(inst, "baseline").makespan
    dec = solve(inst, "decomposition")
    return (
        f"K=1000, H=50 (ResNet-101, low het., seed 0): local_search {wall:.2f} s wall "
        f"(limit {ls_limit} s), makespan {res.makespan / 1000:.2f} s vs decomposition "
        f"{dec.makespan / 1000:.2f} s ({dec.solve_time_s:.2f} s) vs baseline {base / 1000:.2f} s; feasible={ok}"
    )


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub markdown table (no tabulate dependency)."""

    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.4f}" if abs(v) < 1 else f"{v:.3f}"
        return str(v)

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 seeds, K in {20, 50}, H = 5, short exact runs")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--ls-limit", type=float, default=5.0, help="local search time limit (s)")
    ap.add_argument("--exact-limit", type=float, default=20.0, help="CP-SAT time limit (s)")
    ap.add_argument("--out", type=Path, default=None, help="write a markdown report here")
    args = ap.parse_args(argv)
    ks, hs, seeds = (
        ((20, 50), (5,), range(2)) if args.quick else ((20, 30, 50, 70), (5, 10), range(args.seeds))
    )
    exact_limit = 5.0 if args.quick else args.exact_limit
    t0 = time.perf_counter()
    rows = [
        run_cell(model, het, k, h, seeds, args.ls_limit)
        for model in ("resnet101", "vgg19")
        for het in ("low", "high")
        for k in ks
        for h in hs
    ]
    grid = pd.DataFrame(rows)
    gaps = gap_rows(range(2) if args.quick else range(5), exact_limit)
    scale = scaling_line(args.ls_limit)
    fmt = {c: "{:.3f}".format for c in grid.columns if c.endswith(" rel")}
    fmt.update({c: "{:.3f}".format for c in grid.columns if c.endswith(" s")})
    fmt["best vs base"] = "{:.1%}".format
    print(grid.to_string(index=False, formatters=fmt))
    print(gaps.to_string(index=False, float_format="{:.4f}".format))
    print(scale)
    print(f"total {time.perf_counter() - t0:.0f} s")
    if args.out:
        cmd = "python bench/bench_helpers.py " + " ".join(argv if argv is not None else sys.argv[1:])
        text = [
            "# Helper scheduling benchmark (SPEC §5)",
            "",
            f"Produced by `{cmd}` ({time.perf_counter() - t0:.0f} s on a shared 2-core machine).",
            "",
            "## Paper grid: makespan relative to the baseline (mean over seeds), solve time (s)",
            "",
            markdown_table(grid),
            "",
            "## Optimality gaps on small instances (mean over the seeds CP-SAT proved optimal)",
            "",
            markdown_table(gaps),
            "",
            "## Scaling",
            "",
            scale,
            "",
        ]
        args.out.write_text("\n".join(text))


if __name__ == "__main__":
    main()
