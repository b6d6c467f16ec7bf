"""Per-step client timeline of a stored run: who was busy, who idled, who straggled.

The engine's epoch plans are a deterministic function of (config, seed, epoch, sampler state), so the
timeline is rebuilt from the stored config with ``build_experiment`` + ``EpochPlanner`` — planning only,
no training. LDS and the client streams are stateful, so epochs are replayed in order 0..e; planned
epochs are cached per run, so scrolling the window costs nothing after the first call.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from psl_core.config import parse_config
from psl_core.engine import EpochPlanner, build_experiment
from psl_core.paradigms.schedule import RoundScheduler

TIMELINE_COLUMNS = [
    "step",
    "epoch",
    "client",
    "count",
    "busy",
    "idle",
    "step_time",
    "slowdown",
    "slowest",
    "straggler",
]


class TimelineError(ValueError):
    """Bad input to the timeline; the message says what to change."""


class RunTimeline:
    """Replays a run's epoch plans (cached) and answers per-(step, client) timelines for step windows.

    Global steps are 1-based as the engine logs them: step s belongs to epoch (s - 1) // T.
    """

    def __init__(self, config: dict):
        planning = copy.deepcopy(config)
        # Planning never touches a GPU; a run trained on CUDA must still replay on a CPU-only host.
        planning.setdefault("training", {})["device"] = "cpu"
        self.config = parse_config(planning)
        self.setup = build_experiment(self.config)
        self.planner = EpochPlanner(self.setup)
        self.steps_per_epoch = self.planner.steps_per_epoch
        self.num_clients = self.config.partition.num_clients
        self.epochs = self.config.training.epochs
        self._next_epoch = 0
        self._frames: dict[int, pd.DataFrame] = {}

    @property
    def total_steps(self) -> int:
        """Steps of the whole run as configured."""
        return self.steps_per_epoch * self.epochs

    def epoch_of(self, step: int) -> int:
        """0-based epoch of the 1-based global ``step``."""
        return (int(step) - 1) // self.steps_per_epoch

    def epoch_frame(self, epoch: int) -> pd.DataFrame:
        """Dense (steps × clients) timeline of one epoch; plans epochs up to it in order if needed."""
        if not 0 <= epoch < self.epochs:
            raise TimelineError(f"epoch must be in [0, {self.epochs}) for this run, got {epoch}")
        while self._next_epoch <= epoch:
            e = self._next_epoch
            self._frames[e] = self._plan_frame(e)
            self._next_epoch += 1
        return self._frames[epoch]

    def _plan_frame(self, epoch: int) -> pd.DataFrame:
        plan = self.planner.plan(epoch)
        counts, timing = plan.counts, plan.timing
        t, k = counts.num_steps, self.num_clients
        # Dense T × K grids: inactive clients are idle the whole step.
        count = np.zeros((t, k), dtype=np.int64)
        busy = np.zeros((t, k))
        slowdown = np.ones((t, k))
        count[counts.step, counts.client] = counts.count
        busy[counts.step, counts.client] = timing.client_time
        slowdown[counts.step, counts.client] = plan.slowdown
        step_time = np.repeat(timing.step_time[:, None], k, axis=1)
        slowest = timing.slowest_client[:, None] == np.arange(k)[None, :]
        active = count > 0
        return pd.DataFrame(
            {
                "step": np.repeat(epoch * self.steps_per_epoch + np.arange(1, t + 1), k),
                "epoch": epoch,
                "client": np.tile(np.arange(k), t),
                "count": count.ravel(),
                "busy": busy.ravel(),
                "idle": (step_time - busy).ravel(),
                "step_time": step_time.ravel(),
                "slowdown": slowdown.ravel(),
                "slowest": slowest.ravel(),
                # A straggler is a client the straggler model slowed this step; the slowest client is only
                # flagged as such (without configured stragglers there are none).
                "straggler": (active & (slowdown > 1.0)).ravel(),
            },
            columns=TIMELINE_COLUMNS,
        )

    def window(self, first_step: int, num_steps: int) -> pd.DataFrame:
        """Timeline rows for global steps [first_step, first_step + num_steps) (clipped to the run)."""
        if num_steps < 1:
            raise TimelineError(f"num_steps must be >= 1, got {num_steps}")
        first = max(1, int(first_step))
        last = min(self.total_steps, first + int(num_steps) - 1)
        if first > last:
            raise TimelineError(
                f"first_step must be in [1, {self.total_steps}] for this run, got {first_step}"
            )
        frames = [self.epoch_frame(e) for e in range(self.epoch_of(first), self.epoch_of(last) + 1)]
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        return frame[(frame["step"] >= first) & (frame["step"] <= last)].reset_index(drop=True)


def default_first_step(total_steps: int, last_logged: int | None, span: int) -> int:
    """Where the timeline window opens: the ``span`` steps ending at the last logged step (all of
    them shown, not the last one alone), or step 1 before anything was logged."""
    end = min(total_steps, max(1, int(last_logged or 1)))
    return max(1, end - int(span) + 1)


class RoundTimeline(RunTimeline):
    """The same timeline for the round-based paradigms: rounds replace epochs (their step counts vary),
    planned by the engine's RoundScheduler. A client that has finished its local steps is idle."""

    def __init__(self, config: dict):
        planning = copy.deepcopy(config)
        planning.setdefault("training", {})["device"] = "cpu"
        self.config = parse_config(planning)
        self.scheduler = RoundScheduler(build_experiment(self.config))
        self.num_clients = self.config.partition.num_clients
        self.epochs = self.config.training.epochs
        self.offsets = np.r_[0, np.cumsum(self.scheduler.round_steps)]
        self._frames: dict[int, pd.DataFrame] = {}

    @property
    def total_steps(self) -> int:
        return int(self.offsets[-1])

    def epoch_of(self, step: int) -> int:
        return int(np.searchsorted(self.offsets, int(step), side="left")) - 1

    def epoch_frame(self, epoch: int) -> pd.DataFrame:
        if not 0 <= epoch < self.epochs:
            raise TimelineError(f"round must be in [0, {self.epochs}) for this run, got {epoch}")
        if epoch not in self._frames:
            self._frames[epoch] = self._round_frame(epoch)
        return self._frames[epoch]

    def _round_frame(self, round_no: int) -> pd.DataFrame:
        sched = self.scheduler.schedule(round_no)
        plan, c = sched.plan, sched.costs
        t, k = sched.num_steps, self.num_clients
        count, busy, slowdown = np.zeros((t, k), dtype=np.int64), np.zeros((t, k)), np.ones((t, k))
        if sched.rows is None:
            count[:, plan.clients] = plan.count[:t]
            busy[:, plan.clients] = c.step_busy
            slowdown[:, plan.clients] = plan.slowdown[:t]
        else:  # sl: one client per step
            steps, clients = np.arange(t), plan.clients[sched.rows]
            count[steps, clients] = plan.count[sched.local, sched.rows]
            busy[steps, clients] = c.step_busy
            slowdown[steps, clients] = plan.slowdown[sched.local, sched.rows]
        step_time = np.repeat(c.step_time[:, None], k, axis=1)
        slowest = c.slowest_client[:, None] == np.arange(k)[None, :]
        return pd.DataFrame(
            {
                "step": np.repeat(self.offsets[round_no] + np.arange(1, t + 1), k),
                "epoch": round_no,
                "client": np.tile(np.arange(k), t),
                "count": count.ravel(),
                "busy": busy.ravel(),
                "idle": np.clip(step_time - busy, 0.0, None).ravel(),
                "step_time": step_time.ravel(),
                "slowdown": slowdown.ravel(),
                "slowest": slowest.ravel(),
                "straggler": (
                    (count > 0) & (slowdown > 1.0)
                ).ravel(),  # as in RunTimeline: slowed, not slowest
            },
            columns=TIMELINE_COLUMNS,
        )


def timeline_of(config: dict) -> RunTimeline:
    """The replayed timeline of a stored run, PSL's or a round-based paradigm's."""
    if (config.get("paradigm") or {}).get("name", "psl") == "psl":
        return RunTimeline(config)
    return RoundTimeline(config)


def idle_summary(window: pd.DataFrame) -> pd.DataFrame:
    """Per client over a window: busy s, idle s, idle share, steps slowed as a straggler, steps as the slowest."""
    grouped = window.groupby("client")
    summary = pd.DataFrame(
        {
            "busy (s)": grouped["busy"].sum(),
            "idle (s)": grouped["idle"].sum(),
            "straggler steps": grouped["straggler"].sum().astype(int),
            "slowest-client steps": grouped["slowest"].sum().astype(int),
        }
    )
    total = summary["busy (s)"] + summary["idle (s)"]
    summary["idle share"] = np.where(total > 0, summary["idle (s)"] / total.where(total > 0, 1), 0.0)
    return summary.reset_index()
