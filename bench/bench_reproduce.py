"""Reproduce the GPSL paper's claim: uniform global sampling reaches centralised accuracy under severe
non-IID data, local sampling (FLS, FPLS) falls behind with a large seed variance.

    python bench/bench_reproduce.py [--epochs 4] [--train-limit 12000] [--seeds 0,1,2] [--out bench/results]

Fashion-MNIST, small CNN cut after its first block, extended Dirichlet (C = 2, α = 3), B = 128,
K ∈ {16, 64}; FLS, FPLS, UGS and the centralised reference. Each finished run is saved to a JSON
file, so an interrupted benchmark continues where it stopped. Prints a markdown table.
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


def grid(args) -> list[tuple[str, int, int]]:
    cells = [(m, k, s) for k in (16, 64) for m in ("fls", "fpls", "ugs") for s in args.seeds]
    return cells + [("centralised", 1, s) for s in args.seeds]


def config_for(method: str, k: int, seed: int, args) -> ExperimentConfig:
    scheme = "iid" if method == "centralised" else "extended_dirichlet"
    return apply_overrides(
        ExperimentConfig(),
        {
            "name": f"reproduce {method} K={k} seed={seed}",
            "seed": seed,
            "data.dataset": "fashion_mnist",
            "data.train_limit": args.train_limit,
            "partition.scheme": scheme,
            "partition.num_clients": k,
            "partition.classes_per_client": 2,
            "partition.alpha": 3.0,
            "model.arch": "cnn",
            "model.cut": 1,
            "sampling.method": method,
            "sampling.batch_size": 128,
            "training.epochs": args.epochs,
            "training.lr": 0.05,
            "training.device": "cpu",
        },
    )


def run_cell(method, k, seed, args, out: Path) -> dict:
    path = out / f"{method}-K{k}-seed{seed}.json"
    if path.exists():
        return json.loads(path.read_text())
    sink = MemorySink()
    t0 = time.perf_counter()
    diverged_at = None
    try:
        run_experiment(config_for(method, k, seed, args), sink)
    except TrainingDivergedError:
        # A NaN model predicts one class: chance accuracy, reported as such and marked.
        diverged_at = sink.steps[-1]["step"]
        sink.epochs.append({"test_acc": 0.1})
    result = {
        "method": method,
        "K": k,
        "seed": seed,
        "test_acc": [e["test_acc"] for e in sink.epochs],
        "steps_per_epoch": sink.info.steps_per_epoch,
        "mean_deviation": statistics.fmean(r["deviation"] for r in sink.steps),
        "mean_batch": statistics.fmean(r["batch_size"] for r in sink.steps),
        "wall_s": time.perf_counter() - t0,
        "diverged_at_step": diverged_at,
    }
    path.write_text(json.dumps(result))
    return result


def _per_seed(r: dict) -> str:
    acc = f"{r['test_acc'][-1]:.3f}"
    return f"{acc} (diverged at step {r['diverged_at_step']})" if r.get("diverged_at_step") else acc


def table(results: list[dict]) -> str:
    rows = [
        "| method | K | steps/epoch | mean batch | mean deviation | final test acc (mean ± sd over seeds) | per seed |",
        "|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(r["method"], r["K"]) for r in results}, key=lambda mk: (mk[1], mk[0]))
    for method, k in keys:
        rs = [r for r in results if r["method"] == method and r["K"] == k]
        finals = [r["test_acc"][-1] for r in rs]
        sd = statistics.stdev(finals) if len(finals) > 1 else 0.0
        rows.append(
            f"| {method} | {k} | {rs[0]['steps_per_epoch']} | {statistics.fmean(r['mean_batch'] for r in rs):.1f} | "
            f"{statistics.fmean(r['mean_deviation'] for r in rs):.3f} | {statistics.fmean(finals):.4f} ± {sd:.4f} | "
            f"{', '.join(_per_seed(r) for r in rs)} |"
        )
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--train-limit", type=int, default=12000)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="bench/results/reproduce")
    args = ap.parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",")]
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for method, k, seed in grid(args):
        r = run_cell(method, k, seed, args, out)
        results.append(r)
        print(
            f"{method:>11} K={k:<3} seed={seed}: acc {r['test_acc'][-1]:.4f} ({r['wall_s']:.0f} s)",
            flush=True,
        )
    print(
        f"\nFashion-MNIST ({args.train_limit} training samples, 10,000 test), CNN cut after block 1, "
        f"extended Dirichlet C=2 α=3, B=128, {args.epochs} epochs, seeds {args.seeds}\n"
    )
    print(table(results))


if __name__ == "__main__":
    main()
