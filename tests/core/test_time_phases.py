"""The synchronous step as phases with barriers (docs/methods.md §4), computed by hand for a plain and a U-shaped
cut, against a loop reference on random data, and as logged by the engine."""

from __future__ import annotations

import numpy as np
import pytest

from psl_core.config import ExperimentConfig, apply_overrides
from psl_core.devices import ClientSystem, epoch_timing
from psl_core.engine import MemorySink, build_experiment, run_experiment
from psl_core.metrics import STEP_PHASE_FIELDS


def system(u_shaped: bool) -> ClientSystem:
    # Part 1 (before the cut): 1e6 forward FLOPs per sample. U-shaped: a head of 0.5e6 FLOPs, 200 bytes
    # at the second cut, 800 at the first; plain: 1000 bytes up (smashed + label), 500 down.
    return ClientSystem(
        speed_flops=np.array([1e9, 2e9]),
        up_bps=np.array([8e6, 4e6]),
        down_bps=np.array([16e6, 8e6]),
        latency_s=np.array([0.01, 0.002]),
        client_flops_per_sample=np.array([1.5e6, 1.5e6]) if u_shaped else np.array([1e6, 1e6]),
        server_flops_per_sample=np.array([2e6, 2e6]),
        bytes_up_per_sample=np.array([1000.0, 1000.0]),
        bytes_down_per_sample=np.array([1000.0, 1000.0]) if u_shaped else np.array([500.0, 500.0]),
        server_speed_flops=4e9,
        device_ids=("a", "b"),
        head_flops_per_sample=np.array([0.5e6, 0.5e6]) if u_shaped else None,
        return_bytes_per_sample=np.array([200.0, 200.0]) if u_shaped else None,
        client_param_bytes=np.array([1e4, 2e4]),
    )


# step 0: client 0 sends 10 samples, client 1 sends 20 and is slowed 2×; step 1: client 0 alone with 4
# (client 1 listed with 0 samples: inactive, costs nothing, sets no maximum).
STEP, CLIENT, COUNT, SLOW = (
    np.array([0, 0, 1, 1]),
    np.array([0, 1, 0, 1]),
    np.array([10, 20, 4, 0]),
    np.array([1.0, 2.0, 1.0, 1.0]),
)


def test_plain_cut_by_hand():
    t = epoch_timing(STEP, CLIENT, COUNT, 2, system(False), SLOW)
    # step 0: f0+u0 = 0.01 + (0.01 + 0.01) = 0.03;  f1+u1 = 0.02 + (0.04 + 0.002) = 0.062
    #         server 3·(10+20)·2e6 / 4e9 = 0.045
    #         d0+g0 = (0.0025 + 0.01) + 0.02 = 0.0325;  d1+g1 = (0.01 + 0.002) + 0.04 = 0.052
    #         sync0 = 0.01 + 0.005 + 0.02 = 0.035;  sync1 = 0.04 + 0.02 + 0.004 = 0.064
    # step 1: f0+u0 = 0.004 + 0.014 = 0.018; server 0.006; d0+g0 = 0.011 + 0.008 = 0.019; sync 0.035
    np.testing.assert_allclose(t.fwd_phase, [0.062, 0.018])
    np.testing.assert_allclose(t.server_time, [0.045, 0.006])
    np.testing.assert_allclose(t.head_phase, [0.0, 0.0])
    np.testing.assert_allclose(t.bwd_phase, [0.052, 0.019])
    np.testing.assert_allclose(t.sync_phase, [0.064, 0.035])
    np.testing.assert_allclose(t.step_time, [0.223, 0.078])
    np.testing.assert_allclose(t.client_time, [0.0975, 0.178, 0.072, 0.0])
    np.testing.assert_array_equal(t.slowest_client, [1, 0])
    np.testing.assert_allclose(t.bytes_up, [10_000 + 20_000 + 30_000, 4_000 + 10_000])
    np.testing.assert_allclose(t.bytes_down, [5_000 + 10_000 + 30_000, 2_000 + 10_000])
    np.testing.assert_allclose(t.busy_time, [0.0975 + 0.072, 0.178])
    np.testing.assert_allclose(t.idle_time, 0.301 - np.array([0.1695, 0.178]))


