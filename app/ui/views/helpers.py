"""Logic of the "Helpers & scheduling" page: scenario → instance, edits, solver runs, table, export.

Pure functions (no Streamlit); the Altair Gantt chart and the base comparison table come from
``app/helpers_charts.py``, the science from ``psl_core.helpers``.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from app.ui.charts.helpers import comparison_table, schedule_frame
from psl_core.helpers import (
    SCENARIO_GENERATORS,
    SOLVERS,
    HelperInputError,
    HelperInstance,
    SolveResult,
    check_schedule,
    solve,
)

MODELS = {"vgg19": "VGG-19", "resnet101": "ResNet-101"}
HETEROGENEITY = {
    "low": "Low (RPi clients, VM/laptop helpers)",
    "high": "High (times drawn between device extremes)",
}
#: Largest K the exact CP-SAT model is offered for (it grows as K·H optional intervals).
EXACT_MAX_CLIENTS = 10
#: Brute force enumerates every assignment and order: K ≤ 4, H ≤ 2 (the library's own limit).
BRUTE_FORCE_MAX = (4, 2)
PAPER_IMPROVEMENT_PCT = 52.3
PAPER_SETTING = "VGG-19, high heterogeneity, 20 clients, 10 helpers"

CLIENT_COLUMNS = ["release (ms)", "gap (ms)", "tail (ms)"]
HELPER_COLUMNS = ["part-2 fwd (ms)", "part-2 bwd (ms)"]


@dataclass(frozen=True)
class SolverRun:
    """One solver's result plus the independent checker's verdict."""

    result: SolveResult
    feasible: bool
    violations: tuple[str, ...]


def generate_instance(
    model: str,
    heterogeneity: str,
    num_clients: int,
    num_helpers: int,
    seed: int = 0,
    *,
    bandwidth_mbps: tuple[float, float] = (10.0, 100.0),
    memory_slack: float = 1.5,
) -> HelperInstance:
    """The paper's scenario ``heterogeneity`` ('low' | 'high') for ``model`` on CIFAR-10 (seeded)."""
    if model not in MODELS:
        raise HelperInputError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    if heterogeneity not in SCENARIO_GENERATORS:
        raise HelperInputError(f"heterogeneity must be 'low' or 'high', got {heterogeneity!r}")
    return SCENARIO_GENERATORS[heterogeneity](
        int(num_clients),
        int(num_helpers),
        model=model,
        seed=int(seed),
        bandwidth_mbps=tuple(bandwidth_mbps),
        memory_slack=float(memory_slack),
    )


