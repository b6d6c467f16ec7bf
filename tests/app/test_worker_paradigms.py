"""The worker trains round-based paradigms like PSL: same metrics in the store, checkpoints it can resume."""

from __future__ import annotations

import pytest

from app.runs import submit
from app.settings import get_settings
from app.worker.loop import run_worker
from psl_core.config import ExperimentConfig, apply_overrides
from psl_core.engine import NONDETERMINISTIC_FIELDS, MemorySink, run_experiment
from storage import Store


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PSL_HOME", str(tmp_path))
    monkeypatch.delenv("PSL_DATABASE_URL", raising=False)
    monkeypatch.setenv("PSL_KEEP_CHECKPOINTS", "100")  # keep the mid-round one this test resumes from
    return tmp_path


def config() -> ExperimentConfig:
    return apply_overrides(
        ExperimentConfig(),
        {
            "name": "worker-sflv2",
            "data.dataset": "digits",
            "data.train_limit": 300,
            "data.test_limit": 60,
            "partition.num_clients": 6,
            "model.arch": "mlp",
            "paradigm.name": "sflv2",
            "paradigm.local_batch": 8,
            "training.epochs": 2,
            "training.max_steps_per_epoch": 5,
            "training.checkpoint_every_steps": 3,
        },
    )


def science(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in NONDETERMINISTIC_FIELDS} for r in rows]


def test_worker_trains_a_paradigm_run_and_its_checkpoints_resume_exactly(home):
    store = Store(get_settings().database_url)
    cfg = config()
    run_id = submit(store, cfg)
    assert run_worker(exit_when_idle=True) == 1
    assert store.get_run(run_id).status == "completed"
    reference = MemorySink()
    run_experiment(cfg, reference)
    columns = list(reference.steps[0])
    stored = store.read_step_metrics(run_id, columns=columns)
    assert science(stored[columns].to_dict("records")) == science(reference.steps)  # round, energy_j included
    epochs = store.read_epoch_metrics(run_id)
    assert list(epochs["round"]) == [1, 2]
    assert list(epochs["energy_per_client_j"]) == pytest.approx(
        [e["energy_per_client_j"] for e in reference.epochs]
    )
    assert len(store.read_client_stats(run_id)) == 2 * 6
    # the worker's mid-round checkpoint (step 3 of round 1) resumes to the same metrics
    mid = home / "checkpoints" / str(run_id) / "step000000003.pt"
    assert mid.exists() and store.latest_checkpoint(run_id).step == 10
    resumed = MemorySink()
    run_experiment(cfg, resumed, resume_from=mid)
    assert science(resumed.steps) == science(reference.steps[3:])
