"""Worker slots get their share of the cores; the cancel flag is read off the training thread."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from app.settings import SettingsError, get_settings
from app.worker import threads as budget
from app.worker.loop import Heartbeat
from app.worker.store_sink import StoreSink

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "slots, requested, cores, expected",
    [(1, None, 8, None), (2, None, 8, 4), (3, None, 8, 2), (4, None, 2, 1), (2, 3, 8, 3), (1, 2, 8, 2)],
)
def test_each_slot_gets_its_share_unless_told(slots, requested, cores, expected):
    assert budget.threads_per_slot(slots, requested, cores) == expected


@pytest.mark.parametrize("slots, requested", [(0, None), (2, 0)])
def test_impossible_budgets_are_refused(slots, requested):
    with pytest.raises(ValueError, match="at least"):
        budget.threads_per_slot(slots, requested, 4)


def test_the_setting_is_read_checked_and_handed_to_children(tmp_path):
    s = get_settings({"PSL_HOME": str(tmp_path), "PSL_THREADS_PER_SLOT": "3"})
    assert s.threads_per_slot == 3
    assert get_settings(s.as_env()) == s
    assert get_settings({"PSL_HOME": str(tmp_path)}).threads_per_slot is None
    for bad in ("0", "two", "-1", "99999"):
        with pytest.raises(SettingsError, match="PSL_THREADS_PER_SLOT"):
            get_settings({"PSL_THREADS_PER_SLOT": bad})


def test_applying_a_budget_caps_torch_and_the_environment_of_children(monkeypatch):
    before = torch.get_num_threads()
    for name in budget.THREAD_ENV_VARS:
        monkeypatch.setenv(name, "7")  # recorded, so the caps set below are undone after the test
        monkeypatch.delenv(name)
    try:
        budget.apply_thread_budget(1)
        assert torch.get_num_threads() == 1
        assert all(os.environ[name] == "1" for name in budget.THREAD_ENV_VARS)
        child = subprocess.run(
            [sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert child.stdout.strip() == "1"
    finally:
        torch.set_num_threads(before)


def test_psl_worker_slots_log_their_thread_budget(tmp_path):
    env = dict(os.environ, PSL_HOME=str(tmp_path), PYTHONPATH=str(ROOT))
    env.pop("PSL_DATABASE_URL", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "worker",
            "--concurrency",
            "2",
            "--threads-per-slot",
            "1",
            "--exit-when-idle",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    started = [
        line for line in (tmp_path / "logs" / "worker.log").read_text().splitlines() if "started" in line
    ]
    assert len(started) == 2 and all("1 CPU threads for training" in line for line in started)


class FakeStore:
    """Counts cancel queries and where they come from."""

    def __init__(self):
        self.cancel_requested = False
        self.query_threads: list[str] = []

    def is_cancel_requested(self, run_id):
        self.query_threads.append(threading.current_thread().name)
        return self.cancel_requested

    def heartbeat(self, run_id, worker_id, **progress):
        return True


def test_should_stop_never_queries_the_store_and_the_heartbeat_brings_the_cancel():
    store = FakeStore()
    sink = StoreSink(store, run_id=1, worker_id="w")
    beat = Heartbeat(sink, every_s=0.2, cancel_every_s=0.02)
    beat.start()
    try:
        for _ in range(200):
            assert not sink.should_stop()
        time.sleep(0.1)
        training_thread = threading.current_thread().name
        assert training_thread not in store.query_threads and store.query_threads  # only the heartbeat asks
        store.cancel_requested = True
        deadline = time.monotonic() + 5
        while not sink.should_stop() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sink.should_stop()
    finally:
        beat.stopped.set()
        beat.join(2)
        sink.close()


def test_the_local_executor_gives_each_slot_its_share(tmp_path):
    from app.worker.executors import LocalExecutor

    cores = budget.available_cores()
    plain = get_settings({"PSL_HOME": str(tmp_path)})
    assert LocalExecutor(plain, concurrency=1).threads is None
    assert LocalExecutor(plain, concurrency=2).threads == max(1, cores // 2)
    assert LocalExecutor(plain, concurrency=2, threads_per_slot=3).threads == 3
    configured = get_settings({"PSL_HOME": str(tmp_path), "PSL_THREADS_PER_SLOT": "5"})
    assert LocalExecutor(configured, concurrency=2).threads == 5
    assert LocalExecutor(configured, concurrency=2, threads_per_slot=1).threads == 1  # the option wins


def test_the_parent_of_a_pool_imports_neither_torch_nor_the_store():
    probe = (
        "import sys, app.cli, app.cli.common, app.worker.executors\n"
        "heavy = [m for m in ('torch', 'pandas', 'sqlalchemy', 'storage', 'app.worker.loop') if m in sys.modules]\n"
        "print(heavy)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]"


def test_threads_per_slot_is_refused_for_ray_with_what_to_use(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from app.cli import app

    monkeypatch.setenv("PSL_HOME", str(tmp_path))
    monkeypatch.delenv("PSL_DATABASE_URL", raising=False)
    monkeypatch.delenv("PSL_CHECKPOINT_URL", raising=False)
    result = CliRunner().invoke(app, ["worker", "--backend", "ray", "--threads-per-slot", "2"])
    assert result.exit_code == 2
    assert "--threads-per-slot only applies to --backend local" in result.output
    assert "--num-cpus" in result.output


def _modules_at_slot_start(found) -> None:  # noqa: ANN001 - a multiprocessing queue
    found.put({name: name in sys.modules for name in ("torch", "torch._dynamo", "app.worker.loop")})


def test_pool_slots_start_with_torch_and_the_store_already_imported(monkeypatch):
    import types

    from app.worker.executors import slot_context

    # A fork-server child re-runs the parent's __main__ from its file; in the whole suite an earlier
    # AppTest leaves a page script there (which opens a long-gone database). `psl worker`'s own
    # __main__ is the CLI, which is safe to re-import; here the slot needs none.
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    context = slot_context()
    if context.get_start_method() != "forkserver":
        pytest.skip("no fork server on this platform: each slot imports for itself")
    found = context.SimpleQueue()
    slots = [context.Process(target=_modules_at_slot_start, args=(found,)) for _ in range(2)]
    for slot in slots:
        slot.start()
    for slot in slots:
        slot.join(120)
    assert [slot.exitcode for slot in slots] == [0, 0]
    assert [found.get(), found.get()] == [{"torch": True, "torch._dynamo": True, "app.worker.loop": True}] * 2


def test_the_caps_for_children_leave_this_process_environment_as_it_was(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    with budget.thread_env_for_children(1):
        assert all(os.environ[name] == "1" for name in budget.THREAD_ENV_VARS)
    assert os.environ["OMP_NUM_THREADS"] == "3" and "MKL_NUM_THREADS" not in os.environ
