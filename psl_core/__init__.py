"""PSL Studio's science as a library: configs, data, models, schedules, the time model and the engine.

Notebook use (no database, no Streamlit)::

    from psl_core import ExperimentConfig, MemorySink, run_experiment, validate_config

    config, warnings = validate_config({"data": {"dataset": "digits"}, "training": {"epochs": 2}})
    sink = MemorySink()
    result = run_experiment(config, sink)
    print(result.status, sink.epochs[-1]["test_acc"])

Names are loaded on first use, so ``import psl_core.config`` stays light (no torch).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ExperimentConfig": "psl_core.config",
    "ConfigError": "psl_core.config",
    "parse_config": "psl_core.config",
    "apply_overrides": "psl_core.config",
    "load_config_file": "psl_core.config_io",
    "check": "psl_core.validation",
    "validate_config": "psl_core.validation",
    "Problem": "psl_core.validation",
    "run_experiment": "psl_core.engine",
    "build_experiment": "psl_core.engine",
    "PSLTrainer": "psl_core.engine",
    "RunResult": "psl_core.engine",
    "RunInfo": "psl_core.engine",
    "Sink": "psl_core.engine",
    "MemorySink": "psl_core.engine",
    "FanoutSink": "psl_core.engine",
    "TrainingDivergedError": "psl_core.engine",
    "configure_data_paths": "psl_core.data",
    "sweep_configs": "psl_core.sweep",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ imports lazily
    from psl_core.config import ConfigError, ExperimentConfig, apply_overrides, parse_config  # noqa: F401
    from psl_core.config_io import load_config_file  # noqa: F401
    from psl_core.data import configure_data_paths  # noqa: F401
    from psl_core.engine import (  # noqa: F401
        FanoutSink,
        MemorySink,
        PSLTrainer,
        RunInfo,
        RunResult,
        Sink,
        TrainingDivergedError,
        build_experiment,
        run_experiment,
    )
    from psl_core.sweep import sweep_configs  # noqa: F401
    from psl_core.validation import Problem, check, validate_config  # noqa: F401


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'psl_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
