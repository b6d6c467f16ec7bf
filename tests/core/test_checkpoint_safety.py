"""Checkpoints hold only tensors and plain values and are read with weights_only=True: a crafted
pickle is refused, never executed, and resuming stays exact."""

from __future__ import annotations

import errno

import numpy as np
import pytest
import torch

from psl_core.config import ExperimentConfig, apply_overrides
from psl_core.engine import (
    MemorySink,
    PSLTrainer,
    build_experiment,
    checkpoint,
    read_checkpoint,
    run_experiment,
)
from psl_core.engine.checkpoint import CHECKPOINT_VERSION, CheckpointError, load_checkpoint

PLAIN = (str, int, float, bool, type(None), torch.Tensor)


def _tiny(**overrides) -> ExperimentConfig:
    base = {
        "data.dataset": "digits",
        "partition.num_clients": 4,
        "model.arch": "mlp",
        "sampling.batch_size": 32,
        "training.epochs": 1,
        "training.max_steps_per_epoch": 3,
    }
    return apply_overrides(ExperimentConfig(), {**base, **overrides})


def _walk(value, path="") -> list[str]:
    """Paths of every value that is not a tensor, a plain scalar, or a dict/list of them."""
    if isinstance(value, dict):
        return [bad for key, item in value.items() for bad in _walk(item, f"{path}.{key}")]
    if isinstance(value, (list, tuple)):
        return [bad for i, item in enumerate(value) for bad in _walk(item, f"{path}[{i}]")]
    return [] if isinstance(value, PLAIN) else [f"{path}: {type(value).__name__}"]


class _Payload:
    """Unpickling this calls open(marker, 'w'): a file appearing means the pickle ran code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("method", ["ugs", "lds"])
def test_checkpoint_holds_only_tensors_and_plain_values(tmp_path, method):
    sink = MemorySink()
    run_experiment(_tiny(**{"sampling.method": method}), sink, checkpoint_dir=tmp_path)
    data = read_checkpoint(sink.checkpoints[-1][0])
    assert data["version"] == CHECKPOINT_VERSION
    assert _walk(data) == []
    assert isinstance(data["planner"]["sampler"]["perm"], torch.Tensor)
    assert (data["planner"]["lds"] is not None) == (method == "lds")


def test_a_malicious_pickle_is_refused_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "step000000003.pt"
    torch.save({"version": CHECKPOINT_VERSION, "model": _Payload(marker), "optimizer": {}}, evil)
    setup = build_experiment(_tiny())
    trainer = PSLTrainer(setup)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(evil, trainer.model, trainer.optimizer)
    with pytest.raises(CheckpointError, match="refused"):
        trainer.run(MemorySink(), resume_from=evil)
    assert not marker.exists()


def test_a_version_1_checkpoint_with_numpy_arrays_is_refused_with_advice(tmp_path):
    old = tmp_path / "old.pt"
    torch.save({"version": 1, "planner": {"sampler": {"perm": np.arange(3)}}}, old)
    with pytest.raises(CheckpointError, match="from scratch"):
        read_checkpoint(old)


@pytest.mark.parametrize(
    "content",
    [b"", b"not a zip", b"PK\x03\x04garbage"],
    ids=["empty", "text", "torn-zip"],
)
def test_a_broken_file_is_a_checkpoint_error(tmp_path, content):
    path = tmp_path / "broken.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError):
        read_checkpoint(path)


def test_wrong_shapes_in_a_plain_checkpoint_are_refused_by_the_sampler(tmp_path):
    sink = MemorySink(stop_after_step=2)
    cfg = _tiny(**{"training.checkpoint_every_steps": 1})
    run_experiment(cfg, sink, checkpoint_dir=tmp_path)
    path = sink.checkpoints[-1][0]
    data = read_checkpoint(path)
    data["planner"]["sampler"]["perm"] = torch.zeros(1, dtype=torch.int64)
    torch.save(data, path)
    with pytest.raises(ValueError, match="shape"):
        run_experiment(cfg, MemorySink(), resume_from=path)


def test_a_full_disk_is_an_oserror_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    def half_then_full(path, data):
        with open(path, "wb") as f:
            f.write(bytes(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "write_file", half_then_full)
    setup = build_experiment(_tiny())
    trainer = PSLTrainer(setup, checkpoint_dir=tmp_path)
    with pytest.raises(OSError) as caught:
        trainer.run(MemorySink())
    assert caught.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []
