"""Named starting points for the New-experiment form: plain config dicts, validated by the tests.

The GPSL presets follow the paper's Fashion-MNIST setting: a small CNN cut after its first block,
K = 16 clients, the severe extended-Dirichlet partition (C = 2 classes per client, partition α = 3)
and a global batch B = 128; they differ only in the sampling method.
"""

from __future__ import annotations

import copy
from typing import Any

from psl_core.config import ExperimentConfig, set_path

DEMO_PRESET = "30-second demo (digits)"

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
    "Centralised reference (K=1)": _variant(
        _GPSL,
        {
            "name": "centralised reference",
            "partition": {"scheme": "iid", "num_clients": 1},
            "sampling.method": "centralised",
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
    "Centralised reference (K=1)": "One client holding everything, same B: the accuracy ceiling.",
}


def preset_config(name: str) -> dict[str, Any]:
    """The full config dict of preset ``name`` (every field filled in, JSON-ready, a fresh copy)."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return ExperimentConfig.model_validate(PRESETS[name]).model_dump(mode="json")
