"""The Ray backend on a real local Ray cluster (2 CPUs): a sweep's metrics equal the local backend's, a
killed Ray worker resumes its run from the checkpoint, cancel and stop are honoured.

One Ray instance serves the whole module and is shut down after it (no raylet outlives the tests).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip(
    "ray", reason="ray is not installed (pip install 'psl-studio[ray]'): Ray tests skipped"
)

from app.runs import submit, submit_sweep  # noqa: E402
from app.settings import ensure_home, get_settings  # noqa: E402
from app.worker.executors import LocalExecutor, WorkerTiming  # noqa: E402
from app.worker.loop import ShutdownFlag  # noqa: E402
from app.worker.ray_executor import RayExecutor, RayOptions, pid_of_ray_worker  # noqa: E402
from psl_core.config import ExperimentConfig, apply_overrides  # noqa: E402
from psl_core.engine import NONDETERMINISTIC_FIELDS, MemorySink, run_experiment  # noqa: E402
from storage import Store  # noqa: E402

FAST = WorkerTiming(stale_after_s=3.0, heartbeat_s=0.5, poll_s=0.2)


def _processes_using(folder: str) -> list[int]:
    """Pids of live processes whose command line mentions ``folder`` (this Ray instance's session)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if folder.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


@pytest.fixture(scope="module")
def ray_cluster():
    """A private 2-CPU Ray instance for this module; afterwards no process of it may remain."""
    if ray.is_initialized():
        pytest.skip("a Ray instance is already running in this process")
    temp_dir = tempfile.mkdtemp(prefix="psl-ray-", dir="/tmp")  # short: Ray's socket paths must fit
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=temp_dir, configure_logging=False
    )
    try:
        yield ray
    finally:
        ray.shutdown()
        deadline = time.monotonic() + 10
        while _processes_using(temp_dir) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = _processes_using(temp_dir)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not left, f"Ray processes outlived ray.shutdown(): {left}"


@pytest.fixture
def settings(tmp_path, ray_cluster, one_torch_thread):
    return ensure_home(
        get_settings({"PSL_HOME": str(tmp_path), "PSL_DATABASE_URL": f"sqlite:///{tmp_path}/psl.db"})
    )


def tiny_config(**overrides) -> ExperimentConfig:
    base = {
        "name": "ray",
        "data.dataset": "digits",
        "partition.num_clients": 6,
        "model.arch": "cnn",
        "sampling.batch_size": 64,
        "training.epochs": 2,
        "training.max_steps_per_epoch": 4,
    }
    return apply_overrides(ExperimentConfig(), {**base, **overrides})


def science(frame) -> list[dict]:
    return frame.drop(columns=[c for c in NONDETERMINISTIC_FIELDS if c in frame.columns]).to_dict("records")


def stored_metrics(store: Store, run_id: int) -> tuple[list[dict], list[dict]]:
    steps = store.read_step_metrics(run_id)
    epochs = store.read_epoch_metrics(run_id)
    return science(steps), science(epochs.drop(columns=["per_class_acc"], errors="ignore"))


def drain_in_thread(executor: RayExecutor, **kwargs) -> tuple[threading.Thread, dict]:
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(ended=executor.drain(**kwargs)), daemon=True)
    thread.start()
    return thread, result


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_sweep_on_ray_stores_exactly_the_local_backends_metrics(settings):
    store = Store(settings.database_url)
    grid, seeds = {"sampling.method": ["ugs", "fls"]}, [0, 1]
    ray_sweep, ray_ids = submit_sweep(store, tiny_config(), grid, seeds, name="on ray")
    local_sweep, local_ids = submit_sweep(store, tiny_config(), grid, seeds, name="local")
    results: list[tuple[int, str]] = []
    executor = RayExecutor(
        settings, options=RayOptions(num_cpus=1), timing=FAST, on_result=lambda r, s: results.append((r, s))
    )
    assert executor.cluster_slots(ray) == 2
    assert executor.drain(sweep_id=ray_sweep, exit_when_idle=True, shutdown=ShutdownFlag()) == 4
    assert sorted(results) == [(run_id, "completed") for run_id in ray_ids]
    assert all(store.get_run(run_id).status == "queued" for run_id in local_ids)  # only its sweep ran
    assert LocalExecutor(settings, timing=FAST).drain(sweep_id=local_sweep, exit_when_idle=True) == 4

    for on_ray, local in zip(ray_ids, local_ids):
        assert stored_metrics(store, on_ray) == stored_metrics(store, local)
        assert len(store.read_step_metrics(on_ray)) == 8
        assert len(store.read_client_stats(on_ray)) == len(store.read_client_stats(local)) == 2 * 6
    ray_runs = [store.get_run(run_id) for run_id in ray_ids]
    assert {r.backend for r in ray_runs} == {"ray"} and all(r.host for r in ray_runs)
    assert {r.slot.split()[0] for r in ray_runs} == {"1/2", "2/2"}  # both slots were used
    assert all(" node " in r.slot for r in ray_runs)
    assert {store.get_run(run_id).backend for run_id in local_ids} == {"local"}


