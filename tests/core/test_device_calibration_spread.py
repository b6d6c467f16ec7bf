"""What the catalog says about its two calibrations must be what they measure."""

from __future__ import annotations

import pytest

from psl_core.devices.catalog import calibration_spread, load_catalog


def test_stated_spread_is_the_measured_one():
    spread = calibration_spread()
    assert set(spread) == {"vm", "laptop_m1", "rpi4b", "rpi3bplus", "jetson_cpu", "jetson_gpu"}
    assert min(spread.values()) > 1.0  # the VGG-19 estimate is higher on every device
    assert min(spread.values()) == pytest.approx(1.6, abs=0.05)
    assert max(spread.values()) == pytest.approx(5.9, abs=0.05)
    doc = load_catalog.__doc__
    assert "1.6x" in doc and "5.9x" in doc and "~3x" not in doc
