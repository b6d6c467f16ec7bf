"""Tables and the markdown report of the helper-scheduling grid (used by bench_helpers.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from psl_core.helpers import VARIANTS

METHODS = ("baseline", "greedy", "decomposition", "local_search", "lns", "ours")
INSTANCE_KEYS = ["scenario", "model", "het", "K", "H", "seed"]
PAPER = {"cell": ("tirana2024", "vgg19", "high", 20, 10), "improvement": 0.523}
#: ours' proven gap above which the extra phases run, and "behind the best known" is counted
TARGET_GAP = 0.005
#: Longer runs outside the grid (``--probe``), summarised by hand; its last paragraph joins the summary
PROBE = Path(__file__).resolve().parent / "results" / "helpers_probe.md"
#: CP-SAT deterministic seconds of the independent reference run
REFERENCE_DTIME = 30.0


def cell_table(df: pd.DataFrame, scenario: str, variant: str) -> pd.DataFrame:
    """One row per cell: methods relative to the best known (mean over seeds), LNS gaps per instance."""
    sub = df[(df["scenario"] == scenario) & (df["variant"] == variant)]
    rows = []
    for (model, het, k, h), cell in sub.groupby(["model", "het", "K", "H"], sort=False):
        row = {"model": model, "het": het, "K": k, "H": h}
        for method in METHODS:
            m = cell[cell["method"] == method].sort_values("seed")
            row[f"{method} / best"] = float(np.mean(m["makespan"] / m["best_known"]))
        ref = cell[cell["method"] == "reference"]
        row["reference / best (runs)"] = (
            f"{float(np.mean(ref['makespan'] / ref['best_known'])):.4f} ({len(ref)})" if len(ref) else "–"
        )
        ours = cell[cell["method"] == "ours"].sort_values("seed")
        base = cell[cell["method"] == "baseline"].sort_values("seed")
        mk = ours["makespan"].to_numpy()
        gaps = (mk - ours["bound"].to_numpy()) / mk
        row["ours / best"] = float(np.mean(mk / ours["best_known"].to_numpy()))
        row["ours: gap per seed (%)"] = " / ".join(f"{100 * max(g, 0):.2f}" for g in gaps)
        row["proved optimal"] = f"{int(np.sum(gaps <= 1e-5))}/{len(gaps)}"
        row["ours vs best (max %)"] = 100 * float(np.max(mk / ours["best_known"].to_numpy() - 1))
        row["ours vs baseline (mean %)"] = 100 * float(np.mean(1 - mk / base["makespan"].to_numpy()))
        row["ours s (mean)"] = float(ours["time_s"].mean())
        rows.append(row)
    return pd.DataFrame(rows)


def digest(df: pd.DataFrame) -> str:
    """sha256 of every makespan and bound, in full precision and a fixed order."""
    keys = ["scenario", "model", "het", "K", "H", "seed", "variant", "method"]
    text = df.sort_values(keys)[keys + ["makespan", "bound"]].to_csv(index=False, float_format="%.17g")
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def markdown_table(df: pd.DataFrame) -> str:
    def cell(v: object) -> str:
        if isinstance(v, float) and np.isnan(v):
            return "–"
        if isinstance(v, float):
            return f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"
        return str(v)

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def paper_lines(df: pd.DataFrame) -> list[str]:
    scenario, model, het, k, h = PAPER["cell"]
    cell = df[
        (df["scenario"] == scenario)
        & (df["model"] == model)
        & (df["het"] == het)
        & (df["K"] == k)
        & (df["H"] == h)
    ]
    out = []
    for variant in VARIANTS:
        c = cell[cell["variant"] == variant]
        for seed in sorted(c["seed"].unique()):
            s = c[c["seed"] == seed].set_index("method")["makespan"]
            out.append(
                f"| {variant} | {seed} | {100 * (1 - s['decomposition'] / s['baseline']):.1f} | "
                f"{100 * (1 - s['ours'] / s['baseline']):.1f} | {100 * PAPER['improvement']:.1f} (best case) |"
            )
    return out


def previous_lines(df: pd.DataFrame, previous: pd.DataFrame) -> list[str]:
    """Ours before (``previous`` grid, without the extra phases) and now, on the pairs whose proven gap
    was above 0.5 % before; both judged against today's best known (which includes the reference)."""
    keys = INSTANCE_KEYS + ["variant"]
    old = previous[previous["method"] == "ours"].set_index(keys)
    new = df[df["method"] == "ours"].set_index(keys)
    old_gap = (old["makespan"] - old["bound"]) / old["makespan"]
    failing = old_gap[old_gap > TARGET_GAP].index
    o, n = old.loc[failing], new.loc[failing]
    new_gap = (n["makespan"] - n["bound"]) / n["makespan"]
    best = n["best_known"]
    lines = [
        "| | pairs | proven gap > 0.5 % | proven gap: worst / mean (%) | ours vs best known > 0.5 % | ours vs best "
        "known: worst (%) |",
        "|---|---|---|---|---|---|",
    ]
    for name, mk, gap in (("before", o["makespan"], old_gap.loc[failing]), ("after", n["makespan"], new_gap)):
        vs = mk / best - 1
        lines.append(
            f"| {name} | {len(failing)} | {int((gap > TARGET_GAP).sum())} | {100 * gap.max():.2f} / "
            f"{100 * gap.mean():.2f} | {int((vs > TARGET_GAP).sum())} | {100 * vs.max():.2f} |"
        )
    return lines


