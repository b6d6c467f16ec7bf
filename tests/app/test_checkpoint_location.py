"""Checkpoints every host can read: PSL_CHECKPOINT_URL (a shared folder or an fsspec URL), and a run
handed over between two PSL_HOMEs that share one database and one checkpoint location."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from app.runs import submit
from app.settings import SettingsError, ensure_home, get_settings
from app.worker.checkpoints import CheckpointLocation
from app.worker.loop import ShutdownFlag, execute_run
from psl_core.config import ExperimentConfig, apply_overrides
from psl_core.engine import NONDETERMINISTIC_FIELDS, MemorySink, run_experiment
from storage import Store


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


@pytest.mark.parametrize("location", ["shared-folder", "object-store-url"])
def test_a_run_stopped_on_one_home_resumes_on_another_from_the_shared_checkpoint(tmp_path, location):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    ckpt = (
        str(tmp_path / "shared-ckpt") if location == "shared-folder" else f"memory://psl-{uuid.uuid4().hex}"
    )
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

    reference = MemorySink()
    run_experiment(cfg, reference)
    steps = store.read_step_metrics(run_id)
    assert list(steps["step"]) == list(range(1, 21))  # nothing lost, nothing duplicated
    expected = [{k: v for k, v in r.items() if k not in NONDETERMINISTIC_FIELDS} for r in reference.steps]
    got = steps[[c for c in steps.columns if c in expected[0]]].to_dict("records")
    assert got == expected
    assert list(store.read_epoch_metrics(run_id)["test_acc"]) == [e["test_acc"] for e in reference.epochs]
    # Nothing was written to either home's own checkpoint folder, and nothing stays staged.
    for home in (home_a, home_b):
        assert not any((home.home / "checkpoints").rglob("*.pt"))
        assert not any((home.cache_dir / "checkpoint-staging").rglob("*"))


def test_an_unreadable_checkpoint_is_reported_and_the_run_restarts_cleanly(tmp_path):
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
