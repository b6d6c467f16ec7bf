"""The training engine: determinism, exact resume, PSL ≡ centralised step, U-shape, cancel."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from psl_core.config import ExperimentConfig, apply_overrides
from psl_core.engine import (
    NONDETERMINISTIC_FIELDS,
    MemorySink,
    PSLTrainer,
    build_experiment,
    learning_rate,
    run_experiment,
)


def tiny(**overrides) -> ExperimentConfig:
    base = {
        "data.dataset": "digits",
        "partition.num_clients": 8,
        "partition.scheme": "dirichlet",
        "partition.alpha": 0.5,
        "model.arch": "cnn",
        "sampling.batch_size": 64,
        "training.epochs": 2,
        "training.max_steps_per_epoch": 8,
    }
    base.update(overrides)
    return apply_overrides(ExperimentConfig(), base)


def science(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in NONDETERMINISTIC_FIELDS} for r in rows]


def test_same_config_and_seed_give_identical_metrics():
    cfg = tiny()
    a, b = MemorySink(), MemorySink()
    run_experiment(cfg, a)
    run_experiment(cfg, b)
    assert len(a.steps) == 16
    assert science(a.steps) == science(b.steps)
    assert science(a.epochs) == science(b.epochs)
    c = MemorySink()
    run_experiment(apply_overrides(cfg, {"seed": 1}), c)
    assert science(c.steps) != science(a.steps)


@pytest.mark.parametrize(
    "overrides, stop_at",
    [
        ({"training.checkpoint_every_steps": 5}, 5),  # mid-epoch checkpoint
        ({}, 8),  # epoch-boundary checkpoint
        ({"sampling.method": "lds", "sampling.lds_delta": 1.0, "training.checkpoint_every_steps": 3}, 9),
        ({"model.client_norm": "batch", "training.checkpoint_every_steps": 4, "data.augment": True}, 4),
    ],
)
def test_resume_from_checkpoint_equals_uninterrupted_run(tmp_path, overrides, stop_at):
    cfg = tiny(**overrides)
    full = MemorySink()
    run_experiment(cfg, full, checkpoint_dir=tmp_path / "full")

    first = MemorySink(stop_after_step=stop_at)
    result = run_experiment(cfg, first, checkpoint_dir=tmp_path / "part")
    assert result.status == "cancelled"
    path, ckpt_step, _ = first.checkpoints[-1]
    assert ckpt_step == stop_at
    # A fresh process would rebuild everything from the config; so do we.
    second = MemorySink()
    resumed = run_experiment(cfg, second, checkpoint_dir=tmp_path / "part", resume_from=path)
    assert resumed.status == "completed"
    kept = [r for r in first.steps if r["step"] <= ckpt_step]
    assert science(kept + second.steps) == science(full.steps)
    assert science(second.epochs) == science([e for e in full.epochs if e["step"] > ckpt_step])


def test_psl_step_equals_one_centralised_sgd_step_on_the_global_batch():
    cfg = tiny(**{"training.epochs": 1, "training.max_steps_per_epoch": 1, "model.server_norm": "group"})
    setup = build_experiment(cfg)
    reference = copy.deepcopy(setup.model)
    trainer = PSLTrainer(setup)
    plan = trainer.planner.plan(0)
    rows = torch.as_tensor(
        plan.batches.sample_index[plan.batches.step_offsets[0] : plan.batches.step_offsets[1]]
    )
    trainer.planner = _replay(trainer.planner, plan)
    trainer.run()
    opt = torch.optim.SGD(reference.parameters(), lr=cfg.training.lr, momentum=0.9, weight_decay=5e-4)
    x, y = setup.dataset.x_train[rows], setup.dataset.y_train[rows]
    F.cross_entropy(reference(x), y).backward()
    opt.step()
    for (name, p), q in zip(setup.model.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)


def _replay(planner, plan):
    """A planner that hands back an already drawn plan (so the test sees the same batch)."""

    class Replay:
        steps_per_epoch = planner.steps_per_epoch

        def plan(self, epoch):
            return plan

        def state_dict(self):
            return planner.state_dict()

    return Replay()


def test_u_shaped_cut_gives_the_same_gradients_as_plain_backprop():
    cfg = tiny(**{"model.cut": 1, "model.cut2": 3, "model.server_norm": "group"})
    setup = build_experiment(cfg)
    trainer = PSLTrainer(setup)
    x, y = setup.dataset.x_train[:32], setup.dataset.y_train[:32]
    reference = copy.deepcopy(setup.model)
    trainer._forward_backward(x, y)
    F.cross_entropy(reference(x), y).backward()
    for p, q in zip(setup.model.parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-6)


def test_per_client_batchnorm_differs_from_global_batchnorm():
    seg, glob = MemorySink(), MemorySink()
    run_experiment(tiny(**{"model.client_norm": "batch"}), seg)
    setup = build_experiment(tiny(**{"model.client_norm": "batch"}))
    trainer = PSLTrainer(setup)
    trainer.segmented_norm = False  # what a naive simulator would do: one BatchNorm over everything
    trainer.run(glob)
    assert seg.steps[0]["loss"] == pytest.approx(glob.steps[0]["loss"], rel=0.5)
    assert seg.steps[0]["loss"] != glob.steps[0]["loss"]


def test_cancel_stops_between_steps_and_reports_every_finished_step():
    sink = MemorySink(stop_after_step=3)
    result = run_experiment(tiny(), sink, flush_every=1)
    assert result.status == "cancelled"
    assert [r["step"] for r in sink.steps] == [1, 2, 3]
    assert any("cancelled" in m for _, m in sink.events)


def test_step_metrics_are_consistent_with_the_schedule():
    sink = MemorySink()
    cfg = tiny(**{"sampling.method": "fpls", "training.max_steps_per_epoch": None, "training.epochs": 1})
    run_experiment(cfg, sink)
    sizes = build_experiment(cfg).partition.sizes
    assert sum(r["batch_size"] for r in sink.steps) == sizes.sum()  # every sample once per epoch
    sim = np.cumsum([r["sim_step_time"] for r in sink.steps])
    np.testing.assert_allclose([r["sim_time"] for r in sink.steps], sim, rtol=1e-12)
    assert all(0 <= r["deviation"] <= 2 for r in sink.steps)
    assert all(1 <= r["active_clients"] <= 8 for r in sink.steps)
    stats = sink.client_stats
    assert sum(s["samples"] for s in stats) == sizes.sum()


def test_training_learns_digits():
    sink = MemorySink()
    run_experiment(tiny(**{"training.epochs": 3, "training.max_steps_per_epoch": None}), sink)
    assert sink.epochs[-1]["test_acc"] > 0.85
    assert sink.epochs[-1]["train_loss"] < sink.epochs[0]["train_loss"]


def test_learning_rate_schedules():
    cfg = tiny(**{"training.lr": 0.1, "training.lr_schedule": "step", "training.lr_step_epochs": 2})
    assert [learning_rate(cfg, e, 0, 100) for e in range(5)] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001])
    cos = apply_overrides(cfg, {"training.lr_schedule": "cosine"})
    assert learning_rate(cos, 0, 0, 100) == pytest.approx(0.1)
    assert learning_rate(cos, 0, 50, 100) == pytest.approx(0.05)
    assert learning_rate(cos, 0, 100, 100) == pytest.approx(0.0, abs=1e-12)


def test_divergence_stops_the_run_with_a_message_and_keeps_the_metrics_before_it():
    from psl_core.engine import TrainingDivergedError

    sink = MemorySink()
    cfg = tiny(**{"training.lr": 1e6, "training.momentum": 0.0, "training.max_steps_per_epoch": None})
    with pytest.raises(TrainingDivergedError, match=r"lower training.lr") as err:
        run_experiment(cfg, sink, flush_every=1)
    assert sink.steps and not np.isfinite(sink.steps[-1]["loss"])
    assert all(np.isfinite(r["loss"]) for r in sink.steps[:-1])
    assert f"step {sink.steps[-1]['step']}" in str(err.value)
