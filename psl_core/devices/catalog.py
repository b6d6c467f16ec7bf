"""Device catalog: effective training throughput, default link and memory of real and custom devices.

The six measured devices are calibrated from the full-model totals of ``profiles/devices.csv``
(Tirana et al., INFOCOM 2024; source and licence in ``profiles/README.md``). Throughput is the
*effective training* rate: FLOPs of forward + backward (taken as 3 x forward FLOPs, methods §4)
per second, i.e. what the device actually achieved on the profiled model, not a datasheet peak.
Links and memory were not measured by the source: the defaults below are ASSUMED and say so in
each profile's ``source`` so the UI can show it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from psl_core.devices.measured import PROFILED_BATCH, load_measured_devices

DEVICE_ROLES = ("client", "helper", "server", "custom")
# Forward + backward of one sample costs ~3 forward passes (backward ~ 2 x forward, methods §4).
TRAIN_TO_FORWARD_FLOPS = 3.0
MBIT = 1e6
GIB = 1024**3


@dataclass(frozen=True)
class DeviceProfile:
    """One device: effective training throughput, default link, memory, and where the numbers come from."""

    id: str
    name: str
    train_flops_per_s: float  # FLOPs of forward+backward (= 3 x forward FLOPs) per second
    up_bps: float  # default uplink, bits/s
    down_bps: float  # default downlink, bits/s
    latency_s: float  # fixed per-message latency, seconds
    memory_bytes: int
    role: str  # 'client' | 'helper' | 'server' | 'custom'
    source: str  # how the numbers were obtained
    # Energy (SPEC §6): whole-device power while training, and while sending/receiving with the
    # processor otherwise idle. Defaults are assumed; each profile says where its figures come from.
    busy_watts: float = 5.0
    radio_watts: float = 2.0
    power_source: str = "ASSUMED generic edge device: 5 W training, 2 W transferring"


# ---------------------------------------------------------------- analytic FLOPs of the profiled models
def _conv_out(hw: int, kernel: int, stride: int, padding: int) -> int:
    return (hw + 2 * padding - kernel) // stride + 1


def resnet101_basic_layers(input_hw: int = 32) -> list[tuple[str, int, float]]:
    """Rows of the profiler's basic-block ResNet-101: (name, output elements per sample, forward MACs).

    Same 37 rows as ``profiles/resnet101_cifar10.csv``. Only convolutions and the fc layer carry MACs
    (BN, ReLU, pooling and the residual add are < 1 % and ignored). The first block of stages 2-4 is
    modelled as the standard transition block: 3x3/2 conv in->out, 3x3 conv out->out, 1x1/2
    projection shortcut.
    """
    rows: list[tuple[str, int, float]] = []
    hw = _conv_out(input_hw, 7, 2, 3)
    rows.append(("conv1", 64 * hw * hw, hw * hw * 64 * 3 * 49))
    hw = _conv_out(hw, 3, 2, 1)
    rows.append(("maxpool_bn_relu", 64 * hw * hw, 0.0))
    in_ch = 64
    for stage, (blocks, width) in enumerate(zip((3, 4, 23, 3), (64, 128, 256, 512)), start=1):
        for j in range(blocks):
            stride = 2 if (j == 0 and stage > 1) else 1
            out_hw = _conv_out(hw, 3, stride, 1)
            macs = out_hw * out_hw * width * 9 * (in_ch + width)
            if stride != 1 or in_ch != width:
                macs += out_hw * out_hw * width * in_ch  # 1x1 projection shortcut
            rows.append((f"layer{stage}.{j}", width * out_hw * out_hw, float(macs)))
            hw, in_ch = out_hw, width
    rows.append(("avgpool", 512, 0.0))
    rows.append(("fc", 10, 512.0 * 10))
    return rows


def vgg19_layers(input_hw: int = 32) -> list[tuple[str, int, float]]:
    """Rows of the profiler's VGG-19: (name, output elements per sample, forward MACs).

    Same 25 rows as ``profiles/vgg19_cifar10.csv``: 3x3 convs (padding 1), max-pools 2x2/2 with
    padding 1 (CIFAR: 32->17->9->5->3->2), adaptive avgpool to 7x7, fc 25088->4096->4096->10.
    """
    rows: list[tuple[str, int, float]] = []
    hw, in_ch = input_hw, 3
    for stage, (convs, width) in enumerate(zip((2, 2, 4, 4, 4), (64, 128, 256, 512, 512)), start=1):
        for j in range(1, convs + 1):
            rows.append((f"conv{stage}_{j}", width * hw * hw, float(hw * hw * width * in_ch * 9)))
            in_ch = width
        hw = _conv_out(hw, 2, 2, 1)
        rows.append((f"pool{stage}", in_ch * hw * hw, 0.0))
    rows.append(("avgpool", 512 * 49, 0.0))
    for name, fan_in, fan_out in (("fc1", 512 * 49, 4096), ("fc2", 4096, 4096), ("fc3", 4096, 10)):
        rows.append((name, fan_out, float(fan_in * fan_out)))
    return rows


def resnet101_basic_forward_flops(input_hw: int = 32) -> float:
    """Forward FLOPs per sample (2 x MACs) of the profiler's basic-block ResNet-101."""
    return 2.0 * sum(macs for _, _, macs in resnet101_basic_layers(input_hw))


