"""The Runs page's table: one row per stored run with its key settings and accuracy, plus filters.

Pure functions over :class:`storage.RunRecord` lists and pandas frames, so the page stays thin and the
filters are unit-testable without Streamlit.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

RUN_TABLE_COLUMNS = [
    "id",
    "name",
    "status",
    "progress",
    "dataset",
    "K",
    "partition",
    "method",
    "arch/cut",
    "final test acc",
    "best test acc",
    "created",
    "tags",
    "sweep",
]


class RunTableError(ValueError):
    """Bad input to the run-table helpers; the message says what to change."""


def describe_partition(partition: dict) -> str:
    """Partition scheme with its own parameter (the partition's α, not LDS's c or δ)."""
    scheme = partition.get("scheme", "?")
    if scheme in ("dirichlet", "extended_dirichlet"):
        extra = f"α={partition.get('alpha')}"
        if scheme == "extended_dirichlet":
            extra = f"C={partition.get('classes_per_client')}, {extra}"
        return f"{scheme} ({extra})"
    if scheme == "pathological":
        return f"{scheme} ({partition.get('classes_per_client')} classes)"
    if scheme == "shards":
        return f"{scheme} ({partition.get('shards_per_client')}/client)"
    return str(scheme)


def describe_method(sampling: dict, paradigm: dict | None = None) -> str:
    """Sampling method with B; LDS also shows its c and δ (a project definition, see methods §2).
    A round-based paradigm shows instead its name, local epochs E, local batch b and client fraction."""
    if paradigm and paradigm.get("name", "psl") != "psl":
        text = f"{str(paradigm['name']).upper()} E={paradigm.get('local_epochs', 1)} b={paradigm.get('local_batch') or 'B/K'}"
        if paradigm.get("client_fraction", 1.0) != 1.0:
            text += f" C={paradigm['client_fraction']:g}"
        return text
    method = str(sampling.get("method", "?"))
    text = f"{method.upper()} B={sampling.get('batch_size')}"
    if method == "lds":
        text += f" c={sampling.get('lds_c')} δ={sampling.get('lds_delta')}"
    if sampling.get("per_client_batch"):
        text += f" b={sampling.get('per_client_batch')}"
    return text


def describe_model(model: dict) -> str:
    """Architecture and cut(s), e.g. ``cnn/1`` or ``resnet/2-5`` for U-shaped."""
    text = f"{model.get('arch', '?')}/{model.get('cut')}"
    if model.get("cut2") is not None:
        text += f"-{model.get('cut2')}"
    return text


def accuracy_summary(epoch_metrics: pd.DataFrame) -> tuple[float | None, float | None]:
    """(final, best) test accuracy of one run's epoch metrics; None where nothing was evaluated."""
    if (
        epoch_metrics is None
        or "test_acc" not in epoch_metrics
        or epoch_metrics["test_acc"].notna().sum() == 0
    ):
        return None, None
    acc = epoch_metrics["test_acc"].dropna()
    return float(acc.iloc[-1]), float(acc.max())


def runs_frame(
    records: Iterable, accuracies: dict[int, tuple[float | None, float | None]] | None = None
) -> pd.DataFrame:
    """One row per run (columns RUN_TABLE_COLUMNS); ``accuracies`` maps run id -> (final, best) test acc."""
    accuracies = accuracies or {}
    rows = []
    for record in records:
        config = record.config or {}
        final, best = accuracies.get(record.id, (None, None))
        rows.append(
            {
                "id": record.id,
                "name": record.name,
                "status": record.status,
                "progress": float(record.progress or 0.0),
                "dataset": config.get("data", {}).get("dataset", "?"),
                "K": config.get("partition", {}).get("num_clients"),
                "partition": describe_partition(config.get("partition", {})),
                "method": describe_method(config.get("sampling", {}), config.get("paradigm")),
                "arch/cut": describe_model(config.get("model", {})),
                "final test acc": final,
                "best test acc": best,
                "created": pd.Timestamp(record.created_at).tz_convert(None) if record.created_at else pd.NaT,
                "tags": ", ".join(record.tags),
                "sweep": record.sweep_id,
            }
        )
    frame = pd.DataFrame(rows, columns=RUN_TABLE_COLUMNS)
    for column in ("final test acc", "best test acc"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def filter_runs(
    frame: pd.DataFrame,
    *,
    statuses: Iterable[str] | None = None,
    tag: str | None = None,
    text: str | None = None,
) -> pd.DataFrame:
    """Rows whose status is in ``statuses`` (all if empty), that carry ``tag`` exactly, and whose
    name, tags, dataset, partition, method or model contain ``text`` (case-insensitive)."""
    missing = {"status", "tags", "name"} - set(frame.columns)
    if missing:
        raise RunTableError(f"filter_runs needs a runs_frame() table; missing columns {sorted(missing)}")
    keep = pd.Series(True, index=frame.index)
    statuses = list(statuses or [])
    if statuses:
        keep &= frame["status"].isin(statuses)
    if tag:
        tag = tag.strip()
        keep &= frame["tags"].map(lambda tags: tag in [t.strip() for t in str(tags).split(",")])
    if text and text.strip():
        needle = text.strip().lower()
        searchable = ["name", "tags", "dataset", "partition", "method", "arch/cut"]
        haystack = frame[[c for c in searchable if c in frame.columns]].astype(str).agg(" ".join, axis=1)
        keep &= haystack.str.lower().str.contains(needle, regex=False)
    return frame[keep]


def all_tags(frame: pd.DataFrame) -> list[str]:
    """Every distinct tag in the table, sorted."""
    tags = {t.strip() for joined in frame["tags"] for t in str(joined).split(",") if t.strip()}
    return sorted(tags)


def run_label(row_id: int, name: str, status: str | None = None) -> str:
    """How a run is named in pickers: ``#12 name (running)``."""
    return f"#{row_id} {name}" + (f" ({status})" if status else "")


def accuracy_from_summary(summary: pd.DataFrame) -> dict[int, tuple[float | None, float | None]]:
    """Run id -> (final, best) test accuracy from ``Store.epoch_metric_summary("test_acc")`` — one
    query for every run, instead of one metric query per run."""
    if summary is None or summary.empty:
        return {}
    return {
        int(run_id): (float(final), float(best))
        for run_id, final, best in summary[["run_id", "final", "highest"]].itertuples(index=False)
    }


def steps_per_epoch_hint(record) -> float | None:  # noqa: ANN001 - a storage.RunRecord
    """The run's steps per epoch T (total steps / epochs), once its worker has planned it; None before."""
    epochs = ((record.config or {}).get("training") or {}).get("epochs")
    if record.total_steps and epochs:
        return record.total_steps / epochs
    return None
