"""Measured per-layer training costs of real devices, shipped with the package.

The CSV files in ``profiles/`` are the profiling tables published with "Workflow Optimization for
Parallel Split Learning" (Tirana et al., INFOCOM 2024); ``profiles/README.md`` gives their source,
licence (MIT) and known data issues. Times are milliseconds per training batch of 128 samples.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

PROFILE_DIR = Path(__file__).parent / "profiles"
PROFILED_BATCH = 128  # the profiler ran every layer at batch size 128 (see profiles/README.md)
MEASURED_MODELS = ("resnet101", "vgg19")
MEASURED_DATASETS = ("cifar10", "mnist")


@dataclass(frozen=True)
class LayerCosts:
    """Per-layer costs of one model on one dataset, for every measured device.

    Arrays are indexed [device, layer]; times in ms per batch of ``PROFILED_BATCH`` samples.
    ``activation_kb``/``weights_kb`` (KB = 1024 bytes, per batch of 128) exist for CIFAR-10 only.
    """

    model: str
    dataset: str
    devices: tuple[str, ...]
    layer_names: tuple[str, ...]
    forward_ms: np.ndarray
    backward_ms: np.ndarray
    update_ms: np.ndarray
    activation_kb: np.ndarray | None
    weights_kb: np.ndarray | None

    @property
    def num_layers(self) -> int:
        return len(self.layer_names)

    def device_row(self, device: str) -> int:
        """Index of ``device`` in the arrays; ValueError naming the measured devices otherwise."""
        if device not in self.devices:
            raise ValueError(
                f"device {device!r} was not measured for {self.model}/{self.dataset}; "
                f"measured devices: {', '.join(self.devices)}"
            )
        return self.devices.index(device)


@dataclass(frozen=True)
class MeasuredDevice:
    """One row of devices.csv: identity and full-model totals (ms per batch of 128)."""

    device_id: str
    human_name: str
    role: str
    total_ms: dict[str, float]  # key "<model>_<dataset>", e.g. "resnet101_cifar10"; missing = not measured
    notes: str


def _read_csv(name: str) -> list[dict[str, str]]:
    with open(PROFILE_DIR / name, newline="") as f:
        return list(csv.DictReader(f))


@cache
def load_layer_costs(model: str, dataset: str = "cifar10") -> LayerCosts:
    """Load the measured per-layer table of ``model`` ('resnet101'|'vgg19') on ``dataset``."""
    if model not in MEASURED_MODELS or dataset not in MEASURED_DATASETS:
        raise ValueError(
            f"no measured profile for model={model!r}, dataset={dataset!r}; "
            f"models: {MEASURED_MODELS}, datasets: {MEASURED_DATASETS}"
        )
    rows = _read_csv(f"{model}_{dataset}.csv")
    devices = tuple(dict.fromkeys(r["device"] for r in rows))
    layers = sorted({int(r["layer_index"]): r["layer_name"] for r in rows}.items())
    names = tuple(name for _, name in layers)
    shape = (len(devices), len(names))
    fwd, bwd, upd = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for r in rows:
        d, j = devices.index(r["device"]), int(r["layer_index"])
        fwd[d, j], bwd[d, j], upd[d, j] = (
            float(r["forward_ms"]),
            float(r["backward_ms"]),
            float(r["update_ms"]),
        )
    act = weights = None
    memory_file = PROFILE_DIR / f"memory_{model}_{dataset}.csv"
    if memory_file.exists():
        mem = sorted(_read_csv(memory_file.name), key=lambda r: int(r["layer_index"]))
        act = np.array([float(r["activation_kb"]) for r in mem])
        weights = np.array([float(r["weights_kb"]) for r in mem])
    for a in (fwd, bwd, upd):
        a.setflags(write=False)
    return LayerCosts(model, dataset, devices, names, fwd, bwd, upd, act, weights)


@cache
def load_measured_devices() -> dict[str, MeasuredDevice]:
    """The measured devices of devices.csv, keyed by device id."""
    out = {}
    for r in _read_csv("devices.csv"):
        totals = {
            key[: -len("_total_ms")]: float(v)
            for key, v in r.items()
            if key.endswith("_total_ms") and v not in ("", None)
        }
        out[r["device_id"]] = MeasuredDevice(r["device_id"], r["human_name"], r["role"], totals, r["notes"])
    return out