def vgg19_forward_flops(input_hw: int = 32) -> float:
    """Forward FLOPs per sample (2 x MACs) of the profiler's VGG-19 (padded pools, 7x7 avgpool)."""
    return 2.0 * sum(macs for _, _, macs in vgg19_layers(input_hw))


def calibrate_throughput(
    total_ms_per_batch: float, forward_flops_per_sample: float, batch: int = PROFILED_BATCH
) -> float:
    """Effective training FLOP/s from a measured full training step: 3 * F * batch / seconds."""
    if total_ms_per_batch <= 0 or forward_flops_per_sample <= 0 or batch <= 0:
        raise ValueError(
            "calibrate_throughput needs a positive measured time, FLOPs and batch; got "
            f"total_ms_per_batch={total_ms_per_batch}, forward_flops_per_sample={forward_flops_per_sample}, "
            f"batch={batch}"
        )
    return TRAIN_TO_FORWARD_FLOPS * forward_flops_per_sample * batch / (total_ms_per_batch / 1000.0)


# ---------------------------------------------------------------- the measured catalog
# (up Mbit/s, down Mbit/s, latency ms): ASSUMED, the source measured compute only.
_ASSUMED_LINKS = {
    "vm": (1000.0, 1000.0, 1.0, "wired 1 Gbit/s data-centre link"),
    "laptop_m1": (1000.0, 1000.0, 1.0, "wired 1 Gbit/s Ethernet"),
    "rpi4b": (20.0, 50.0, 5.0, "typical 5 GHz Wi-Fi of a Raspberry Pi 4B"),
    "rpi3bplus": (10.0, 25.0, 8.0, "typical Wi-Fi of a Raspberry Pi 3B+ (slower radio)"),
    "jetson_cpu": (100.0, 100.0, 2.0, "100 Mbit/s edge LAN"),
    "jetson_gpu": (100.0, 100.0, 2.0, "100 Mbit/s edge LAN"),
}
# GiB of RAM and where that number comes from.
_MEMORY = {
    "vm": (16, "16 GB (EdgeSys'25 Table 1)"),
    "laptop_m1": (16, "16 GB (Apple M1 laptop, identification inferred in the README)"),
    "rpi4b": (4, "4 GB (EdgeSys'25 Table 1)"),
    "rpi3bplus": (
        1,
        "1 GB (EdgeSys'25: cannot train the full model on-device, so its total is a sum of partial "
        "measurements and its throughput looks optimistic next to the RPi 4B)",
    ),
    "jetson_cpu": (4, "ASSUMED 4 GB shared CPU/GPU memory (Jetson model never stated; Nano 4 GB assumed)"),
    "jetson_gpu": (4, "ASSUMED 4 GB shared CPU/GPU memory (Jetson model never stated; Nano 4 GB assumed)"),
}
# (training W, transferring W, where they come from). Transferring = idle power + the link's
# increment; the increments (Wi-Fi ~0.7 W, Ethernet ~0.3 W) are ASSUMED for every device.
_WIFI_W, _ETHERNET_W = 0.7, 0.3
_POWER = {
    "rpi4b": (
        6.4,
        2.7 + _WIFI_W,
        "training 6.4 W = measured at 400 % CPU (stress --cpu 4, 1280 mA at 5 V), idle 2.7 W (540 mA) "
        "(J. Geerling, Pi Dramble power benchmarks); Wi-Fi increment ASSUMED",
    ),
    "rpi3bplus": (
        4.9,
        1.75 + _WIFI_W,
        "training 4.9 W = maximum, idle 1.75 W (secondary source: igamesnews.com table of Raspberry Pi "
        "consumption); Wi-Fi increment ASSUMED",
    ),
    "jetson_gpu": (
        10.0,
        1.5 + _ETHERNET_W,
        "training 10 W = the Jetson Nano MAXN power budget (nvpmodel mode 0; model never stated, Nano "
        "ASSUMED); idle 1.5 W and link increment ASSUMED",
    ),
    "jetson_cpu": (
        7.0,
        1.5 + _ETHERNET_W,
        "ASSUMED 7 W for CPU-only training inside the Jetson Nano 10 W budget; idle 1.5 W ASSUMED",
    ),
    "laptop_m1": (
        24.0,
        7.0 + _ETHERNET_W,
        "training 24 W = top of the 20-24 W SoC budget AnandTech measured for the M1 (Mac mini, 2020); "
        "idle 7 W = Apple's published Mac mini M1 idle figure; link increment ASSUMED",
    ),
    "vm": (
        80.0,
        40.0 + _ETHERNET_W,
        "ASSUMED: an 8-vCPU share of a data-centre server, 80 W loaded / 40 W idle",
    ),
}
_LABEL_SWAP_NOTE = " (VGG-19 vm/laptop_m1 labels suspected swapped at the source, README issue 1)"