def write_report(
    path: Path,
    cmd: str,
    tables: dict,
    df: pd.DataFrame,
    summary: list[str],
    scaling: list[str],
    before: list[str] = (),
) -> None:
    text = [
        "# Helper scheduling: results (methods §5, issue 14)",
        "",
        f"Produced by `nice -n 19 {cmd}` on a shared 2-core machine. Methods, variants, bounds and "
        'scenarios are described in docs/methods.md (section "Helpers").',
        "",
        "## How to read the tables",
        "",
        "- One table per scenario and variant. The two variants are different problems (a preemptive schedule "
        "may interrupt a helper task): numbers are never compared across tables.",
        "- `X / best` = mean over the 3 seeds of makespan(X) / best known makespan of that instance in that "
        "variant (best known = shortest schedule found by any method, the full CP-SAT model included; a "
        "non-preemptive schedule also counts for the preemptive variant).",
        "- `ours` = our strongest pipeline: LNS, then (non-preemptive, K·H <= 200) the full CP-SAT model from its "
        "schedule; in the preemptive variant, LNS continued from the best non-preemptive schedule or the "
        "preemptive local search. `ours: gap per seed` = (makespan - lower bound) / makespan for each seed: the bound is the best "
        "of the chain bound, the CP-SAT assignment relaxation (valid for both variants) and, in the "
        "non-preemptive variant when K·H <= 200 or when the extra phases below ran, the full CP-SAT model's bound (times rounded down, so "
        "valid). `proved optimal` counts gaps <= 0.001 %.",
        "- `ours vs best` = the worst seed's distance from the best known (the `lns / best` column shows LNS "
        "alone); `ours vs baseline` = mean "
        "% shorter makespan than random + FCFS. Budgets: local search up to 2000 steps; LNS 20 CP-SAT "
        "re-solves (0.2 / 0.1 deterministic s each); in the non-preemptive variant of instances with "
        "K·H <= 200 the full CP-SAT model then runs for 2 deterministic s from the LNS schedule (the `exact` "
        "row of the CSV, part of the best known); the preemptive LNS continues from the best non-preemptive "
        "schedule for 3 more re-solves (its time includes what it started from).",
        "- Extra phases of `ours`, only where its proven gap is still above 0.5 % (adaptive, deterministic): "
        "first up to 40 more cut rounds of the assignment relaxation, pruned by ours' makespan (1 deterministic "
        "s each; when no assignment is left below it, that makespan is proven optimal), then wide "
        "neighbourhoods — every helper re-sequenced at once, the clients of every helper at the makespan and a seeded 60 % "
        "(K <= 30) or 30 % (K >= 50) of the others free to change helper, 1 deterministic s each, at most 30 (non-preemptive, stop after "
        "8 fruitless) / 5 (preemptive, after 2) — and, non-preemptive, the full CP-SAT model from the best "
        "schedule for 20 more deterministic s (with the relaxation's cuts); each step only while the gap is above 0.5 %.",
        "- `reference` (column `reference / best (runs)`, rows `reference` in the CSV): an INDEPENDENT long run "
        "on every instance where ours' proven gap exceeded 0.5 % in the grid before these phases existed "
        f"({df[df['method'] == 'reference'].groupby(INSTANCE_KEYS).ngroups} instances): the full non-preemptive CP-SAT model warm-started from local search only — never "
        f"from ours — one worker, {REFERENCE_DTIME:g} deterministic s, fixed seed "
        "(`git show ce082b8:bench/results/helpers_grid.csv > previous.csv; nice -n 19 python bench/bench_helpers.py "
        "--csv previous.csv --reference`, stored in "
        "bench/results/helpers_reference.csv and read by the grid run). It is part of the best known in both "
        "variants (a non-preemptive schedule is a preemptive one); its bound (valid for the non-preemptive "
        "variant only) joins that variant's bound. So `ours vs best` measures ours against a search that "
        "did not start from ours, not only against ours' own components.",
        "- Times are wall-clock on a loaded machine and only indicative; every budget is deterministic.",
        "",
        "## Summary",
        "",
        *[f"- {line}" for line in summary],
        *([f"- {PROBE.read_text().strip().split(chr(10) * 2)[-1]}"] if PROBE.exists() else []),
        "",
    ]
    for (scenario, variant), table in tables.items():
        text += [f"## {scenario} · {variant}", "", markdown_table(table), ""]
    if before:
        text += [
            "## Before and after the extra phases (cut rounds, wide neighbourhoods)",
            "",
            "The (instance, variant) pairs where ours' proven gap was above 0.5 % in the previous grid (`--previous previous.csv`, "
            "the same command without the extra phases), ours then and now, both against today's best known "
            "(reference included) and each with its own bound:",
            "",
            *before,
            "",
        ]
    if PROBE.exists():  # the longer runs of --probe (written by hand from its output: not in the CSV)
        text += [PROBE.read_text().rstrip("\n"), ""]
    text += [
        "## Before and after (issue 14)",
        "",
        "Before, this page reported the local search's best single seed (50.5 % shorter than the baseline, "
        "VGG-19 low) beside the paper's 52.3 % for another cell; in the paper's own cell our old generator "
        "averaged 27.4 %. The local search stopped on wall-clock time (numbers moved with machine load), "
        "valued moves with non-preemptive list rules but could return the decomposition's preemptive "
        "schedule (two variants mixed in one column), and the exact model's 'lower bound' was CP-SAT's bound "
        "on times rounded to the nearest 0.01 ms — above the true optimum in most checked cases, so not a "
        "bound. Now every number above is deterministic, belongs to one variant, and comes with a gap to a "
        "valid bound; the authors' generator is run as written beside ours.",
        "",
        "## Beside the paper",
        "",
        "Tirana et al. report up to 52.3 % shorter makespan than their baseline (VGG-19, high heterogeneity, "
        "K = 20, H = 10); their per-cell results are plotted, not tabulated, so this is the one published "
        "number we compare with. Seed 42 of `tirana2024` is the authors' own instance (their scripts always "
        "seed 42). Our baseline draws its random assignment with the run seed.",
        "",
        "| variant | seed | decomposition vs baseline (%) | ours vs baseline (%) | paper (%) |",
        "|---|---|---|---|---|",
        *paper_lines(df),
        "",
        "## Scaling",
        "",
        "The budget is fixed (steps, re-solves, deterministic seconds), so the schedule does not depend on the "
        "machine; the time does. CPU time counts this process only; wall time was measured under `nice -n 19` "
        "while other work (the dashboard's browser benchmarks) shared the 2 cores, so it may be inflated.",
        "",
        *[f"- {line}" for line in scaling],
        "",
    ]
    path.write_text("\n".join(text))
