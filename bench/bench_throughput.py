"""Whole-run and sweep throughput: the targets of issue 13, measured side by side in one run.

    python bench/bench_throughput.py [--repeats 3] [--threads N] [--sweep-runs 12] [--skip sweep,startup,eval,engine,syncs]

(1) sweep    12 digits runs (the demo, seeds 0..11) through `psl worker --concurrency 2` against the
             same 12 runs in one process (both timed from process start to exit); target ≤ 1.15×.
(2) startup  `psl run` of the demo against a plain PyTorch script of the same training (same data,
             model, batches, optimiser, per-epoch evaluation, a CSV of the step losses); wall and CPU
             seconds of the whole process, alternating, median; target ≤ 1.25×.
(3) eval     share of a Fashion-MNIST run (train_limit 12,000, every other setting default) spent in
             evaluation, with today's defaults and with the old behaviour (whole test set every
             epoch, batch 1024); target ≤ 15 %. Also the per-sample cost of evaluation by batch size
             (what the per-device default batch is based on).
(4) engine   engine/plain samples/s at K = 16/128/1024 (bench_engine.py's steppers, interleaved);
             target ≥ 0.95.
(5) syncs    host synchronisations per training step of the default path (code path on CPU;
             torch's sync detector on CUDA where present); target 0.

The load average is printed with every section: on a shared machine the ratios move with others'
load (it hits both sides of a ratio, but not equally). Self-contained (temporary PSL_HOME, data
shipped or in /usr/share/datasets); about 3–5 minutes on a quiet 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEMO = {
    "name": "demo digits",
    "seed": 0,
    "data": {"dataset": "digits"},
    "partition": {"scheme": "dirichlet", "num_clients": 10, "alpha": 0.5},
    "model": {"arch": "cnn", "cut": 1},
    "sampling": {"method": "ugs", "batch_size": 64},
    "training": {"epochs": 3, "optimizer": "sgd", "lr": 0.05, "device": "cpu"},
    "system": {"clients": [{"device": "rpi4b", "fraction": 1.0}], "server_device": "vm"},
}
SWEEP_RUNS = 12  # --sweep-runs: fewer on a loaded machine (the target is stated for 12)

# The same training as the demo, written the way a PyTorch user would: no psl_core, no config.
PLAIN_SCRIPT = textwrap.dedent(
    """
    import csv, gzip, sys
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    files = sys.argv[1]
    def idx(name):
        raw = gzip.decompress(open(f"{files}/{name}", "rb").read())
        ndim = raw[3]
        dims = np.frombuffer(raw, ">u4", ndim, 4)
        return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)
    x = idx("digits-images-idx3-ubyte.gz").astype(np.float32)[:, None]
    y = idx("digits-labels-idx1-ubyte.gz").astype(np.int64)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    test, train = order[:360], order[360:]
    mean, std = x[train].mean(), x[train].std()
    x = torch.from_numpy((x - mean) / std)
    y = torch.from_numpy(y)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.GroupNorm(8, 32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 2 * 2, 128), nn.ReLU(), nn.Linear(128, 10),
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    with open(sys.argv[2], "w", newline="") as f:
        out = csv.writer(f)
        step = 0
        for epoch in range(3):
            model.train()
            perm = torch.as_tensor(rng.permutation(train))
            for i in range(0, len(perm), 64):
                rows = perm[i : i + 64]
                opt.zero_grad()
                loss = F.cross_entropy(model(x[rows]), y[rows])
                loss.backward()
                opt.step()
                step += 1
                out.writerow([step, epoch + 1, loss.item()])
            model.eval()
            with torch.no_grad():
                logits = model(x[test])
                acc = (logits.argmax(1) == y[test]).float().mean().item()
            print(f"epoch {epoch + 1}: test accuracy {acc:.4f}")
    """
)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f} (5-min {five:.1f}) on {os.cpu_count()} CPUs"


# Runs a command as a "child subreaper" (Linux) and waits for every descendant, so that the CPU time
# of processes the command leaves behind (a worker pool's fork server and its slots) is counted too.
SUBREAPER = textwrap.dedent(
    """
    import ctypes, os, subprocess, sys
    try:
        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (AttributeError, OSError):
        pass
    code = subprocess.call(sys.argv[1:])
    while True:
        try:
            os.wait()
        except ChildProcessError:
            break
    sys.exit(code)
    """
)


def timed(cmd: list[str], env: dict, cwd: Path | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of a command and every process it started."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", SUBREAPER, *cmd], env=env, cwd=cwd, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-1500:]}\n{done.stderr[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def child_env(home: Path, threads: int | None) -> dict:
    env = dict(os.environ, PSL_HOME=str(home), PYTHONPATH=str(ROOT))
    env.pop("PSL_DATABASE_URL", None)
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


# ---------------------------------------------------------------- (1) sweep through the worker pool
def run_sweep_in_process(runs: int) -> None:
    """--sweep-in-process: the sweep's runs one after the other in this process (the baseline)."""
    from psl_core.config import parse_config
    from psl_core.engine import MemorySink, run_experiment

    for seed in range(runs):
        run_experiment(parse_config({**DEMO, "seed": seed}), MemorySink())


