"""Device catalog calibration, analytic FLOPs of the profiled models, and the straggler model."""

from __future__ import annotations

import numpy as np
import pytest

from psl_core.devices import (
    StragglerModel,
    StragglerSpec,
    calibrate_throughput,
    custom_device,
    get_device,
    load_catalog,
    resnet101_basic_forward_flops,
    vgg19_forward_flops,
)
from psl_core.devices.catalog import resnet101_basic_layers, vgg19_layers
from psl_core.devices.measured import PROFILED_BATCH, load_layer_costs, load_measured_devices
from psl_core.devices.stragglers import draw_transient_factors, num_persistent

MEASURED_IDS = {"vm", "laptop_m1", "rpi4b", "rpi3bplus", "jetson_cpu", "jetson_gpu"}
ACTIVATION_OVERHEAD_KB = 1.568  # README: constant serialisation overhead on every activation size


# ---------------------------------------------------------------- analytic FLOPs
def test_resnet101_flops_match_readme_block_estimate():
    stem_macs = 16 * 16 * 64 * 3 * 49  # conv1 7x7/2 on 32x32 -> 16x16x64
    readme_macs = 33 * 4.7e6 + stem_macs
    assert resnet101_basic_forward_flops(32) / 2 == pytest.approx(readme_macs, rel=0.03)
    blocks = {name: macs for name, _, macs in resnet101_basic_layers(32)}
    # non-transition blocks of every stage are the README's ~4.7 M MACs
    for name in ("layer1.0", "layer2.1", "layer3.5", "layer4.2"):
        assert blocks[name] == pytest.approx(4.7e6, rel=0.01)


@pytest.mark.parametrize(
    "model,layers,skip_rows", [("resnet101", resnet101_basic_layers, ()), ("vgg19", vgg19_layers, (23, 24))]
)
def test_layer_shapes_reproduce_measured_activation_sizes(model, layers, skip_rows):
    measured = load_layer_costs(model, "cifar10")
    rows = layers(32)
    assert tuple(name for name, _, _ in rows) == measured.layer_names
    predicted_kb = np.array([PROFILED_BATCH * elems * 4 / 1024 for _, elems, _ in rows])
    keep = np.setdiff1d(np.arange(len(rows)), skip_rows)  # README issue 7: VGG rows 23-24 are corrupt
    np.testing.assert_allclose(
        predicted_kb[keep] + ACTIVATION_OVERHEAD_KB, measured.activation_kb[keep], atol=0.1
    )


def test_vgg19_flops_from_shapes():
    # 16 convs on the padded-pool sizes 32,17,9,5,3 and fc 25088->4096->4096->10
    conv = 32**2 * 64 * (3 + 64) + 17**2 * 128 * (64 + 128) + 9**2 * 256 * (128 + 3 * 256)
    conv += 5**2 * 512 * (256 + 3 * 512) + 3**2 * 512 * 4 * 512
    fc = 25088 * 4096 + 4096 * 4096 + 4096 * 10
    assert vgg19_forward_flops(32) == pytest.approx(2 * (9 * conv + fc), rel=1e-12)


# ---------------------------------------------------------------- catalog
def test_catalog_calibration_round_trip():
    catalog = load_catalog()
    assert set(catalog) == MEASURED_IDS
    flops = resnet101_basic_forward_flops(32)
    for device_id, measured in load_measured_devices().items():
        speed = catalog[device_id].train_flops_per_s
        reproduced_ms = 3 * flops * PROFILED_BATCH / speed * 1000
        assert reproduced_ms == pytest.approx(measured.total_ms["resnet101_cifar10"], rel=1e-12)


def test_catalog_speed_ordering_follows_measurements():
    s = {k: d.train_flops_per_s for k, d in load_catalog().items()}
    assert s["jetson_gpu"] > s["vm"] > s["laptop_m1"] > s["rpi4b"] > s["jetson_cpu"]
    assert s["rpi3bplus"] > s["jetson_cpu"]
    assert 20 < s["vm"] / s["rpi4b"] < 100  # measured 1998 ms vs 95534 ms


def test_catalog_sources_document_assumptions():
    catalog = load_catalog()
    for d in catalog.values():
        assert "ASSUMED" in d.source and "cross-check" in d.source
        assert d.up_bps > 0 and d.down_bps > 0 and d.latency_s >= 0
    assert "swapped" in catalog["vm"].source and "swapped" in catalog["laptop_m1"].source
    assert "ASSUMED" in catalog["jetson_gpu"].source.split("Memory:")[1]
    assert catalog["rpi3bplus"].memory_bytes == 1024**3 and catalog["rpi4b"].memory_bytes == 4 * 1024**3
    assert catalog["rpi4b"].up_bps < catalog["vm"].up_bps


def test_calibrate_throughput_formula_and_validation():
    assert calibrate_throughput(1000.0, 1e6, batch=10) == pytest.approx(3e7)
    with pytest.raises(ValueError, match="positive"):
        calibrate_throughput(0.0, 1e6)


