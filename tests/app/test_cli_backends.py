"""`psl sweep --backend` and `psl worker --backend`: options checked before anything is queued, a sweep
run to its end here, and where each run executed shown by `psl runs --json` and `psl show`."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from app.cli import app
from app.settings import get_settings
from storage import Store

runner = CliRunner()

TINY = {
    "name": "backend-tiny",
    "data": {"dataset": "digits"},
    "partition": {"num_clients": 4},
    "sampling": {"batch_size": 128},
    "training": {"epochs": 1, "max_steps_per_epoch": 3},
}


@pytest.fixture
def home(home):
    """The shared fresh home (tests/app/conftest.py) holding the tiny config."""
    (home / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    return home


def invoke(*args):
    return runner.invoke(app, list(args))


def test_sweep_with_the_local_backend_runs_here_and_says_where(home):
    result = invoke("sweep", "tiny.yaml", "--grid", "sampling.method=[ugs,fls]", "--backend", "local")
    assert result.exit_code == 0, result.output
    assert "running sweep #1 on the local backend" in result.output
    assert result.output.count("completed") >= 2 and "sweep #1: 2 completed" in result.output
    listed = json.loads(invoke("runs", "--json").output)
    assert {(r["status"], r["backend"], r["slot"], r["attempts"]) for r in listed} == {
        ("completed", "local", "1/1", 1)
    }
    assert all(r["host"] for r in listed)
    shown = invoke("show", "1").output
    assert f"executes on {listed[0]['host']} (local 1/1)" in shown


def test_sweep_exits_1_when_a_run_does_not_complete(home, monkeypatch):
    from psl_core.engine import PSLTrainer

    def explode(self, x, y):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(PSLTrainer, "_forward_backward", explode)
    result = invoke("sweep", "tiny.yaml", "--grid", "seed=[0]", "--backend", "local", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)  # the log line of the failure goes to stderr
    assert [r["status"] for r in data["runs"]] == ["failed"] and "simulated failure" in data["runs"][0][
        "error"
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--backend", "nope"], "--backend 'nope' is not a backend; use one of local, ray"),
        (["--backend", "local", "--num-gpus", "1"], "--num-gpus only apply to --backend ray"),
        (
            ["--backend", "local", "--address", "auto", "--max-retries", "2"],
            "--address, --max-retries only apply",
        ),
        (["--backend", "local", "--concurrency", "65"], "--concurrency 65 is too many processes for one"),
    ],
)
def test_options_that_do_not_fit_the_backend_are_refused_before_anything_is_queued(home, args, message):
    for command in (["sweep", "tiny.yaml", "--grid", "seed=[0,1]"], ["worker", "--exit-when-idle"]):
        result = invoke(*command, *args)
        assert result.exit_code == 2, result.output
        assert message in result.output
    assert Store(get_settings().database_url).list_runs() == []


def test_sweep_options_for_running_it_need_a_backend(home):
    result = invoke("sweep", "tiny.yaml", "--grid", "seed=[0]", "--concurrency", "2", "--num-cpus", "2")
    assert result.exit_code == 2
    assert "--concurrency, --num-cpus only apply when the sweep runs here: add --backend" in result.output
    assert Store(get_settings().database_url).list_runs() == []


def test_ray_options_are_checked_before_anything_is_queued(home):
    pytest.importorskip("ray", reason="ray is not installed (pip install 'psl-studio[ray]')")
    for args, message in [
        (["--address", "not an address"], "is not a Ray address; use auto, ray://HOST:10001"),
        (["--num-cpus", "0"], "--num-cpus must be positive"),
        (["--num-gpus", "-1"], "--num-gpus must be 0 or more"),
    ]:
        result = invoke("sweep", "tiny.yaml", "--grid", "seed=[0]", "--backend", "ray", *args)
        assert result.exit_code == 2 and message in result.output, result.output
    assert Store(get_settings().database_url).list_runs() == []


def test_the_ray_backend_without_ray_installed_says_how_to_install_it(home, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    result = invoke("worker", "--backend", "ray", "--exit-when-idle")
    assert result.exit_code == 2 and "pip install 'psl-studio[ray]'" in result.output


def test_a_checkpoint_location_the_workers_cannot_open_is_refused(home, monkeypatch):
    monkeypatch.setenv("PSL_CHECKPOINT_URL", "nosuchscheme://bucket/ckpt")
    result = invoke("worker", "--exit-when-idle")
    assert result.exit_code == 2 and "PSL_CHECKPOINT_URL" in result.output and "fsspec" in result.output
    monkeypatch.setenv("PSL_CHECKPOINT_URL", str(home / "shared"))
    assert invoke("worker", "--exit-when-idle").exit_code == 0
    assert (home / "shared").is_dir()
