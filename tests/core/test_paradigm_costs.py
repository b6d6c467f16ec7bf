"""Time, traffic and energy models of the paradigms on cases computed by hand (SPEC §4, §6).

Two clients. Client 0: 1 GFLOP/s, client 1: 2 GFLOP/s; uplinks 8 Mbit/s (1 MB/s), downlinks
16 Mbit/s; latency 10 ms / 20 ms. Per sample: 1 MFLOP client part, 2 MFLOP server part, 3 MFLOP
whole model, 1000 B up, 500 B down. P_client = 100 kB / 200 kB, P_model = 1 MB; server 10 GFLOP/s.
Power: 5 W / 10 W training, 2 W / 1 W transferring. Round: step 0 both clients (10 and 20 samples,
client 1 slowed 2×), step 1 client 0 alone (10 samples).
"""

from __future__ import annotations

import numpy as np
import pytest

from psl_core.paradigms.costs import ClientCosts, psl_energy, round_costs, sequential_costs

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CC = ClientCosts(
    speed=np.array([1e9, 2e9]),
    up_bps=np.array([8e6, 8e6]),
    down_bps=np.array([16e6, 16e6]),
    latency=np.array([0.01, 0.02]),
    client_flops=np.array([1e6, 1e6]),
    server_flops=np.array([2e6, 2e6]),
    act_up=np.array([1000.0, 1000.0]),
    act_down=np.array([500.0, 500.0]),
    client_param_bytes=np.array([1e5, 2e5]),
    model_param_bytes=1e6,
    model_flops=3e6,
    server_speed=1e10,
    busy_watts=np.array([5.0, 10.0]),
    radio_watts=np.array([2.0, 1.0]),
)
CLIENTS = np.array([0, 1])
COUNT = np.array([[10, 20], [10, 0]])
SLOW = np.array([[1.0, 2.0], [1.0, 1.0]])
approx = pytest.approx


def test_sflv1_round_is_three_phases_per_step_plus_client_part_transfers():
    c = round_costs(CC, "sflv1", CLIENTS, COUNT, SLOW)
    # step 0: max(f+u) = 0.06 (client 1), server 3·30·2e6/1e10 = 0.018, max(d+g) = 0.065 → 0.143
    # step 1: 0.03 + 0.006 + 0.0325 = 0.0685; round start: client 1 downloads 200 kB: 0.1 + 0.02
    # round end: client 1 uploads 200 kB: 0.2 + 0.02
    assert c.elapsed == approx([0.12 + 0.143, 0.12 + 0.143 + 0.0685 + 0.22])
    assert c.step_time == approx([0.263, 0.2885])
    assert c.round_time == approx(0.5515)
    assert c.bytes_up == approx([30_000, 10_000 + 300_000])
    assert c.bytes_down == approx([15_000 + 300_000, 5_000])
    # energy: client 0 per step 5·0.03 + 2·(0.01 + 0.0025); client 1: 10·0.06 + 1·(0.02 + 0.005);
    # model transfers: downloads 2·0.05 + 1·0.1 at step 0, uploads 2·0.1 + 1·0.2 at step 1
    assert c.energy == approx([0.175 + 0.625 + 0.2, 0.175 + 0.4])
    assert c.client_energy == approx([0.65, 0.925])
    assert c.client_bytes == approx([230_000, 430_000])
    assert c.client_busy == approx([0.295, 0.465])
    assert c.slowest_client.tolist() == [1, 0]


def test_sflv2_costs_like_sflv1_the_server_works_through_every_batch_either_way():
    v1, v2 = round_costs(CC, "sflv1", CLIENTS, COUNT, SLOW), round_costs(CC, "sflv2", CLIENTS, COUNT, SLOW)
    assert v1.elapsed == approx(v2.elapsed) and v1.client_energy == approx(v2.client_energy)


def test_fedavg_round_is_the_slowest_client_download_compute_upload():
    c = round_costs(CC, "fedavg", CLIENTS, COUNT, SLOW)
    # client 0: download 0.5 + 0.01, steps 0.09 + 0.09, upload 1.0 + 0.01 → 1.70
    # client 1: download 0.5 + 0.02, step 3·20·3e6/2e9·2 = 0.18, upload 1.0 + 0.02 → 1.72
    assert c.round_time == approx(1.72)
    assert c.elapsed == approx([0.70, 1.72])  # step 0 ends when client 1 has finished it
    assert c.bytes_down == approx([2e6, 0]) and c.bytes_up == approx([0, 2e6])
    assert c.energy == approx([0.45 + 1.8 + 1.0 + 0.5, 0.45 + 2.0 + 1.0])
    assert c.client_energy == approx([3.9, 3.3])
    assert c.client_bytes == approx([2e6, 2e6])
    assert c.slowest_client.tolist() == [1, 0]


def test_hsfl_runs_both_groups_side_by_side():
    c = round_costs(CC, "hsfl", CLIENTS, COUNT, SLOW, fl_rows=np.array([True, False]))
    # FL client 0 alone: done at 0.6, 0.69, uploads until 1.70.
    # SL client 1 alone: start 0.12, step 0 = 0.06 + 3·20·2e6/1e10 + 0.065 = 0.137, ends 0.257 + 0.22
    assert c.elapsed == approx([0.6, 1.70])
    assert c.round_time == approx(1.70)
    assert c.client_bytes == approx([2e6, 20 * 1500 + 4e5])
    assert c.client_energy == approx([5 * 0.18 + 2 * 0.5 + 2 * 1.0, 0.625 + 0.3])


def test_sl_is_one_client_at_a_time_with_hand_offs():
    c = sequential_costs(CC, np.array([1, 0, 0]), np.array([20, 10, 10]), np.array([2.0, 1.0, 1.0]))
    # client 1: 0.06 + 0.02 + 0.005 + 2·0.02 + server 0.012, plus download 0.1 + 0.02 and upload 0.2 + 0.02
    # client 0: 0.0685 each, plus download 0.05 + 0.01 before the first, upload 0.1 + 0.01 after the last
    assert c.step_time == approx([0.477, 0.1285, 0.1785])
    assert c.round_time == approx(0.784)
    assert c.bytes_up == approx([20_000 + 2e5, 10_000, 10_000 + 1e5])
    assert c.bytes_down == approx([10_000 + 2e5, 5_000 + 1e5, 5_000])
    assert c.client_energy == approx([2 * 0.175 + 2 * 0.05 + 2 * 0.1, 0.625 + 0.1 + 0.2])
    assert c.slowest_client.tolist() == [1, 0, 0]


def test_psl_energy_counts_the_per_step_client_part_synchronisation():
    step_energy, client_energy, client_bytes = psl_energy(
        CC, np.array([0, 0, 1]), np.array([0, 1, 0]), np.array([10, 20, 10]), 2, np.array([1.0, 2.0, 1.0])
    )
    # client 0, 10 samples: 5·0.03 + 2·((10 000 + 1e5)·8/8e6 + (5 000 + 1e5)·8/16e6) = 0.475
    # client 1, 20 samples slowed 2×: 10·0.06 + 1·((20 000 + 2e5)·8/8e6 + (10 000 + 2e5)·8/16e6) = 0.925
    assert step_energy == approx([1.4, 0.475])
    assert client_energy == approx([0.95, 0.925])
    assert client_bytes == approx([430_000, 430_000])
