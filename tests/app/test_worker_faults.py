"""Storage faults under a live worker and the command line: a full disk, the database file pulled
away, a read-only PSL_HOME, and option values that must be refused."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

import app.worker.loop as loop
from app.bundles import export_bundle
from app.cli import app as cli_app
from app.runs import submit
from app.settings import get_settings
from app.worker.loop import run_worker
from psl_core.config import ExperimentConfig
from psl_core.engine import checkpoint
from storage import DatabaseFileChanged, Store, dispose_engine
from tests.app.configs import tiny_config

runner = CliRunner()


def tiny(**overrides) -> ExperimentConfig:
    return tiny_config("faults", steps_per_epoch=4, **overrides)


@pytest.fixture
def home(db_home):
    return db_home


def _wait(condition, timeout: float = 120.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


# ---------------------------------------------------------------- a full disk (injected)
def test_disk_full_fails_the_run_with_the_reason_once_the_database_takes_it(home, monkeypatch):
    store = Store(get_settings().database_url)
    doomed = submit(store, tiny(**{"training.checkpoint_every_steps": 2}))
    after = submit(store, tiny())
    real_write, real_finish = checkpoint.write_file, Store.finish_run
    refusals = []

    def write_file(path, data):
        if f"{os.sep}{doomed}{os.sep}" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_write(path, data)

    def finish_run(self, run_id, status, **kwargs):
        if run_id == doomed and len(refusals) < 3:  # the database is full too, for a while
            refusals.append(status)
            raise OperationalError("UPDATE runs", {}, Exception("database or disk is full"))
        return real_finish(self, run_id, status, **kwargs)

    monkeypatch.setattr(checkpoint, "write_file", write_file)
    monkeypatch.setattr(Store, "finish_run", finish_run)
    monkeypatch.setattr(loop, "RETRY_FIRST_WAIT_S", 0.01)
    assert run_worker(exit_when_idle=True, poll_s=0.05) == 2
    record = store.get_run(doomed)
    assert refusals == ["failed"] * 3
    assert record.status == "failed"
    assert record.error.startswith("disk full:") and "No space left on device" in record.error
    assert store.get_run(after).status == "completed"


def test_a_database_that_goes_away_as_a_run_starts_does_not_kill_the_worker(home, monkeypatch):
    store = Store(get_settings().database_url)
    interrupted, after = submit(store, tiny()), submit(store, tiny())
    real_get = Store.get_run
    outages = []

    def get_run(self, run_id):
        if run_id == interrupted and not outages:  # the server restarts just as the worker reads the run
            outages.append(run_id)
            raise OperationalError("SELECT runs", {}, Exception("server closed the connection unexpectedly"))
        return real_get(self, run_id)

    monkeypatch.setattr(Store, "get_run", get_run)
    run_worker(exit_when_idle=True, poll_s=0.05, stale_after_s=60)
    assert outages == [interrupted]
    assert store.get_run(after).status == "completed"
    assert store.get_run(interrupted).status == "running"  # left to go stale, not failed or lost
    time.sleep(0.6)
    assert run_worker(exit_when_idle=True, poll_s=0.05, stale_after_s=0.5, heartbeat_s=0.1) == 1
    record = store.get_run(interrupted)
    assert (record.status, record.attempts) == ("completed", 2)


# ---------------------------------------------------------------- a full disk (a real, tiny tmpfs)
@contextlib.contextmanager
def _tmpfs(path: Path, size: str):
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _fill(folder: Path) -> Path:
    """Fill the file system of ``folder``; the returned file frees the space again when removed."""
    filler = folder / "filler"
    try:
        with open(filler, "wb") as f:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
    except OSError as err:  # at open too: the run's own writes may have filled it first
        assert err.errno == errno.ENOSPC
    return filler


class _Log(logging.Handler):
    """Collects the worker's log lines (it runs in a thread of this process)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def _worker_thread(**kwargs):
    """``run_worker`` in a thread; yields (thread, outcome dict, log lines)."""
    outcome: dict = {}
    handler = _Log()
    logger = logging.getLogger("psl")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)

    def work():
        try:
            outcome["done"] = run_worker(poll_s=0.05, heartbeat_s=0.5, stale_after_s=3, **kwargs)
        except BaseException as err:  # noqa: BLE001 - handed to the test
            outcome["error"] = err

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        yield thread, outcome, handler.lines
    finally:
        thread.join(120)
        logger.removeHandler(handler)


