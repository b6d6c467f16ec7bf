"""Host synchronisations of the training step: none in the default path.

On CPU by code path (HostSyncCounter sees every syncing call made through torch's Python API); on a
GPU with torch's own detector (``torch.cuda.set_sync_debug_mode``) — that test skips without CUDA.
"""

from __future__ import annotations

import pytest
import torch

from psl_core.config import ExperimentConfig, apply_overrides
from psl_core.engine import MemorySink, PSLTrainer, build_experiment
from psl_core.engine.host_syncs import HostSyncCounter, cuda_sync_guard, step_syncs
from psl_core.engine.prefetch import PreparedEpoch


def config(**overrides) -> ExperimentConfig:
    base = {
        "data.dataset": "digits",
        "partition.num_clients": 6,
        "partition.scheme": "dirichlet",
        "model.arch": "cnn",
        "sampling.batch_size": 48,
        "training.epochs": 2,
        "training.max_steps_per_epoch": 4,
        "training.device": "cpu",
    }
    base.update(overrides)
    return apply_overrides(ExperimentConfig(), base)


def test_the_counter_sees_reads_data_dependent_shapes_and_masks_but_not_plain_maths():
    t = torch.arange(6.0)
    with HostSyncCounter() as counter:
        _ = t * 2 + t.sum()
        _ = t[torch.tensor([0, 2])]
    assert counter.count == 0
    with HostSyncCounter() as counter:
        float(t.sum())
        int(t[0])
        t.max().item()
        torch.bincount(t.long())
        _ = t[t > 2]
        t.tolist()
    assert [name for name, _ in counter.calls] == [
        "__float__", "__int__", "item", "bincount", "__getitem__", "tolist"
    ]  # fmt: skip
    assert counter.calls[0][1].endswith(
        f"{__file__.rsplit('/', 1)[-1]}:{counter.calls[0][1].rsplit(':', 1)[1]}"
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {},  # the defaults: GroupNorm client, BatchNorm server, SGD
        {"model.client_norm": "batch"},  # per-client BatchNorm: segments prepared on the host
        {"model.cut2": 3, "model.client_norm": "batch"},  # U-shaped
        {"data.augment": True, "sampling.method": "lds"},
    ],
)
def test_default_training_step_makes_no_host_sync(overrides):
    trainer = PSLTrainer(build_experiment(config(**overrides)))
    per_step = step_syncs(trainer, MemorySink())
    assert len(per_step) == 8
    assert [calls for calls in per_step if calls] == []


def test_raw_client_ids_would_sync_every_step_so_the_counter_can_fail(monkeypatch):
    # The old path: the layers got raw client ids and checked/counted them (int(min), int(max),
    # bincount) on every step. The counter must see that.
    def raw_ids(self: PreparedEpoch, t: int):
        rows = slice(self.row_offsets[t], self.row_offsets[t + 1])
        return torch.as_tensor(self.plan.batches.client_id[rows])

    monkeypatch.setattr(PreparedEpoch, "segments", raw_ids)
    trainer = PSLTrainer(build_experiment(config(**{"model.client_norm": "batch"})))
    per_step = step_syncs(trainer, MemorySink())
    names = {name for calls in per_step for name, _ in calls}
    assert all(len(calls) >= 3 for calls in per_step)
    assert {"__int__", "bincount"} <= names


def test_evaluation_reads_back_once_not_once_per_batch():
    trainer = PSLTrainer(build_experiment(config(**{"training.eval_batch_size": 16})))
    assert len(trainer.y_test) > 16 * 10  # many batches
    with HostSyncCounter() as counter:
        trainer.evaluate()
    assert [name for name, _ in counter.calls] == ["tolist"]  # loss sum and per-class hits, at the end


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (not run on CPU-only machines)")
@pytest.mark.parametrize("overrides", [{}, {"model.client_norm": "batch"}, {"training.precision": "bf16"}])
def test_on_cuda_torch_detects_no_sync_inside_a_step(overrides):
    trainer = PSLTrainer(build_experiment(config(**{"training.device": "cuda", **overrides})))
    step = trainer._step
    seen = []

    def guarded(*args, **kwargs):
        seen.append(1)
        if len(seen) == 1:  # the first step may autotune kernels (cudnn.benchmark)
            return step(*args, **kwargs)
        with cuda_sync_guard("error"):
            return step(*args, **kwargs)

    trainer._step = guarded
    result = trainer.run(MemorySink())
    assert result.status == "completed" and len(seen) == 8