def load_catalog() -> dict[str, DeviceProfile]:
    """The six measured devices, throughput calibrated from their ResNet-101/CIFAR-10 totals.

    The VGG-19/CIFAR-10 based throughput is given in ``source`` as a cross-check only: large convs run
    more efficiently than the small late ResNet blocks, so the VGG-19 estimate is higher on every
    device, by 1.6x (Jetson CPU) to 5.9x (Raspberry Pi 3B+) — see :func:`calibration_spread`. Simulated
    times are therefore model-dependent estimates, not measurements of the model being trained.
    Returns a fresh dict (profiles are immutable) so callers may add their own devices to it.
    """
    return dict(_measured_catalog())


def calibration_spread() -> dict[str, float]:
    """Per measured device: VGG-19-calibrated over ResNet-101-calibrated throughput (both measured)."""
    resnet_flops, vgg_flops = resnet101_basic_forward_flops(32), vgg19_forward_flops(32)
    spread = {}
    for device_id, measured in load_measured_devices().items():
        vgg_ms = measured.total_ms.get("vgg19_cifar10")
        if vgg_ms:
            resnet = calibrate_throughput(measured.total_ms["resnet101_cifar10"], resnet_flops)
            spread[device_id] = calibrate_throughput(vgg_ms, vgg_flops) / resnet
    return spread