def test_a_really_full_disk_never_leaves_the_run_running(tmp_path, monkeypatch):
    with _tmpfs(tmp_path / "small", "16m") as small:  # room for the run's own files before the filler
        url = f"sqlite:///{small / 'psl.db'}"
        monkeypatch.setenv("PSL_HOME", str(small))
        monkeypatch.setenv("PSL_DATABASE_URL", url)
        monkeypatch.setattr(loop, "RETRY_MAX_WAIT_S", 0.5)
        store = Store(url)
        run_id = submit(store, tiny(**{"training.epochs": 400, "training.checkpoint_every_steps": 2}))
        with _worker_thread(exit_when_idle=True) as (thread, outcome, lines):
            _wait(lambda: store.count_step_metrics(run_id) > 8, what="training to start")
            filler = _fill(small)
            # Either the failure is recorded at once (the database still had room in its journal) or
            # the worker keeps retrying to record it, saying so, and the run stays 'running' meanwhile.
            _wait(
                lambda: store.get_run(run_id).status != "running" or any("cannot record" in x for x in lines),
                60,
                "the failure or a retry",
            )
            filler.unlink(missing_ok=True)  # space again: the failure is recorded now if it was not yet
            thread.join(120)
        assert outcome == {"done": 1}, outcome
        record = store.get_run(run_id)
        assert record.status == "failed", record
        assert record.error.startswith("disk full:"), record.error
        dispose_engine(url)


# ---------------------------------------------------------------- the database file pulled away
@pytest.mark.parametrize("how", ["removed", "replaced"])
def test_the_worker_stops_loudly_when_its_database_file_is_pulled_away(tmp_path, monkeypatch, how):
    url = f"sqlite:///{tmp_path / 'psl.db'}"
    monkeypatch.setenv("PSL_HOME", str(tmp_path))
    monkeypatch.setenv("PSL_DATABASE_URL", url)
    store = Store(url)
    run_id = submit(store, tiny(**{"training.epochs": 400}))
    submit(store, tiny())  # waiting: without the guard the worker would go on to claim it
    with _worker_thread() as (thread, outcome, lines):  # no exit_when_idle: only the guard ends it
        _wait(lambda: store.count_step_metrics(run_id) > 4, what="training to start")
        if how == "removed":
            (tmp_path / "psl.db").unlink()
        else:
            shutil.copy(tmp_path / "psl.db", tmp_path / "copy.db")
            os.replace(tmp_path / "copy.db", tmp_path / "psl.db")
        thread.join(60)
    assert isinstance(outcome.get("error"), DatabaseFileChanged), outcome
    assert how in str(outcome["error"])
    assert any("stops" in line for line in lines)
    dispose_engine(url)


def test_psl_worker_exits_3_when_its_database_file_is_pulled_away(home, monkeypatch):
    def pulled_away(**_kwargs):
        raise DatabaseFileChanged("the database file x was removed while this process had it open")

    import app.worker.loop as loop  # the executor imports run_worker from here when it drains

    monkeypatch.setattr(loop, "run_worker", pulled_away)
    result = runner.invoke(cli_app, ["worker"])
    assert result.exit_code == 3
    assert "was removed" in result.output


# ---------------------------------------------------------------- a read-only PSL_HOME
@contextlib.contextmanager
def _read_only(folder: Path):
    """``folder`` read-only: a read-only bind mount as root (whom permissions do not stop), else chmod."""
    if os.geteuid() == 0:
        mount = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
        if mount.returncode != 0:
            pytest.skip(f"cannot bind-mount here: {mount.stderr.decode().strip()}")
        remount = subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True)
        try:
            if remount.returncode != 0:
                pytest.skip(f"cannot remount read-only: {remount.stderr.decode().strip()}")
            yield
        finally:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)
        return
    modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")]}
    for p in modes:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        yield
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


