"""LDS with training.max_steps_per_epoch: the schedule and the clients' sample streams must advance
by the same (truncated) steps, so every epoch keeps drawing without replacement within a pass."""

from __future__ import annotations

import numpy as np

from psl_core.config import ExperimentConfig, apply_overrides
from psl_core.engine import EpochPlanner, MemorySink, build_experiment, run_experiment
from psl_core.sampling import LDSSampler


def lds_config(**extra) -> ExperimentConfig:
    return apply_overrides(
        ExperimentConfig(),
        {
            "data.dataset": "digits",
            "partition.scheme": "dirichlet",
            "partition.alpha": 0.5,
            "partition.num_clients": 8,
            "model.arch": "mlp",
            "sampling.method": "lds",
            "sampling.batch_size": 32,
            "training.epochs": 6,
            "training.max_steps_per_epoch": 7,
            "training.device": "cpu",
            **extra,
        },
    )


def test_lds_run_with_truncated_epochs_completes():
    sink = MemorySink()
    result = run_experiment(lds_config(), sink)
    assert result.status == "completed" and result.steps == 6 * 7
    assert [row["step"] for row in sink.steps] == list(range(1, 43))
    assert all(row["batch_size"] == 32 for row in sink.steps)


def test_schedule_and_streams_stay_in_step():
    planner = EpochPlanner(build_experiment(lds_config()))
    sizes = planner.sizes
    seen = [set() for _ in sizes]
    for epoch in range(12):
        plan = planner.plan(epoch)
        assert plan.num_steps == 7
        np.testing.assert_array_equal(
            planner.lds.state_dict()["used"], planner.sampler.state_dict()["used"] % sizes
        )
        # Within one local pass a client never repeats a sample.
        for k in range(len(sizes)):
            mine = plan.batches.sample_index[plan.batches.client_id == k]
            for index in mine:
                if len(seen[k]) == sizes[k]:
                    seen[k] = set()
                assert index not in seen[k]
                seen[k].add(int(index))


def test_lds_sampler_draws_only_the_asked_steps():
    sampler = LDSSampler(np.array([50, 30, 20]), 10)
    counts = sampler.epoch_counts(np.random.default_rng(0), num_steps=3)
    assert counts.num_steps == 3 and counts.total == 30
    np.testing.assert_array_equal(sampler.state_dict()["used"], counts.client_totals() % [50, 30, 20])
