"""Benchmark of the experiment store on SQLite (prints a table; not a test).

(1) Dashboard reads on a big run: the newest 1,000 of 500,000 step rows (target < 50 ms, median of
    several reads) and an incremental ``after_step`` read of the last 100.
(2) 8 writer processes on one SQLite file, each writing its own run in batches of 50 rows plus a
    heartbeat per batch, while this process polls like a dashboard: no lost rows, no exceptions.

Usage: python bench/bench_store.py [--rows 500000] [--writers 8] [--rows-per-writer 5000]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from storage import Store


def _step_rows(start: int, count: int) -> list[dict]:
    rng = np.random.default_rng(start)
    loss = rng.random(count)
    return [
        {
            "step": start + i,
            "epoch": (start + i) // 1000,
            "loss": float(loss[i]),
            "deviation": 0.1,
            "batch_size": 64,
            "active_clients": 8,
            "sim_step_time": 0.5,
            "sim_time": 0.5 * (start + i),
            "bytes_up": 1e6,
            "bytes_down": 1e6,
            "slowest_client": 3,
            "wall_time": 0.01 * (start + i),
            "lr": 0.05,
        }
        for i in range(count)
    ]


def _timed(fn, repeats: int) -> tuple[float, object]:
    """Median wall time in ms of ``repeats`` calls, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def bench_big_run(url: str, rows: int) -> list[tuple[str, str, str]]:
    store = Store(url)
    run_id = store.create_run(name="big", config={"bench": True}, seed=0)
    started = time.perf_counter()
    for start in range(0, rows, 10_000):
        store.add_step_metrics(run_id, _step_rows(start, min(10_000, rows - start)))
    insert_s = time.perf_counter() - started
    newest_ms, newest = _timed(lambda: store.read_step_metrics(run_id, last=1000), 9)
    assert len(newest) == 1000 and newest["step"].iloc[-1] == rows - 1
    incr_ms, incr = _timed(lambda: store.read_step_metrics(run_id, after_step=rows - 101), 9)
    assert len(incr) == 100
    chart_ms, _ = _timed(lambda: store.read_step_metrics(run_id, last=1000, columns=["loss", "deviation"]), 9)
    count_ms, count = _timed(lambda: store.count_step_metrics(run_id), 5)
    assert count == rows
    return [
        (
            f"insert {rows:,} step rows (batches of 10,000)",
            f"{insert_s:.1f} s",
            f"{rows / insert_s:,.0f} rows/s",
        ),
        (f"read newest 1,000 of {rows:,} (median of 9)", f"{newest_ms:.1f} ms", "target < 50 ms"),
        ("read newest 1,000, 2 columns (median of 9)", f"{chart_ms:.1f} ms", ""),
        ("incremental read after_step (last 100)", f"{incr_ms:.1f} ms", ""),
        (f"count_step_metrics ({rows:,} rows)", f"{count_ms:.1f} ms", ""),
    ]


def _writer(url: str, run_id: int, rows: int, batch: int, results) -> None:  # noqa: ANN001
    try:
        store = Store(url, migrate=False)
        latencies, lost_ownership = [], 0
        for start in range(0, rows, batch):
            began = time.perf_counter()
            store.add_step_metrics(run_id, _step_rows(start, batch))
            lost_ownership += not store.heartbeat(
                run_id, f"bench-{run_id}", progress=start / rows, step=start
            )
            latencies.append(time.perf_counter() - began)
        error = f"heartbeat refused {lost_ownership}x" if lost_ownership else None
        results.put((run_id, error, max(latencies), statistics.median(latencies)))
    except Exception as exc:  # reported, and counted as a failure by the parent
        results.put((run_id, repr(exc), 0.0, 0.0))


def bench_concurrent_writers(
    url: str, writers: int, rows: int, batch: int = 50
) -> list[tuple[str, str, str]]:
    store = Store(url)
    run_ids = [store.create_run(name=f"w{i}", config={"writer": i}, seed=i) for i in range(writers)]
    for run_id in run_ids:  # oldest first: each writer's run is claimed under the writer's id
        assert store.claim_next_run(f"bench-{run_id}").id == run_id
    context = mp.get_context("spawn")
    results = context.Queue()
    procs = [context.Process(target=_writer, args=(url, rid, rows, batch, results)) for rid in run_ids]
    started = time.perf_counter()
    for proc in procs:
        proc.start()
    poll_ms, poll_errors, finished = [], 0, []
    while len(finished) < writers:
        began = time.perf_counter()
        try:
            for run_id in run_ids:
                store.read_step_metrics(run_id, last=200, columns=["loss"])
        except Exception:  # a dashboard poll must never fail; count it if it does
            poll_errors += 1
        poll_ms.append((time.perf_counter() - began) * 1000 / writers)
        while not results.empty():
            finished.append(results.get())
        time.sleep(0.05)
    for proc in procs:
        proc.join()
    elapsed = time.perf_counter() - started
    errors = [f for f in finished if f[1] is not None]
    counts = [store.count_step_metrics(run_id) for run_id in run_ids]
    lost = sum(rows - c for c in counts)
    return [
        (
            f"{writers} writer processes x {rows:,} rows (batches of {batch} + heartbeat)",
            f"{elapsed:.1f} s",
            f"{writers * rows / elapsed:,.0f} rows/s total",
        ),
        (
            "writer batch latency: median / max",
            f"{statistics.median(f[3] for f in finished) * 1000:.0f} ms",
            f"max {max(f[2] for f in finished) * 1000:.0f} ms",
        ),
        ("rows lost (exact counts per run)", str(lost), f"counts {sorted(set(counts))}"),
        ("writer exceptions", str(len(errors)), "; ".join(e[1] for e in errors)[:80]),
        (
            f"reader polls during writes ({len(poll_ms)})",
            f"{statistics.median(poll_ms):.1f} ms/run",
            f"errors {poll_errors}",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--rows-per-writer", type=int, default=5_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="psl-bench-") as tmp:
        table = bench_big_run(f"sqlite:///{Path(tmp) / 'big.db'}", args.rows)
        table += bench_concurrent_writers(
            f"sqlite:///{Path(tmp) / 'writers.db'}", args.writers, args.rows_per_writer
        )
    width = max(len(row[0]) for row in table)
    print(f"{'measurement (SQLite, WAL)':<{width}}  {'result':>12}  note")
    print("-" * (width + 40))
    for name, value, note in table:
        print(f"{name:<{width}}  {value:>12}  {note}")


if __name__ == "__main__":
    main()
