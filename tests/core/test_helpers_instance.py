"""Helper-problem instances and scenario generators built from the measured profiles."""

import numpy as np
import pytest

from psl_core.devices.measured import load_layer_costs
from psl_core.helpers import (
    HelperInputError,
    HelperInstance,
    high_heterogeneity_instance,
    low_heterogeneity_instance,
    part_times,
    random_instance,
)
from psl_core.helpers.scenarios import cut_sizes_mbit, part2_memory_mb


def test_low_het_release_is_measured_rpi_part1_plus_upload():
    inst = low_heterogeneity_instance(12, 3, model="resnet101", seed=4)
    costs = load_layer_costs("resnet101", "cifar10")
    cut1, _ = cut_sizes_mbit("resnet101", (3, 33))
    bw = inst.meta["bandwidth"]
    for j, dev in enumerate(inst.client_devices):
        assert dev in ("rpi4b", "rpi3bplus")
        p1 = costs.forward_ms[costs.device_row(dev), :3].sum()
        np.testing.assert_allclose(inst.release[j], p1 + cut1 / bw[j] * 1000, rtol=1e-12)
    assert "rpi4b" in inst.client_devices  # 12 draws of a fair coin: both kinds present at this seed
    # RPi 4B part-1 forward of ResNet-101 at cut 3 is 574.3 ms (profiles/README.md)
    assert part_times("resnet101", "cifar10", "rpi4b", (3, 33)).p1_fwd == pytest.approx(574.3, abs=0.05)


def test_low_het_helper_times_are_vm_or_laptop_part2_sums():
    inst = low_heterogeneity_instance(5, 6, model="resnet101", seed=1)
    vm = part_times("resnet101", "cifar10", "vm", (3, 33))
    assert vm.p2_fwd == pytest.approx(265.7, abs=0.05) and vm.p2_bwd == pytest.approx(1302.5, abs=0.05)
    for h, dev in enumerate(inst.helper_devices):
        expect = part_times("resnet101", "cifar10", dev, (3, 33))
        np.testing.assert_allclose(inst.p_fwd[:, h], expect.p2_fwd)
        np.testing.assert_allclose(inst.p_bwd[:, h], expect.p2_bwd)


def test_transfer_uses_1024_byte_kb_and_bits():
    cut1, cut2 = cut_sizes_mbit("resnet101", (3, 33))
    assert cut1 == pytest.approx(2049.568359375 * 8 * 1024 / 1e6)  # ≈ 16.8 Mbit, not the SFL code's 1.68
    assert cut2 < cut1


def test_generators_are_seeded():
    for gen in (low_heterogeneity_instance, high_heterogeneity_instance):
        a, b, c = (
            gen(10, 3, model="vgg19", seed=7),
            gen(10, 3, model="vgg19", seed=7),
            gen(10, 3, model="vgg19", seed=8),
        )
        np.testing.assert_array_equal(a.release, b.release)
        np.testing.assert_array_equal(a.gap, b.gap)
        assert not np.array_equal(a.release, c.release)


def test_high_het_parts_lie_between_device_extremes():
    inst = high_heterogeneity_instance(200, 20, model="vgg19", seed=0)
    cut1, cut2 = cut_sizes_mbit("vgg19", (3, 24))
    p1 = inst.release - cut1 / inst.meta["bandwidth"] * 1000
    dev = [
        part_times("vgg19", "cifar10", d, (3, 24)).p1_fwd
        for d in ("rpi4b", "rpi3bplus", "jetson_cpu", "jetson_gpu")
    ]
    assert p1.min() >= min(dev) - 1e-9 and p1.max() <= max(dev) + 1e-9
    assert p1[:, 0].std() > 0.2 * (max(dev) - min(dev))  # uniform spread: std ≈ 0.29 × range
    helpers = [part_times("vgg19", "cifar10", d, (3, 24)).p2_bwd for d in ("vm", "laptop_m1")]
    assert min(helpers) - 1e-9 <= inst.p_bwd.min() and inst.p_bwd.max() <= max(helpers) + 1e-9


def test_memory_capacity_binds_and_demand_comes_from_memory_table():
    inst = low_heterogeneity_instance(20, 5, model="vgg19", seed=0)
    assert inst.mem_demand[0] == pytest.approx(part2_memory_mb("vgg19", (3, 24)))
    assert inst.mem_demand[0] > 1500  # 3 × 532 MB of weights + 137 MB of activations
    per_helper = inst.mem_capacity[0] // inst.mem_demand[0]
    assert per_helper == 6  # 1.5 × fair share of 4 clients


def test_bad_inputs_raise_with_advice():
    with pytest.raises(HelperInputError, match="cuts"):
        low_heterogeneity_instance(4, 2, model="vgg19", cuts=(3, 33))
    with pytest.raises(HelperInputError, match="memory_slack"):
        low_heterogeneity_instance(4, 2, memory_slack=0.5)
    inst = random_instance(4, 2, seed=0)
    with pytest.raises(HelperInputError, match="shape"):
        HelperInstance(
            inst.release,
            inst.p_fwd[:, :1],
            inst.gap,
            inst.p_bwd,
            inst.tail,
            inst.mem_demand,
            inst.mem_capacity,
        )
    with pytest.raises(HelperInputError, match="memory"):
        HelperInstance(
            inst.release, inst.p_fwd, inst.gap, inst.p_bwd, inst.tail, inst.mem_demand, inst.mem_capacity / 10
        )
