"""Checkpoints every host can read: PSL_CHECKPOINT_URL (a shared folder or an fsspec URL), and a run
handed over between two PSL_HOMEs that share one database and one checkpoint location."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from app.runs import delete_run, submit
from app.settings import SettingsError, ensure_home, get_settings
from app.worker.checkpoints import CheckpointLocation
from app.worker.loop import ShutdownFlag, execute_run
from psl_core.config import ExperimentConfig, apply_overrides
from psl_core.engine import NONDETERMINISTIC_FIELDS, MemorySink, run_experiment
from storage import Store

ROOT = Path(__file__).resolve().parents[2]


def _settings(home: Path, **env: str):
    return ensure_home(get_settings({"PSL_HOME": str(home), **env}))


def test_checkpoint_url_defaults_to_the_home_and_accepts_folders_and_urls(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert get_settings({"PSL_HOME": "/h"}).checkpoint_url == "/h/checkpoints"
    assert get_settings({"PSL_HOME": "/h"}).checkpoints_dir == Path("/h/checkpoints")
    assert get_settings({"PSL_CHECKPOINT_URL": "shared/ckpt"}).checkpoint_url == str(tmp_path / "shared/ckpt")
    assert get_settings({"PSL_CHECKPOINT_URL": "file:///mnt/nfs/ckpt/"}).checkpoint_url == "/mnt/nfs/ckpt"
    remote = get_settings({"PSL_CHECKPOINT_URL": "s3://bucket/psl/"})
    assert remote.checkpoint_url == "s3://bucket/psl" and remote.checkpoints_dir is None
    # a child process (or a Ray task) resolves exactly the same location
    assert get_settings(remote.as_env()).checkpoint_url == "s3://bucket/psl"
    for bad in ("://nothing", "1x://a", "s3://"):
        with pytest.raises(SettingsError, match="PSL_CHECKPOINT_URL"):
            get_settings({"PSL_CHECKPOINT_URL": bad})


def test_a_url_without_its_filesystem_package_is_refused_with_what_to_install(tmp_path):
    settings = _settings(tmp_path, PSL_CHECKPOINT_URL="nosuchscheme://bucket/ckpt")
    with pytest.raises(SettingsError, match="PSL_CHECKPOINT_URL.*nosuchscheme.*Install the fsspec package"):
        CheckpointLocation(settings)


def test_a_checkpoint_stored_under_another_mount_point_is_found_under_this_hosts_folder(tmp_path):
    here = CheckpointLocation(_settings(tmp_path / "home", PSL_CHECKPOINT_URL=str(tmp_path / "mnt-b")))
    (tmp_path / "mnt-b" / "7").mkdir(parents=True)
    (tmp_path / "mnt-b" / "7" / "step000000010.pt").write_bytes(b"x")
    found = here.fetch(str(tmp_path / "mnt-a" / "7" / "step000000010.pt"), 7)  # written on host A
    assert found == tmp_path / "mnt-b" / "7" / "step000000010.pt"
    assert here.fetch(str(tmp_path / "mnt-a" / "7" / "step000000020.pt"), 7) is None


def small_config() -> ExperimentConfig:
    return apply_overrides(
        ExperimentConfig(),
        {
            "name": "handover",
            "data.dataset": "digits",
            "partition.num_clients": 6,
            "model.arch": "cnn",
            "sampling.batch_size": 64,
            "training.epochs": 2,
            "training.max_steps_per_epoch": 10,
            "training.checkpoint_every_steps": 5,
        },
    )


class StopBeforeStep(ShutdownFlag):
    """As if host A's worker were told to shut down just before step ``step`` (checked once per step)."""

    def __init__(self, step: int):
        super().__init__()
        self.calls, self.step = 0, step

    def __call__(self) -> bool:
        self.calls += 1
        if self.calls >= self.step:
            self.event.set()
        return self.event.is_set()


def expected_steps(cfg: ExperimentConfig) -> tuple[list[dict], list]:
    """An uninterrupted run's step metrics (deterministic fields) and test accuracies."""
    reference = MemorySink()
    run_experiment(cfg, reference)
    steps = [{k: v for k, v in r.items() if k not in NONDETERMINISTIC_FIELDS} for r in reference.steps]
    return steps, [e["test_acc"] for e in reference.epochs]


def stored_steps(store: Store, run_id: int, like: dict) -> list[dict]:
    steps = store.read_step_metrics(run_id)
    return steps[[c for c in steps.columns if c in like]].to_dict("records")


