"""Named starting points for the New-experiment form: plain config dicts, validated by the tests.

The GPSL presets carry the paper's partition and batch over to Fashion-MNIST: the severe
extended-Dirichlet partition (C = 2 classes per client, partition α = 3 — this scheme's default α)
and a global batch B = 128, with a small CNN cut after its first block and K = 16 clients; they
differ only in the sampling method. (The paper itself trains ResNet-18 on CIFAR-10;
bench/reproduce_cifar.py runs that exact setting.)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from psl_core.config import ExperimentConfig, set_path

DEMO_PRESET = "30-second demo (digits)"
MIXED_PRESET = "Mixed edge devices on a shared 100 Mbit/s uplink (Fashion-MNIST, ResNet-8, K=16)"

_DEMO: dict[str, Any] = {
    "name": "demo digits",
    "seed": 0,
    # digits is 1,437 training images of 8×8: 3 epochs of 23 steps train in a few seconds on 2 cores.
    "data": {"dataset": "digits"},
    "partition": {"scheme": "dirichlet", "num_clients": 10, "alpha": 0.5},
    "model": {"arch": "cnn", "cut": 1},
    "sampling": {"method": "ugs", "batch_size": 64},
    "training": {"epochs": 3, "optimizer": "sgd", "lr": 0.05, "device": "cpu"},
    "system": {"clients": [{"device": "rpi4b", "fraction": 1.0}], "server_device": "vm"},
}

_GPSL: dict[str, Any] = {
    "name": "gpsl fashion-mnist",
    "seed": 0,
    "data": {"dataset": "fashion_mnist"},
    "partition": {"scheme": "extended_dirichlet", "num_clients": 16, "classes_per_client": 2, "alpha": 3.0},
    "model": {"arch": "cnn", "cut": 1},
    "sampling": {"method": "ugs", "batch_size": 128},
    "training": {"epochs": 20, "optimizer": "sgd", "lr": 0.05},
    "system": {"clients": [{"device": "rpi4b", "fraction": 1.0}], "server_device": "vm"},
}


def _variant(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(base)
    for path, value in overrides.items():
        set_path(config, path, value)
    return config


PRESETS: dict[str, dict[str, Any]] = {
    DEMO_PRESET: _DEMO,
    "GPSL paper — UGS (Fashion-MNIST, K=16, C=2, α=3, B=128)": _variant(_GPSL, {"name": "gpsl ugs"}),
    "GPSL paper — FLS": _variant(_GPSL, {"name": "gpsl fls", "sampling.method": "fls"}),
    "GPSL paper — FPLS": _variant(_GPSL, {"name": "gpsl fpls", "sampling.method": "fpls"}),
    "LDS with stragglers (20 % of clients 10× slower)": _variant(
        _GPSL,
        {
            "name": "lds stragglers",
            "sampling.method": "lds",
            "sampling.lds_c": 1.0,
            "sampling.lds_delta": 1.0,
            "system.stragglers": {"persistent_fraction": 0.2, "persistent_factor": 10.0},
        },
    ),
    MIXED_PRESET: {
        "name": "mixed edge devices",
        "seed": 0,
        "data": {"dataset": "fashion_mnist"},
        "partition": {
            "scheme": "extended_dirichlet",
            "num_clients": 16,
            "classes_per_client": 2,
            "alpha": 3.0,
        },
        "model": {"arch": "resnet8", "cut": 1},
        "sampling": {"method": "ugs", "batch_size": 128},
        "training": {"epochs": 5, "optimizer": "sgd", "lr": 0.05},
        "system": {
            "clients": [
                {"device": "rpi4b", "fraction": 0.25},
                {"device": "rpi3bplus", "fraction": 0.25},
                {"device": "jetson_cpu", "fraction": 0.25},
                {"device": "jetson_gpu", "fraction": 0.25},
            ],
            "server_device": "vm",
            "shared_uplink_mbps": 100.0,
        },
    },
    "Centralised reference (K=1)": _variant(
        _GPSL,
        {
            "name": "centralised reference",
            "partition": {"scheme": "iid", "num_clients": 1},
            "sampling.method": "centralised",
        },
    ),
    # Same data, model and devices as the GPSL presets; one round = one local epoch with b = B / K = 8,
    # so every paradigm processes the same samples per epoch as PSL.
    "SplitFed v1 (same setting, 1 local epoch per round)": _variant(
        _GPSL, {"name": "sflv1", "paradigm.name": "sflv1"}
    ),
    "SplitFed v2 (same setting)": _variant(_GPSL, {"name": "sflv2", "paradigm.name": "sflv2"}),
    "FedAvg (same setting, all clients every round)": _variant(
        _GPSL, {"name": "fedavg", "paradigm.name": "fedavg"}
    ),
    "Sequential split learning (same setting)": _variant(_GPSL, {"name": "sl", "paradigm.name": "sl"}),
    "Hybrid SL/FL (fastest half in FL mode, RPi 4B + Jetson)": _variant(
        _GPSL,
        {
            "name": "hsfl",
            "paradigm": {"name": "hsfl", "fl_clients": 0.5},
            "system.clients": [
                {"device": "rpi4b", "fraction": 0.5},
                {"device": "jetson_gpu", "fraction": 0.5},
            ],
        },
    ),
}

PRESET_HELP: dict[str, str] = {
    DEMO_PRESET: "Digits, small CNN, K = 10, 3 epochs: trains in seconds on a laptop CPU.",
    "GPSL paper — UGS (Fashion-MNIST, K=16, C=2, α=3, B=128)": "The GPSL paper's severe non-IID setting "
    "with uniform global sampling.",
    "GPSL paper — FLS": "Same setting, fixed local sampling (B/K per client per step).",
    "GPSL paper — FPLS": "Same setting, fixed proportional local sampling.",
    "LDS with stragglers (20 % of clients 10× slower)": "LDS (a project definition) with δ = 1 moving "
    "samples away from the 20 % persistent stragglers.",
    MIXED_PRESET: "Four device kinds (Raspberry Pi 4B and 3B+, Jetson CPU and GPU) share one uplink: "
    "a starting point for the Split planner, which picks each kind's cut and uplink share.",
    "Centralised reference (K=1)": "One client holding everything, same B: the accuracy ceiling.",
    "SplitFed v1 (same setting, 1 local epoch per round)": "Every client trains its own client-part and "
    "server-part copy in parallel; both are averaged every round (epochs count rounds).",
    "SplitFed v2 (same setting)": "Client-part copies in parallel, one server part updated client after "
    "client; client parts averaged every round.",
    "FedAvg (same setting, all clients every round)": "Every client trains the whole model locally for one "
    "epoch; the server averages the models.",
    "Sequential split learning (same setting)": "One client at a time with the server, client part handed "
    "on: no parallelism, so the longest simulated time.",
    "Hybrid SL/FL (fastest half in FL mode, RPi 4B + Jetson)": "The Jetsons train the full model (FL mode), "
    "the Raspberry Pis train through the cut (SL mode); full models averaged every round.",
}


@dataclass(frozen=True)
class SweepPreset:
    """A base config, a grid over config fields and seeds: the three inputs of the sweep builder."""

    config: dict[str, Any]
    grid: dict[str, list[Any]]
    seeds: tuple[int, ...]
    help: str


SWEEP_PRESETS: dict[str, SweepPreset] = {
    "PSL (UGS) vs SFL vs FL vs SL on severe non-IID": SweepPreset(
        _variant(_GPSL, {"name": "paradigms severe", "training.epochs": 10}),
        {"paradigm.name": ["psl", "sflv1", "sflv2", "fedavg", "sl"]},
        (0, 1, 2),
        "Fashion-MNIST, K = 16, C = 2, α = 3: PSL with uniform global sampling against SplitFed v1/v2, "
        "FedAvg and sequential split learning, 10 epochs (rounds), 3 seeds: 15 runs. Compare them on "
        "simulated time, traffic and energy per client (the Compare page's metrics).",
    ),
}


def grid_text(grid: dict[str, list[Any]]) -> str:
    """A grid as the sweep builder's text: one 'field.path: v1, v2' line per field."""
    return "\n".join(f"{path}: {', '.join(str(v) for v in values)}" for path, values in grid.items())


def sweep_preset(name: str) -> tuple[dict[str, Any], str, str]:
    """(full base config, grid text, seeds text) of sweep preset ``name``."""
    if name not in SWEEP_PRESETS:
        raise KeyError(f"unknown sweep preset {name!r}; choose one of: {', '.join(SWEEP_PRESETS)}")
    preset = SWEEP_PRESETS[name]
    config = ExperimentConfig.model_validate(preset.config).model_dump(mode="json")
    return config, grid_text(preset.grid), ", ".join(str(s) for s in preset.seeds)


def preset_config(name: str) -> dict[str, Any]:
    """The full config dict of preset ``name`` (every field filled in, JSON-ready, a fresh copy)."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return ExperimentConfig.model_validate(PRESETS[name]).model_dump(mode="json")
