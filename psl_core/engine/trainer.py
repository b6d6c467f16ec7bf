"""The PSL training engine: one readable loop over pre-planned epochs (methods §1).

Per step the client part runs ONCE on the concatenated global batch — no loop over clients. With a
per-sample client normalisation this is exactly one centralised SGD step on that batch; the split
point and the number of clients change the simulated cost (plan.py), not the arithmetic. The
activations are still cut at the split (detach + hand-back of the gradient) so that the code does
what a real PSL server does: the server back-propagates once and returns the gradient of the
smashed data, the client part back-propagates that gradient.

Nothing in a step reads the device back (a GPU never waits on the host): the epoch's indices and
per-client segments are prepared one epoch ahead (prefetch.py), losses stay on the device until a
flush, evaluation sums on the device (evaluation.py) and checkpoints are written by a background
thread (checkpoint_writer.py). ``training.precision`` and ``training.compile``: precision.py.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from psl_core.data import augment_images
from psl_core.engine.checkpoint import load_checkpoint
from psl_core.engine.checkpoint_writer import CheckpointWriter
from psl_core.engine.evaluation import Evaluator, default_eval_batch
from psl_core.engine.plan import EpochPlan, EpochPlanner
from psl_core.engine.precision import Precision, compile_blocks
from psl_core.engine.prefetch import PlanPrefetcher, PreparedEpoch
from psl_core.engine.setup import ExperimentSetup
from psl_core.engine.sinks import RunInfo, Sink
from psl_core.engine.training import (
    FlushPolicy,
    RunResult,
    TrainingDivergedError,
    learning_rate,
    make_optimizer,
)
from psl_core.paradigms.costs import ClientCosts, psl_energy


class PSLTrainer:
    """Trains one experiment. ``run`` may be called with ``resume_from`` a checkpoint path."""

    def __init__(
        self,
        setup: ExperimentSetup,
        *,
        checkpoint_dir: str | Path | None = None,
        flush_every: int = 25,
        flush_interval_s: float | None = None,
    ):
        self.setup = setup
        self.cfg = setup.config
        self.model = setup.model
        self.device = setup.device
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        # Step rows go to the sink every ``flush_every`` steps, or — when ``flush_interval_s`` is set —
        # once that much wall time has passed (a store sink wants a few large writes, not many small).
        self.flush = FlushPolicy(flush_every, flush_interval_s)
        t = self.cfg.training
        self.precision = Precision(t.precision, self.device)
        self.optimizer = make_optimizer(self.model, self.cfg, fused=self.precision.fused_optimizer)
        if t.compile:
            compile_blocks(self.model)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input shapes per layer: let cuDNN pick its best
        self.planner = EpochPlanner(setup)
        ds = setup.dataset
        self.x_train, self.y_train = ds.x_train.to(self.device), ds.y_train.to(self.device)
        self.x_test, self.y_test = ds.x_test.to(self.device), ds.y_test.to(self.device)
        self.evaluator = Evaluator(
            self.x_test,
            self.y_test,
            ds.num_classes,
            batch_size=t.eval_batch_size or default_eval_batch(self.device),
            subset_size=t.eval_samples,
        )
        self.num_blocks = len(self.model.blocks)
        self.segmented_norm = self.cfg.model.client_norm == "batch"
        self.steps_per_epoch = self.planner.steps_per_epoch
        self.total_steps = self.steps_per_epoch * t.epochs
        self.client_costs = ClientCosts.from_setup(setup)
        self._energy_epoch: int | None = None

    # ------------------------------------------------------------------ one step
    def _forward_backward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m, cut, cut2, last = self.model, self.setup.cut, self.setup.cut2, self.num_blocks
        autocast = self.precision.autocast
        with autocast():
            smashed = m.forward_range(x, 0, cut)  # client part, once for the whole global batch
        at_server = smashed.detach().requires_grad_(True)
        if cut2 is None:
            with autocast():
                logits = m.forward_range(at_server, cut, last)
                loss = F.cross_entropy(logits, y)
            self.precision.backward(loss)
        else:  # U-shaped: the head and the loss run back on the client, labels never leave it
            with autocast():
                returned = m.forward_range(at_server, cut, cut2)
            at_client = returned.detach().requires_grad_(True)
            with autocast():
                logits = m.forward_range(at_client, cut2, last)
                loss = F.cross_entropy(logits, y)
            self.precision.backward(loss)
            returned.backward(at_client.grad)
        smashed.backward(at_server.grad)  # the server hands each client the gradient of its slice
        return loss.detach().float(), logits.detach()

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, *, full: bool = True, client: int | None = None) -> dict[str, Any]:
        """Test metrics of the model a client would deploy, on the whole test set or (``full=False``)
        on the live-curve subset.

        Client-part weights are the same on every client; with per-client BatchNorm the statistics are
        not, so this evaluates ONE client's model: ``client``'s, by default the last client whose
        statistics have seen data (the GPSL reference evaluates its last client's model too).
        """
        self.model.set_eval_client(client)
        return self.evaluator.evaluate(self.model, full=full, autocast=self.precision.autocast())

    # ------------------------------------------------------------------ the loop
    def run(self, sink: Sink | None = None, *, resume_from: str | Path | None = None) -> RunResult:
        sink = sink or Sink()
        st = _LoopState()
        if resume_from is not None:
            st = self._restore(resume_from)
            sink.on_event(f"resumed from checkpoint at step {st.global_step} (epoch {st.epoch + 1})")
        sink.on_start(
            RunInfo(
                total_steps=self.total_steps,
                steps_per_epoch=self.steps_per_epoch,
                epochs=self.cfg.training.epochs,
                num_clients=self.cfg.partition.num_clients,
                num_params=sum(p.numel() for p in self.model.parameters()),
                device=str(self.device),
                start_step=st.global_step,
                start_epoch=st.epoch,
            )
        )
        self.model.train()
        prefetcher = PlanPrefetcher(self.planner, self.cfg.training.epochs, self.device, self.segmented_norm)
        self.checkpoints = CheckpointWriter() if self.checkpoint_dir is not None else None
        try:
            status = self._train(sink, st, prefetcher)
            finished = self.checkpoints.wait() if self.checkpoints is not None else []
        finally:
            prefetcher.close()
            if self.checkpoints is not None:
                self.checkpoints.close()  # a failed run still lets a write in flight finish
        self._report_checkpoints(sink, finished)
        return RunResult(status, st.global_step, st.epoch, st.last_epoch_row)

    def _train(self, sink: Sink, st: _LoopState, prefetcher: PlanPrefetcher) -> str:
        """The loop over epochs and steps; returns 'completed' or 'cancelled'."""
        t_cfg = self.cfg.training
        eval_steps = t_cfg.eval_every if t_cfg.eval_every_unit == "steps" else 0
        wall_start = time.perf_counter() - st.wall_time
        while st.epoch < t_cfg.epochs:
            epoch_data = prefetcher.get(st.epoch)
            plan = epoch_data.plan
            st.planner_state_at_epoch_start = epoch_data.planner_state
            st.planner_state_at_epoch_end = epoch_data.next_planner_state
            if st.step_in_epoch == 0:
                st.sim_at_epoch_start = st.sim_time
            cum_sim = st.sim_at_epoch_start + np.cumsum(plan.timing.step_time)
            losses = torch.zeros(plan.num_steps, device=self.device)
            pending_from, last_flush = st.step_in_epoch, time.perf_counter()
            for t in range(st.step_in_epoch, plan.num_steps):
                if sink.should_stop():
                    self._flush(sink, plan, losses, pending_from, t, st, cum_sim, wall_start)
                    sink.on_event("cancelled between steps", "warning")
                    return "cancelled"
                self._step(epoch_data, t, st, losses)
                if eval_steps and st.global_step % eval_steps == 0 and st.global_step < self.total_steps:
                    st.step_evals[t] = self.evaluate(full=False)
                if self.flush.due(st.step_in_epoch - pending_from, last_flush):
                    self._flush(sink, plan, losses, pending_from, st.step_in_epoch, st, cum_sim, wall_start)
                    pending_from, last_flush = st.step_in_epoch, time.perf_counter()
                every = t_cfg.checkpoint_every_steps
                if every and st.global_step % every == 0 and st.step_in_epoch < plan.num_steps:
                    self._flush(sink, plan, losses, pending_from, st.step_in_epoch, st, cum_sim, wall_start)
                    pending_from = st.step_in_epoch
                    st.sim_time = float(cum_sim[t])
                    st.wall_time = time.perf_counter() - wall_start
                    self._checkpoint(sink, st)
            self._flush(sink, plan, losses, pending_from, plan.num_steps, st, cum_sim, wall_start)
            st.sim_time = float(cum_sim[-1]) if plan.num_steps else st.sim_time
            st.wall_time = time.perf_counter() - wall_start
            self._end_epoch(sink, plan, st)
        return "completed"

    def _step(self, epoch_data: PreparedEpoch, t: int, st: _LoopState, losses: torch.Tensor) -> None:
        """One training step: nothing here reads a tensor back to the host."""
        lr = learning_rate(self.cfg, st.epoch, st.global_step, self.total_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        rows = epoch_data.batch_rows(t)
        x, y = self.x_train[rows], self.y_train[rows]
        if self.cfg.data.augment:
            # modulo 2^64: torch takes seeds below 2^64, and any 64-bit config seed is valid
            gen = torch.Generator(device=self.device).manual_seed(
                (self.cfg.seed * 1_000_003 + st.global_step) % 2**64
            )
            x = augment_images(x, gen, crop_padding=self.cfg.data.crop_padding)
        if self.segmented_norm:
            self.model.set_client_segments(epoch_data.segments(t))
        self.optimizer.zero_grad(set_to_none=True)
        loss, logits = self._forward_backward(x, y)
        self.precision.step(self.optimizer)
        losses[t] = loss
        st.loss_sum += loss * len(y)  # tensors: no host sync per step
        st.correct += (logits.argmax(1) == y).sum()
        st.seen += len(y)
        st.global_step += 1
        st.step_in_epoch = t + 1
        st.lrs[t] = lr

    def _flush(self, sink, plan: EpochPlan, losses, start: int, end: int, st, cum_sim, wall_start) -> None:
        if end <= start:
            return
        loss_values = losses[start:end].cpu().numpy()
        totals = plan.counts.step_totals()
        active = plan.counts.active_clients()
        tm = plan.timing
        step_energy = self._energy(plan)[0]
        wall = time.perf_counter() - wall_start
        first_step = st.global_step - (st.step_in_epoch - start)
        rows = [
            {
                "step": first_step + i + 1,
                "epoch": plan.epoch + 1,
                "loss": float(loss_values[i]),
                "deviation": float(plan.deviation[t]),
                "batch_size": int(totals[t]),
                "active_clients": int(active[t]),
                "sim_step_time": float(tm.step_time[t]),
                "sim_fwd_phase": float(tm.fwd_phase[t]),
                "sim_server": float(tm.server_time[t]),
                "sim_head_phase": float(tm.head_phase[t]),
                "sim_bwd_phase": float(tm.bwd_phase[t]),
                "sim_sync": float(tm.sync_phase[t]),
                "sim_time": float(cum_sim[t]),
                "bytes_up": float(tm.bytes_up[t]),
                "bytes_down": float(tm.bytes_down[t]),
                "slowest_client": int(tm.slowest_client[t]),
                "wall_time": wall,
                "lr": float(st.lrs[t]),
                "energy_j": float(step_energy[t]),
            }
            for i, t in enumerate(range(start, end))
        ]
        for i, t in enumerate(range(start, end)):
            if t in st.step_evals:  # training.eval_every_unit = 'steps': the live-curve evaluations
                evaluation = st.step_evals.pop(t)
                rows[i].update({k: evaluation[k] for k in ("test_loss", "test_acc", "test_samples")})
        sink.on_steps(rows)
        self._report_checkpoints(sink)
        bad = np.flatnonzero(~np.isfinite(loss_values))
        if len(bad):
            row = rows[bad[0]]
            raise TrainingDivergedError(
                f"training diverged: the loss became {row['loss']} at step {row['step']} (epoch {row['epoch']}); "
                "lower training.lr, or use a sampling method with less skewed batches"
            )

    def _energy(self, plan: EpochPlan) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(energy per step, energy per client, bytes per client) of the epoch (SPEC §4, §6), cached."""
        if self._energy_epoch != plan.epoch:
            c = plan.counts
            self._energy_cache = psl_energy(
                self.client_costs, c.step, c.client, c.count, c.num_steps, plan.slowdown
            )
            self._energy_epoch = plan.epoch
        return self._energy_cache

    def _end_epoch(self, sink: Sink, plan: EpochPlan, st: _LoopState) -> None:
        epoch_no = plan.epoch + 1
        _, client_energy, client_bytes = self._energy(plan)
        st.client_energy = (np.asarray(st.client_energy or 0.0) + client_energy).tolist()
        st.client_bytes = (np.asarray(st.client_bytes or 0.0) + client_bytes).tolist()
        row: dict[str, Any] = {
            "epoch": epoch_no,
            "step": st.global_step,
            "train_loss": float(st.loss_sum) / max(1, st.seen),
            "train_acc": float(st.correct) / max(1, st.seen),
            "sim_time": st.sim_time,
            "wall_time": st.wall_time,
            "test_loss": None,
            "test_acc": None,
            "per_class_acc": None,
            "energy_j": float(np.sum(st.client_energy)),
            "energy_per_client_j": float(np.mean(st.client_energy)),
            "bytes_per_client": float(np.mean(st.client_bytes)),
        }
        t = self.cfg.training
        last = epoch_no == t.epochs
        if last or (t.eval_every_unit == "epochs" and epoch_no % t.eval_every == 0):
            row.update(self.evaluate(full=last))  # the last evaluation always sees the whole test set
        self._report_single_value_batches(sink, epoch_no)
        counts, tm = plan.counts, plan.timing
        k = counts.num_clients
        samples = counts.client_totals()
        steps_active = np.bincount(counts.client, minlength=k)
        client_stats = [
            {
                "epoch": epoch_no,
                "client": c,
                "samples": int(samples[c]),
                "steps_active": int(steps_active[c]),
                "busy_time": float(tm.busy_time[c]),
                "idle_time": float(tm.idle_time[c]),
            }
            for c in range(k)
        ]
        sink.on_epoch(row, client_stats)
        st.last_epoch_row = row
        st.epoch += 1
        st.step_in_epoch = 0
        st.loss_sum, st.correct, st.seen = 0.0, 0, 0
        st.lrs = {}
        self._checkpoint(sink, st)

    def _report_single_value_batches(self, sink: Sink, epoch_no: int) -> None:
        """Say when a server BatchNorm saw one value per channel (a one-sample global batch)."""
        layers = [m for m in self.model.modules() if getattr(m, "single_value_batches", 0)]
        if not layers:
            return
        steps = max(m.single_value_batches for m in layers)
        for m in layers:
            m.single_value_batches = 0
        sink.on_event(
            f"epoch {epoch_no}: {steps} one-sample global batch(es); the server's BatchNorm normalised "
            "them with its running statistics (a single value per channel has no batch variance)"
        )

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint(self, sink: Sink, st: _LoopState) -> None:
        """Hand a checkpoint to the writer thread (every step up to here is already flushed)."""
        if self.checkpoints is None:
            return
        # At an epoch boundary the next epoch starts from the state the finished epoch's plan left.
        planner_state = st.planner_state_at_epoch_start if st.step_in_epoch else st.planner_state_at_epoch_end
        loop_state = st.to_dict()
        if self.precision.scaler is not None:
            loop_state["grad_scaler"] = self.precision.state_dict()
        path = self.checkpoint_dir / f"step{st.global_step:09d}.pt"
        finished = self.checkpoints.submit(
            path, self.model, self.optimizer, loop_state, planner_state, step=st.global_step, epoch=st.epoch
        )
        self._report_checkpoints(sink, finished)

    def _report_checkpoints(self, sink: Sink, finished: list | None = None) -> None:
        """Report the checkpoints whose files are complete (oldest first)."""
        if finished is None:
            finished = self.checkpoints.finished() if self.checkpoints is not None else []
        for written in finished:
            sink.on_checkpoint(written.path, written.step, written.epoch)

    def _restore(self, path: str | Path) -> _LoopState:
        loop, planner_state = load_checkpoint(path, self.model, self.optimizer, self.device)
        self.planner.load_state_dict(planner_state)
        self.precision.load_state_dict(loop.pop("grad_scaler", None))
        st = _LoopState.from_dict(loop)
        return st


class _LoopState:
    """Counters of the loop that a checkpoint must carry."""

    def __init__(self):
        self.epoch = 0
        self.step_in_epoch = 0
        self.global_step = 0
        self.sim_time = 0.0
        self.sim_at_epoch_start = 0.0
        self.wall_time = 0.0
        self.loss_sum: Any = 0.0
        self.correct: Any = 0
        self.seen = 0
        self.lrs: dict[int, float] = {}
        self.last_epoch_row: dict | None = None
        # Cumulative per-client energy (J) and traffic (bytes) since the start of the run.
        self.client_energy: list[float] = []
        self.client_bytes: list[float] = []
        self.planner_state_at_epoch_start: dict | None = None
        self.planner_state_at_epoch_end: dict | None = None
        self.step_evals: dict[int, dict] = {}  # step index in the epoch → live-curve evaluation

    def to_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "sim_time": self.sim_time,
            "sim_at_epoch_start": self.sim_at_epoch_start,
            "wall_time": self.wall_time,
            "loss_sum": float(self.loss_sum),
            "correct": int(self.correct),
            "seen": self.seen,
            "last_epoch_row": self.last_epoch_row,
            "client_energy": list(self.client_energy),
            "client_bytes": list(self.client_bytes),
        }

    @classmethod
    def from_dict(cls, d: dict) -> _LoopState:
        st = cls()
        for key, value in d.items():
            setattr(st, key, value)
        return st
