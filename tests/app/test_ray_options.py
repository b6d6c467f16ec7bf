"""What a Ray task asks of the cluster (no Ray needed): options checked with clear messages, GPUs from
the run's config, slots from the cluster's resources, worker ids that tie retries to their task."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app.settings import get_settings
from app.worker.executors import BackendUnavailable
from app.worker.ray_executor import RayExecutor, RayOptions, lease_prefix, pid_of_ray_worker, ray_worker_id


def test_gpus_come_from_the_config_unless_the_option_says_otherwise():
    cuda, cpu, auto = ({"training": {"device": d}} for d in ("cuda", "cpu", "auto"))
    assert [RayOptions().gpus_for(c) for c in (cuda, cpu, auto, {})] == [1.0, 0.0, 0.0, 0.0]
    assert RayOptions(num_gpus=0.5).gpus_for(cpu) == 0.5 and RayOptions(num_gpus=0).gpus_for(cuda) == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_cpus": 0}, "--num-cpus must be positive"),
        ({"num_gpus": -1}, "--num-gpus must be 0 or more"),
        ({"max_retries": -1}, "--max-retries must be from 0 to 100"),
        ({"address": "somewhere"}, "is not a Ray address"),
        ({"address": "host:port"}, "is not a Ray address"),
    ],
)
def test_bad_options_are_refused_naming_the_option(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RayOptions(**kwargs)


@pytest.mark.parametrize("address", [None, "auto", "ray://head:10001", "10.0.0.5:6379"])
def test_addresses_ray_understands_are_accepted(address):
    assert RayOptions(address=address).address == address


def fake_ray(**resources):
    return SimpleNamespace(cluster_resources=lambda: resources)


def test_slots_are_what_the_cluster_holds_at_the_per_run_reservation():
    settings = get_settings({"PSL_HOME": "/nowhere"})
    assert RayExecutor(settings).cluster_slots(fake_ray(CPU=16.0)) == 16
    assert RayExecutor(settings, options=RayOptions(num_cpus=3)).cluster_slots(fake_ray(CPU=16.0)) == 5
    gpu = RayExecutor(settings, options=RayOptions(num_cpus=2, num_gpus=1))
    assert gpu.cluster_slots(fake_ray(CPU=32.0, GPU=4.0)) == 4
    with pytest.raises(BackendUnavailable, match="cannot hold one run at --num-cpus 4"):
        RayExecutor(settings, options=RayOptions(num_cpus=4)).cluster_slots(fake_ray(CPU=2.0))
    with pytest.raises(BackendUnavailable, match="--num-gpus 1"):
        gpu.cluster_slots(fake_ray(CPU=32.0))


def test_every_attempt_of_a_task_shares_its_lease_prefix_and_names_its_process():
    first, retry = ray_worker_id("abc123", "node-a.example", 41), ray_worker_id("abc123", "node-b", 7)
    assert first.startswith(lease_prefix("abc123")) and retry.startswith(lease_prefix("abc123"))
    assert not ray_worker_id("abc1234", "h", 1).startswith(lease_prefix("abc123"))
    assert (pid_of_ray_worker(first), pid_of_ray_worker(retry)) == (41, 7)


def test_a_task_uses_the_drivers_home_where_it_can_else_its_hosts_own(tmp_path, monkeypatch):
    from app.worker.ray_executor import task_settings

    driver = get_settings(
        {"PSL_HOME": str(tmp_path / "driver"), "PSL_CHECKPOINT_URL": str(tmp_path / "shared")}
    )
    assert task_settings(driver.as_env()).home == tmp_path / "driver"
    monkeypatch.setenv("PSL_HOME", str(tmp_path / "this-host"))
    elsewhere = {**driver.as_env(), "PSL_HOME": "/proc/no-such-home"}  # cannot be created on this host
    settings = task_settings(elsewhere)
    assert settings.home == tmp_path / "this-host" and settings.logs_dir.is_dir()
    assert (settings.database_url, settings.checkpoint_url) == (driver.database_url, driver.checkpoint_url)


# ---------------------------------------------------------------- a run deleted under the driver
class _TaskCancelled(Exception):
    pass


def _ray_whose_task_raised(err: Exception):
    def get(_ref):
        raise err

    return SimpleNamespace(get=get, exceptions=SimpleNamespace(TaskCancelledError=_TaskCancelled))


def test_the_driver_goes_on_when_a_run_is_deleted_before_or_after_its_task(tmp_path):
    from app.runs import submit
    from app.worker.ray_executor import _Dispatch
    from psl_core.config import ExperimentConfig
    from storage import Store

    settings = get_settings({"PSL_HOME": str(tmp_path)})
    store = Store(settings.database_url)
    executor = RayExecutor(settings)
    gone = _Dispatch(run_id=987, lease="abc123", slot=1)  # no such run (deleted)
    # listed as claimable, deleted before its task was started: nothing is submitted
    assert executor._submit(object(), store, gone.run_id, 1, 2) == (None, None)
    # its task raised (e.g. "no run with id 987") and the run is gone: the driver records nothing
    assert executor._outcome(_ray_whose_task_raised(KeyError("no run")), store, "ref", gone) == "vanished"
    # a run still there whose task died is failed with Ray's message, as before
    run_id = submit(store, ExperimentConfig())
    store.claim_run(run_id, ray_worker_id("abc123", "h", 1))
    alive = _Dispatch(run_id=run_id, lease="abc123", slot=1)
    assert (
        executor._outcome(_ray_whose_task_raised(RuntimeError("worker died")), store, "ref", alive)
        == "failed"
    )
    assert "the Ray task failed after 1 attempt(s): RuntimeError: worker died" in store.get_run(run_id).error


def test_the_driver_waits_out_a_database_it_cannot_read(tmp_path, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from app.worker.executors import WorkerTiming
    from app.worker.loop import ShutdownFlag
    from storage import Store

    settings = get_settings({"PSL_HOME": str(tmp_path)})
    store = Store(settings.database_url)
    calls = []

    def claimable_run_ids(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise OperationalError("SELECT runs", {}, Exception("server closed the connection"))
        return []

    monkeypatch.setattr(store, "claimable_run_ids", claimable_run_ids)
    executor = RayExecutor(settings, timing=WorkerTiming(poll_s=0.01))
    no_ray_needed = SimpleNamespace()  # nothing is submitted, so the loop never touches Ray
    assert executor._loop(no_ray_needed, store, 2, None, True, ShutdownFlag()) == 0
    assert len(calls) == 2