def instance_tables(instance: HelperInstance) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Editable views: per client (mean over helpers of release/gap/tail, memory), per helper (mean part-2 times).

    Means hide the per-link variation; ``apply_edits`` therefore scales each row instead of overwriting it.
    """
    k, h = instance.num_clients, instance.num_helpers
    client_dev = instance.client_devices or ("",) * k
    helper_dev = instance.helper_devices or ("",) * h
    clients = pd.DataFrame(
        {
            "client": np.arange(k),
            "device": list(client_dev),
            "release (ms)": instance.release.mean(axis=1),
            "gap (ms)": instance.gap.mean(axis=1),
            "tail (ms)": instance.tail.mean(axis=1),
            "memory (MB)": instance.mem_demand,
        }
    )
    helpers = pd.DataFrame(
        {
            "helper": np.arange(h),
            "device": list(helper_dev),
            "part-2 fwd (ms)": instance.p_fwd.mean(axis=0),
            "part-2 bwd (ms)": instance.p_bwd.mean(axis=0),
            "memory capacity (MB)": instance.mem_capacity,
        }
    )
    return clients, helpers


def _rescale(
    values: np.ndarray, old_mean: np.ndarray, new_mean: np.ndarray, axis: int, label: str
) -> np.ndarray:
    """Scale each row (axis=1) or column (axis=0) of ``values`` so its mean becomes ``new_mean``."""
    new_mean = np.asarray(new_mean, dtype=float)
    if not np.all(np.isfinite(new_mean)) or np.any(new_mean < 0):
        raise HelperInputError(f"{label} must be a number >= 0 for every row; fix the edited table")
    shape = (-1, 1) if axis == 1 else (1, -1)
    old, new = old_mean.reshape(shape), new_mean.reshape(shape)
    # A row that was all zeros has nothing to scale: it becomes the new mean everywhere.
    return np.where(old > 0, values * new / np.where(old > 0, old, 1.0), np.broadcast_to(new, values.shape))


def apply_edits(instance: HelperInstance, clients: pd.DataFrame, helpers: pd.DataFrame) -> HelperInstance:
    """A new instance whose per-client and per-helper means match the edited tables.

    Raises HelperInputError when a table lost rows, holds a negative or empty value, or the memory no
    longer fits (the instance's own check).
    """
    if len(clients) != instance.num_clients or len(helpers) != instance.num_helpers:
        raise HelperInputError(
            f"keep one row per client ({instance.num_clients}) and per helper ({instance.num_helpers}); "
            "generate a new scenario to change K or H"
        )
    old_clients, old_helpers = instance_tables(instance)
    arrays = {}
    for column, name in zip(CLIENT_COLUMNS, ("release", "gap", "tail")):
        new = pd.to_numeric(clients[column], errors="coerce").to_numpy(dtype=float)
        arrays[name] = _rescale(getattr(instance, name), old_clients[column].to_numpy(), new, 1, column)
    for column, name in zip(HELPER_COLUMNS, ("p_fwd", "p_bwd")):
        new = pd.to_numeric(helpers[column], errors="coerce").to_numpy(dtype=float)
        arrays[name] = _rescale(getattr(instance, name), old_helpers[column].to_numpy(), new, 0, column)
    for column, name, frame in (
        ("memory (MB)", "mem_demand", clients),
        ("memory capacity (MB)", "mem_capacity", helpers),
    ):
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise HelperInputError(f"{column} must be a number >= 0 for every row; fix the edited table")
        arrays[name] = values
    return replace(instance, meta={**instance.meta, "edited": True}, **arrays)


def solver_availability(instance: HelperInstance) -> dict[str, str | None]:
    """For every registered solver: None if it may run on ``instance``, else why not (shown in the UI)."""
    k, h = instance.num_clients, instance.num_helpers
    out: dict[str, str | None] = {name: None for name in SOLVERS}
    if "exact" in out and k > EXACT_MAX_CLIENTS:
        out["exact"] = f"exact CP-SAT is offered for K ≤ {EXACT_MAX_CLIENTS} clients (K = {k})"
    if "brute_force" in out and (k > BRUTE_FORCE_MAX[0] or h > BRUTE_FORCE_MAX[1]):
        out["brute_force"] = f"brute force needs K ≤ {BRUTE_FORCE_MAX[0]} and H ≤ {BRUTE_FORCE_MAX[1]}"
    return out


def run_solvers(
    instance: HelperInstance, methods: list[str], *, time_limit_s: float = 5.0, seed: int = 0
) -> tuple[list[SolverRun], dict[str, str]]:
    """Run each method (anytime solvers bounded by ``time_limit_s``) and check every schedule.

    Returns the runs in the order given and, per method that could not run, the reason.
    """
    if not methods:
        raise HelperInputError("choose at least one solver")
    availability = solver_availability(instance)
    runs, skipped = [], {}
    for method in methods:
        if method not in SOLVERS:
            raise HelperInputError(f"unknown solver {method!r}; choose from {', '.join(SOLVERS)}")
        if availability[method]:
            skipped[method] = availability[method]
            continue
        try:
            result = solve(instance, method, seed=seed, time_limit_s=time_limit_s)
        except HelperInputError as exc:
            skipped[method] = str(exc)
            continue
        report = check_schedule(instance, result.schedule, result.makespan)
        runs.append(SolverRun(result, report.feasible, tuple(msg for _, msg in report.violations)))
    return runs, skipped


def results_table(runs: list[SolverRun]) -> pd.DataFrame:
    """The comparison table plus the checker's verdict and the % shorter makespan than the baseline."""
    table = comparison_table([run.result for run in runs])
    if table.empty:
        return table
    verdict = {run.result.method: run.feasible for run in runs}
    table["feasible (checked)"] = table["method"].map(verdict)
    has_baseline = (table["method"] == "baseline").any()
    table["shorter than baseline (%)"] = 100.0 * (1.0 - table["vs_baseline"]) if has_baseline else np.nan
    return table


def paper_note(table: pd.DataFrame, instance: HelperInstance) -> str:
    """Text comparing our best improvement over the baseline with the paper's 52.3 % figure."""
    setting = (
        f"{MODELS.get(instance.meta.get('model'), instance.meta.get('model', '?'))}, "
        f"{instance.meta.get('scenario', '?')} heterogeneity, {instance.num_clients} clients, "
        f"{instance.num_helpers} helpers"
    )
    paper = (
        f"Tirana et al. (INFOCOM 2024) report up to {PAPER_IMPROVEMENT_PCT} % shorter makespan than the "
        f"baseline ({PAPER_SETTING})."
    )
    if table.empty or table["shorter than baseline (%)"].isna().all():
        return paper + " Run the baseline together with other solvers to compare our numbers."
    others = table[table["method"] != "baseline"]
    if others.empty:
        return paper + " Run other solvers next to the baseline to compare our numbers."
    best = others.loc[others["makespan_s"].idxmin()]
    return (
        f"{paper} Here ({setting}, seed {instance.meta.get('seed', '?')}): {best['title']} is "
        f"{best['shorter than baseline (%)']:.1f} % shorter than our random + FCFS baseline. Our baseline "
        'draws one random assignment, so the figure varies with the seed; the paper\'s "up to" is its best case.'
    )


def export_csv(table: pd.DataFrame) -> str:
    """The comparison table as CSV text."""
    buffer = io.StringIO()
    table.to_csv(buffer, index=False)
    return buffer.getvalue()


def schedules_csv(instance: HelperInstance, runs: list[SolverRun]) -> str:
    """Every schedule's task pieces (method, helper, client, phase, start, end in ms) as CSV text."""
    frames = [schedule_frame(instance, run.result.schedule).assign(method=run.result.method) for run in runs]
    columns = ["method", "helper", "client", "phase", "start", "end"]
    table = pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)
    return table.to_csv(index=False)


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return value


def export_json(instance: HelperInstance, runs: list[SolverRun]) -> str:
    """Instance (all (K, H) arrays, ms / MB) and every schedule with its makespan, as JSON text."""
    payload = {
        "units": {"time": "ms", "memory": "MB"},
        "instance": {
            name: _jsonable(getattr(instance, name))
            for name in ("release", "p_fwd", "gap", "p_bwd", "tail", "mem_demand", "mem_capacity")
        }
        | {
            "client_devices": list(instance.client_devices),
            "helper_devices": list(instance.helper_devices),
            "meta": {k: _jsonable(v) for k, v in instance.meta.items()},
        },
        "results": [
            {
                "method": run.result.method,
                "makespan_ms": run.result.makespan,
                "solve_time_s": run.result.solve_time_s,
                "status": run.result.status,
                "gap": run.result.gap,
                "feasible": run.feasible,
                "helper": run.result.schedule.helper.tolist(),
                "fwd_start": run.result.schedule.fwd_start.tolist(),
                "bwd_pieces": [
                    [list(piece) for piece in pieces] for pieces in run.result.schedule.bwd_pieces
                ],
            }
            for run in runs
        ],
    }
    return json.dumps(payload, indent=1)
