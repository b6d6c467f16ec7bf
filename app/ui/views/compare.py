"""Comparing runs: aligned curves, smoothing, mean ± std across seeds, config diff, summary, CSV.

Step-level metrics (loss, batch deviation, simulated step time) come from the step table; accuracy
and test loss from the epoch table. Both are put on a common x: step, epoch (fractional for steps),
simulated time or wall time.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

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
# metric -> (table it lives in, label)
METRICS = {
    "loss": ("steps", "training loss (per step)"),
    "deviation": ("steps", "batch deviation Σ|p̂−p|"),
    "sim_step_time": ("steps", "simulated step time (s)"),
    **{name: ("steps", f"step phase: {label} (s)") for name, label in PHASE_LABELS.items()},
    "batch_size": ("steps", "realised global batch size"),
    "active_clients": ("steps", "active clients"),
    "test_acc": ("epochs", "test accuracy"),
    "train_acc": ("epochs", "train accuracy"),
    "test_loss": ("epochs", "test loss"),
    "train_loss": ("epochs", "train loss (epoch mean)"),
    "energy_per_client_j": ("epochs", "client energy per client, cumulative (J)"),
    "bytes_per_client": ("epochs", "traffic per client, cumulative (bytes)"),
}
IGNORED_FOR_SEED_GROUPS = ("seed", "name")


class CompareError(ValueError):
    """Bad input to the compare helpers; the message says what to change."""


def _check(x: str, metric: str) -> None:
    if x not in X_AXES:
        raise CompareError(f"unknown x axis {x!r}; use one of {list(X_AXES)}")
    if metric not in METRICS:
        raise CompareError(f"unknown metric {metric!r}; use one of {list(METRICS)}")


def with_x(frame: pd.DataFrame, x: str, table: str) -> pd.Series:
    """The x value of every row: step rows get a fractional epoch (epoch + k/T), epoch rows epoch + 1
    (the end of that epoch), so both kinds line up on the same epoch axis. In the round-based
    paradigms an epoch row is a round (same column), so "round" is that axis under its own name."""
    if x not in ("epoch", "round"):
        return (
            pd.to_numeric(frame[x], errors="coerce") if x in frame else pd.Series(np.nan, index=frame.index)
        )
    if table == "epochs":
        return frame["epoch"].astype(float) + 1.0
    position = frame.groupby("epoch").cumcount() + 1
    per_epoch = frame.groupby("epoch")["step"].transform("size").max() if len(frame) else 1
    return frame["epoch"].astype(float) + position / max(1, per_epoch)


def align_series(
    step_frames: dict[int, pd.DataFrame], epoch_frames: dict[int, pd.DataFrame], x: str, metric: str
) -> pd.DataFrame:
    """Long frame (run_id, x, value) of ``metric`` for every run, sorted by run then x."""
    _check(x, metric)
    table, _ = METRICS[metric]
    frames = step_frames if table == "steps" else epoch_frames
    parts = []
    for run_id, frame in frames.items():
        if frame is None or frame.empty or metric not in frame:
            continue
        part = pd.DataFrame(
            {"run_id": run_id, "x": with_x(frame, x, table).to_numpy(), "value": frame[metric].to_numpy()}
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
    """Run id -> group key; runs whose configs differ only by seed (and name) share a key."""
    groups = {}
    for run_id, config in configs.items():
        rest = {k: v for k, v in config.items() if k not in IGNORED_FOR_SEED_GROUPS}
        groups[run_id] = json.dumps(rest, sort_keys=True)
    # Short readable labels: the first run's id of each group.
    first: dict[str, int] = {}
    for run_id in sorted(groups):
        first.setdefault(groups[run_id], run_id)
    return {run_id: f"group of #{first[key]}" for run_id, key in groups.items()}


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


def flatten_config(config: dict, prefix: str = "") -> dict[str, object]:
    """Nested config as dotted keys (``sampling.lds_c``); lists are kept as JSON text."""
    flat: dict[str, object] = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_config(value, dotted + "."))
        elif isinstance(value, list):
            flat[dotted] = json.dumps(value, sort_keys=True)
        else:
            flat[dotted] = value
    return flat


def config_diff(configs: dict[str, dict], differences_only: bool = False) -> pd.DataFrame:
    """One row per dotted config key, one column per run label; ``differences_only`` keeps the keys
    whose values are not all equal (a key missing from a run counts as different)."""
    if not configs:
        return pd.DataFrame()
    flat = {label: flatten_config(config) for label, config in configs.items()}
    keys = sorted(set().union(*[f.keys() for f in flat.values()]))
    table = pd.DataFrame({label: [f.get(k, "—") for k in keys] for label, f in flat.items()}, index=keys)
    table.index.name = "setting"
    if differences_only:
        same = table.astype(str).nunique(axis=1) == 1
        table = table[~same]
    return table.astype(str)


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


def to_csv_bytes(frame: pd.DataFrame, index: bool = False) -> bytes:
    """UTF-8 CSV of a table or long series, for st.download_button."""
    return frame.to_csv(index=index).encode("utf-8")
