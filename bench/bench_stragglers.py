"""Stragglers: UGS vs LDS (δ ∈ {0, 0.5, 1, 2}) when 20 % of the clients are 10× slower, with the test
accuracy checked every few steps (not once per epoch), and LDS when slow clients hold classes that
nobody else has.

    nice -n 10 python bench/bench_stragglers.py [--seeds 0,1,2] [--eval-every-steps 6]
        [--targets 0.7,0.75] [--epochs 2] [--train-limit 6000] [--test-limit 1000]
        [--scenarios skew,exclusive] [--variants ugs:0,lds:0,lds:0.5,lds:1,lds:2]

Fashion-MNIST (a stratified --train-limit subset, --test-limit test images), the small CNN cut after
its second conv block (client compute dominates the step: a 10× slower client stretches it), K = 20
Raspberry Pi 4B clients, VM server, B = 128, SGD (project default), 20 % of the clients persistently
10× slower (compute).
- skew: Dirichlet α = 0.5 label skew. Reports, over seeds: simulated time at which the test accuracy
  first reaches each target (checked every --eval-every-steps steps), final accuracy, mean deviation,
  mean simulated step time and its phases.
- exclusive: K = 10, one class per client (pathological), so the two slow clients hold two classes
  nobody else has. Reports overall accuracy and the accuracy on those two classes, whatever it is.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from psl_core.config import ExperimentConfig, apply_overrides  # noqa: E402
from psl_core.engine import MemorySink, PSLTrainer, build_experiment  # noqa: E402
from psl_core.metrics import STEP_PHASE_FIELDS  # noqa: E402

VARIANTS = [("ugs", 0.0), ("lds", 0.0), ("lds", 0.5), ("lds", 1.0), ("lds", 2.0)]
SCENARIOS = {
    "skew": {"partition.scheme": "dirichlet", "partition.alpha": 0.5, "partition.num_clients": 20},
    "exclusive": {
        "partition.scheme": "pathological",
        "partition.classes_per_client": 1,
        "partition.num_clients": 10,
    },
}


class EvalEverySink(MemorySink):
    """Evaluates the model after every batch of step rows (the trainer flushes every N steps)."""

    def __init__(self, trainer: PSLTrainer):
        super().__init__()
        self.trainer = trainer
        self.curve: list[tuple[float, float]] = []  # (simulated time, test accuracy)

    def on_steps(self, rows):
        super().on_steps(rows)
        self.curve.append((rows[-1]["sim_time"], self.trainer.evaluate()["test_acc"]))


def config(scenario: str, method: str, delta: float, seed: int, args) -> ExperimentConfig:
    return apply_overrides(
        ExperimentConfig(),
        {
            "seed": seed,
            "data.dataset": "fashion_mnist",
            "data.train_limit": args.train_limit,
            "data.test_limit": args.test_limit,
            **SCENARIOS[scenario],
            "model.arch": "cnn",
            "model.cut": 2,
            "sampling.method": method,
            "sampling.lds_delta": delta,
            "sampling.batch_size": 128,
            "training.epochs": args.epochs,
            "training.device": "cpu",
            "system.clients": [{"device": "rpi4b"}],
            "system.server_device": "vm",
            "system.stragglers.persistent_fraction": 0.2,
            "system.stragglers.persistent_factor": 10.0,
        },
    )


def run(
    scenario: str, method: str, delta: float, seed: int, args, curve: bool = True
) -> tuple[MemorySink, PSLTrainer]:
    """One run; with ``curve`` the test accuracy is also checked every --eval-every-steps steps."""
    trainer = PSLTrainer(
        build_experiment(config(scenario, method, delta, seed, args)), flush_every=args.eval_every_steps
    )
    sink = EvalEverySink(trainer) if curve else MemorySink()
    trainer.run(sink)
    return sink, trainer


def time_to(curve: list[tuple[float, float]], target: float) -> float | None:
    return next((t for t, acc in curve if acc >= target), None)


def mean_of(sinks: list[MemorySink], field: str) -> float:
    """Mean over seeds of a step field's mean over the run."""
    return statistics.fmean(statistics.fmean(r[field] for r in s.steps) for s in sinks)


