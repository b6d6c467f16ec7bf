"""The sweep view: one row per grid point of a sweep (its seeds pooled) with final/best metrics, and
a metric laid out over two swept settings (a heat map).

Pure pandas over run records and ``Store.epoch_metric_summary`` frames (one query per metric).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from app.ui.views.labels import LABEL_PARTS, flatten_config, value_text

# Metrics the sweep table summarises: (epoch-table column, which end is better).
SWEEP_METRICS = {"test_acc": "higher", "train_loss": "lower", "test_loss": "lower"}
METRIC_TITLES = {"test_acc": "test accuracy", "train_loss": "train loss", "test_loss": "test loss"}


class SweepViewError(ValueError):
    """Bad input to the sweep view; the message says what to change."""


def swept_keys(spec: Mapping, records: Sequence) -> list[str]:
    """The grid's dotted keys, from the stored sweep spec; for a spec without a grid, the keys whose
    values differ between the sweep's runs (seed and name aside)."""
    grid = list((spec or {}).get("grid") or {})
    if grid:
        return grid
    flat = [flatten_config(r.config) for r in records]
    keys = set().union(*flat) - {"seed", "name"} if flat else set()
    return sorted(k for k in keys if len({value_text(f.get(k)) for f in flat}) > 1)


def short_key(key: str) -> str:
    """A swept key as a column title: 'sampling.batch_size' -> 'batch_size'."""
    return key.rsplit(".", 1)[-1]


def runs_table(records: Sequence, keys: list[str], summaries: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per run: id, status, seed, each swept key's value (as text) and, per metric, its final
    and best value (``summaries``: metric -> epoch_metric_summary frame)."""
    rows = []
    for record in records:
        flat = flatten_config(record.config)
        row = {"run_id": record.id, "status": record.status, "seed": record.seed}
        row.update({key: value_text(flat.get(key)) for key in keys})
        rows.append(row)
    table = pd.DataFrame(rows, columns=["run_id", "status", "seed", *keys])
    for metric, summary in summaries.items():
        better = "highest" if SWEEP_METRICS.get(metric, "higher") == "higher" else "lowest"
        by_run = summary.set_index("run_id") if len(summary) else pd.DataFrame(columns=["final", better])
        table[f"final {metric}"] = table["run_id"].map(by_run["final"]).astype(float)
        table[f"best {metric}"] = table["run_id"].map(by_run[better]).astype(float)
    return table


def groups_table(runs: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per grid point (the seeds pooled): the key values, runs, completed, then mean and
    sample std (over seeds) of every 'final …' / 'best …' column, and the run ids."""
    if not keys:
        raise SweepViewError("this sweep has no swept settings to group by")
    metrics = [c for c in runs.columns if c.startswith(("final ", "best "))]
    grouped = runs.groupby(keys, sort=False, dropna=False)
    out = grouped.agg(runs=("run_id", "size"), completed=("status", lambda s: int((s == "completed").sum())))
    for column in metrics:
        out[f"{column} mean"] = grouped[column].mean()
        out[f"{column} std"] = grouped[column].std(ddof=1)
    out["run ids"] = grouped["run_id"].agg(lambda ids: ", ".join(f"#{i}" for i in sorted(ids)))
    return out.reset_index()


def heatmap_frame(groups: pd.DataFrame, x_key: str, y_key: str, value: str) -> pd.DataFrame:
    """``value`` (a groups_table column) over the (x_key, y_key) grid, averaged over any other swept
    key: columns x, y, value, points (grid points averaged), runs."""
    for key in (x_key, y_key, value):
        if key not in groups.columns:
            raise SweepViewError(
                f"{key!r} is not a column of the sweep table; choose one of {list(groups.columns)}"
            )
    if x_key == y_key:
        raise SweepViewError("choose two different settings for the two axes")
    frame = groups.groupby([x_key, y_key], sort=False, dropna=False).agg(
        value=(value, "mean"), points=(value, "size"), runs=("runs", "sum")
    )
    return frame.reset_index().rename(columns={x_key: "x", y_key: "y"})


def bars_frame(groups: pd.DataFrame, key: str, value: str) -> pd.DataFrame:
    """One swept key: columns x (the key's value), mean, std (``value`` is a '… mean' column), runs."""
    std = value[: -len(" mean")] + " std" if value.endswith(" mean") else None
    return pd.DataFrame(
        {"x": groups[key].astype(str), "mean": groups[value], "std": groups[std] if std in groups else float("nan"),
         "runs": groups["runs"]}
    )  # fmt: skip


def axis_order(values: pd.Series) -> list[str]:
    """Sweep values in numeric order when they are numbers (as text: '32' before '128')."""
    distinct = list(dict.fromkeys(values.astype(str)))
    numbers = pd.to_numeric(pd.Series(distinct), errors="coerce")
    if numbers.notna().all():
        return [v for _, v in sorted(zip(numbers, distinct))]
    return distinct


def key_title(key: str) -> str:
    """A swept key as an axis title, with the symbol the labels use ('sampling.batch_size (B)')."""
    if key in LABEL_PARTS:
        sample = LABEL_PARTS[key]("·")
        if "=" in sample:
            return f"{key} ({sample.split('=')[0]})"
    return key


def best_point(groups: pd.DataFrame, value: str, better: str = "higher") -> pd.Series | None:
    """The grid point with the best mean ``value`` (None when no point has one)."""
    column = groups[value]
    if column.notna().sum() == 0:
        return None
    return groups.loc[column.idxmax() if better == "higher" else column.idxmin()]
