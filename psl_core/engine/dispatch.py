"""One entry point for every paradigm: ``paradigm.name`` picks PSL's engine or the round-based one.

Kept apart from both engines so that neither imports the other (the round-based engine reuses PSL's
learning-rate schedule, optimiser factory and result type from ``trainer``).
"""

from __future__ import annotations

from pathlib import Path

from psl_core.config import ExperimentConfig
from psl_core.engine.setup import build_experiment
from psl_core.engine.sinks import Sink
from psl_core.engine.trainer import PSLTrainer
from psl_core.engine.training import RunResult
from psl_core.paradigms.engine import ParadigmTrainer


def run_experiment(
    config: ExperimentConfig,
    sink: Sink | None = None,
    *,
    checkpoint_dir: str | Path | None = None,
    resume_from: str | Path | None = None,
    flush_every: int = 25,
    flush_interval_s: float | None = None,
) -> RunResult:
    """Build and train ``config`` in one call (the notebook entry point); ``paradigm.name`` picks the
    engine: PSL's, or the round-based one (sl, sflv1, sflv2, fedavg, hsfl)."""
    setup = build_experiment(config)
    if config.paradigm.name != "psl":
        return ParadigmTrainer(
            setup, checkpoint_dir=checkpoint_dir, flush_every=flush_every, flush_interval_s=flush_interval_s
        ).run(sink, resume_from=resume_from)
    trainer = PSLTrainer(
        setup, checkpoint_dir=checkpoint_dir, flush_every=flush_every, flush_interval_s=flush_interval_s
    )
    return trainer.run(sink, resume_from=resume_from)