def skew_table(args, seeds) -> None:
    targets = args.targets
    head = " | ".join(f"time to {t:g} (sim s, mean; reached)" for t in targets)
    phases = " | ".join(name.removeprefix("sim_") for name in STEP_PHASE_FIELDS)
    print(f"| method | δ | {head} | final test acc | mean deviation | mean step (sim s) | {phases} |")
    print("|---|---|" + "---|" * (len(targets) + 3 + len(STEP_PHASE_FIELDS)))
    for method, delta in args.variants:
        sinks = [run("skew", method, delta, s, args)[0] for s in seeds]
        cells = []
        for target in targets:
            reached = [t for t in (time_to(s.curve, target) for s in sinks) if t is not None]
            mean = f"{statistics.fmean(reached):.1f}" if reached else "never"
            cells.append(f"{mean} ({len(reached)}/{len(seeds)})")
        final = statistics.fmean(s.curve[-1][1] for s in sinks)
        dev = statistics.fmean(statistics.fmean(r["deviation"] for r in s.steps) for s in sinks)

        print(
            f"| {method} | {delta:g} | {' | '.join(cells)} | {final:.4f} | {dev:.3f} | {mean_of(sinks, 'sim_step_time'):.3f} | "
            + " | ".join(f"{mean_of(sinks, f):.3f}" for f in STEP_PHASE_FIELDS)
            + " |",
            flush=True,
        )


def exclusive_table(args, seeds) -> None:
    print(
        "| method | δ | final test acc | acc on the slow clients' classes | their share of samples | sim time (s) |"
    )
    print("|---|---|---|---|---|---|")
    for method, delta in [("ugs", 0.0), ("lds", 1.0), ("lds", 2.0)]:
        overall, slow_acc, share, sim = [], [], [], []
        for seed in seeds:
            # Only the end-of-run accuracy is reported here, so no accuracy curve is evaluated.
            sink, trainer = run("exclusive", method, delta, seed, args, curve=False)
            setup = trainer.setup
            slow = np.flatnonzero(setup.stragglers.persistent > 1)
            classes = [int(np.argmax(setup.partition.counts[k])) for k in slow]
            last = sink.epochs[-1]
            overall.append(last["test_acc"])
            slow_acc.append(statistics.fmean(last["per_class_acc"][c] for c in classes))
            got = sum(s["samples"] for s in sink.client_stats if s["client"] in slow)
            share.append(got / sum(s["samples"] for s in sink.client_stats))
            sim.append(last["sim_time"])
        print(
            f"| {method} | {delta:g} | {statistics.fmean(overall):.4f} | {statistics.fmean(slow_acc):.4f} "
            f"(per seed {', '.join(f'{a:.2f}' for a in slow_acc)}) | {statistics.fmean(share):.3f} | "
            f"{statistics.fmean(sim):.1f} |",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--targets", default="0.7,0.75")
    ap.add_argument("--eval-every-steps", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--train-limit", type=int, default=6000)
    ap.add_argument("--test-limit", type=int, default=1000)
    ap.add_argument("--scenarios", default="skew,exclusive")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--variants",
        default=",".join(f"{m}:{d:g}" for m, d in VARIANTS),
        help="skew-scenario rows as method:delta, comma-separated (seeded: a row re-run prints the same)",
    )
    args = ap.parse_args()
    args.targets = [float(t) for t in args.targets.split(",")]
    args.variants = [(m, float(d)) for m, d in (v.split(":") for v in args.variants.split(","))]
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    print(
        f"Fashion-MNIST {args.train_limit} train / {args.test_limit} test, {args.epochs} epochs, test accuracy "
        f"every {args.eval_every_steps} steps, seeds {seeds}\n"
    )
    if "skew" in args.scenarios:
        print("### skew (Dirichlet α = 0.5, K = 20)\n")
        skew_table(args, seeds)
    if "exclusive" in args.scenarios:
        print("\n### exclusive (one class per client, K = 10: the 2 slow clients hold 2 classes alone)\n")
        exclusive_table(args, seeds)


if __name__ == "__main__":
    main()
