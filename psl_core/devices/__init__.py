"""Devices, network, stragglers and the analytic time model (methods §4).

``catalog``: measured and custom device profiles; ``stragglers``: seeded slowdowns; ``timing``: the
simulated time of synchronous PSL steps; ``advisor``: the per-device cut that minimises step time.
"""

from psl_core.devices.advisor import CutOption, SplitAdvice, advise_cuts
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
    "CutOption",
    "DeviceProfile",
    "EpochTiming",
    "SplitAdvice",
    "StragglerModel",
    "StragglerSpec",
    "advise_cuts",
    "build_client_system",
    "calibrate_throughput",
    "custom_device",
    "epoch_timing",
    "get_device",
    "load_catalog",
    "resnet101_basic_forward_flops",
    "vgg19_forward_flops",
]
