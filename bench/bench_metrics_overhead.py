"""Metric-writing overhead: the same run with the worker's store sink vs a no-op sink.

    python bench/bench_metrics_overhead.py [--repeats 5]

Every step's metrics are reported (the engine always logs every step; the store sink writes them in
the engine's batches, with heartbeats and cancel checks as the worker does). Both variants run in
one process, alternating, on a real SQLite file; the table gives median wall time per step and the
overhead. Target: ≤ 3 % of step time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.worker.loop import FLUSH_INTERVAL_S, StoreSink  # noqa: E402
from psl_core.config import ExperimentConfig, apply_overrides  # noqa: E402
from psl_core.engine import PSLTrainer, Sink, build_experiment  # noqa: E402
from storage import Store  # noqa: E402

CASES = {
    "digits CNN, K=10, B=64 (tiny steps)": {
        "data.dataset": "digits",
        "model.arch": "cnn",
        "sampling.batch_size": 64,
        "partition.num_clients": 10,
    },
    "synthetic ResNet-20, K=64, B=128": {
        "data.dataset": "synthetic",
        "model.arch": "resnet20",
        "model.cut": 2,
        "sampling.batch_size": 128,
        "partition.num_clients": 64,
    },
}


def timed_run(overrides: dict, sink_factory, steps: int, epochs: int = 1) -> float:
    cfg = apply_overrides(
        ExperimentConfig(),
        {
            **overrides,
            "training.epochs": epochs,
            "training.max_steps_per_epoch": steps,
            "training.device": "cpu",
        },
    )
    store_sink = sink_factory is not Sink
    # The worker's flush policy for the store sink; the no-op sink gets the engine's default.
    trainer = PSLTrainer(build_experiment(cfg), flush_interval_s=FLUSH_INTERVAL_S if store_sink else None)
    trainer.evaluate = lambda: {"test_loss": 0.0, "test_acc": 0.0, "per_class_acc": []}  # not what we time
    sink = sink_factory()
    t0 = time.perf_counter()
    trainer.run(sink)
    if isinstance(sink, StoreSink):
        sink.close()  # the run is not done until its metrics are in the store
    return (time.perf_counter() - t0) / (steps * epochs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/psl.db")
        print(
            f"{'case':<38} {'steps':>5} {'no-op ms/step':>14} {'store ms/step':>14} {'overhead':>9}  target"
        )
        for name, overrides in CASES.items():
            # Three whole epochs each (with their epoch-end writes).
            steps, epochs = (23, 3) if "digits" in name else (16, 3)  # whole epochs of each dataset
            noop, stored = [], []
            timed_run(overrides, Sink, 3)  # warm-up (imports, first allocations)
            total = steps * epochs
            for _ in range(args.repeats):
                noop.append(timed_run(overrides, Sink, steps, epochs))
                run_id = store.create_run(name=name, config={}, seed=0)
                store.claim_next_run("bench")
                stored.append(
                    timed_run(overrides, lambda rid=run_id: StoreSink(store, rid, "bench"), steps, epochs)
                )
                assert store.count_step_metrics(run_id) == total  # every step's row is there
            a, b = statistics.median(noop), statistics.median(stored)
            over = (b - a) / a
            print(
                f"{name:<38} {total:>5} {a * 1e3:>14.2f} {b * 1e3:>14.2f} {over:>8.1%}  "
                f"{'PASS' if over <= 0.03 else 'FAIL'} (<= 3 %)"
            )


if __name__ == "__main__":
    main()