def test_a_read_only_home_reads_and_refuses_writes_in_one_line(tmp_path, monkeypatch):
    home = tmp_path / "home"
    out = tmp_path / "out"
    out.mkdir()
    url = f"sqlite:///{home / 'psl.db'}"
    home.mkdir()
    store = Store(url)
    run_id = submit(store, tiny(name="readable"))
    store.add_step_metrics(run_id, [{"step": 1, "loss": 0.5}])
    (out / "b.zip").write_bytes(export_bundle(store, run_id))
    (out / "c.yaml").write_text(yaml.safe_dump({"name": "x"}))
    dispose_engine(url)  # folds the WAL back: nothing but psl.db is left in the home
    monkeypatch.setenv("PSL_HOME", str(home))
    monkeypatch.setenv("PSL_DATABASE_URL", url)
    with _read_only(home):
        for args in (
            ["runs"],
            ["show", str(run_id)],
            ["results", str(run_id)],
            ["export", str(run_id), "--out", str(out / "e.zip")],
        ):
            result = runner.invoke(cli_app, args)
            assert result.exit_code == 0, (args, result.output)
        assert "readable" in runner.invoke(cli_app, ["runs"]).output
        assert (out / "e.zip").stat().st_size > 0
        for args in (
            ["submit", str(out / "c.yaml")],
            ["cancel", str(run_id)],
            ["delete", str(run_id)],
            ["import", str(out / "b.zip")],
        ):
            result = runner.invoke(cli_app, args)
            assert result.exit_code == 2, (args, result.output)
            lines = result.output.strip().splitlines()
            assert len(lines) == 1 and "read-only" in lines[0], (args, result.output)
    assert Store(url).get_run(run_id).status == "queued"
    dispose_engine(url)


# ---------------------------------------------------------------- option values
@pytest.mark.parametrize(
    "args, env, message",
    [
        (["show", "99999999999"], {}, "less than or equal to 2147483647"),
        (["cancel", "-3"], {}, "-3"),
        (["ui", "--address", "bad host!"], {}, "neither an IP address nor a host name"),
        (["ui", "--port", "70000"], {}, "less than or equal to 65535"),
        (["worker", "--stale-after", "1", "--heartbeat-every", "3"], {}, "shorter than 3 heartbeats"),
        (["worker", "--concurrency", "0"], {}, "greater than or equal to 1"),
        (["runs", "--limit", "0"], {}, "greater than or equal to 1"),
        (["runs"], {"PSL_KEEP_CHECKPOINTS": "0"}, "PSL_KEEP_CHECKPOINTS"),
        (["runs"], {"PSL_KEEP_CHECKPOINTS": "9" * 5000}, "PSL_KEEP_CHECKPOINTS"),
        (["runs", "--status", "zombie"], {}, "unknown run status"),
        (["sweep", "CFG", "--grid", "seed=[1", "--seeds", "0"], {}, "--grid"),
        (["sweep", "CFG", "--grid", "seed=[1]", "--seeds", "1" * 30], {}, "seeds must be whole numbers"),
        (["advise", "CFG", "--budget", "rpi4b=nan"], {}, "--budget"),
        (["advise", "CFG", "--budget", "rpi4b=-5"], {}, "--budget"),
    ],
)
def test_bad_option_values_exit_2_with_a_message(home, monkeypatch, args, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    cfg = home / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"name": "opt"}))
    result = runner.invoke(cli_app, [str(cfg) if a == "CFG" else a for a in args])
    assert result.exit_code == 2, result.output
    flat = " ".join(result.output.replace("│", " ").split())  # Typer's error box wraps lines
    assert message in flat, result.output
    assert "Traceback" not in result.output