def test_u_shaped_cut_by_hand():
    t = epoch_timing(STEP[:2], CLIENT[:2], COUNT[:2], 1, system(True), SLOW[:2])
    # f0+u0 = 0.01 + (0.008 + 0.01) = 0.028;  f1+u1 = 0.02 + (0.032 + 0.002) = 0.054
    # head, client 0: activations down 0.001 + 0.01, head 3·10·0.5e6/1e9 = 0.015, gradient up 0.002 + 0.01
    #       client 1: 0.004 + 0.002, 3·20·0.5e6/2e9·2 = 0.03, 0.008 + 0.002   -> 0.038, 0.046
    # d0+g0 = (0.004 + 0.01) + 0.02 = 0.034;  d1+g1 = (0.016 + 0.002) + 0.04 = 0.058;  sync 0.064
    np.testing.assert_allclose(t.fwd_phase, [0.054])
    np.testing.assert_allclose(t.head_phase, [0.046])
    np.testing.assert_allclose(t.bwd_phase, [0.058])
    np.testing.assert_allclose(t.step_time, [0.054 + 0.045 + 0.046 + 0.058 + 0.064])
    np.testing.assert_allclose(t.entry_phases["head"], [0.038, 0.046])


def test_matches_a_loop_reference_on_random_data():
    rng = np.random.default_rng(11)
    k, steps = 5, 30
    head = rng.uniform(1e5, 1e6, k)
    sysm = ClientSystem(
        speed_flops=rng.uniform(1e9, 1e11, k),
        up_bps=rng.uniform(1e6, 1e8, k),
        down_bps=rng.uniform(1e6, 1e8, k),
        latency_s=rng.uniform(0, 0.02, k),
        client_flops_per_sample=rng.uniform(1e6, 1e7, k) + head,
        server_flops_per_sample=rng.uniform(1e6, 1e8, k),
        bytes_up_per_sample=rng.uniform(2e3, 1e5, k),
        bytes_down_per_sample=rng.uniform(2e3, 1e5, k),
        server_speed_flops=2e11,
        device_ids=tuple("abcde"),
        head_flops_per_sample=head,
        return_bytes_per_sample=rng.uniform(100, 1000, k),
        client_param_bytes=rng.uniform(1e3, 1e6, k),
    )
    dense = rng.integers(0, 6, (steps, k)) * (rng.random((steps, k)) < 0.6)
    step, client = np.nonzero(dense)
    slow = 1 + rng.pareto(2.0, step.size)
    t = epoch_timing(step, client, dense[step, client], steps, sysm, slow)
    s_dense = np.ones((steps, k))
    s_dense[step, client] = slow
    for i in range(steps):
        fwd = head_phase = bwd = sync = server = 0.0
        for j in range(k):
            b = dense[i, j]
            server += 3 * b * sysm.server_flops_per_sample[j] / sysm.server_speed_flops
            if b == 0:
                continue
            lat, ret = sysm.latency_s[j], sysm.return_bytes_per_sample[j]
            part1 = sysm.client_flops_per_sample[j] - head[j]
            compute = b * part1 / sysm.speed_flops[j] * s_dense[i, j]
            fwd = max(fwd, compute + b * (sysm.bytes_up_per_sample[j] - ret) * 8 / sysm.up_bps[j] + lat)
            head_phase = max(
                head_phase,
                b * ret * 8 / sysm.down_bps[j]
                + 3 * b * head[j] / sysm.speed_flops[j] * s_dense[i, j]
                + b * ret * 8 / sysm.up_bps[j]
                + 2 * lat,
            )
            bwd = max(
                bwd, b * (sysm.bytes_down_per_sample[j] - ret) * 8 / sysm.down_bps[j] + lat + 2 * compute
            )
            p = sysm.client_param_bytes[j] * 8
            sync = max(sync, p / sysm.up_bps[j] + p / sysm.down_bps[j] + 2 * lat)
        assert t.step_time[i] == pytest.approx(fwd + server + head_phase + bwd + sync, rel=1e-12)
        assert t.sync_phase[i] == pytest.approx(sync, rel=1e-12)


@pytest.mark.parametrize("cut2", [None, 2])
def test_engine_logs_phases_that_add_up(cut2):
    cfg = apply_overrides(
        ExperimentConfig(),
        {
            "data.dataset": "digits",
            "data.train_limit": 400,
            "partition.num_clients": 4,
            "model.arch": "mlp",
            "model.cut": 1,
            "model.cut2": cut2,
            "sampling.batch_size": 64,
            "training.epochs": 1,
            "training.device": "cpu",
        },
    )
    sink = MemorySink()
    run_experiment(cfg, sink)
    setup = build_experiment(cfg)
    assert setup.system.param_bytes.min() > 0  # the client part's parameters are synchronised
    for row in sink.steps:
        assert sum(row[name] for name in STEP_PHASE_FIELDS) == pytest.approx(row["sim_step_time"], rel=1e-12)
        assert row["sim_sync"] > 0
        assert (row["sim_head_phase"] > 0) == (cut2 is not None)
