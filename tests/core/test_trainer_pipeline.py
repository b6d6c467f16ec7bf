"""The trainer's pipeline around the step: host-prepared client segments, prefetched epoch plans,
checkpoints written off the training thread, evaluation (subset, steps, batch per device),
precision (bf16 / fp16 with loss scaling) and torch.compile."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from psl_core.config import ExperimentConfig, apply_overrides
from psl_core.engine import NONDETERMINISTIC_FIELDS, MemorySink, PSLTrainer, build_experiment, run_experiment
from psl_core.engine.checkpoint import load_checkpoint
from psl_core.engine.evaluation import EVAL_SUBSET_SEED, Evaluator, default_eval_batch
from psl_core.engine.plan import EpochPlanner
from psl_core.engine.prefetch import PlanPrefetcher, prepare_epoch
from psl_core.models.norms import ClientSegments, SegmentBatchNorm


def config(**overrides) -> ExperimentConfig:
    base = {
        "data.dataset": "digits",
        "partition.num_clients": 8,
        "partition.scheme": "dirichlet",
        "partition.alpha": 0.5,
        "model.arch": "cnn",
        "sampling.batch_size": 48,
        "training.epochs": 3,
        "training.max_steps_per_epoch": 5,
        "training.device": "cpu",
    }
    base.update(overrides)
    return apply_overrides(ExperimentConfig(), base)


def science(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in NONDETERMINISTIC_FIELDS} for r in rows]


# ---------------------------------------------------------------- client segments prepared on the host
def test_prepared_segments_equal_an_independent_grouping_of_each_step():
    setup = build_experiment(config(**{"partition.num_clients": 12, "model.client_norm": "batch"}))
    planner = EpochPlanner(setup)
    prepared = prepare_epoch(planner, 0, planner.state_dict(), torch.device("cpu"), segmented=True)
    batches = prepared.plan.batches
    for t in range(prepared.plan.num_steps):
        clients = batches.client_id[batches.step_offsets[t] : batches.step_offsets[t + 1]]
        active, inverse, counts = np.unique(clients, return_inverse=True, return_counts=True)
        segments = prepared.segments(t)
        assert segments.num_segments == len(active)
        assert segments.ids.tolist() == inverse.tolist()
        assert segments.rows.tolist() == counts.astype(float).tolist()
        rows = batches.sample_index[batches.step_offsets[t] : batches.step_offsets[t + 1]]
        assert prepared.batch_rows(t).tolist() == rows.tolist()


def test_segment_norm_with_host_segments_equals_raw_client_ids():
    torch.manual_seed(0)
    x = torch.randn(10, 3, 4, 4)
    client = torch.tensor([7, 7, 2, 2, 2, 9, 7, 2, 9, 9])  # ids of a K = 12 federation
    raw, prepared = SegmentBatchNorm(3), SegmentBatchNorm(3)
    prepared.load_state_dict(raw.state_dict())
    raw.set_segments(client, 12)
    active, inverse, counts = np.unique(client.numpy(), return_inverse=True, return_counts=True)
    prepared.set_segments(
        ClientSegments(torch.as_tensor(inverse), torch.as_tensor(counts, dtype=torch.float32), len(active))
    )
    torch.testing.assert_close(prepared(x), raw(x))
    torch.testing.assert_close(prepared.running_mean, raw.running_mean)
    torch.testing.assert_close(prepared.running_var, raw.running_var)


def test_segment_norm_keeps_float32_statistics_under_bf16():
    torch.manual_seed(1)
    x = torch.randn(12, 4, 3, 3) * 3 + 5
    layer = SegmentBatchNorm(4)
    layer.set_segments(torch.tensor([0] * 5 + [1] * 7))
    reference = layer(x)
    out = layer(x.bfloat16())
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), reference, atol=0.05, rtol=0.02)


# ---------------------------------------------------------------- prefetched plans
@pytest.mark.parametrize("method", ["ugs", "lds"])
def test_prefetched_plans_are_the_plans_a_synchronous_loop_draws(method):
    cfg = config(
        **{"sampling.method": method, "sampling.lds_delta": 0.5, "training.max_steps_per_epoch": None}
    )
    setup = build_experiment(cfg)
    reference_planner = EpochPlanner(setup)
    expected = [reference_planner.plan(e).batches.sample_index for e in range(4)]
    prefetcher = PlanPrefetcher(EpochPlanner(setup), 4, torch.device("cpu"), segmented=False)
    try:
        prepared = [prefetcher.get(e) for e in range(4)]
    finally:
        prefetcher.close()
    for e in range(4):
        assert np.array_equal(prepared[e].plan.batches.sample_index, expected[e])
        # A checkpoint's planner state reproduces the epoch it was taken in.
        fresh = EpochPlanner(setup)
        fresh.load_state_dict(prepared[e].planner_state)
        assert np.array_equal(fresh.plan(e).batches.sample_index, expected[e])


# ---------------------------------------------------------------- checkpoints off the training thread
class OrderCheckingSink(MemorySink):
    """Fails the run if a checkpoint is reported before its file is complete or before its rows."""

    def __init__(self, reader: PSLTrainer):
        super().__init__()
        self.reader = reader

    def on_checkpoint(self, path, step, epoch):
        loop, _planner = load_checkpoint(path, self.reader.model, self.reader.optimizer, torch.device("cpu"))
        assert loop["global_step"] == step
        assert self.steps and self.steps[-1]["step"] >= step  # every row up to the checkpoint came first
        super().on_checkpoint(path, step, epoch)


def test_checkpoints_are_reported_complete_and_after_their_rows(tmp_path):
    cfg = config(**{"training.checkpoint_every_steps": 2})
    trainer = PSLTrainer(build_experiment(cfg), checkpoint_dir=tmp_path, flush_every=1)
    sink = OrderCheckingSink(reader=PSLTrainer(build_experiment(cfg)))
    trainer.run(sink)
    # every 2 steps inside an epoch of 5, and at every epoch's end
    assert [step for _, step, _ in sink.checkpoints] == [2, 4, 5, 6, 8, 10, 12, 14, 15]
    assert not list(tmp_path.glob("*.tmp"))


def test_a_checkpoint_holds_the_state_of_its_step_although_training_went_on(tmp_path):
    cfg = config(**{"training.checkpoint_every_steps": 3, "training.epochs": 1})
    full = PSLTrainer(build_experiment(cfg), checkpoint_dir=tmp_path)
    full.run(MemorySink())  # 5 steps: the step-3 copy was written while steps 4 and 5 trained
    stopped = PSLTrainer(build_experiment(cfg))
    stopped.run(MemorySink(stop_after_step=3))
    restored = PSLTrainer(build_experiment(cfg))
    load_checkpoint(tmp_path / "step000000003.pt", restored.model, restored.optimizer, torch.device("cpu"))

    def same(a: dict, b: dict) -> bool:
        return all(torch.equal(a[k], b[k]) for k in a)

    assert same(restored.model.state_dict(), stopped.model.state_dict())
    assert not same(full.model.state_dict(), stopped.model.state_dict())
    momentum = [restored.optimizer.state[p]["momentum_buffer"] for p in restored.model.parameters()]
    expected = [stopped.optimizer.state[p]["momentum_buffer"] for p in stopped.model.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(momentum, expected))


@pytest.mark.parametrize(
    "overrides",
    [
        {"training.checkpoint_every_steps": 3, "model.client_norm": "batch"},
        {"training.checkpoint_every_steps": 4, "training.precision": "fp16"},  # the scaler's state resumes
    ],
)
def test_resume_from_an_async_checkpoint_equals_an_uninterrupted_run(tmp_path, overrides):
    cfg = config(**overrides)
    reference = MemorySink()
    run_experiment(cfg, reference)
    first = MemorySink(stop_after_step=7)
    run_experiment(cfg, first, checkpoint_dir=tmp_path)
    path, step, _ = first.checkpoints[-1]
    resumed = MemorySink()
    run_experiment(cfg, resumed, checkpoint_dir=tmp_path / "again", resume_from=path)
    assert science(resumed.steps) == science(reference.steps)[step:]
    assert science(resumed.epochs) == science(reference.epochs)[-len(resumed.epochs) :]


# ---------------------------------------------------------------- evaluation
def reference_evaluation(model, x, y, num_classes) -> dict:
    """Independent re-implementation: one sample at a time, plain Python sums."""
    model.eval()
    model.set_client_segments(None)
    loss, hits, totals = 0.0, [0] * num_classes, [0] * num_classes
    with torch.no_grad():
        for i in range(len(y)):
            logits = model(x[i : i + 1])
            loss += F.cross_entropy(logits, y[i : i + 1]).item()
            label = int(y[i])
            totals[label] += 1
            hits[label] += int(logits.argmax(1).item() == label)
    model.train()
    return {
        "test_loss": loss / len(y),
        "test_acc": sum(hits) / len(y),
        "per_class_acc": [h / max(1, n) for h, n in zip(hits, totals)],
    }


@pytest.mark.parametrize("batch_size", [1, 7, 256])
def test_evaluator_equals_a_sample_by_sample_reference_at_any_batch_size(batch_size):
    setup = build_experiment(config(**{"model.server_norm": "batch"}))
    data = setup.dataset
    evaluator = Evaluator(data.x_test, data.y_test, data.num_classes, batch_size=batch_size, subset_size=None)
    got = evaluator.evaluate(setup.model)
    expected = reference_evaluation(setup.model, data.x_test, data.y_test, data.num_classes)
    assert got["test_samples"] == len(data.y_test)
    assert got["test_acc"] == pytest.approx(expected["test_acc"], abs=1e-12)
    assert got["test_loss"] == pytest.approx(expected["test_loss"], rel=1e-5)
    assert got["per_class_acc"] == pytest.approx(expected["per_class_acc"], abs=1e-6)
    assert setup.model.training


def test_live_subset_is_stratified_fixed_across_seeds_and_the_last_evaluation_is_full():
    cfg = config(**{"training.eval_samples": 100})
    sinks = {}
    for seed in (0, 3):
        sinks[seed] = MemorySink()
        run_experiment(apply_overrides(cfg, {"seed": seed}), sinks[seed])
    epochs = sinks[0].epochs
    test_size = len(build_experiment(cfg).dataset.y_test)
    assert [e["test_samples"] for e in epochs] == [100, 100, test_size]
    trainer = PSLTrainer(build_experiment(cfg))
    subset = trainer.evaluator.subset
    labels = trainer.y_test.numpy()
    shares = np.bincount(labels[subset], minlength=10) / 100
    assert np.abs(shares - np.bincount(labels, minlength=10) / len(labels)).max() <= 0.011
    other = PSLTrainer(build_experiment(apply_overrides(cfg, {"seed": 3})))
    assert np.array_equal(other.evaluator.subset, subset)  # same images whatever the seed
    assert EVAL_SUBSET_SEED == 0


def test_eval_every_steps_puts_test_metrics_on_those_steps_and_epochs_only_at_the_end():
    cfg = config(
        **{"training.eval_every_unit": "steps", "training.eval_every": 4, "training.eval_samples": 60}
    )
    sink = MemorySink()
    run_experiment(cfg, sink)
    evaluated = [r["step"] for r in sink.steps if "test_acc" in r]
    assert evaluated == [4, 8, 12]  # step 15 is the last: the final (full) evaluation is the epoch's
    assert all(r["test_samples"] == 60 for r in sink.steps if "test_acc" in r)
    assert [e["test_acc"] is not None for e in sink.epochs] == [False, False, True]


def test_eval_every_epochs_skips_epochs_but_always_evaluates_the_last():
    sink = MemorySink()
    run_experiment(config(**{"training.eval_every": 2, "training.epochs": 3}), sink)
    assert [e["test_acc"] is not None for e in sink.epochs] == [False, True, True]


def test_eval_batch_is_chosen_per_device_unless_set():
    assert default_eval_batch(torch.device("cpu")) < default_eval_batch(torch.device("cuda"))
    assert PSLTrainer(build_experiment(config())).evaluator.batch_size == default_eval_batch(
        torch.device("cpu")
    )
    chosen = PSLTrainer(build_experiment(config(**{"training.eval_batch_size": 33})))
    assert chosen.evaluator.batch_size == 33


# ---------------------------------------------------------------- precision and compile
def test_fp16_loss_scaling_carries_the_scaled_gradient_through_the_cut():
    cfg = config(**{"model.client_norm": "group"})
    fp32 = PSLTrainer(build_experiment(cfg))
    fp16 = PSLTrainer(build_experiment(apply_overrides(cfg, {"training.precision": "fp16"})))
    x, y = fp32.x_train[:48], fp32.y_train[:48]
    fp32._forward_backward(x, y)
    fp16._forward_backward(x, y)
    scale = fp16.precision.scaler.get_scale()
    assert scale > 1
    client = [p for p in fp16.model.blocks[0].parameters()]
    reference = [p.grad for p in fp32.model.blocks[0].parameters()]
    # Before unscaling, the client part's gradients carry the loss scale: the server handed back a
    # scaled gradient of the smashed data. After unscaling they match fp32 within half precision.
    ratio = client[0].grad.norm() / reference[0].norm()
    assert ratio == pytest.approx(scale, rel=0.05)
    fp16.precision.scaler.unscale_(fp16.optimizer)
    for p, g in zip(client, reference):
        torch.testing.assert_close(p.grad, g, atol=2e-3, rtol=5e-2)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_trains_close_to_fp32(precision):
    cfg = config(**{"model.client_norm": "batch"})
    fp32, reduced = MemorySink(), MemorySink()
    run_experiment(cfg, fp32)
    run_experiment(apply_overrides(cfg, {"training.precision": precision}), reduced)
    losses = np.array([r["loss"] for r in reduced.steps])
    assert np.isfinite(losses).all()
    assert losses[-5:].mean() < losses[:3].mean()  # it learns
    assert reduced.epochs[-1]["test_acc"] == pytest.approx(fp32.epochs[-1]["test_acc"], abs=0.1)


def test_compile_captures_every_block_in_a_real_step_and_keeps_parameter_names(monkeypatch):
    import psl_core.engine.trainer as trainer_module
    from psl_core.engine.precision import compile_blocks

    graphs = []

    def counting_backend(graph_module, example_inputs):  # stands in for inductor (no C++ build here)
        graphs.append(graph_module)
        return graph_module.forward

    monkeypatch.setattr(
        trainer_module, "compile_blocks", lambda model: compile_blocks(model, counting_backend)
    )
    plain = PSLTrainer(build_experiment(config()))
    trainer = PSLTrainer(build_experiment(config(**{"training.compile": True, "training.epochs": 1})))
    assert list(trainer.model.state_dict()) == list(plain.model.state_dict())
    sink = MemorySink()
    trainer.run(sink)
    assert len(graphs) >= len(trainer.model.blocks)  # every block captured (more: eval mode recompiles)
    reference = MemorySink()
    run_experiment(config(**{"training.epochs": 1}), reference)
    assert [r["loss"] for r in sink.steps] == pytest.approx([r["loss"] for r in reference.steps], rel=1e-5)


def test_flush_policy_by_count_or_by_interval():
    """One rule for both engines (PSL's trainer and the round-based paradigms)."""
    import time as clock

    from psl_core.engine.training import FlushPolicy

    by_count = FlushPolicy(every=3)
    assert not by_count.due(2, 0.0) and by_count.due(3, 0.0)
    assert FlushPolicy(every=0).every == 1  # never "flush every 0 steps"
    by_time = FlushPolicy(every=3, interval_s=60.0)
    now = clock.perf_counter()
    assert not by_time.due(100, now) and by_time.due(1, now - 61) and not by_time.due(0, now - 61)
