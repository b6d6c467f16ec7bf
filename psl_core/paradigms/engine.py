"""The round-based engine: sl, sflv1, sflv2, fedavg and hsfl (SPEC §6), reporting like PSL's.

One readable loop over rounds; each round is planned up front (participants, order, every batch,
every straggler factor, and from these the simulated time, traffic and energy of every step), then
walked step by step. Rows go to the same :class:`~psl_core.engine.sinks.Sink` as PSL's: per step
(with ``round`` and ``energy_j`` besides PSL's fields) and per round as an "epoch" row (test metrics
of the averaged model, cumulative energy and traffic per client). ``epoch`` counts rounds here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from psl_core.engine.evaluation import evaluate_classifier
from psl_core.engine.setup import ExperimentSetup
from psl_core.engine.sinks import RunInfo, Sink
from psl_core.engine.training import FlushPolicy, RunResult, TrainingDivergedError, learning_rate
from psl_core.paradigms.algorithms import Averaging, Batches, SequentialSL, SplitFedV2
from psl_core.paradigms.checkpoint import load_paradigm_checkpoint, save_paradigm_checkpoint
from psl_core.paradigms.schedule import RoundSchedule, RoundScheduler


@dataclass
class _State:
    round: int = 0
    step_in_round: int = 0
    global_step: int = 0
    sim_time: float = 0.0
    sim_at_round_start: float = 0.0
    wall_time: float = 0.0
    loss_sum: Any = 0.0
    correct: Any = 0
    seen: int = 0
    last_epoch_row: dict | None = None
    client_energy: list = field(default_factory=list)
    client_bytes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["loss_sum"], d["correct"] = float(self.loss_sum), int(self.correct)
        return d


class ParadigmTrainer:
    """Trains one round-based experiment; ``run`` may resume from a checkpoint of this engine."""

    def __init__(
        self,
        setup: ExperimentSetup,
        *,
        checkpoint_dir: str | Path | None = None,
        flush_every: int = 25,
        flush_interval_s: float | None = None,
    ):
        cfg = setup.config
        p = cfg.paradigm
        if p.name == "psl":
            raise ValueError(
                "paradigm 'psl' runs on PSLTrainer; ParadigmTrainer trains sl, sflv1, sflv2, fedavg, hsfl"
            )
        self.setup, self.cfg, self.name = setup, cfg, p.name
        self.device = setup.device
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.flush = FlushPolicy(flush_every, flush_interval_s)
        self.scheduler = RoundScheduler(setup)
        self.planner, self.costs = self.scheduler.planner, self.scheduler.costs
        self.sequential, self.cuts = self.scheduler.sequential, self.scheduler.cuts
        ds = setup.dataset
        self.batches = Batches(
            ds.x_train.to(self.device), ds.y_train.to(self.device), cfg.data.augment, cfg.seed
        )
        self.x_test, self.y_test = ds.x_test.to(self.device), ds.y_test.to(self.device)
        if self.sequential:
            self.algorithm: Any = SequentialSL(setup, self.batches, self.cuts)
        elif p.name == "sflv2":
            self.algorithm = SplitFedV2(setup, self.planner.m, self.batches, self.cuts)
        else:
            self.algorithm = Averaging(setup, self.planner.m, self.batches, self.planner.local_batch)
        self.round_steps = self.scheduler.round_steps
        self.total_steps = int(sum(self.round_steps))

    # ------------------------------------------------------------------ the loop
    def run(self, sink: Sink | None = None, *, resume_from: str | Path | None = None) -> RunResult:
        sink = sink or Sink()
        st = _State(client_energy=[0.0] * self.costs.num_clients, client_bytes=[0.0] * self.costs.num_clients)
        if resume_from is not None:
            st = self._restore(resume_from)
            sink.on_event(f"resumed from checkpoint at step {st.global_step} (round {st.round + 1})")
        sink.on_start(
            RunInfo(
                total_steps=self.total_steps,
                steps_per_epoch=max(self.round_steps, default=0),
                epochs=self.cfg.training.epochs,
                num_clients=self.cfg.partition.num_clients,
                num_params=sum(p.numel() for p in self.setup.model.parameters()),
                device=str(self.device),
                start_step=st.global_step,
                start_epoch=st.round,
            )
        )
        wall_start = time.perf_counter() - st.wall_time
        while st.round < self.cfg.training.epochs:
            sched = self.scheduler.schedule(st.round)
            plan = sched.plan
            index = torch.as_tensor(plan.index, device=self.device)
            if st.step_in_round == 0:
                st.sim_at_round_start = st.sim_time
                self.algorithm.begin_round(plan)
            losses = torch.zeros(sched.num_steps, device=self.device)
            lrs = np.zeros(sched.num_steps)
            pending, last_flush = st.step_in_round, time.perf_counter()
            for t in range(st.step_in_round, sched.num_steps):
                if sink.should_stop():
                    self._flush(sink, sched, losses, lrs, pending, t, st, wall_start)
                    sink.on_event("cancelled between steps", "warning")
                    return RunResult("cancelled", st.global_step, st.round, st.last_epoch_row)
                lr = learning_rate(self.cfg, st.round, st.global_step, self.total_steps)
                if self.sequential:
                    out = self.algorithm.step(
                        plan, index, int(sched.rows[t]), int(sched.local[t]), lr, st.global_step
                    )
                else:
                    out = self.algorithm.step(plan, index, t, lr, st.global_step)
                loss_sum, correct, seen = out
                losses[t] = loss_sum / max(seen, 1)
                lrs[t] = lr
                st.loss_sum += loss_sum
                st.correct += correct
                st.seen += seen
                st.global_step += 1
                st.step_in_round = t + 1
                if self.flush.due(st.step_in_round - pending, last_flush):
                    self._flush(sink, sched, losses, lrs, pending, st.step_in_round, st, wall_start)
                    pending, last_flush = st.step_in_round, time.perf_counter()
                every = self.cfg.training.checkpoint_every_steps
                if every and st.global_step % every == 0 and st.step_in_round < sched.num_steps:
                    self._flush(sink, sched, losses, lrs, pending, st.step_in_round, st, wall_start)
                    pending = st.step_in_round
                    st.sim_time = st.sim_at_round_start + float(sched.costs.elapsed[t])
                    st.wall_time = time.perf_counter() - wall_start
                    self._checkpoint(sink, st, mid_round=True)
            self._flush(sink, sched, losses, lrs, pending, sched.num_steps, st, wall_start)
            st.sim_time = st.sim_at_round_start + sched.costs.round_time
            self.algorithm.end_round(plan)
            st.wall_time = time.perf_counter() - wall_start
            self._end_round(sink, sched, st)
        return RunResult("completed", st.global_step, st.round, st.last_epoch_row)

    def _flush(
        self, sink: Sink, sched: RoundSchedule, losses, lrs, start: int, end: int, st: _State, wall_start
    ) -> None:
        if end <= start:
            return
        loss_values = losses[start:end].cpu().numpy()
        c = sched.costs
        wall = time.perf_counter() - wall_start
        first_step = st.global_step - (st.step_in_round - start)
        rows = [
            {
                "step": first_step + i + 1,
                "epoch": st.round + 1,
                "loss": float(loss_values[i]),
                "deviation": float(sched.deviation[t]),
                "batch_size": int(sched.batch_size[t]),
                "active_clients": int(sched.active[t]),
                "sim_step_time": float(c.step_time[t]),
                "sim_time": st.sim_at_round_start + float(c.elapsed[t]),
                "bytes_up": float(c.bytes_up[t]),
                "bytes_down": float(c.bytes_down[t]),
                "slowest_client": int(c.slowest_client[t]),
                "wall_time": wall,
                "lr": float(lrs[t]),
                "round": st.round + 1,
                "energy_j": float(c.energy[t]),
            }
            for i, t in enumerate(range(start, end))
        ]
        sink.on_steps(rows)
        bad = np.flatnonzero(~np.isfinite(loss_values))
        if len(bad):
            row = rows[bad[0]]
            raise TrainingDivergedError(
                f"training diverged: the loss became {row['loss']} at step {row['step']} (round {row['epoch']}); "
                "lower training.lr or paradigm.local_epochs"
            )

    def _end_round(self, sink: Sink, sched: RoundSchedule, st: _State) -> None:
        round_no = st.round + 1
        c, plan = sched.costs, sched.plan
        energy = np.asarray(st.client_energy) + c.client_energy
        nbytes = np.asarray(st.client_bytes) + c.client_bytes
        st.client_energy, st.client_bytes = energy.tolist(), nbytes.tolist()
        row: dict[str, Any] = {
            "epoch": round_no,
            "step": st.global_step,
            "train_loss": float(st.loss_sum) / max(1, st.seen),
            "train_acc": float(st.correct) / max(1, st.seen),
            "sim_time": st.sim_time,
            "wall_time": st.wall_time,
            "test_loss": None,
            "test_acc": None,
            "per_class_acc": None,
            "round": round_no,
            "participants": len(plan.clients),
            "energy_j": float(energy.sum()),
            "energy_per_client_j": float(energy.mean()),
            "bytes_per_client": float(nbytes.mean()),
        }
        if round_no % self.cfg.training.eval_every == 0 or round_no == self.cfg.training.epochs:
            model = self.algorithm.model
            row.update(evaluate_classifier(model, self.x_test, self.y_test, self.setup.dataset.num_classes))
        k = self.costs.num_clients
        taking_part = np.zeros(k, bool)
        taking_part[plan.clients] = True
        samples = np.zeros(k, dtype=np.int64)
        steps_active = np.zeros(k, dtype=np.int64)
        if self.sequential:
            np.add.at(samples, plan.clients[sched.rows], plan.count[sched.local, sched.rows])
            np.add.at(steps_active, plan.clients[sched.rows], 1)
        else:
            samples[plan.clients] = plan.count.sum(axis=0)
            steps_active[plan.clients] = (plan.count > 0).sum(axis=0)
        client_stats = [
            {
                "epoch": round_no,
                "client": i,
                "samples": int(samples[i]),
                "steps_active": int(steps_active[i]),
                "busy_time": float(c.client_busy[i]),
                "idle_time": float(c.round_time - c.client_busy[i])
                if taking_part[i]
                else float(c.round_time),
            }
            for i in range(k)
        ]
        sink.on_epoch(row, client_stats)
        st.last_epoch_row = row
        st.round += 1
        st.step_in_round = 0
        st.loss_sum, st.correct, st.seen = 0.0, 0, 0
        self._checkpoint(sink, st, mid_round=False)

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint(self, sink: Sink, st: _State, *, mid_round: bool) -> None:
        if self.checkpoint_dir is None:
            return
        path = self.checkpoint_dir / f"step{st.global_step:09d}.pt"
        state = st.to_dict() | {"paradigm": self.name, "mid_round": mid_round}
        save_paradigm_checkpoint(path, self.algorithm.tensors(mid_round), state)
        sink.on_checkpoint(str(path), st.global_step, st.round)

    def _restore(self, path: str | Path) -> _State:
        tensors, state = load_paradigm_checkpoint(path, self.device)
        if state.get("paradigm") != self.name:
            raise ValueError(
                f"checkpoint {path} is of paradigm {state.get('paradigm')!r}, this run is {self.name!r}"
            )
        mid_round = bool(state.pop("mid_round"))
        state.pop("paradigm")
        st = _State(**state)
        if mid_round:
            # The stacked copies hold the round in progress; the algorithm's round-start state is theirs.
            self.algorithm.begin_round(self.planner.plan(st.round))
        self.algorithm.load_tensors(tensors, mid_round)
        return st
