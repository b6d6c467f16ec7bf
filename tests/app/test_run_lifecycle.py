"""A run's life and death: deleting (never under a worker, files go with it), a run vanishing under
its worker, checkpoints pruned to the last N, and a crafted checkpoint refused by the worker."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from sqlalchemy import delete
from typer.testing import CliRunner

import app.worker.store_sink as store_sink
from app.cli import app as cli_app
from app.runs import delete_run, delete_runs, submit
from app.settings import get_settings
from app.worker.loop import ShutdownFlag, execute_run, run_worker
from psl_core.config import ExperimentConfig
from psl_core.engine.checkpoint import CHECKPOINT_VERSION
from storage import RunIsActive, Store, get_engine
from storage.tables import Run
from tests.app.configs import tiny_config

runner = CliRunner()


def tiny(**overrides) -> ExperimentConfig:
    return tiny_config("lifecycle", steps_per_epoch=6, **overrides)


@pytest.fixture
def home(db_home):
    return db_home


@pytest.fixture
def store(home):
    return Store(get_settings().database_url)


def _run_folder(run_id: int) -> Path:
    return get_settings().checkpoints_dir / str(run_id)


def _plant_checkpoint(store: Store, run_id: int, name: str = "step000000002.pt") -> Path:
    folder = _run_folder(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"x")
    store.add_checkpoint(run_id, step=2, epoch=0, path=str(path))
    return path


# ---------------------------------------------------------------- deleting
def test_delete_removes_the_run_and_its_checkpoint_folder(store):
    run_id = submit(store, tiny())
    path = _plant_checkpoint(store, run_id)
    (path.parent / "stray.tmp").write_bytes(b"y")
    delete_run(store, get_settings(), run_id)
    assert not store.run_exists(run_id)
    assert not path.parent.exists()


def test_delete_never_touches_a_file_outside_the_runs_folder(store, tmp_path):
    run_id = submit(store, tiny())
    precious = tmp_path / "precious.txt"
    precious.write_text("keep")
    store.add_checkpoint(run_id, step=1, epoch=0, path=str(precious))
    store.add_checkpoint(run_id, step=2, epoch=0, path=str(_run_folder(run_id) / ".." / "x"))
    delete_run(store, get_settings(), run_id)
    assert precious.read_text() == "keep"


def test_a_running_run_is_refused_with_cancel_it_first(store):
    run_id = submit(store, tiny())
    store.claim_next_run("w1")
    with pytest.raises(RunIsActive, match="cancel it first"):
        delete_run(store, get_settings(), run_id)
    assert delete_runs(store, get_settings(), [run_id, 999]) == [
        f"run #{run_id} is running; cancel it first (`psl cancel {run_id}`) and delete it once it has stopped"
    ]
    assert store.get_run(run_id).status == "running"


def test_psl_delete(store):
    done = submit(store, tiny())
    running = submit(store, tiny())
    store.claim_next_run("w1")  # takes `done` (oldest first)
    store.finish_run(done, "completed")
    store.claim_next_run("w2")  # now `running` is running
    path = _plant_checkpoint(store, done)
    result = runner.invoke(cli_app, ["delete", str(done), str(running), "424242"])
    assert result.exit_code == 2
    assert f"deleted run #{done}" in result.output
    assert "cancel it first" in result.output and "there is no run #424242" in result.output
    assert not path.parent.exists() and store.run_exists(running) and not store.run_exists(done)
    bad = runner.invoke(cli_app, ["delete", "0"])
    assert bad.exit_code == 2 and "greater than or equal to 1" in bad.output


def test_new_runs_never_inherit_a_deleted_runs_checkpoints(store):
    first = submit(store, tiny())
    _plant_checkpoint(store, first)
    delete_run(store, get_settings(), first)
    second = submit(store, tiny())
    assert second != first
    assert store.latest_checkpoint(second) is None
    assert not _run_folder(second).exists()


def test_the_runs_page_refuses_to_delete_a_running_run(store):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_resource.clear()
    run_id = submit(store, tiny())
    store.claim_next_run("w1")
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "pages" / "runs.py"), default_timeout=60)
    at.run()
    at.multiselect(key="runs_selected").set_value([run_id]).run()
    next(x for x in at.button if x.label == "Delete…").click().run()
    at.button(key="runs_delete_yes").click().run()
    assert not at.exception
    assert any("cancel it first" in w.value for w in at.warning)
    assert store.get_run(run_id).status == "running"
    st.cache_resource.clear()


# ---------------------------------------------------------------- a run vanishing under its worker
def test_the_worker_survives_its_run_being_deleted_and_goes_on(store, store_url, monkeypatch):
    doomed = submit(store, tiny(**{"training.epochs": 3}))
    after = submit(store, tiny())
    original = store_sink.StoreSink.on_steps

    def delete_behind_the_workers_back(self, rows):
        if self.run_id == doomed:
            with get_engine(store_url).begin() as conn:  # another tool, or a race with a claim
                conn.execute(delete(Run).where(Run.id == doomed))
        return original(self, rows)

    monkeypatch.setattr(store_sink.StoreSink, "on_steps", delete_behind_the_workers_back)
    assert run_worker(exit_when_idle=True, poll_s=0.05) == 2
    assert not store.run_exists(doomed)
    assert store.get_run(after).status == "completed"


class _StopAtOnce(ShutdownFlag):
    """As if the worker were told to shut down before its first step."""

    def __call__(self) -> bool:
        self.event.set()
        return True


@pytest.mark.parametrize("stopping", [False, True])
def test_a_run_deleted_as_it_ends_is_vanished_and_the_worker_goes_on(store, store_url, monkeypatch, stopping):
    doomed = submit(store, tiny())
    store.claim_next_run("w1")
    original = Store.is_cancel_requested

    def delete_first(self, run_id):  # between the last step and the final record
        with get_engine(store_url).begin() as conn:
            conn.execute(delete(Run).where(Run.id == run_id))
        return original(self, run_id)

    monkeypatch.setattr(Store, "is_cancel_requested", delete_first)
    monkeypatch.setattr(Store, "finish_run", lambda self, run_id, status, **kw: delete_first(self, run_id))
    shutdown = _StopAtOnce() if stopping else None
    assert execute_run(store, doomed, "w1", shutdown=shutdown) == "vanished"
    assert not store.run_exists(doomed)


def test_a_hand_back_the_database_refuses_leaves_the_run_to_go_stale(store, monkeypatch):
    run_id = submit(store, tiny())
    store.claim_next_run("w1")

    def disk_full(self, run_id, worker_id):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Store, "release_run", disk_full)
    assert execute_run(store, run_id, "w1", shutdown=_StopAtOnce()) == "lost"
    record = store.get_run(run_id)
    assert (record.status, record.worker_id) == ("running", "w1")  # reclaimed once its beat is stale
    monkeypatch.undo()
    assert store.claim_next_run("w2", stale_after_s=0) is not None


def test_execute_run_of_a_run_deleted_before_it_starts_is_vanished(store):
    assert execute_run(store, 4242, "w1") == "vanished"


# ---------------------------------------------------------------- checkpoints kept and refused
def test_only_the_last_n_checkpoints_are_kept(store, monkeypatch):
    monkeypatch.setenv("PSL_KEEP_CHECKPOINTS", "2")
    run_id = submit(store, tiny(**{"training.epochs": 2, "training.checkpoint_every_steps": 2}))
    run_worker(exit_when_idle=True)
    assert store.get_run(run_id).status == "completed"
    files = sorted(p.name for p in _run_folder(run_id).iterdir())
    rows = store.list_checkpoints(run_id)
    assert files == ["step000000010.pt", "step000000012.pt"]
    assert [Path(c.path).name for c in rows] == files


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_crafted_checkpoint_in_psl_home_fails_the_run_and_runs_nothing(store, home):
    run_id = submit(store, tiny())
    follower = submit(store, tiny())
    marker = home / "pwned"
    folder = _run_folder(run_id)
    folder.mkdir(parents=True)
    evil = folder / "step000000002.pt"
    torch.save({"version": CHECKPOINT_VERSION, "model": _Payload(marker), "optimizer": {}}, evil)
    store.add_checkpoint(run_id, step=2, epoch=0, path=str(evil))
    assert run_worker(exit_when_idle=True) == 2
    record = store.get_run(run_id)
    assert record.status == "failed" and "refused" in record.error
    assert not marker.exists()
    assert store.get_run(follower).status == "completed"


# ---------------------------------------------------------------- names used in paths
@pytest.mark.parametrize(
    "name",
    [
        "../../x",
        "..",
        ".",
        "/etc/passwd",
        "a/../../b",
        "..\\..\\win",
        "x" * 500,
        "ünïcødé",
        "-rf",
        " ",
        "a\tb",
    ],
)
def test_a_run_name_becomes_one_safe_path_component(tmp_path, name):
    from app.runs import safe_file_stem

    stem = safe_file_stem(name)
    assert stem and "/" not in stem and "\\" not in stem and stem not in (".", "..") and len(stem) <= 80
    assert (tmp_path / stem).resolve().parent == tmp_path.resolve()


def test_psl_run_keeps_its_output_under_runs_whatever_the_name(tmp_path, monkeypatch):
    import yaml

    home = tmp_path / "work"
    home.mkdir()
    monkeypatch.setenv("PSL_HOME", str(tmp_path / "psl-home"))
    monkeypatch.chdir(home)
    cfg = home / "evil.yaml"
    cfg.write_text(yaml.safe_dump({**tiny().model_dump(mode="json"), "name": "../../escaped"}))
    result = runner.invoke(cli_app, ["run", str(cfg), "--quiet"])
    assert result.exit_code == 0, result.output
    outputs = list((home / "runs").iterdir())
    assert len(outputs) == 1 and outputs[0].name.startswith("escaped-")
    assert not (home.parent / "escaped").exists()