def bench_sweep(work: Path, repeats: int, threads: int | None, runs: int = SWEEP_RUNS) -> dict:
    from app.runs import submit
    from psl_core.config import parse_config
    from storage import Store
    from storage.db import dispose_engine, init_db

    walls: dict[str, list[tuple[float, float]]] = {"one process": [], "worker pool (2 slots)": []}
    for r in range(repeats):
        home = work / f"sweep{r}"
        home.mkdir()
        url = init_db(f"sqlite:///{home / 'psl.db'}")
        store = Store(url)
        for seed in range(runs):
            submit(store, parse_config({**DEMO, "name": f"sweep seed {seed}", "seed": seed}))
        dispose_engine(url)
        env = child_env(home, threads)
        walls["one process"].append(timed([sys.executable, __file__, "--sweep-in-process", str(runs)], env))
        pool = [sys.executable, "-m", "app", "worker", "--concurrency", "2", "--exit-when-idle"]
        walls["worker pool (2 slots)"].append(timed(pool, env, cwd=ROOT))
        statuses = [run.status for run in Store(url).list_runs()]
        if statuses != ["completed"] * runs:
            raise RuntimeError(f"the worker pool did not complete every run: {statuses}")
        dispose_engine(url)
    one, pool = (statistics.median(w for w, _ in v) for v in walls.values())
    print(f"(1) {runs}-run digits sweep, whole processes, median of {repeats} [{load()}]")
    for name, values in walls.items():
        wall = statistics.median(w for w, _ in values)
        cpu = statistics.median(c for _, c in values)
        print(
            f"    {name:<24} wall {wall:6.2f} s   CPU {cpu:6.2f} s   walls {[round(w, 2) for w, _ in values]}"
        )
    return {"sweep pool / one process (wall)": (pool / one, 1.15, "<=")}


