"""Benchmark: one sweep on the local pool vs on Ray on this machine, same slots (prints a table).

Both backends train the same 12-run sweep (digits, small CNN) with the same number of slots and one
intra-op thread per slot (Ray: ``num_cpus=1`` per task; local: ``OMP_NUM_THREADS=1`` per process), into
one SQLite store; each backend starts its processes cold (the local pool spawns its workers, Ray starts
its instance and workers). Rounds alternate the order (local first, then Ray first) so a machine
whose load drifts does not favour one side. Reported per round: the sweep's wall time on each backend
(Ray's = its instance start-up + the drain), the ratios with and without Ray's start-up, the mean time
a run spends in its worker (claim → finished), and Ray's overhead per run = (Ray's drain − the local
pool's sweep) × slots / runs, and measured directly as the dispatch gap: how long a slot stands idle
between one run's end and its next run's claim (Ray: the driver sees the task end, submits the next,
Ray schedules it and the task claims its run; local: the process claims the next run). The stored metrics of both sweeps are
checked to be identical. Target: Ray within 1.2× of the local pool.

Usage: python bench/bench_ray.py [--runs 12] [--slots 2] [--rounds 2] [--steps 20] [--epochs 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported, here and in spawned workers
os.environ.setdefault("MKL_NUM_THREADS", "1")

from app.runs import submit_sweep  # noqa: E402
from app.settings import ensure_home, get_settings  # noqa: E402
from app.worker.executors import LocalExecutor  # noqa: E402
from app.worker.loop import ShutdownFlag  # noqa: E402
from app.worker.ray_executor import RayExecutor, RayOptions, import_ray  # noqa: E402
from psl_core.config import ExperimentConfig, apply_overrides  # noqa: E402
from psl_core.engine import NONDETERMINISTIC_FIELDS  # noqa: E402
from storage import Store  # noqa: E402


def sweep_config(epochs: int, steps: int) -> ExperimentConfig:
    return apply_overrides(
        ExperimentConfig(),
        {
            "name": "bench-ray",
            "data.dataset": "digits",
            "partition.num_clients": 8,
            "model.arch": "cnn",
            "sampling.batch_size": 64,
            "training.epochs": epochs,
            "training.max_steps_per_epoch": steps,
        },
    )


def grid_for(runs: int) -> tuple[dict, list[int]]:
    """``runs`` runs: 3 sampling methods × runs/3 seeds (12 → ugs, fls, fpls × seeds 0-3)."""
    methods = ["ugs", "fls", "fpls"]
    if runs % len(methods):
        raise SystemExit(f"--runs must be a multiple of {len(methods)}, got {runs}")
    return {"sampling.method": methods}, list(range(runs // len(methods)))


def run_seconds(store: Store, ids: list[int]) -> list[float]:
    """Seconds each run spent in its worker, from its (last) claim to its end."""
    records = [store.get_run(i) for i in ids]
    bad = [r.id for r in records if r.status != "completed"]
    if bad:
        raise SystemExit(f"runs {bad} did not complete: {[store.get_run(i).error for i in bad]}")
    return [(r.finished_at - r.started_at).total_seconds() for r in records]


def dispatch_gaps(store: Store, ids: list[int]) -> list[float]:
    """Seconds each slot stood idle between one run's end and its next run's claim (first runs, which
    wait for their process to start, are not counted): the per-run cost of handing out work."""
    by_slot: dict[str, list] = {}
    for record in (store.get_run(i) for i in ids):
        by_slot.setdefault(record.slot.split()[0], []).append(record)
    gaps = []
    for records in by_slot.values():
        records.sort(key=lambda r: r.started_at)
        gaps += [(b.started_at - a.finished_at).total_seconds() for a, b in zip(records, records[1:])]
    return gaps


def science(store: Store, run_id: int) -> list[dict]:
    steps = store.read_step_metrics(run_id)
    return steps.drop(columns=[c for c in NONDETERMINISTIC_FIELDS if c in steps.columns]).to_dict("records")


def bench_local(settings, store, cfg, grid, seeds, slots) -> dict:
    sweep, ids = submit_sweep(store, cfg, grid, seeds, name="local pool")
    started = time.perf_counter()
    LocalExecutor(settings, concurrency=slots).drain(sweep_id=sweep, exit_when_idle=True)
    wall = time.perf_counter() - started
    per_run, gaps = run_seconds(store, ids), dispatch_gaps(store, ids)
    return {"wall": wall, "start": 0.0, "per_run": per_run, "gaps": gaps, "ids": ids}


def bench_ray(settings, store, cfg, grid, seeds, slots, temp_dir) -> dict:
    ray = import_ray()
    sweep, ids = submit_sweep(store, cfg, grid, seeds, name="ray")
    started = time.perf_counter()
    ray.init(num_cpus=slots, include_dashboard=False, log_to_driver=False, _temp_dir=temp_dir)
    up = time.perf_counter()
    try:
        executor = RayExecutor(settings, options=RayOptions(num_cpus=1), concurrency=slots)
        executor.drain(sweep_id=sweep, exit_when_idle=True, shutdown=ShutdownFlag())
        done = time.perf_counter()
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)
    per_run, gaps = run_seconds(store, ids), dispatch_gaps(store, ids)
    return {"wall": done - up, "start": up - started, "per_run": per_run, "gaps": gaps, "ids": ids}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20, help="training.max_steps_per_epoch")
    args = parser.parse_args()
    grid, seeds = grid_for(args.runs)
    cfg = sweep_config(args.epochs, args.steps)
    load_before = os.getloadavg()
    rows, with_start, drain_only, overheads, gap_costs = [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="psl-bench-ray-", dir="/tmp") as home:
        settings = ensure_home(
            get_settings({"PSL_HOME": home, "PSL_DATABASE_URL": f"sqlite:///{home}/psl.db"})
        )
        store = Store(settings.database_url)
        for round_no in range(1, args.rounds + 1):
            order = ["local", "ray"] if round_no % 2 else ["ray", "local"]
            result = {}
            for backend in order:
                if backend == "local":
                    result[backend] = bench_local(settings, store, cfg, grid, seeds, args.slots)
                else:
                    ray_dir = tempfile.mkdtemp(prefix="psl-ray-", dir="/tmp")
                    result[backend] = bench_ray(settings, store, cfg, grid, seeds, args.slots, ray_dir)
                print(
                    f"round {round_no} {backend}: {result[backend]['start'] + result[backend]['wall']:.1f} s",
                    flush=True,
                )
            pairs = zip(result["local"]["ids"], result["ray"]["ids"])
            if not all(science(store, a) == science(store, b) for a, b in pairs):
                raise SystemExit("the two backends stored different metrics")
            local, on_ray = result["local"], result["ray"]
            with_start.append((on_ray["start"] + on_ray["wall"]) / local["wall"])
            drain_only.append(on_ray["wall"] / local["wall"])
            overheads.append((on_ray["wall"] - local["wall"]) * args.slots / args.runs)
            gap_costs.append(statistics.mean(on_ray["gaps"]) - statistics.mean(local["gaps"]))
            rows.append(
                (
                    f"{round_no} ({' then '.join(order)})",
                    f"{local['wall']:.1f}",
                    f"{on_ray['start'] + on_ray['wall']:.1f} = {on_ray['start']:.1f} + {on_ray['wall']:.1f}",
                    f"{with_start[-1]:.2f}×",
                    f"{drain_only[-1]:.2f}×",
                    f"{overheads[-1]:+.2f}",
                    f"{statistics.mean(local['per_run']):.2f} / {statistics.mean(on_ray['per_run']):.2f}",
                    f"{statistics.mean(local['gaps']):.3f} / {statistics.mean(on_ray['gaps']):.3f}",
                )
            )
    load_after = os.getloadavg()
    header = (
        "round (order)",
        "local pool s",
        "Ray s = start-up + drain",
        "Ray / local",
        "Ray drain / local",
        "Ray overhead s/run (drain)",
        "mean s/run in worker, local / Ray",
        "mean dispatch gap s, local / Ray",
    )
    print(
        f"\n{args.runs}-run sweep, {args.slots} slots, {args.epochs}×{args.steps} steps per run; metrics identical: yes"
    )
    print(f"cores {os.cpu_count()}, load average (1/5/15 min) before {load_before[0]:.1f}/{load_before[1]:.1f}/{load_before[2]:.1f}, "
          f"after {load_after[0]:.1f}/{load_after[1]:.1f}/{load_after[2]:.1f}")  # fmt: skip
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    verdict = "within" if statistics.median(with_start) <= 1.2 else "NOT within"
    print(
        f"\nRay / local pool, Ray's start-up included: median {statistics.median(with_start):.2f}× "
        f"(worst {max(with_start):.2f}×) — {verdict} the 1.2× target; drain only: median "
        f"{statistics.median(drain_only):.2f}×; Ray overhead per run: {statistics.median(overheads):+.2f} s from the "
        f"sweep walls, {statistics.median(gap_costs):+.3f} s of dispatch gap (medians of rounds)"
    )


if __name__ == "__main__":
    main()