def _worker(home: Path, env: dict, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "app", "worker", "--stale-after", "2", "--heartbeat-every", "0.5", *extra],
        cwd=ROOT,
        env={**os.environ, **env, "PSL_HOME": str(home), "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_a_worker_killed_on_one_home_is_resumed_on_another_from_the_shared_folder(tmp_path, one_torch_thread):
    env = {
        "PSL_DATABASE_URL": f"sqlite:///{tmp_path / 'shared.db'}",
        "PSL_CHECKPOINT_URL": str(tmp_path / "shared"),
    }
    store = Store(env["PSL_DATABASE_URL"])
    cfg = apply_overrides(small_config(), {"training.epochs": 3, "training.max_steps_per_epoch": None})
    run_id = submit(store, cfg)
    total = 3 * 23
    first = _worker(tmp_path / "home-a", env)
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            ckpt = store.latest_checkpoint(run_id)
            if ckpt is not None and ckpt.step >= 10 and store.count_step_metrics(run_id) > ckpt.step:
                break
            time.sleep(0.05)
        assert store.get_run(run_id).status == "running", "the run ended before it could be killed"
        os.kill(first.pid, signal.SIGKILL)  # host A dies
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    assert store.count_step_metrics(run_id) < total
    # An --exit-when-idle worker leaves a run that still looks alive to its owner: wait until the
    # killed host's run is stale by the database clock.
    deadline = time.time() + 30
    while run_id not in store.claimable_run_ids(stale_after_s=2) and time.time() < deadline:
        time.sleep(0.1)

    second = _worker(tmp_path / "home-b", env, "--exit-when-idle")  # host B: its own home, same database
    out, _ = second.communicate(timeout=240)
    assert second.returncode == 0, out.decode()[-2000:]
    record = store.get_run(run_id)
    assert (record.status, record.attempts) == ("completed", 2)
    events = [e.message for e in store.read_events(run_id)]
    assert any("resuming from checkpoint" in m for m in events), events
    steps, accuracies = expected_steps(cfg)
    assert stored_steps(store, run_id, steps[0]) == steps  # nothing lost, nothing duplicated
    assert list(store.read_epoch_metrics(run_id)["test_acc"]) == accuracies
    assert Path(store.latest_checkpoint(run_id).path).parent == tmp_path / "shared" / str(run_id)
    for home in ("home-a", "home-b"):
        assert not any((tmp_path / home).rglob("*.pt"))


def test_a_run_stopped_on_one_home_resumes_on_another_from_an_object_store_url(tmp_path, one_torch_thread):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    ckpt = f"memory://psl-{uuid.uuid4().hex}"  # an in-process object store: both homes live in this process
    home_a = _settings(tmp_path / "home-a", PSL_DATABASE_URL=url, PSL_CHECKPOINT_URL=ckpt)
    home_b = _settings(tmp_path / "home-b", PSL_DATABASE_URL=url, PSL_CHECKPOINT_URL=ckpt)
    store = Store(url)
    cfg = small_config()
    run_id = submit(store, cfg)

    store.claim_next_run("host-a", host="host-a", backend="local", slot="1/1")
    assert execute_run(store, run_id, "host-a", settings=home_a, shutdown=StopBeforeStep(9)) == "requeued"
    assert store.get_run(run_id).status == "queued"
    assert store.latest_checkpoint(run_id).step == 5
    assert store.latest_checkpoint(run_id).path.startswith(ckpt)  # stored where every host reads it
    assert store.count_step_metrics(run_id) == 8  # rows past the checkpoint: the resume must redo them

    assert store.claim_next_run("host-b", host="host-b", backend="local", slot="1/1").attempts == 2
    assert execute_run(store, run_id, "host-b", settings=home_b) == "completed"
    record = store.get_run(run_id)
    assert (record.status, record.host) == ("completed", "host-b")
    events = [e.message for e in store.read_events(run_id)]
    assert any("resuming from checkpoint at step 5" in m for m in events), events

    steps, accuracies = expected_steps(cfg)
    assert list(store.read_step_metrics(run_id)["step"]) == list(range(1, 21))  # nothing lost or duplicated
    assert stored_steps(store, run_id, steps[0]) == steps
    assert list(store.read_epoch_metrics(run_id)["test_acc"]) == accuracies
    # Nothing was written to either home's own checkpoint folder, and nothing stays staged.
    for home in (home_a, home_b):
        assert not any((home.home / "checkpoints").rglob("*.pt"))
        assert not any((home.cache_dir / "checkpoint-staging").rglob("*"))


def test_an_unreadable_checkpoint_is_reported_and_the_run_restarts_cleanly(tmp_path, one_torch_thread):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    store = Store(url)
    run_id = submit(store, small_config())
    store.claim_next_run("a")
    store.add_checkpoint(run_id, step=5, epoch=0, path=str(tmp_path / "elsewhere" / str(run_id) / "step5.pt"))
    settings = _settings(tmp_path / "home", PSL_DATABASE_URL=url)
    assert execute_run(store, run_id, "a", settings=settings) == "completed"
    warnings = [e.message for e in store.read_events(run_id) if e.level == "warning"]
    assert any("cannot be read" in m and "PSL_CHECKPOINT_URL" in m for m in warnings), warnings
    assert list(store.read_step_metrics(run_id)["step"]) == list(range(1, 21))


# ---------------------------------------------------------------- pruning and deleting through the location
def _objects(url: str) -> list[str]:
    """Names of the files under ``url`` (an fsspec URL), relative to it, sorted."""
    from fsspec.core import url_to_fs

    fs, root = url_to_fs(url)
    return sorted(p[len(root.rstrip("/")) + 1 :] for p in fs.find(root)) if fs.exists(root) else []


def test_removal_through_a_url_location_stays_inside_the_runs_own_prefix(tmp_path):
    from fsspec.core import url_to_fs

    ckpt = f"memory://psl-{uuid.uuid4().hex}"
    location = CheckpointLocation(_settings(tmp_path / "home", PSL_CHECKPOINT_URL=ckpt))
    for name in ("7/step1.pt", "7/step2.pt", "70/step1.pt", "8/step1.pt", "other.pt"):
        fs, path = url_to_fs(f"{ckpt}/{name}")
        fs.pipe(path, b"x")
    # Rows (from a shared or imported database) may name anything: only 7/step1.pt is the run's own.
    named = [
        f"{ckpt}/7/step1.pt",
        f"{ckpt}/8/step1.pt",
        f"{ckpt}/70/step1.pt",  # shares the prefix "7" as text, not as a folder
        f"{ckpt}/7/../8/step1.pt",
        f"{ckpt}/7",  # the run's location itself is removed by remove_run, never by a row
        f"{ckpt}/other.pt",
        str(tmp_path / "7" / "step1.pt"),
    ]
    assert location.remove(named, 7) == 1
    assert _objects(ckpt) == sorted(["7/step2.pt", "70/step1.pt", "8/step1.pt", "other.pt"])
    location.remove_run(7)
    assert _objects(ckpt) == sorted(["70/step1.pt", "8/step1.pt", "other.pt"])


def test_removal_through_a_folder_location_never_follows_a_link_out_of_the_run(tmp_path):
    location = CheckpointLocation(_settings(tmp_path / "home", PSL_CHECKPOINT_URL=str(tmp_path / "ckpt")))
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    run_folder = tmp_path / "ckpt" / "7"
    run_folder.mkdir(parents=True)
    (run_folder / "link.pt").symlink_to(outside)
    (run_folder / "step1.pt").write_bytes(b"x")
    assert location.remove([str(run_folder / "link.pt"), str(run_folder / "step1.pt")], 7) == 1
    assert outside.read_text() == "keep me" and not (run_folder / "step1.pt").exists()
    location.remove_run(7)
    assert not run_folder.exists() and outside.read_text() == "keep me"


def test_a_url_location_keeps_the_last_n_checkpoints_and_deleting_the_run_empties_it(
    tmp_path, one_torch_thread
):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    ckpt = f"memory://psl-{uuid.uuid4().hex}"
    settings = _settings(
        tmp_path / "home", PSL_DATABASE_URL=url, PSL_CHECKPOINT_URL=ckpt, PSL_KEEP_CHECKPOINTS="2"
    )
    store = Store(url)
    run_id = submit(store, apply_overrides(small_config(), {"training.checkpoint_every_steps": 3}))
    store.claim_next_run("w")
    assert execute_run(store, run_id, "w", settings=settings) == "completed"
    rows = [c.path for c in store.list_checkpoints(run_id)]
    assert len(rows) == 2 and all(path.startswith(f"{ckpt}/{run_id}/") for path in rows)
    # exactly the objects the rows name are left; every older one was deleted as the run went on
    assert _objects(ckpt) == sorted(path[len(ckpt) + 1 :] for path in rows)
    delete_run(store, settings, run_id)
    assert _objects(ckpt) == [] and not store.run_exists(run_id)
    assert not any((settings.cache_dir / "checkpoint-staging").rglob("*"))


def test_an_object_store_that_refuses_deletes_never_fails_the_run_or_the_delete(tmp_path, monkeypatch):
    import app.worker.checkpoints as checkpoints_module

    class HttpError(Exception):  # what gcsfs raises: not an OSError
        pass

    ckpt = f"memory://psl-{uuid.uuid4().hex}"
    location = CheckpointLocation(_settings(tmp_path / "home", PSL_CHECKPOINT_URL=ckpt))
    real = checkpoints_module._filesystem

    def refusing(url):
        fs, path = real(url)

        def rm(*args, **kwargs):
            raise HttpError("403 Forbidden")

        monkeypatch.setattr(fs, "rm", rm)
        return fs, path

    fs, path = real(f"{ckpt}/7/step1.pt")
    fs.pipe(path, b"x")
    monkeypatch.setattr(checkpoints_module, "_filesystem", refusing)
    assert location.remove([f"{ckpt}/7/step1.pt"], 7) == 0
    location.remove_run(7)  # logged, not raised
    monkeypatch.undo()
    assert _objects(ckpt) == ["7/step1.pt"]