@lru_cache(maxsize=1)
def _measured_catalog() -> dict[str, DeviceProfile]:
    resnet_flops = resnet101_basic_forward_flops(32)
    vgg_flops = vgg19_forward_flops(32)
    catalog: dict[str, DeviceProfile] = {}
    for device_id, measured in load_measured_devices().items():
        total_ms = measured.total_ms["resnet101_cifar10"]
        speed = calibrate_throughput(total_ms, resnet_flops)
        vgg_ms = measured.total_ms.get("vgg19_cifar10")
        vgg_note = (
            f"VGG-19/CIFAR-10 cross-check {calibrate_throughput(vgg_ms, vgg_flops) / 1e9:.1f} GFLOP/s "
            f"from {vgg_ms:.1f} ms" + (_LABEL_SWAP_NOTE if device_id in ("vm", "laptop_m1") else "")
            if vgg_ms
            else "no VGG-19 measurement"
        )
        up, down, lat, link_why = _ASSUMED_LINKS[device_id]
        mem_gib, mem_why = _MEMORY[device_id]
        busy_w, radio_w, power_why = _POWER[device_id]
        source = (
            f"measured ResNet-101 (basic blocks)/CIFAR-10 training step {total_ms:.1f} ms per batch of "
            f"{PROFILED_BATCH} (Tirana et al. INFOCOM 2024) calibrated with {resnet_flops / 1e6:.1f} MFLOPs "
            f"forward/sample x3 -> {speed / 1e9:.2f} GFLOP/s; {vgg_note}. "
            f"Link: ASSUMED default {up:g}/{down:g} Mbit/s up/down, {lat:g} ms ({link_why}). "
            f"Memory: {mem_why}." + (f" Data notes: {measured.notes}." if measured.notes else "")
        )
        catalog[device_id] = DeviceProfile(
            id=device_id,
            name=measured.human_name,
            train_flops_per_s=speed,
            up_bps=up * MBIT,
            down_bps=down * MBIT,
            latency_s=lat / 1000.0,
            memory_bytes=int(mem_gib * GIB),
            role=measured.role,
            source=source,
            busy_watts=busy_w,
            radio_watts=radio_w,
            power_source=power_why,
        )
    return catalog


def custom_device(
    id: str,
    name: str,
    *,
    gflops: float,
    up_mbps: float,
    down_mbps: float,
    latency_ms: float = 5.0,
    memory_mb: float = 4096,
    busy_watts: float | None = None,
    radio_watts: float | None = None,
) -> DeviceProfile:
    """A user-defined device. ``gflops`` is its effective TRAINING throughput (fwd+bwd FLOPs/s / 1e9)."""
    if not id or not id.strip():
        raise ValueError("custom device needs a non-empty id")
    for label, value in (
        ("gflops", gflops),
        ("up_mbps", up_mbps),
        ("down_mbps", down_mbps),
        ("memory_mb", memory_mb),
        ("busy_watts", 1.0 if busy_watts is None else busy_watts),
        ("radio_watts", 1.0 if radio_watts is None else radio_watts),
    ):
        if not value > 0:
            raise ValueError(f"custom device {id!r}: {label} must be > 0, got {value}")
    if not latency_ms >= 0:
        raise ValueError(f"custom device {id!r}: latency_ms must be >= 0, got {latency_ms}")
    return DeviceProfile(
        id=id,
        name=name,
        train_flops_per_s=gflops * 1e9,
        up_bps=up_mbps * MBIT,
        down_bps=down_mbps * MBIT,
        latency_s=latency_ms / 1000.0,
        memory_bytes=int(memory_mb * 1024**2),
        role="custom",
        source="user-defined",
        **_custom_power(busy_watts, radio_watts),
    )


def _custom_power(busy_watts: float | None, radio_watts: float | None) -> dict:
    """Power fields of a custom device: the user's figures, else the ASSUMED defaults (said so)."""
    defaults = DeviceProfile.__dataclass_fields__
    busy = defaults["busy_watts"].default if busy_watts is None else busy_watts
    radio = defaults["radio_watts"].default if radio_watts is None else radio_watts
    given = [n for n, v in (("training", busy_watts), ("transferring", radio_watts)) if v is not None]
    why = "user-defined" if len(given) == 2 else f"{busy:g} W training, {radio:g} W transferring"
    if len(given) < 2:
        why += (
            " ("
            + (
                "ASSUMED defaults"
                if not given
                else f"only the {given[0]} power user-defined, the other ASSUMED"
            )
            + ")"
        )
    return {"busy_watts": float(busy), "radio_watts": float(radio), "power_source": why}


def get_device(device_id: str, custom: Iterable[DeviceProfile] = ()) -> DeviceProfile:
    """Look a device up among the measured catalog and ``custom``; ValueError listing known ids."""
    devices = load_catalog()
    devices.update({d.id: d for d in custom})
    if device_id not in devices:
        raise ValueError(f"unknown device {device_id!r}; known devices: {', '.join(sorted(devices))}")
    return devices[device_id]
