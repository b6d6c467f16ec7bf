"""Per-device cuts (the planner's per-device method, which replaced the split advisor): the cut that is
fastest for one client of a device alone, within its memory, computed by hand here."""

from __future__ import annotations

import numpy as np
import pytest

from psl_core.devices import custom_device, load_catalog
from psl_core.planner import CutCosts, PlanningError, build_instance, device_cut_table, per_device_cuts

# Later cuts: more client FLOPs, smaller activations, more client memory (10 MFLOPs forward in all).
CUTS = CutCosts(
    cut=np.array([1, 2, 3]),
    name=("block1", "block2", "block3"),
    client_flops=np.array([1e6, 5e6, 9e6]),
    server_flops=np.array([9e6, 5e6, 1e6]),
    bytes_up=np.array([2000.0, 1000.0, 500.0]),
    bytes_down=np.array([2000.0, 1000.0, 500.0]),
    client_param_bytes=np.array([1_000.0, 5_000.0, 10_000.0]),
    client_activation_bytes=np.array([10_000.0, 20_000.0, 50_000.0]),
    full_model_flops=1e7,
    full_model_param_bytes=20_000.0,
    full_model_activation_bytes=80_000.0,
)
N = 32  # memory 3P + N act: 323_000, 655_000, 1_630_000 bytes
WEAK = custom_device("weak", "Weak", gflops=1, up_mbps=10, down_mbps=10, latency_ms=5, memory_mb=1.5)
STRONG = custom_device("strong", "Strong", gflops=100, up_mbps=100, down_mbps=100, latency_ms=5, memory_mb=64)
SERVER = custom_device("server", "Server", gflops=50, up_mbps=1000, down_mbps=1000)
CATALOG = {d.id: d for d in (WEAK, STRONG, SERVER)}


def instance(devices, **kw):
    return build_instance(
        CUTS, devices, [N] * len(devices), catalog=CATALOG, server_device=SERVER, uplink_mbps=None, **kw
    )


def row(rows, device, cut):
    return next(r for r in rows if r.device_id == device and r.cut == cut)


def test_table_values_by_hand():
    rows = device_cut_table(instance(["strong", "weak", "strong"]))
    assert len(rows) == 6
    r = row(rows, "strong", 2)
    forward = N * 5e6 / 1e11  # 0.0016 s; backward twice that
    server = 3 * N * 5e6 / 5e10  # the server's work for this client's samples alone
    activations = 2 * N * 1000 * 8 / 1e8  # up and down
    sync = 2 * 5_000 * 8 / 1e8 + 2 * 0.005  # client-part gradient up, aggregate down, two latencies
    assert r.compute_s == pytest.approx(3 * forward + server)
    assert r.transfer_s == pytest.approx(activations + 2 * 0.005 + sync)
    assert r.step_time_s == pytest.approx(r.compute_s + r.transfer_s)
    assert r.client_memory_bytes == 3 * 5_000 + N * 20_000 and r.fits_memory and r.cut_name == "block2"


def test_weak_device_gets_an_earlier_cut_than_the_strong_one():
    inst = instance(["weak", "strong"])
    best = dict(zip(inst.device_id, inst.cuts.cut[per_device_cuts(inst)], strict=True))
    assert best == {"weak": 1, "strong": 3}
    rows = device_cut_table(inst)
    # the weak device's 1.5 MiB rules out cut 3 (1.63 MB), which is reported but not chosen
    assert not row(rows, "weak", 3).fits_memory and row(rows, "weak", 2).fits_memory


def test_memory_budget_is_respected():
    inst = instance(["strong"], memory_budget_mb={"strong": 1_500_000 / 2**20})  # cut 3 no longer fits
    rows = device_cut_table(inst)
    assert int(inst.cuts.cut[per_device_cuts(inst)[0]]) == 2
    assert row(rows, "strong", 3).step_time_s < row(rows, "strong", 2).step_time_s


def test_nothing_fits_names_the_device_and_the_minimum():
    inst = instance(["strong", "weak"], memory_budget_mb={"weak": 300_000 / 2**20})
    with pytest.raises(PlanningError, match=r"device 'weak'.*needs 0\.308037 MiB"):
        per_device_cuts(inst)


def test_measured_catalog_weak_pi_cuts_earlier_than_jetson_gpu():
    catalog = load_catalog()
    inst = build_instance(
        CUTS,
        ["rpi3bplus", "jetson_gpu"],
        [N, N],
        catalog=catalog,
        server_device=catalog["vm"],
        uplink_mbps=None,
        memory_budget_mb={"rpi3bplus": 1.0},
    )
    cuts = inst.cuts.cut[per_device_cuts(inst)]
    assert cuts[inst.device_id.index("rpi3bplus")] < cuts[inst.device_id.index("jetson_gpu")]
