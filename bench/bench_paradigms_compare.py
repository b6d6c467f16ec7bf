"""PSL (UGS, FLS) vs SL vs SplitFed v1/v2 vs FedAvg vs hybrid SL/FL on non-IID Fashion-MNIST.

    python bench/bench_paradigms_compare.py [--train-limit 6000] [--test-limit 1000] [--epochs 6]
        [--seeds 0,1,2] [--clients 16,64] [--target 0.6] [--out bench/results/paradigms]

Fashion-MNIST subset, MLP with GroupNorm (cut after fc1, the client holds 0.80 MB of the 1.07 MB
model), extended
Dirichlet severe (C = 2, α = 3) and mild (C = 5, α = 3), K ∈ {16, 64}, a device mix of 50 % RPi 4B,
25 % RPi 3B+, 25 % Jetson (GPU), server = the VM. Every method sees each sample ``--epochs`` times:
PSL with B = 64 for ``--epochs`` epochs; the round-based paradigms for ``--epochs`` rounds of E = 1
local epoch with local batch b = 16; hsfl puts the fastest half of the clients in FL mode. Plain SGD,
lr 0.01, no momentum (the GPSL paper's optimiser). Reported per cell, mean ± std over seeds: final test accuracy, simulated time
to reach ``--target`` test accuracy (evaluated every epoch/round; "—" if never), bytes sent +
received per client, client energy per client (both over the whole run). Each finished run is a JSON
file, so an interrupted benchmark resumes. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from psl_core.config import ExperimentConfig, apply_overrides  # noqa: E402
from psl_core.engine import MemorySink, TrainingDivergedError, run_experiment  # noqa: E402

METHODS = {  # label -> overrides
    "psl/ugs": {"sampling.method": "ugs"},
    "psl/fls": {"sampling.method": "fls"},
    "sl": {"paradigm.name": "sl"},
    "sflv1": {"paradigm.name": "sflv1"},
    "sflv2": {"paradigm.name": "sflv2"},
    "fedavg": {"paradigm.name": "fedavg"},
    "hsfl": {"paradigm.name": "hsfl", "paradigm.fl_clients": 0.5},
}
SKEWS = {"severe": 2, "mild": 5}  # classes per client C (α = 3)


def config_for(method: str, skew: str, k: int, seed: int, args) -> ExperimentConfig:
    return apply_overrides(
        ExperimentConfig(),
        {
            "name": f"compare {method} {skew} K={k} seed={seed}",
            "seed": seed,
            "data.dataset": "fashion_mnist",
            "data.train_limit": args.train_limit,
            "data.test_limit": args.test_limit,
            "partition.scheme": "extended_dirichlet",
            "partition.num_clients": k,
            "partition.classes_per_client": SKEWS[skew],
            "partition.alpha": 3.0,
            "model.arch": "mlp",
            "model.cut": 1,
            # GroupNorm on both sides: no method's arithmetic depends on how many samples share a
            # batch (a one-sample global batch would also stop PSL's server-side BatchNorm).
            "model.client_norm": "group",
            "model.server_norm": "group",
            "sampling.batch_size": 64,
            "paradigm.local_batch": 16,
            "training.epochs": args.epochs,
            "training.lr": 0.01,  # the GPSL paper's optimiser: plain SGD, lr 0.01, no momentum. With
            "training.momentum": 0.0,  # lr 0.05 + momentum 0.9, sl and sflv2 do not learn under severe skew.
            "training.device": "cpu",
            "system.clients": [
                {"device": "rpi4b", "fraction": 0.5},
                {"device": "rpi3bplus", "fraction": 0.25},
                {"device": "jetson_gpu", "fraction": 0.25},
            ],
            **METHODS[method],
        },
    )


def run_cell(method: str, skew: str, k: int, seed: int, args, out: Path) -> dict:
    path = out / f"{method.replace('/', '-')}-{skew}-K{k}-seed{seed}.json"
    if path.exists():
        return json.loads(path.read_text())
    sink = MemorySink()
    t0 = time.perf_counter()
    diverged = False
    try:
        run_experiment(config_for(method, skew, k, seed, args), sink)
    except TrainingDivergedError:
        diverged = True
    epochs = sink.epochs
    reached = [e["sim_time"] for e in epochs if (e["test_acc"] or 0) >= args.target]
    result = {
        "method": method,
        "skew": skew,
        "K": k,
        "seed": seed,
        "test_acc": [e["test_acc"] for e in epochs],
        "sim_time": [e["sim_time"] for e in epochs],
        "time_to_target": reached[0] if reached else None,
        "bytes_per_client": epochs[-1]["bytes_per_client"] if epochs else None,
        "energy_per_client_j": epochs[-1]["energy_per_client_j"] if epochs else None,
        "diverged": diverged,
        "wall_s": time.perf_counter() - t0,
    }
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return result


def mean_std(values, fmt: str) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    if len(values) == 1:
        return format(values[0], fmt)
    return f"{format(statistics.fmean(values), fmt)} ± {format(statistics.stdev(values), fmt)}"


def table(results: list[dict], skew: str, k: int, seeds: int, target: float) -> str:
    lines = [
        f"**{skew}, K = {k}** ({seeds} seed{'s' if seeds != 1 else ''})",
        "",
        f"| method | final test acc | sim time to {target:.0%} (s) [reached] | MB per client | J per client | sim time total (s) |",
        "|---|---|---|---|---|---|",
    ]
    for method in METHODS:
        rows = [r for r in results if r["method"] == method and r["skew"] == skew and r["K"] == k]
        if not rows:
            continue
        hit = sum(r["time_to_target"] is not None for r in rows)
        lines.append(
            f"| {method} | {mean_std([r['test_acc'][-1] if r['test_acc'] else None for r in rows], '.3f')}"
            f" | {mean_std([r['time_to_target'] for r in rows], '.0f')} [{hit}/{len(rows)}]"
            f" | {mean_std([r['bytes_per_client'] / 1e6 for r in rows], '.1f')}"
            f" | {mean_std([r['energy_per_client_j'] for r in rows], '.1f')}"
            f" | {mean_std([r['sim_time'][-1] if r['sim_time'] else None for r in rows], '.0f')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train-limit", type=int, default=6000)
    parser.add_argument("--test-limit", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seeds", type=lambda s: [int(v) for v in s.split(",")], default=[0, 1, 2])
    parser.add_argument("--clients", type=lambda s: [int(v) for v in s.split(",")], default=[16, 64])
    parser.add_argument("--target", type=float, default=0.6)
    parser.add_argument("--out", type=Path, default=Path("bench/results/paradigms"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = []
    start = time.perf_counter()
    for k in args.clients:
        for skew in SKEWS:
            for seed in args.seeds:
                for method in METHODS:
                    r = run_cell(method, skew, k, seed, args, args.out)
                    results.append(r)
                    print(
                        f"{method:8s} {skew:6s} K={k:<3d} seed={seed} acc={r['test_acc'][-1] if r['test_acc'] else None}"
                        f" wall={r['wall_s']:.0f}s total={time.perf_counter() - start:.0f}s",
                        flush=True,
                    )
    print()
    for k in args.clients:
        for skew in SKEWS:
            print(table(results, skew, k, len(args.seeds), args.target))
            print()


if __name__ == "__main__":
    main()
