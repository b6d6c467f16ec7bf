"""Stragglers: UGS vs LDS (δ ∈ {0, 0.5, 1, 2}) when 20 % of the clients are 10× slower.

    python bench/bench_stragglers.py [--seeds 0,1,2] [--target 0.93] [--epochs 8]

Digits (scikit-learn 8×8), ResNet-8 cut after its first residual block (client compute dominates the
step), K = 20 Raspberry Pi 4B clients, Dirichlet α = 0.5 label skew, B = 128, VM server; 20 % of the clients persistently 10× slower. Reports, mean over
seeds: simulated time to reach the target test accuracy (evaluated every epoch), final accuracy,
mean batch deviation and mean simulated step time. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from psl_core.config import ExperimentConfig, apply_overrides  # noqa: E402
from psl_core.engine import MemorySink, run_experiment  # noqa: E402

VARIANTS = [("ugs", 0.0), ("lds", 0.0), ("lds", 0.5), ("lds", 1.0), ("lds", 2.0)]


def run(method: str, delta: float, seed: int, epochs: int) -> MemorySink:
    cfg = apply_overrides(
        ExperimentConfig(),
        {
            "seed": seed,
            "data.dataset": "digits",
            "partition.scheme": "dirichlet",
            "partition.alpha": 0.5,
            "partition.num_clients": 20,
            "model.arch": "resnet8",
            "model.cut": 2,
            "sampling.method": method,
            "sampling.lds_delta": delta,
            "sampling.batch_size": 128,
            "training.epochs": epochs,
            "training.device": "cpu",
            "system.clients": [{"device": "rpi4b"}],
            "system.server_device": "vm",
            "system.stragglers.persistent_fraction": 0.2,
            "system.stragglers.persistent_factor": 10.0,
        },
    )
    sink = MemorySink()
    run_experiment(cfg, sink)
    return sink


def time_to_target(sink: MemorySink, target: float) -> float | None:
    for e in sink.epochs:
        if e["test_acc"] is not None and e["test_acc"] >= target:
            return e["sim_time"]
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--target", type=float, default=0.9)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"target test accuracy {args.target}, {args.epochs} epochs, seeds {seeds}\n")
    print(
        "| method | δ | time to target (sim s, mean) | reached | final test acc | mean deviation | mean step (sim s) |"
    )
    print("|---|---|---|---|---|---|---|")
    for method, delta in VARIANTS:
        sinks = [run(method, delta, s, args.epochs) for s in seeds]
        times = [time_to_target(s, args.target) for s in sinks]
        reached = [t for t in times if t is not None]
        ttt = f"{statistics.fmean(reached):.1f}" if reached else "never"
        final = statistics.fmean(s.epochs[-1]["test_acc"] for s in sinks)
        dev = statistics.fmean(statistics.fmean(r["deviation"] for r in s.steps) for s in sinks)
        step = statistics.fmean(statistics.fmean(r["sim_step_time"] for r in s.steps) for s in sinks)
        print(
            f"| {method} | {delta:g} | {ttt} | {len(reached)}/{len(seeds)} | {final:.4f} | {dev:.3f} | {step:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
