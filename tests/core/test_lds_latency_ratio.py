"""LDS latency aversion in the ratio form: π_k ∝ (N_k / N) · (ℓ_k / median ℓ)^(−δ).

The ratio form is scale-free and cannot starve a client: δ = 1 makes a client's share proportional to
its data over its latency. (The earlier z-score form gave a slow client holding half the data nothing.)
"""

from __future__ import annotations

import numpy as np
import pytest

from psl_core.sampling import LDSSampler, ScheduleError, lds_preferences, ugs_counts


def reference_preferences(sizes, latency, delta):
    sizes, latency = np.asarray(sizes, float), np.asarray(latency, float)
    live = sizes > 0
    ratio = latency / np.median(latency[live])
    weight = np.where(live, sizes / sizes.sum() * ratio ** (-delta), 0.0)
    return weight / weight.sum()


@pytest.mark.parametrize("delta", [0.0, 0.5, 1.0, 2.0, 5.0])
def test_preferences_match_the_formula(delta):
    rng = np.random.default_rng(int(delta * 10))
    sizes = rng.integers(0, 500, 12)
    latency = rng.uniform(1e-4, 5e-2, 12)
    np.testing.assert_allclose(
        lds_preferences(sizes, delta=delta, latency_per_sample=latency),
        reference_preferences(sizes, latency, delta),
        rtol=1e-12,
    )


def test_delta_one_share_is_data_over_latency():
    sizes, latency = np.array([100, 300, 600]), np.array([1.0, 3.0, 0.5])
    pi = lds_preferences(sizes, delta=1.0, latency_per_sample=latency)
    expected = sizes / latency
    np.testing.assert_allclose(pi, expected / expected.sum())


def test_scale_free():
    sizes, latency = np.array([100, 300, 600, 50]), np.array([1.0, 3.0, 0.5, 9.0])
    a = lds_preferences(sizes, delta=2.0, latency_per_sample=latency)
    b = lds_preferences(sizes, delta=2.0, latency_per_sample=latency * 1e-6)
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_slow_client_holding_half_the_data_is_not_starved():
    """The audit's case: δ = 2, one 10× slower client holds 48 % of the data, 12 epochs."""
    sizes = np.r_[960, np.full(13, 80)]  # 960 / 2000 = 48 %
    latency = np.r_[10.0, np.ones(13)]
    lds = LDSSampler(sizes, 64, delta=2.0, latency_per_sample=latency)
    rng = np.random.default_rng(0)
    got = sum(lds.epoch_counts(rng).client_totals()[0] for _ in range(12))
    expected_share = reference_preferences(sizes, latency, 2.0)[0]  # 0.48 / 100 normalised
    steps = 12 * lds.num_steps
    assert got > 0
    assert got == pytest.approx(expected_share * 64 * steps, rel=0.35)


def test_zero_latency_with_delta_is_refused():
    with pytest.raises(ScheduleError, match="latency"):
        LDSSampler(np.array([10, 10]), 4, delta=1.0, latency_per_sample=np.array([0.0, 1.0]))


def test_lds_counts_have_about_twice_ugs_count_variance():
    """What the UI says: c = 1, δ = 0 matches UGS's SHARE variance, the COUNTS vary about 2× as much."""
    sizes = np.array([3000, 9000, 1500, 4500, 2000])
    rng = np.random.default_rng(7)
    ugs = np.concatenate([ugs_counts(sizes, 64, rng).to_dense() for _ in range(40)])
    lds = LDSSampler(sizes, 64)
    lds_dense = np.concatenate([lds.epoch_counts(rng).to_dense() for _ in range(40)])
    ratio = lds_dense.var(axis=0).sum() / ugs.var(axis=0).sum()
    assert 1.6 < ratio < 2.4


def test_slow_clients_with_classes_nobody_else_has_still_get_their_share():
    """Each digits class lives on ONE client; 2 of 10 clients are 10× slower. With δ = 1 the slow clients
    send ~1/10 of their proportional share, never nothing, and the run reports every class's accuracy
    (what it is, the benchmark tables say: docs/results.md, "LDS and classes only slow clients hold")."""
    from psl_core.config import ExperimentConfig, apply_overrides
    from psl_core.engine import MemorySink, build_experiment, run_experiment

    cfg = apply_overrides(
        ExperimentConfig(),
        {
            "data.dataset": "digits",
            "partition.scheme": "pathological",
            "partition.classes_per_client": 1,
            "partition.num_clients": 10,
            "model.arch": "mlp",
            "sampling.method": "lds",
            "sampling.lds_delta": 1.0,
            "sampling.batch_size": 32,
            "system.stragglers.persistent_fraction": 0.2,
            "system.stragglers.persistent_factor": 10.0,
            "training.epochs": 3,
            "training.device": "cpu",
        },
    )
    setup = build_experiment(cfg)
    slow = np.flatnonzero(setup.stragglers.persistent > 1)
    assert len(slow) == 2
    latency = setup.system.expected_time_per_sample() * setup.stragglers.persistent
    pi = reference_preferences(setup.partition.sizes, latency, 1.0)
    sink = MemorySink()
    run_experiment(cfg, sink)
    steps = sum(1 for _ in sink.steps)
    for k in slow:
        per_epoch = [s["samples"] for s in sink.client_stats if s["client"] == k]
        assert all(n > 0 for n in per_epoch)
        assert sum(per_epoch) == pytest.approx(pi[k] * 32 * steps, rel=0.5)
    per_class = sink.epochs[-1]["per_class_acc"]
    assert len(per_class) == 10 and all(0.0 <= a <= 1.0 for a in per_class)
