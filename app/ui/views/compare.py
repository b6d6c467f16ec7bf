"""Comparing runs: aligned curves, smoothing, mean ± std across seeds, config diff, summary, CSV.

Step-level metrics (loss, batch deviation, simulated step time) come from the step table; accuracy
and test loss from the epoch table. Both are put on a common x: step, epoch (fractional for steps),
simulated time or wall time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.ui.views.labels import flatten_config, group_labels, value_text
from app.ui.views.series import downsample
from psl_core.metrics import STEP_PHASE_FIELDS

X_AXES = {
    "step": "step",
    "epoch": "epoch",
    "round": "round (round-based paradigms; an epoch for PSL)",
    "sim_time": "simulated time (s)",
    "wall_time": "wall time (s)",
}
# The phases of a synchronous step (docs/methods.md §4) in time order; they add up to the step time.
PHASE_LABELS = {
    "sim_fwd_phase": "client forward + upload",
    "sim_server": "server forward + backward",
    "sim_head_phase": "head round trip (U-shaped)",
    "sim_bwd_phase": "download + client backward",
    "sim_sync": "client-part sync",
}
assert tuple(PHASE_LABELS) == STEP_PHASE_FIELDS, "one label per logged phase, in the engine's order"
# metric -> (table it lives in, axis title with its unit)
METRICS = {
    "loss": ("steps", "training loss (cross-entropy, per step)"),
    "deviation": ("steps", "batch deviation Σ|p̂−p| (L1, 0–2)"),
    "sim_step_time": ("steps", "simulated step time (s)"),
    **{name: ("steps", f"step phase: {label} (s)") for name, label in PHASE_LABELS.items()},
    "batch_size": ("steps", "realised global batch (samples)"),
    "active_clients": ("steps", "active clients (count)"),
    "test_acc": ("epochs", "test accuracy (%)"),
    "train_acc": ("epochs", "train accuracy (%)"),
    "test_loss": ("epochs", "test loss (cross-entropy)"),
    "train_loss": ("epochs", "train loss (cross-entropy, epoch mean)"),
    "energy_per_client_j": ("epochs", "client energy per client, cumulative (J)"),
    "bytes_per_client": ("epochs", "traffic per client, cumulative (bytes)"),
}
PERCENT_METRICS = ("test_acc", "train_acc")  # stored as fractions, drawn as percentages
# Axis titles: short enough for a 220-px-high chart (a long title squeezed the plot to nothing).
AXIS_TITLES = {
    "loss": "loss (cross-entropy)",
    "deviation": "batch deviation (L1)",
    "sim_step_time": "step time (s, simulated)",
    "batch_size": "global batch (samples)",
    "active_clients": "active clients",
    "test_acc": "test accuracy (%)",
    "train_acc": "train accuracy (%)",
    "test_loss": "test loss (cross-entropy)",
    "train_loss": "train loss (cross-entropy)",
    "energy_per_client_j": "energy per client (J)",
    "bytes_per_client": "traffic per client (bytes)",
    **{name: f"{label} (s)" for name, label in PHASE_LABELS.items()},
}
assert set(AXIS_TITLES) == set(METRICS), "every metric a picker offers has a short title"
ABSENT = "(absent)"  # config_diff's cell for a key one run does not have
NOT_REACHED = "not reached"  # summary_display's cell for a target accuracy never reached


class CompareError(ValueError):
    """Bad input to the compare helpers; the message says what to change."""


def parse_run_ids(values: list[str]) -> list[int]:
    """Run ids from a URL's ``runs`` values: ``?runs=3,4`` (as documented) and ``?runs=3&runs=4``
    (as the page writes it) both give [3, 4]; anything that is not a number is skipped."""
    ids = [part.strip() for value in values for part in str(value).split(",")]
    return list(dict.fromkeys(int(part) for part in ids if part.isdigit()))


def _check(x: str, metric: str) -> None:
    if x not in X_AXES:
        raise CompareError(f"unknown x axis {x!r}; use one of {list(X_AXES)}")
    if metric not in METRICS:
        raise CompareError(f"unknown metric {metric!r}; use one of {list(METRICS)}")


def infer_steps_per_epoch(steps: pd.DataFrame | None, epochs: pd.DataFrame | None) -> float | None:
    """Steps per epoch T of one run from its rows (epochs are 1-based: epoch e ends at step e·T).

    From an epoch row (its ``step`` / its ``epoch``) when there is one, else from the last step held in
    the first epoch of the step rows when a later epoch has started; None when it cannot be known yet.
    """
    if epochs is not None and {"epoch", "step"} <= set(epochs.columns):
        done = epochs.dropna(subset=["epoch", "step"])
        done = done[done["epoch"] > 0]
        if len(done):
            return float(done["step"].iloc[0]) / float(done["epoch"].iloc[0])
    if steps is not None and {"epoch", "step"} <= set(steps.columns) and len(steps):
        first = steps["epoch"].min()
        if pd.notna(first) and first > 0 and (steps["epoch"] > first).any():
            return float(steps.loc[steps["epoch"] == first, "step"].max()) / float(first)
    return None


def with_x(frame: pd.DataFrame, x: str, table: str, steps_per_epoch: float | None = None) -> pd.Series:
    """The x value of every row. On the epoch axis (epochs are 1-based, as the engine logs them) an
    epoch row sits at its epoch number (the end of that epoch) and step s at s / T, so the accuracy of
    epoch 1 and the last step of epoch 1 share x = 1. Without T (the first epoch still running) a step
    row sits at its position within its epoch. In the round-based paradigms an epoch row is a round
    (same column), so "round" is that axis under its own name."""
    if x not in ("epoch", "round"):
        return (
            pd.to_numeric(frame[x], errors="coerce") if x in frame else pd.Series(np.nan, index=frame.index)
        )
    if table == "epochs":
        return frame["epoch"].astype(float)
    if steps_per_epoch:
        return frame["step"].astype(float) / float(steps_per_epoch)
    position = frame.groupby("epoch").cumcount() + 1
    per_epoch = frame.groupby("epoch")["step"].transform("size").max() if len(frame) else 1
    return frame["epoch"].astype(float) - 1.0 + position / max(1, per_epoch)


def align_series(
    step_frames: dict[int, pd.DataFrame],
    epoch_frames: dict[int, pd.DataFrame],
    x: str,
    metric: str,
    steps_per_epoch: dict[int, float | None] | None = None,
) -> pd.DataFrame:
    """Long frame (run_id, x, value) of ``metric`` for every run, sorted by run then x.

    ``steps_per_epoch`` (run id -> T, e.g. the run's total steps / epochs) places step rows on the
    epoch axis exactly; runs missing from it get T from their own rows (infer_steps_per_epoch)."""
    _check(x, metric)
    table, _ = METRICS[metric]
    frames = step_frames if table == "steps" else epoch_frames
    hints = steps_per_epoch or {}
    parts = []
    for run_id, frame in frames.items():
        if frame is None or frame.empty or metric not in frame:
            continue
        per_epoch = hints.get(run_id) or infer_steps_per_epoch(
            step_frames.get(run_id), epoch_frames.get(run_id)
        )
        part = pd.DataFrame(
            {
                "run_id": run_id,
                "x": with_x(frame, x, table, per_epoch).to_numpy(),
                "value": frame[metric].to_numpy(),
            }
        )
        parts.append(part.dropna())
    if not parts:
        return pd.DataFrame({"run_id": pd.Series(dtype=int), "x": [], "value": []})
    return pd.concat(parts, ignore_index=True).sort_values(["run_id", "x"], kind="stable")


def step_phases(steps: pd.DataFrame, x: str, max_points: int | None = None) -> pd.DataFrame:
    """Long frame (x, phase, seconds, order) of every logged step's phases, for a stacked chart.

    ``max_points`` keeps at most that many steps (each kept step keeps all its phases, so the stack
    still adds up to the step time). Empty when the run logged no phases (runs from before they were
    logged) or only zeros (runs with helpers, whose step is the helpers' makespan).
    """
    if x not in X_AXES:
        raise CompareError(f"unknown x axis {x!r}; use one of {list(X_AXES)}")
    empty = pd.DataFrame({"x": [], "phase": [], "seconds": [], "order": []})
    if steps is None or steps.empty or not set(STEP_PHASE_FIELDS) <= set(steps.columns):
        return empty
    wide = steps[list(STEP_PHASE_FIELDS)].apply(pd.to_numeric, errors="coerce")
    wide.insert(0, "x", with_x(steps, x, "steps").to_numpy())
    wide = wide.dropna().sort_values("x", kind="stable")
    # With helpers the step is the helpers' makespan and its phases are logged as 0: nothing to stack.
    wide = wide[wide[list(STEP_PHASE_FIELDS)].sum(axis=1) > 0]
    if wide.empty:
        return empty
    if max_points is not None:
        wide = downsample(wide, "x", max_points, list(STEP_PHASE_FIELDS))
    long = wide.melt(id_vars="x", var_name="field", value_name="seconds")
    long["order"] = long["field"].map({name: i for i, name in enumerate(STEP_PHASE_FIELDS)})
    long["phase"] = long["field"].map(PHASE_LABELS)
    return long[["x", "phase", "seconds", "order"]].sort_values(
        ["x", "order"], kind="stable", ignore_index=True
    )


def smooth(long: pd.DataFrame, weight: float) -> pd.DataFrame:
    """TensorBoard-style EMA per run (``weight`` in [0, 1); 0 = raw), bias-corrected at the start."""
    if not 0 <= weight < 1:
        raise CompareError(f"smoothing weight must be in [0, 1), got {weight}")
    if weight == 0 or long.empty:
        return long
    out = long.copy()
    out["value"] = out.groupby("run_id")["value"].transform(
        lambda v: v.ewm(alpha=1 - weight, adjust=True).mean()
    )
    return out


def seed_groups(configs: dict[int, dict]) -> dict[int, str]:
    """Run id -> the label of its seed group (runs whose configs differ only by seed and name share
    one), named by what differs between the groups: see app.ui.views.labels.group_labels."""
    return group_labels(configs)


def mean_band(long: pd.DataFrame, groups: dict[int, str], grid_points: int = 500) -> pd.DataFrame:
    """Mean ± std across the runs of each group, on a common x grid over their overlapping range.

    Each run is linearly interpolated onto the grid (seeds' sim/wall times never coincide exactly).
    Columns: group, x, mean, std, lower, upper, runs.
    """
    parts = []
    for label, members in pd.Series(groups).groupby(pd.Series(groups)):
        runs = [r for r in members.index if r in set(long["run_id"])]
        if not runs:
            continue
        per_run = [long[long["run_id"] == r] for r in runs]
        lo = max(p["x"].min() for p in per_run)
        hi = min(p["x"].max() for p in per_run)
        if not np.isfinite(lo) or hi < lo:
            continue
        distinct = np.unique(np.concatenate([p["x"].to_numpy() for p in per_run]))
        distinct = distinct[(distinct >= lo) & (distinct <= hi)]
        grid = distinct if len(distinct) <= grid_points else np.linspace(lo, hi, grid_points)
        values = np.vstack([np.interp(grid, p["x"].to_numpy(), p["value"].to_numpy()) for p in per_run])
        mean, std = values.mean(axis=0), values.std(axis=0, ddof=1) if len(runs) > 1 else np.zeros(len(grid))
        parts.append(
            pd.DataFrame(
                {
                    "group": label,
                    "x": grid,
                    "mean": mean,
                    "std": std,
                    "lower": mean - std,
                    "upper": mean + std,
                    "runs": len(runs),
                }
            )
        )
    columns = ["group", "x", "mean", "std", "lower", "upper", "runs"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def config_diff(configs: dict[str, dict], differences_only: bool = False) -> pd.DataFrame:
    """One row per dotted config key, one column per run label, values as text (None reads 'none', a
    key a run lacks reads '(absent)'); ``differences_only`` keeps the keys whose values are not all
    equal, compared as that text (so None in every run is equal, not 'missing')."""
    if not configs:
        return pd.DataFrame()
    flat = {label: flatten_config(config) for label, config in configs.items()}
    keys = sorted(set().union(*[f.keys() for f in flat.values()]))
    table = pd.DataFrame(
        {label: [value_text(f[k]) if k in f else ABSENT for k in keys] for label, f in flat.items()},
        index=pd.Index(keys, name="setting"),
        dtype=object,
    )
    if differences_only:
        table = table[[len(set(row)) > 1 for row in table.itertuples(index=False)]]
    return table


def time_to_target(steps: pd.DataFrame, epochs: pd.DataFrame, target: float) -> dict[str, float | None]:
    """First epoch-end where test accuracy ≥ ``target``: its step, simulated s and wall s (None if never)."""
    none = {"steps to target": None, "sim s to target": None, "wall s to target": None}
    if epochs is None or epochs.empty or "test_acc" not in epochs:
        return none
    hit = epochs[epochs["test_acc"] >= target]
    if hit.empty:
        return none
    row = hit.iloc[0]

    def value(name: str) -> float | None:
        return float(row[name]) if name in row and pd.notna(row[name]) else None

    return {
        "steps to target": value("step"),
        "sim s to target": value("sim_time"),
        "wall s to target": value("wall_time"),
    }


def _last(epochs: pd.DataFrame, column: str, scale: float = 1.0) -> float | None:
    """The last logged value of a cumulative epoch metric (None for runs from before it existed)."""
    if column not in epochs or not epochs[column].notna().any():
        return None
    return float(epochs[column].dropna().iloc[-1]) * scale


def summary_table(
    labels: dict[int, str],
    step_frames: dict[int, pd.DataFrame],
    epoch_frames: dict[int, pd.DataFrame],
    target_acc: float,
) -> pd.DataFrame:
    """Per run: steps, final/best test accuracy, final loss, total simulated/wall time, traffic and
    client energy per client, time to target."""
    rows = []
    for run_id, label in labels.items():
        steps = step_frames.get(run_id, pd.DataFrame())
        epochs = epoch_frames.get(run_id, pd.DataFrame())
        acc = epochs["test_acc"].dropna() if "test_acc" in epochs else pd.Series(dtype=float)
        row = {
            "run": label,
            "run_id": run_id,
            "steps": int(steps["step"].max()) if "step" in steps and len(steps) else 0,
            "final test acc": float(acc.iloc[-1]) if len(acc) else None,
            "best test acc": float(acc.max()) if len(acc) else None,
            "final loss": float(steps["loss"].dropna().iloc[-1])
            if "loss" in steps and steps["loss"].notna().any()
            else None,
            "sim time (s)": float(steps["sim_time"].max()) if "sim_time" in steps and len(steps) else None,
            "wall time (s)": float(steps["wall_time"].max()) if "wall_time" in steps and len(steps) else None,
            "MB per client": _last(epochs, "bytes_per_client", 1e-6),
            "J per client": _last(epochs, "energy_per_client_j"),
        }
        row.update(time_to_target(steps, epochs, target_acc))
        rows.append(row)
    return pd.DataFrame(rows)


TARGET_COLUMNS = ("steps to target", "sim s to target", "wall s to target")


# Measured only by some runs (traffic and energy need a device model that logs them): a column that no
# shown run measured is left out instead of a row of "None" cells.
OPTIONAL_COLUMNS = ("MB per client", "J per client")


def summary_display(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as a page shows it: a target never reached reads 'not reached' (it showed 'None');
    traffic and energy columns no shown run measured are left out; the other columns stay numbers.
    The CSV keeps every column, the numbers and empty cells."""
    empty = [c for c in OPTIONAL_COLUMNS if c in summary and summary[c].isna().all()]
    shown = summary.drop(columns=empty)
    for column in TARGET_COLUMNS:
        if column in shown:
            whole = column.startswith("steps")
            shown[column] = [
                NOT_REACHED if pd.isna(v) else (f"{int(v):,}" if whole else f"{float(v):.4g}")
                for v in shown[column]
            ]
    return shown


def to_csv_bytes(frame: pd.DataFrame, index: bool = False) -> bytes:
    """UTF-8 CSV of a table or long series, for st.download_button."""
    return frame.to_csv(index=index).encode("utf-8")
