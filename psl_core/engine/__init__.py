"""The PSL training engine (methods §1, §4): plan an epoch, train it, report through a sink."""

from psl_core.engine.checkpoint import CHECKPOINT_VERSION, CheckpointError, read_checkpoint
from psl_core.engine.dispatch import run_experiment  # noqa: E402  (after trainer: it builds on it)
from psl_core.engine.plan import EpochPlan, EpochPlanner, steps_per_epoch
from psl_core.engine.setup import (
    ExperimentSetup,
    SystemParts,
    assign_client_groups,
    build_client_system_for,
    build_experiment,
    build_stragglers,
    device_catalog,
    experiment_dataset,
    experiment_partition,
    experiment_system,
    resolve_torch_device,
)
from psl_core.engine.sinks import (
    EPOCH_FIELDS,
    NONDETERMINISTIC_FIELDS,
    STEP_FIELDS,
    FanoutSink,
    MemorySink,
    RunInfo,
    Sink,
)
from psl_core.engine.trainer import PSLTrainer
from psl_core.engine.training import RunResult, TrainingDivergedError, learning_rate

__all__ = [
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "read_checkpoint",
    "EPOCH_FIELDS",
    "NONDETERMINISTIC_FIELDS",
    "STEP_FIELDS",
    "EpochPlan",
    "EpochPlanner",
    "ExperimentSetup",
    "SystemParts",
    "FanoutSink",
    "MemorySink",
    "PSLTrainer",
    "RunInfo",
    "RunResult",
    "Sink",
    "TrainingDivergedError",
    "assign_client_groups",
    "build_client_system_for",
    "build_experiment",
    "build_stragglers",
    "device_catalog",
    "experiment_dataset",
    "experiment_partition",
    "experiment_system",
    "resolve_torch_device",
    "learning_rate",
    "run_experiment",
    "steps_per_epoch",
]
