"""The time model of docs/methods.md §4: hand-computed steps, inactive clients, purity, a loop reference.

These systems carry no client-part parameters, so the per-step sync phase is 0 (nothing to
synchronise); tests/core/test_time_phases.py covers the sync and U-shaped phases."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from psl_core.devices import ClientSystem, build_client_system, custom_device, epoch_timing, load_catalog


def hand_system(client_flops=(1e6, 1e6, 2e6), server_flops=(2e6, 2e6, 1e6)) -> ClientSystem:
    return ClientSystem(
        speed_flops=np.array([1e9, 2e9, 4e9]),
        up_bps=np.array([8e6, 8e6, 4e6]),
        down_bps=np.array([16e6, 8e6, 8e6]),
        latency_s=np.array([0.01, 0.0, 0.005]),
        client_flops_per_sample=np.array(client_flops),
        server_flops_per_sample=np.array(server_flops),
        bytes_up_per_sample=np.array([1000.0, 1000.0, 500.0]),
        bytes_down_per_sample=np.array([1500.0, 1000.0, 500.0]),
        server_speed_flops=6e9,
        device_ids=("a", "b", "c"),
    )


# step 0: all three; step 1: clients 1, 2 (client 2 slowed x3); step 2: empty; step 3: client 0 listed
# with count 0 (inactive) and client 2 with 2 samples.
STEP = np.array([0, 0, 0, 1, 1, 3, 3])
CLIENT = np.array([0, 1, 2, 1, 2, 0, 2])
COUNT = np.array([10, 20, 4, 10, 10, 0, 2])
SLOW = np.array([1.0, 1.0, 1.0, 1.0, 3.0, 1.0, 1.0])


def test_expected_time_per_sample_by_hand():
    # compute 3F/speed = 3e-3, 1.5e-3, 1.5e-3; transfer 1e-3+0.75e-3, 1e-3+1e-3, 1e-3+0.5e-3
    np.testing.assert_allclose(hand_system().expected_time_per_sample(), [4.75e-3, 3.5e-3, 3.0e-3])


def test_hand_computed_epoch():
    t = epoch_timing(STEP, CLIENT, COUNT, 4, hand_system(), SLOW)
    # step 0: t0 = 0.03 + 0.0175 + 0.02 = 0.0675, t1 = 0.03 + 0.04 = 0.07, t2 = 0.006 + 0.006 + 0.01 = 0.022;
    #         server (10*2e6 + 20*2e6 + 4*1e6) * 3 / 6e9 = 0.032
    # step 1: t1 = 0.035, t2 = 0.045 + 0.015 + 0.01 = 0.07; server 30e6 * 3 / 6e9 = 0.015
    # step 3: t2 = 0.006 + 0.01 = 0.016 (client 0 has 0 samples: no latency, no max); server 0.001
    np.testing.assert_allclose(t.client_time, [0.0675, 0.07, 0.022, 0.035, 0.07, 0.0, 0.016])
    np.testing.assert_allclose(t.server_time, [0.032, 0.015, 0.0, 0.001])
    np.testing.assert_allclose(t.step_time, [0.102, 0.085, 0.0, 0.017])
    np.testing.assert_array_equal(t.slowest_client, [1, 2, -1, 2])
    np.testing.assert_allclose(t.bytes_up, [32000, 15000, 0, 1000])
    np.testing.assert_allclose(t.bytes_down, [37000, 15000, 0, 1000])
    np.testing.assert_allclose(t.busy_time, [0.0675, 0.105, 0.108])
    np.testing.assert_allclose(t.idle_time, 0.204 - np.array([0.0675, 0.105, 0.108]))


def test_inactive_client_never_sets_the_max():
    system = hand_system()
    # client 0 would take 2*latency = 0.02 s if it counted; client 2 alone takes 1*3e-3 + 0.01 = 0.013 s
    t = epoch_timing(np.array([0, 0]), np.array([0, 2]), np.array([0, 1]), 1, system)
    assert t.slowest_client[0] == 2
    assert t.step_time[0] == pytest.approx(0.013 + 1e6 * 3 / 6e9)
    assert t.busy_time[0] == 0.0 and t.idle_time[0] == pytest.approx(t.step_time[0])


def test_ties_go_to_lowest_client_id():
    twins = ClientSystem(
        speed_flops=np.full(3, 1e9),
        up_bps=np.full(3, 1e6),
        down_bps=np.full(3, 1e6),
        latency_s=np.zeros(3),
        client_flops_per_sample=np.full(3, 1e6),
        server_flops_per_sample=np.zeros(3),
        bytes_up_per_sample=np.zeros(3),
        bytes_down_per_sample=np.zeros(3),
        server_speed_flops=1e9,
        device_ids=("a", "b", "c"),
    )
    t = epoch_timing(np.array([0, 0]), np.array([2, 1]), np.array([4, 4]), 1, twins)
    assert t.client_time[0] == t.client_time[1] and t.slowest_client[0] == 1


def test_per_client_cut_changes_cost_and_function_is_pure():
    base, moved = hand_system(), hand_system(client_flops=(1e6, 1e6, 3e6), server_flops=(2e6, 2e6, 0.0))
    args = (STEP.copy(), CLIENT.copy(), COUNT.copy(), 4)
    first = epoch_timing(*args, base, SLOW)
    other = epoch_timing(*args, moved, SLOW)
    again = epoch_timing(*args, base, SLOW)
    np.testing.assert_array_equal(first.step_time, again.step_time)  # same inputs, same result
    np.testing.assert_array_equal(args[2], COUNT)  # inputs untouched
    # client 2 now does 1.5x the client compute and nothing on the server: step 1 gets longer
    assert other.step_time[1] > first.step_time[1] and other.server_time[1] < first.server_time[1]
    assert other.busy_time[2] > first.busy_time[2] and other.busy_time[0] == first.busy_time[0]


def test_matches_a_loop_reference_on_random_data():
    rng = np.random.default_rng(5)
    k, steps = 6, 40
    system = ClientSystem(
        speed_flops=rng.uniform(1e9, 1e11, k),
        up_bps=rng.uniform(1e6, 1e8, k),
        down_bps=rng.uniform(1e6, 1e8, k),
        latency_s=rng.uniform(0, 0.02, k),
        client_flops_per_sample=rng.uniform(1e6, 1e8, k),
        server_flops_per_sample=rng.uniform(1e6, 1e8, k),
        bytes_up_per_sample=rng.uniform(1e3, 1e5, k),
        bytes_down_per_sample=rng.uniform(1e3, 1e5, k),
        server_speed_flops=2e11,
        device_ids=tuple("abcdef"),
    )
    dense = rng.integers(0, 5, (steps, k)) * (rng.random((steps, k)) < 0.6)
    step, client = np.nonzero(dense)
    slow = 1 + rng.pareto(2.0, step.size)
    t = epoch_timing(step, client, dense[step, client], steps, system, slow)
    s_dense = np.ones((steps, k))
    s_dense[step, client] = slow
    for i in range(steps):  # the reference: a plain loop over the phase formula (no head, no sync)
        fwd, bwd, busy = {}, {}, {}
        for j in range(k):
            b = dense[i, j]
            if b == 0:
                continue
            compute = b * system.client_flops_per_sample[j] / system.speed_flops[j] * s_dense[i, j]
            fwd[j] = compute + b * 8 * system.bytes_up_per_sample[j] / system.up_bps[j] + system.latency_s[j]
            bwd[j] = (
                2 * compute
                + b * 8 * system.bytes_down_per_sample[j] / system.down_bps[j]
                + system.latency_s[j]
            )
            busy[j] = fwd[j] + bwd[j]
        server = sum(dense[i, j] * 3 * system.server_flops_per_sample[j] for j in range(k)) / 2e11
        expected = max(fwd.values(), default=0.0) + server + max(bwd.values(), default=0.0)
        assert t.step_time[i] == pytest.approx(expected, rel=1e-12)
        assert t.slowest_client[i] == (max(busy, key=busy.get) if busy else -1)
    assert t.idle_time.sum() + t.busy_time.sum() == pytest.approx(k * t.step_time.sum())


def test_rejects_bad_coo_input():
    system = hand_system()
    with pytest.raises(ValueError, match="step indices"):
        epoch_timing(np.array([4]), np.array([0]), np.array([1]), 4, system)
    with pytest.raises(ValueError, match="client ids"):
        epoch_timing(np.array([0]), np.array([3]), np.array([1]), 4, system)
    with pytest.raises(ValueError, match="slowdown factors must be >= 1"):
        epoch_timing(np.array([0]), np.array([0]), np.array([1]), 4, system, np.array([0.5]))
    with pytest.raises(ValueError, match="one factor per entry"):
        epoch_timing(np.array([0]), np.array([0]), np.array([1]), 4, system, np.array([1.0, 1.0]))


@dataclass
class FakeCut:
    client_flops_per_sample: float
    server_flops_per_sample: float
    bytes_up_per_sample: float
    bytes_down_per_sample: float


def test_build_client_system_from_catalog_and_overrides():
    catalog = load_catalog()
    server = catalog["vm"]
    cut = FakeCut(1e7, 3e8, 8192.0, 8192.0)
    system = build_client_system(["rpi4b", "jetson_gpu"], [cut], server, catalog=catalog)
    rpi = catalog["rpi4b"]
    expected = 3e7 / rpi.train_flops_per_s + 8192 * 8 / rpi.up_bps + 8192 * 8 / rpi.down_bps
    assert system.expected_time_per_sample()[0] == pytest.approx(expected)
    assert system.server_speed_flops == server.train_flops_per_s
    over = build_client_system(
        ["rpi4b", "jetson_gpu"],
        [cut, cut],
        server,
        catalog=catalog,
        up_mbps=[5.0, 50.0],
        down_mbps=100.0,
        latency_ms=0,
    )
    np.testing.assert_allclose(over.up_bps, [5e6, 5e7])
    np.testing.assert_allclose(over.down_bps, [1e8, 1e8])
    np.testing.assert_allclose(over.latency_s, [0.0, 0.0])


def test_build_client_system_errors():
    catalog = {"box": custom_device("box", "Box", gflops=1, up_mbps=1, down_mbps=1)}
    server, cut = catalog["box"], FakeCut(1.0, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="unknown device ids \\['nope'\\]; known devices: box"):
        build_client_system(["nope"], [cut], server, catalog=catalog)
    with pytest.raises(ValueError, match="one cut summary per client"):
        build_client_system(["box"] * 3, [cut, cut], server, catalog=catalog)
    with pytest.raises(ValueError, match="up_mbps override"):
        build_client_system(["box"] * 3, [cut], server, catalog=catalog, up_mbps=[1.0, 2.0])
    with pytest.raises(ValueError, match="lack attribute 'client_flops_per_sample'"):
        build_client_system(["box"], [object()], server, catalog=catalog)
