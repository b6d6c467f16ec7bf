"""A round planned up front: its steps in execution order, their costs, deviations and batch sizes.

Planning only (no model, no training), so the engine and the monitor's client timeline share it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psl_core.engine.setup import ExperimentSetup
from psl_core.paradigms.costs import ClientCosts, RoundCosts, round_costs, sequential_costs
from psl_core.paradigms.modes import fl_client_mask
from psl_core.paradigms.plan import RoundPlan, RoundPlanner, default_local_batch, sequential_order
from psl_core.sampling import batch_deviation, label_distribution


@dataclass
class RoundSchedule:
    """A planned round: its steps in execution order and their costs."""

    plan: RoundPlan
    rows: np.ndarray | None  # sl: the row of each step (None: stacked steps)
    local: np.ndarray | None  # sl: the local step of each step
    costs: RoundCosts
    deviation: np.ndarray
    batch_size: np.ndarray
    active: np.ndarray

    @property
    def num_steps(self) -> int:
        return len(self.costs.step_time)


class RoundScheduler:
    """Plans every round of a round-based experiment (sl, sflv1, sflv2, fedavg, hsfl)."""

    def __init__(self, setup: ExperimentSetup):
        cfg = setup.config
        p = cfg.paradigm
        self.name = p.name
        k = cfg.partition.num_clients
        self.costs = ClientCosts.from_setup(setup)
        self.cuts = np.array([c.cut for c in setup.client_cut_summaries])
        self.labels = setup.dataset.y_train.numpy()
        self.class_dist = label_distribution(self.labels, setup.dataset.num_classes)
        self.sequential = p.name == "sl"
        self.max_steps = cfg.training.max_steps_per_epoch
        self.planner = RoundPlanner(
            setup.partition.client_indices,
            seed=cfg.seed,
            local_batch=p.local_batch or default_local_batch(cfg.sampling.batch_size, k),
            local_epochs=p.local_epochs,
            client_fraction=p.client_fraction,
            stragglers=setup.stragglers,
            row_key=self.cuts if p.name == "sflv2" else None,
            max_steps=None if self.sequential else self.max_steps,
        )
        self.fl_mask = fl_client_mask(p.fl_clients, setup) if p.name == "hsfl" else np.zeros(k, bool)
        self.round_steps = [self._steps_in_round(r) for r in range(cfg.training.epochs)]

    def _steps_in_round(self, r: int) -> int:
        steps = self.planner.steps_in_round(r, sequential=self.sequential)
        return min(steps, self.max_steps) if self.max_steps else steps

    def schedule(self, round_no: int) -> RoundSchedule:
        plan = self.planner.plan(round_no)
        if self.sequential:
            rows, local = sequential_order(plan)
            if self.max_steps:
                rows, local = rows[: self.max_steps], local[: self.max_steps]
            count = plan.count[local, rows]
            costs = sequential_costs(self.costs, plan.clients[rows], count, plan.slowdown[local, rows])
            index, active = plan.index[local, rows], np.ones(len(rows), dtype=np.int64)
        else:
            rows = local = None
            costs = round_costs(
                self.costs,
                self.name,
                plan.clients,
                plan.count,
                plan.slowdown,
                fl_rows=self.fl_mask[plan.clients],
            )
            index, active = plan.index.reshape(plan.num_steps, -1), (plan.count > 0).sum(axis=1)
        valid = index >= 0
        sizes = valid.sum(axis=1)
        offsets = np.r_[0, np.cumsum(sizes)]
        deviation = batch_deviation(self.labels[index[valid]], offsets, self.class_dist)
        return RoundSchedule(plan, rows, local, costs, deviation, sizes, active)
