"""Devices, network, stragglers and the analytic time model (methods §4).

``catalog``: measured and custom device profiles; ``stragglers``: seeded slowdowns; ``timing``: the
simulated time of synchronous PSL steps. (Choosing cuts per device is the split planner's job:
``psl_core.planner``.)
"""

from psl_core.devices.catalog import (
    DeviceProfile,
    calibrate_throughput,
    custom_device,
    get_device,
    load_catalog,
    resnet101_basic_forward_flops,
    vgg19_forward_flops,
)
from psl_core.devices.stragglers import StragglerModel, StragglerSpec
from psl_core.devices.timing import ClientSystem, EpochTiming, build_client_system, epoch_timing

__all__ = [
    "ClientSystem",
    "DeviceProfile",
    "EpochTiming",
    "StragglerModel",
    "StragglerSpec",
    "build_client_system",
    "calibrate_throughput",
    "custom_device",
    "epoch_timing",
    "get_device",
    "load_catalog",
    "resnet101_basic_forward_flops",
    "vgg19_forward_flops",
]
