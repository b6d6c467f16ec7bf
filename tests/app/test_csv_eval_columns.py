"""`psl run`'s CSV files keep the live evaluations (step rows) and the test samples of each epoch."""

from __future__ import annotations

import csv

from app.cli.sinks import CsvSink
from psl_core.config import ExperimentConfig, apply_overrides
from psl_core.engine import FanoutSink, MemorySink, run_experiment


def test_step_evaluations_and_test_samples_reach_the_csv_files(tmp_path):
    cfg = apply_overrides(
        ExperimentConfig(),
        {
            "data.dataset": "digits",
            "partition.num_clients": 4,
            "training.epochs": 2,
            "training.max_steps_per_epoch": 3,
            "training.eval_every_unit": "steps",
            "training.eval_every": 2,
            "training.eval_samples": 50,
            "training.device": "cpu",
        },
    )
    csv_sink, memory = CsvSink(tmp_path), MemorySink()
    run_experiment(cfg, FanoutSink(csv_sink, memory))
    csv_sink.close()
    with open(tmp_path / "steps.csv") as f:
        steps = list(csv.DictReader(f))
    assert [r["step"] for r in steps if r["test_acc"]] == ["2", "4"]
    assert {r["test_samples"] for r in steps if r["test_acc"]} == {"50"}
    with open(tmp_path / "epochs.csv") as f:
        epochs = list(csv.DictReader(f))
    assert [e["test_samples"] for e in epochs] == ["", str(memory.epochs[-1]["test_samples"])]
    assert int(epochs[-1]["test_samples"]) > 50  # the last evaluation sees the whole test set