def test_killing_the_ray_worker_of_a_running_task_resumes_from_its_checkpoint(settings):
    store = Store(settings.database_url)
    cfg = tiny_config(
        **{
            "sampling.batch_size": 32,
            "training.epochs": 6,
            "training.max_steps_per_epoch": None,
            "training.checkpoint_every_steps": 10,
        }
    )
    run_id = submit(store, cfg)
    total = 6 * 45
    executor = RayExecutor(
        settings, options=RayOptions(num_cpus=1, max_retries=2), concurrency=1, timing=FAST
    )
    thread, result = drain_in_thread(executor, exit_when_idle=True, shutdown=ShutdownFlag())

    def checkpoint_with_rows_after_it() -> bool:
        ckpt = store.latest_checkpoint(run_id)
        return ckpt is not None and ckpt.step >= 20 and store.count_step_metrics(run_id) > ckpt.step

    wait_for(checkpoint_with_rows_after_it, 240, "a checkpoint with metric rows after it")
    first = store.get_run(run_id)
    assert first.status == "running", "the run ended before its worker could be killed"
    os.kill(pid_of_ray_worker(first.worker_id), signal.SIGKILL)
    killed_at = store.count_step_metrics(run_id)
    assert killed_at < total

    thread.join(300)
    assert not thread.is_alive() and result["ended"] == 1
    record = store.get_run(run_id)
    assert (record.status, record.attempts, record.backend) == ("completed", 2, "ray")
    assert record.worker_id != first.worker_id and pid_of_ray_worker(record.worker_id) != first.worker_id
    steps = store.read_step_metrics(run_id)
    assert list(steps["step"]) == list(range(1, total + 1))  # nothing lost, nothing duplicated
    reference = MemorySink()
    run_experiment(cfg, reference)
    expected = [{k: v for k, v in r.items() if k not in NONDETERMINISTIC_FIELDS} for r in reference.steps]
    assert science(steps[[c for c in steps.columns if c in reference.steps[0]]]) == expected
    assert list(store.read_epoch_metrics(run_id)["test_acc"]) == [e["test_acc"] for e in reference.epochs]
    events = [e.message for e in store.read_events(run_id)]
    assert any("resuming from checkpoint" in m for m in events), events


def test_cancel_is_honoured_and_a_stopped_driver_hands_its_runs_back(settings):
    store = Store(settings.database_url)
    long = {"training.epochs": 20, "training.max_steps_per_epoch": None, "training.checkpoint_every_steps": 5}
    cancelled = submit(store, tiny_config(name="to cancel", **long))
    # Long enough that it cannot end on its own between its first checkpoint and the stop below.
    handed_back = submit(store, tiny_config(name="to hand back", **{**long, "training.epochs": 400}))
    stop = ShutdownFlag()
    executor = RayExecutor(settings, options=RayOptions(num_cpus=1), concurrency=1, timing=FAST)
    thread, _ = drain_in_thread(executor, shutdown=stop)  # one slot: the oldest run first, then the next

    wait_for(lambda: store.latest_checkpoint(cancelled) is not None, 240, "the first run to checkpoint")
    store.request_cancel(cancelled)
    wait_for(lambda: store.get_run(cancelled).status == "cancelled", 60, "the cancel")
    assert store.get_run(cancelled).progress < 0.5
    wait_for(lambda: store.latest_checkpoint(handed_back) is not None, 240, "the second run to checkpoint")
    stop.event.set()  # as SIGTERM would
    thread.join(60)
    assert not thread.is_alive()
    record = store.get_run(handed_back)
    assert (record.status, record.worker_id, record.attempts) == ("queued", None, 1), record.traceback
    assert any("shut down; run back in the queue" in e.message for e in store.read_events(handed_back))


def test_psl_sweep_with_the_ray_backend_runs_the_sweep_on_the_cluster(settings, monkeypatch, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from app.cli import app

    for name, value in settings.as_env().items():
        monkeypatch.setenv(name, value)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config().model_dump(mode="json")))
    result = CliRunner().invoke(
        app,
        [
            "sweep",
            str(config),
            "--grid",
            "sampling.method=[ugs,fls]",
            "--backend",
            "ray",
            "--concurrency",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "running sweep #1 on the ray backend" in result.output and "sweep #1: 2 completed" in result.output
    assert "run #1: completed" in result.output and "run #2: completed" in result.output
    assert ray.is_initialized()  # the driver joined the test's Ray instance and left it running
    store = Store(settings.database_url)
    assert {store.get_run(i).backend for i in (1, 2)} == {"ray"}


def test_a_task_that_cannot_start_on_its_host_stops_the_driver_and_leaves_the_run_queued(
    tmp_path, ray_cluster
):
    from app.worker.executors import BackendUnavailable

    broken = get_settings(
        {
            "PSL_HOME": str(tmp_path),
            "PSL_DATABASE_URL": f"sqlite:///{tmp_path}/psl.db",
            "PSL_CHECKPOINT_URL": "nosuchscheme://bucket/ckpt",  # no fsspec filesystem on the workers
        }
    )
    store = Store(broken.database_url)
    run_id = submit(store, tiny_config())
    executor = RayExecutor(broken, concurrency=1, timing=FAST)
    with pytest.raises(BackendUnavailable, match="could not start on .*PSL_CHECKPOINT_URL.*nosuchscheme"):
        executor.drain(exit_when_idle=True, shutdown=ShutdownFlag())
    record = store.get_run(run_id)
    assert (record.status, record.attempts) == ("queued", 0)