def test_custom_device_units_and_validation():
    d = custom_device("edge", "Edge box", gflops=2.5, up_mbps=10, down_mbps=40, latency_ms=20, memory_mb=512)
    assert (d.train_flops_per_s, d.up_bps, d.down_bps, d.latency_s) == (2.5e9, 1e7, 4e7, 0.02)
    assert d.memory_bytes == 512 * 1024**2 and d.role == "custom" and d.source == "user-defined"
    with pytest.raises(ValueError, match="gflops must be > 0"):
        custom_device("x", "x", gflops=0, up_mbps=1, down_mbps=1)
    with pytest.raises(ValueError, match="up_mbps"):
        custom_device("x", "x", gflops=1, up_mbps=-1, down_mbps=1)
    with pytest.raises(ValueError, match="latency_ms"):
        custom_device("x", "x", gflops=1, up_mbps=1, down_mbps=1, latency_ms=-1)


def test_get_device_known_custom_and_unknown():
    assert get_device("rpi4b").id == "rpi4b"
    mine = custom_device("mine", "Mine", gflops=1, up_mbps=1, down_mbps=1)
    assert get_device("mine", custom=[mine]) is mine
    with pytest.raises(ValueError, match="known devices: .*rpi4b"):
        get_device("rpi5")


# ---------------------------------------------------------------- stragglers
@pytest.mark.parametrize("k,fraction", [(10, 0.3), (10, 0.25), (7, 0.5), (100, 0.05), (5, 0.0), (4, 1.0)])
def test_exact_number_of_persistent_stragglers(k, fraction):
    model = StragglerModel(k, StragglerSpec(persistent_fraction=fraction, persistent_factor=4.0), seed=1)
    expected = int(np.floor(fraction * k + 0.5))
    assert num_persistent(k, fraction) == expected
    assert np.sum(model.persistent == 4.0) == expected
    assert np.sum(model.persistent == 1.0) == k - expected


@pytest.mark.parametrize("dist", ["lognormal", "pareto"])
def test_transient_frequency_is_binomial(dist):
    p, n = 0.2, 20_000
    model = StragglerModel(
        8, StragglerSpec(transient_prob=p, transient_dist=dist, transient_scale=1.5), seed=0
    )
    factors = model.slowdowns(np.arange(n) % 8, np.random.default_rng(3))
    assert factors.min() >= 1.0
    hits = np.sum(factors > 1.0)
    assert abs(hits - n * p) < 5 * np.sqrt(n * p * (1 - p))  # 5 binomial standard deviations


def test_persistent_times_transient_and_reproducibility():
    spec = StragglerSpec(persistent_fraction=0.3, persistent_factor=10.0, transient_prob=0.5)
    a, b = StragglerModel(100, spec, seed=7), StragglerModel(100, spec, seed=7)
    np.testing.assert_array_equal(a.persistent, b.persistent)
    assert not np.array_equal(a.persistent, StragglerModel(100, spec, seed=8).persistent)
    clients = np.repeat(np.arange(100), 20)
    fa = a.slowdowns(clients, np.random.default_rng(1))
    np.testing.assert_array_equal(fa, b.slowdowns(clients, np.random.default_rng(1)))
    assert np.all(fa >= a.persistent[clients])  # transient factor multiplies, never divides
    slow = a.persistent[clients] == 10.0
    assert np.all(fa[slow] >= 10.0) and np.any(fa[~slow] < 10.0)


def test_pareto_tail_heavier_than_lognormal_at_matched_median():
    a = 2.0  # Pareto median 2**(1/a); folded lognormal median exp(0.6745 sigma)
    sigma = np.log(2.0) / a / 0.6744897501960817
    rng = np.random.default_rng(0)
    logn = draw_transient_factors(
        StragglerSpec(transient_dist="lognormal", transient_scale=sigma), 40_000, rng
    )
    pareto = draw_transient_factors(StragglerSpec(transient_dist="pareto", transient_scale=a), 40_000, rng)
    assert np.median(logn) == pytest.approx(np.sqrt(2), rel=0.02)
    assert np.median(pareto) == pytest.approx(np.sqrt(2), rel=0.02)
    # theory: 99th percentile exp(2.576 sigma) = 3.76 for the lognormal vs 0.01**(-1/a) = 10 for Pareto
    assert np.quantile(logn, 0.99) == pytest.approx(3.76, rel=0.06)
    assert np.quantile(pareto, 0.99) == pytest.approx(10.0, rel=0.15)
    assert np.quantile(pareto, 0.99) > 2 * np.quantile(logn, 0.99)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"persistent_fraction": 1.5}, "persistent_fraction"),
        ({"persistent_factor": 0.5}, "persistent_factor"),
        ({"transient_prob": -0.1}, "transient_prob"),
        ({"transient_dist": "gamma"}, "transient_dist"),
        ({"transient_scale": 0.0}, "transient_scale"),
    ],
)
def test_straggler_spec_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        StragglerSpec(**kwargs)


def test_slowdowns_reject_unknown_client():
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        StragglerModel(3, StragglerSpec(), seed=0).slowdowns(np.array([0, 3]), np.random.default_rng(0))
