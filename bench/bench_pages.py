"""Runs / Live monitor / Compare pages at scale: 200 stored runs and one 200,000-point series.

Times each page's data path (the app/ functions it calls) and an AppTest render of each page against
a temporary SQLite store, prints them against the 2 s target, and counts the rows a live refresh reads
after 500 new steps arrive (it must be 500, not 200,500).

    .venv/bin/python bench/bench_pages.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET_S = 2.0
N_RUNS, N_POINTS = 200, 200_000


def populate(store) -> tuple[int, int]:  # noqa: ANN001
    """200 runs (a few with epoch metrics) and one run with a 200,000-step series; returns (big, other)."""
    from psl_core.config import ExperimentConfig

    methods = ["ugs", "lds", "fls", "fpls"]
    ids = []
    for i in range(N_RUNS):
        config = ExperimentConfig(name=f"run-{i}", seed=i % 3, sampling={"method": methods[i % 4]})
        ids.append(
            store.create_run(
                name=config.name, config=config.model_dump(mode="json"), seed=i % 3, tags=[methods[i % 4]]
            )
        )
        store.add_epoch_metrics(
            ids[-1], [{"epoch": e, "step": 100 * (e + 1), "test_acc": 0.5 + 0.04 * e} for e in range(10)]
        )
    big, other = ids[0], ids[1]
    rng = np.random.default_rng(0)
    steps = np.arange(1, N_POINTS + 1)
    loss = 2.0 / np.sqrt(steps) + rng.normal(0, 0.01, N_POINTS)
    for start in range(0, N_POINTS, 20_000):
        sl = slice(start, start + 20_000)
        rows = [
            {
                "step": int(s),
                "epoch": int((s - 1) // 1000),
                "loss": float(v),
                "deviation": 0.1,
                "sim_step_time": 0.05,
                "sim_time": 0.05 * float(s),
                "wall_time": 0.001 * float(s),
            }
            for s, v in zip(steps[sl], loss[sl])
        ]
        store.add_step_metrics(big, rows)
    store.add_step_metrics(
        other, [{"step": s, "epoch": 0, "loss": 1.0 / s, "sim_time": 0.05 * s} for s in range(1, 1001)]
    )
    for run in (big, other):  # the monitor lists started runs only
        store.finish_run(run, "completed")
    return big, other


def timed(fn):  # noqa: ANN001, ANN201
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    home = tempfile.mkdtemp(prefix="psl_bench_pages_")
    os.environ["PSL_HOME"] = home
    os.environ["PSL_DATABASE_URL"] = f"sqlite:///{home}/psl.db"
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from app.settings import get_settings
    from app.ui.views.compare import align_series, config_diff, summary_table
    from app.ui.views.run_table import accuracy_by_run, filter_runs, runs_frame
    from app.ui.views.series import FIRST_LOAD_POINTS, SeriesCache, downsample
    from app.ui.widgets import COMPARE_RUNS, SELECTED_RUN
    from storage import Store

    store = Store(get_settings().database_url)
    t_fill, (big, other) = timed(lambda: populate(store))
    print(f"populated {N_RUNS} runs + {N_POINTS:,}-step series in {t_fill:.1f}s ({home})")
    rows = []

    def runs_path():
        records = store.list_runs()
        return filter_runs(runs_frame(records, accuracy_by_run(store, records)), text="run-1")

    rows.append(("Runs: list + accuracy + table + filter", timed(runs_path)[0]))
    cache = SeriesCache(max_points=FIRST_LOAD_POINTS)  # as the pages hold it

    def monitor_path():
        cache.update(store, big)
        long = align_series({big: cache.steps(big)}, {big: cache.epochs(big)}, "step", "loss")
        return downsample(long, "x", 1500, ["value"])

    rows.append(("Monitor: first load 200k (sampled) + downsample", timed(monitor_path)[0]))
    rows.append(
        (
            "Store: read_step_metrics 200k, 13 columns",
            timed(lambda: store.read_step_metrics(big, columns=cache.columns))[0],
        )
    )
    before = cache.rows_read
    store.add_step_metrics(big, [{"step": N_POINTS + s, "epoch": 200, "loss": 0.01} for s in range(1, 501)])
    t_refresh, _ = timed(monitor_path)
    rows.append(("Monitor: live refresh (+500 rows)", t_refresh))
    new_rows = cache.rows_read - before

    def compare_path():
        c = SeriesCache(max_points=FIRST_LOAD_POINTS)
        for r in (big, other):
            c.update(store, r)
        steps = {r: c.steps(r) for r in (big, other)}
        epochs = {r: c.epochs(r) for r in (big, other)}
        long = align_series(steps, epochs, "sim_time", "loss")
        parts = [downsample(g, "x", 1500, ["value"]) for _, g in long.groupby("run_id")]
        config_diff({str(r): store.get_run(r).config for r in (big, other)}, differences_only=True)
        return parts, summary_table({big: "a", other: "b"}, steps, epochs, 0.8)

    rows.append(("Compare: 2 runs incl. 200k, sim_time", timed(compare_path)[0]))

    pages = ROOT / "pages"
    for name, state in (
        ("runs.py", {}),
        ("monitor.py", {SELECTED_RUN: big}),
        ("compare.py", {COMPARE_RUNS: [big, other]}),
    ):
        st.cache_resource.clear()
        at = AppTest.from_file(str(pages / name), default_timeout=120)
        for key, value in state.items():
            at.session_state[key] = value
        t_first, _ = timed(at.run)
        t_again, _ = timed(at.run)
        if at.exception:
            print(f"  {name}: {at.exception[0].message}")
        rows.append((f"AppTest render {name} (first)", t_first))
        rows.append((f"AppTest render {name} (rerun)", t_again))
        if name == "monitor.py":  # the lazy part: replaying plans only once the user asks for it
            at.toggle(key="monitor_timeline").set_value(True)
            rows.append(("AppTest monitor.py: timeline turned on", timed(at.run)[0]))
            if at.exception:
                print(f"  timeline: {at.exception[0].message}")

    print(f"\n{'path':50s} {'seconds':>8s}  target {TARGET_S:.0f} s")
    for label, seconds in rows:
        print(f"{label:50s} {seconds:8.3f}  {'ok' if seconds < TARGET_S else 'SLOW'}")
    print(
        f"\nlive refresh read {new_rows} step rows after 500 were added "
        f"(held: {len(cache.steps(big)):,} of {cache.rows_stored(big):,} stored; older part sampled)"
    )


if __name__ == "__main__":
    main()
