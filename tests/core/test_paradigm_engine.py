"""The round-based engine: determinism, bit-identical resume, checkpoints, metrics, participation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from psl_core.config import ExperimentConfig, apply_overrides
from psl_core.engine import NONDETERMINISTIC_FIELDS, MemorySink, build_experiment, run_experiment
from psl_core.paradigms.engine import ParadigmTrainer
from psl_core.paradigms.modes import fl_client_mask

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(**overrides) -> ExperimentConfig:
    base = {
        "data.dataset": "digits",
        "data.train_limit": 300,
        "data.test_limit": 60,
        "partition.num_clients": 6,
        "partition.scheme": "dirichlet",
        "partition.alpha": 0.5,
        "partition.min_partition_size": 5,
        "model.arch": "mlp",
        "model.client_norm": "batch",
        "paradigm.local_batch": 8,
        "training.epochs": 2,
        "training.max_steps_per_epoch": 6,
    }
    base.update(overrides)
    return apply_overrides(ExperimentConfig(), base)


def science(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in NONDETERMINISTIC_FIELDS} for r in rows]


PARADIGMS = ["sl", "sflv1", "sflv2", "fedavg", "hsfl"]


@pytest.mark.parametrize("name", PARADIGMS)
def test_same_seed_same_metrics_and_another_seed_other_metrics(name):
    cfg = tiny(**{"paradigm.name": name, "system.stragglers.transient_prob": 0.3})
    a, b, c = MemorySink(), MemorySink(), MemorySink()
    run_experiment(cfg, a)
    run_experiment(cfg, b)
    run_experiment(apply_overrides(cfg, {"seed": 1}), c)
    assert len(a.steps) == 12 and len(a.epochs) == 2
    assert science(a.steps) == science(b.steps) and science(a.epochs) == science(b.epochs)
    assert science(a.steps) != science(c.steps)
    row = a.steps[-1]
    assert (
        row["round"] == row["epoch"] == 2 and row["energy_j"] > 0 and row["sim_time"] > a.steps[0]["sim_time"]
    )
    assert np.all(np.diff([s["sim_time"] for s in a.steps]) >= 0)
    last = a.epochs[-1]
    assert last["energy_per_client_j"] > 0 and last["bytes_per_client"] > 0 and 0 <= last["test_acc"] <= 1


@pytest.mark.parametrize(
    "name, overrides, stop_at",
    [
        ("sflv1", {"training.checkpoint_every_steps": 4}, 4),  # mid-round
        ("sflv2", {"training.checkpoint_every_steps": 5}, 5),
        ("sl", {"training.checkpoint_every_steps": 3, "training.optimizer": "adam"}, 9),
        ("fedavg", {"paradigm.client_fraction": 0.5, "training.optimizer": "adam"}, 6),  # round boundary
        ("hsfl", {"training.checkpoint_every_steps": 2}, 8),
    ],
)
def test_resume_from_a_checkpoint_is_bit_identical(tmp_path, name, overrides, stop_at):
    cfg = tiny(**{"paradigm.name": name, **overrides})
    full = MemorySink()
    run_experiment(cfg, full, checkpoint_dir=tmp_path / "full")
    first = MemorySink(stop_after_step=stop_at)
    result = run_experiment(cfg, first, checkpoint_dir=tmp_path / "part")
    assert result.status == "cancelled"
    path, step, _ = first.checkpoints[-1]
    assert step == stop_at
    # plain tensors and a JSON string: loadable without unpickling any Python object
    payload = torch.load(path, weights_only=True)
    assert isinstance(payload["state"], str) and all(torch.is_tensor(t) for t in payload["tensors"].values())
    second = MemorySink()
    run_experiment(cfg, second, checkpoint_dir=tmp_path / "part", resume_from=path)
    steps = [s for s in first.steps if s["step"] <= step] + second.steps
    assert science(steps) == science(full.steps)
    assert science(first.epochs + second.epochs) == science(full.epochs)


def test_a_checkpoint_of_another_paradigm_or_engine_is_refused(tmp_path):
    sink = MemorySink()
    run_experiment(tiny(**{"paradigm.name": "sflv1"}), sink, checkpoint_dir=tmp_path)
    path = sink.checkpoints[-1][0]
    with pytest.raises(ValueError, match="paradigm 'sflv1'"):
        run_experiment(tiny(**{"paradigm.name": "fedavg"}), MemorySink(), resume_from=path)
    psl = MemorySink()
    run_experiment(tiny(), psl, checkpoint_dir=tmp_path / "psl")
    with pytest.raises(ValueError, match="round-based engine"):
        run_experiment(tiny(**{"paradigm.name": "sflv1"}), MemorySink(), resume_from=psl.checkpoints[-1][0])


def test_partial_participation_draws_m_clients_per_round_and_weights_by_data():
    cfg = tiny(**{"paradigm.name": "fedavg", "paradigm.client_fraction": 0.5, "training.epochs": 4})
    trainer = ParadigmTrainer(build_experiment(cfg))
    sizes = trainer.planner.sizes
    chosen = [trainer.planner.plan(r) for r in range(4)]
    assert all(len(p.clients) == 3 for p in chosen)
    assert len({tuple(sorted(p.clients)) for p in chosen}) > 1  # drawn anew each round
    for p in chosen:
        assert p.weights == pytest.approx(sizes[p.clients] / sizes[p.clients].sum())
    sink = MemorySink()
    trainer.run(sink)
    assert [e["participants"] for e in sink.epochs] == [3, 3, 3, 3]
    stats = [s for s in sink.client_stats if s["epoch"] == 1]
    assert sum(s["samples"] > 0 for s in stats) == 3


def test_a_cancel_between_steps_stops_cleanly():
    sink = MemorySink(stop_after_step=3)
    result = run_experiment(tiny(**{"paradigm.name": "sflv2"}), sink, flush_every=1)
    assert result.status == "cancelled" and result.steps == 3
    assert [s["step"] for s in sink.steps] == [1, 2, 3]


def test_sl_takes_one_step_per_client_batch_and_clients_in_a_shuffled_order():
    cfg = tiny(**{"paradigm.name": "sl", "training.max_steps_per_epoch": None, "training.epochs": 2})
    trainer = ParadigmTrainer(build_experiment(cfg))
    sizes = trainer.planner.sizes
    assert trainer.round_steps == [int(np.sum(-(-sizes // 8)))] * 2
    orders = [trainer.planner.plan(r).order.tolist() for r in range(2)]
    assert orders[0] != orders[1]
    sink = MemorySink()
    trainer.run(sink)
    assert all(s["active_clients"] == 1 and s["batch_size"] <= 8 for s in sink.steps)


def test_hsfl_modes_follow_the_rule():
    cfg = tiny(
        **{
            "paradigm.name": "hsfl",
            "system.clients": [
                {"device": "rpi4b", "fraction": 0.5},
                {"device": "jetson_gpu", "fraction": 0.5},
            ],
        }
    )
    setup = build_experiment(cfg)
    devices = np.array(setup.client_device_ids)
    # the fastest half are the Jetson GPUs
    assert (fl_client_mask(0.5, setup) == (devices == "jetson_gpu")).all()
    assert fl_client_mask(0.0, setup).sum() == 0 and fl_client_mask(1.0, setup).all()
    assert (fl_client_mask(["rpi4b"], setup) == (devices == "rpi4b")).all()
    with pytest.raises(ValueError, match="no client uses that device"):
        fl_client_mask(["laptop_m1"], setup)


def test_hsfl_with_every_client_in_fl_mode_costs_what_fedavg_costs():
    fed, hyb = MemorySink(), MemorySink()
    run_experiment(tiny(**{"paradigm.name": "fedavg"}), fed)
    run_experiment(tiny(**{"paradigm.name": "hsfl", "paradigm.fl_clients": 1.0}), hyb)
    assert [s["sim_time"] for s in fed.steps] == pytest.approx([s["sim_time"] for s in hyb.steps])
    assert fed.epochs[-1]["energy_j"] == pytest.approx(hyb.epochs[-1]["energy_j"])
    spl = MemorySink()
    run_experiment(tiny(**{"paradigm.name": "hsfl", "paradigm.fl_clients": 0.0}), spl)
    v1 = MemorySink()
    run_experiment(tiny(**{"paradigm.name": "sflv1"}), v1)
    assert [s["sim_time"] for s in v1.steps] == pytest.approx([s["sim_time"] for s in spl.steps])
