"""`psl run` trains every paradigm from the command line: metrics CSVs, summary, stored config."""

from __future__ import annotations

import csv

import pytest
import yaml
from typer.testing import CliRunner

from app.cli import app

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {
    "name": "cli-paradigm",
    "data": {"dataset": "digits", "train_limit": 120, "test_limit": 30},
    "partition": {"num_clients": 4},
    "model": {"arch": "mlp"},
    "paradigm": {"local_batch": 16},
    "training": {"epochs": 2},
    "system": {"clients": [{"device": "rpi4b", "fraction": 0.5}, {"device": "jetson_gpu", "fraction": 0.5}]},
}


@pytest.mark.parametrize("name", ["sl", "sflv1", "sflv2", "fedavg", "hsfl"])
def test_run_trains_a_paradigm_and_writes_round_metrics(tmp_path, monkeypatch, name):
    monkeypatch.setenv("PSL_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["run", "tiny.yaml", "--out", str(out), "--set", f"paradigm.name={name}", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert "final test accuracy" in result.output
    assert yaml.safe_load((out / "config.yaml").read_text())["paradigm"]["name"] == name
    with open(out / "steps.csv") as f:
        steps = list(csv.DictReader(f))
    with open(out / "epochs.csv") as f:
        rounds = list(csv.DictReader(f))
    assert len(rounds) == 2 and len(steps) >= 2  # one row per round, steps within them
    sim_times = [float(r["sim_time"]) for r in steps]
    assert all(b > a for a, b in zip(sim_times, sim_times[1:]))  # simulated time only moves forward
    assert float(rounds[-1]["energy_per_client_j"]) > 0 and float(rounds[-1]["bytes_per_client"]) > 0