# ---------------------------------------------------------------- (2) start-up of `psl run`
def bench_startup(work: Path, repeats: int, threads: int | None) -> dict:
    import yaml

    config = work / "demo.yaml"
    config.write_text(yaml.safe_dump(DEMO))
    script = work / "plain_demo.py"
    script.write_text(PLAIN_SCRIPT)
    files = ROOT / "psl_core" / "data" / "files"
    env = child_env(work / "home", threads)
    commands = {
        "psl run (demo)": [
            sys.executable,
            "-m",
            "app",
            "run",
            str(config),
            "--quiet",
            "--out",
            str(work / "out"),
        ],
        "plain PyTorch script": [sys.executable, str(script), str(files), str(work / "plain.csv")],
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, cmd in commands.items():
            results[name].append(timed(cmd, env, cwd=work))
    print(f"(2) start-up: whole process, median of {repeats}, alternating [{load()}]")
    med = {}
    for name, values in results.items():
        wall = statistics.median(v[0] for v in values)
        cpu = statistics.median(v[1] for v in values)
        med[name] = (wall, cpu)
        print(f"    {name:<24} wall {wall:6.2f} s   CPU {cpu:6.2f} s")
    (psl_wall, psl_cpu), (plain_wall, plain_cpu) = med.values()
    print(f"    ratio psl/plain          wall {psl_wall / plain_wall:.2f}   CPU {psl_cpu / plain_cpu:.2f}")
    return {
        "psl run / plain script (wall)": (psl_wall / plain_wall, 1.25, "<="),
        "psl run / plain script (CPU)": (psl_cpu / plain_cpu, 1.25, "<="),
    }


# ---------------------------------------------------------------- (3) evaluation share
def eval_share(overrides: dict) -> tuple[float, float, int]:
    """(evaluation seconds, run seconds, evaluations) of one Fashion-MNIST 12k run."""
    from psl_core.config import ExperimentConfig, apply_overrides
    from psl_core.engine import MemorySink, PSLTrainer, build_experiment
    from psl_core.engine.evaluation import Evaluator

    cfg = apply_overrides(
        ExperimentConfig(),
        {"data.dataset": "fashion_mnist", "data.train_limit": 12_000, "training.device": "cpu", **overrides},
    )
    trainer = PSLTrainer(build_experiment(cfg))
    spent = {"s": 0.0, "n": 0}
    evaluate = Evaluator.evaluate

    def timed_evaluate(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return evaluate(self, *args, **kwargs)
        finally:
            spent["s"] += time.perf_counter() - start
            spent["n"] += 1

    Evaluator.evaluate = timed_evaluate
    try:
        start = time.perf_counter()
        trainer.run(MemorySink())
        total = time.perf_counter() - start
    finally:
        Evaluator.evaluate = evaluate
    return spent["s"], total, spent["n"]


def eval_cost_by_batch(batches=(32, 64, 128, 256, 1024), samples: int = 1024) -> dict[str, dict[int, float]]:
    """Microseconds per sample of evaluation (eval mode, no grad) by batch size."""
    import torch

    from psl_core.models import build_model

    shapes = {
        "cnn, 1×28×28 (Fashion-MNIST)": ("cnn", (1, 28, 28)),
        "resnet8, 3×32×32 (CIFAR)": ("resnet8", (3, 32, 32)),
    }
    out = {}
    for label, (arch, shape) in shapes.items():
        model = build_model(arch, input_shape=shape, num_classes=10).eval()
        x = torch.randn(samples, *shape)
        costs: dict[int, list[float]] = {b: [] for b in batches}
        with torch.no_grad():
            model(x[:64])
            for _ in range(2):
                for b in batches:
                    start = time.perf_counter()
                    for i in range(0, samples, b):
                        model(x[i : i + b])
                    costs[b].append((time.perf_counter() - start) / samples * 1e6)
        out[label] = {b: min(v) for b, v in costs.items()}
    return out


def bench_eval(threads: int | None) -> dict:
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    from psl_core.data import DatasetNotFoundError, load_dataset

    try:
        load_dataset("fashion_mnist")
    except DatasetNotFoundError as err:
        print(f"(3) evaluation share: skipped ({err})")
        return {}
    print(f"(3) evaluation share of a Fashion-MNIST 12k run at default settings [{load()}]")
    variants = {  # today's defaults first: the target's number comes out first on a slow machine
        "now: defaults": {},
        "before: whole test set every epoch, batch 1024": {
            "training.eval_samples": None,
            "training.eval_batch_size": 1024,
        },
    }
    shares = {}
    for name, overrides in variants.items():
        spent, total, n = eval_share(overrides)
        shares[name] = spent / total
        print(f"    {name:<48} {n} evaluations {spent:6.1f} s of {total:6.1f} s = {spent / total:5.1%}")
    print(f"    evaluation µs per sample by batch size (min of 2) [{load()}]")
    for label, costs in eval_cost_by_batch().items():
        best = min(costs.values())
        row = "  ".join(f"{b}: {c:5.0f} ({c / best:.2f}×)" for b, c in costs.items())
        print(f"    {label:<32} {row}")
    return {"evaluation share of a run": (shares["now: defaults"], 0.15, "<=")}


# ---------------------------------------------------------------- (4) engine vs plain PyTorch
def bench_engine_ratio(clients=(16, 128, 1024), block: int = 3, repeats: int = 3) -> dict:
    import bench_engine as be
    import numpy as np

    print(
        f"(4) engine / plain PyTorch, ResNet-20 B={be.B}, samples/s, median of {repeats} blocks of {block} [{load()}]"
    )
    ratios = {}
    for k in clients:
        steppers = {name: be.STEPPERS[name](k, 4 * block) for name in ("centralised", "engine")}
        for step in steppers.values():
            step(0)
        rates: dict[str, list[float]] = {name: [] for name in steppers}
        for r in range(repeats):
            for name, step in steppers.items():
                start = time.perf_counter()
                for t in range(block):
                    step(1 + r * block + t)
                rates[name].append(block * be.B / (time.perf_counter() - start))
        plain, engine = (float(np.median(rates[n])) for n in ("centralised", "engine"))
        ratios[k] = engine / plain
        print(f"    K={k:<5} plain {plain:7.1f}  engine {engine:7.1f}  ratio {engine / plain:.2f}")
    return {f"engine / plain, K={k}": (v, 0.95, ">=") for k, v in ratios.items()}


# ---------------------------------------------------------------- (5) host syncs per step
def bench_syncs() -> dict:
    import torch

    from psl_core.config import parse_config
    from psl_core.engine import MemorySink, PSLTrainer, build_experiment
    from psl_core.engine.host_syncs import cuda_sync_guard, step_syncs

    config = parse_config(DEMO)
    per_step = step_syncs(PSLTrainer(build_experiment(config)), MemorySink())
    worst = max(len(calls) for calls in per_step)
    print(
        f"(5) host syncs per training step, default path: code path (CPU) max {worst} over {len(per_step)} steps"
    )
    result = {"host syncs per step (code path)": (worst, 0, "<=")}
    if torch.cuda.is_available():
        trainer = PSLTrainer(
            build_experiment(parse_config({**DEMO, "training": {**DEMO["training"], "device": "cuda"}}))
        )
        step, seen, failures = trainer._step, [], []

        def guarded(*args, **kwargs):
            seen.append(1)
            if len(seen) == 1:
                return step(*args, **kwargs)
            try:
                with cuda_sync_guard("error"):
                    return step(*args, **kwargs)
            except RuntimeError as err:
                failures.append(str(err))
                return step(*args, **kwargs)

        trainer._step = guarded
        trainer.run(MemorySink())
        print(f"    CUDA sync detector: {len(failures)} syncing steps of {len(seen) - 1}")
        result["host syncs per step (CUDA detector)"] = (len(failures), 0, "<=")
    else:
        print("    CUDA sync detector: not run (no CUDA on this machine)")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3, help="repeats of the sweep and start-up timings")
    ap.add_argument(
        "--threads", type=int, default=None, help="OMP/torch threads of every process (default: torch's)"
    )
    ap.add_argument(
        "--skip", default="", help="comma-separated sections to skip: sweep,startup,eval,engine,syncs"
    )
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument(
        "--sweep-runs", type=int, default=SWEEP_RUNS, help="runs of the sweep section (target stated for 12)"
    )
    ap.add_argument("--sweep-in-process", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sweep_in_process is not None:
        run_sweep_in_process(args.sweep_in_process)
        return
    sys.path.insert(0, str(ROOT / "bench"))
    skip = set(filter(None, args.skip.split(",")))
    print(f"bench_throughput: {load()}; threads per process: {args.threads or 'torch default'}\n")
    targets: dict = {}
    with tempfile.TemporaryDirectory(prefix="psl-bench-") as tmp:
        work = Path(tmp)
        if "sweep" not in skip:
            targets.update(bench_sweep(work, args.repeats, args.threads, args.sweep_runs))
        if "startup" not in skip:
            targets.update(bench_startup(work, args.repeats + 2, args.threads))
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    if "eval" not in skip:
        targets.update(bench_eval(args.threads))
    if "engine" not in skip:
        targets.update(bench_engine_ratio())
    if "syncs" not in skip:
        targets.update(bench_syncs())
    print(f"\ntargets [{load()}]")
    width = max(len(name) for name in targets)
    for name, (value, bound, op) in targets.items():
        ok = value <= bound if op == "<=" else value >= bound
        shown = f"{value:.1%}" if "share" in name else (f"{value:.0f}" if "syncs" in name else f"{value:.2f}")
        limit = f"{bound:.0%}" if "share" in name else (f"{bound}" if "syncs" in name else f"{bound:.2f}")
        print(f"  {name:<{width}}  {shown:>7}  target {op} {limit:<5}  {'PASS' if ok else 'FAIL'}")
    if args.json:
        args.json.write_text(json.dumps({k: v[0] for k, v in targets.items()}, indent=2))


if __name__ == "__main__":
    main()
