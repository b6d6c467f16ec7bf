"""Sinks of the command line: CSV files in an output folder and a progress bar on the terminal."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any, TextIO

from app.formatting import format_duration
from psl_core.engine import EPOCH_FIELDS, STEP_FIELDS, Sink

CLIENT_FIELDS = ("epoch", "client", "samples", "steps_active", "busy_time", "idle_time")


class CsvSink(Sink):
    """Writes steps.csv, epochs.csv, clients.csv and events.log into ``out_dir`` as training goes."""

    def __init__(self, out_dir: str | Path):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, tuple[TextIO, csv.DictWriter]] = {}

    def _writer(self, name: str, fields: tuple[str, ...]) -> csv.DictWriter:
        if name not in self._files:
            f = open(self.out_dir / name, "w", newline="")
            w = csv.DictWriter(f, fieldnames=list(fields), extrasaction="ignore")
            w.writeheader()
            self._files[name] = (f, w)
        return self._files[name][1]

    def on_steps(self, rows):
        w = self._writer("steps.csv", STEP_FIELDS)
        w.writerows(rows)
        self._files["steps.csv"][0].flush()

    def on_epoch(self, row, client_stats):
        flat = dict(row)
        if flat.get("per_class_acc") is not None:
            flat["per_class_acc"] = " ".join(f"{a:.4f}" for a in flat["per_class_acc"])
        self._writer("epochs.csv", EPOCH_FIELDS).writerow(flat)
        self._writer("clients.csv", CLIENT_FIELDS).writerows(client_stats)
        for f, _ in self._files.values():
            f.flush()

    def on_event(self, message, level="info"):
        with open(self.out_dir / "events.log", "a") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {level}: {message}\n")

    def close(self) -> None:
        for f, _ in self._files.values():
            f.close()
        self._files.clear()


class RichProgressSink(Sink):
    """A progress bar (steps, epoch, ETA, last loss, test accuracy) drawn with ``rich`` on a terminal.

    The caller only attaches it when stdout is a terminal, so piped output never gets redraw frames."""

    def __init__(self, console=None):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("loss {task.fields[loss]}  {task.fields[acc]}"),
            console=console or Console(stderr=True),
            transient=False,
        )
        self.task = None
        self.last_acc = ""

    def on_start(self, info):
        self.progress.start()
        self.task = self.progress.add_task(
            "train", total=info.total_steps, completed=info.start_step, epoch=f"{info.start_epoch + 1}/{info.epochs}",
            loss="-", acc="",
        )  # fmt: skip
        self.epochs = info.epochs

    def on_steps(self, rows):
        last = rows[-1]
        self.progress.update(
            self.task,
            completed=last["step"],
            epoch=f"{last['epoch']}/{self.epochs}",
            loss=f"{last['loss']:.4f}",
        )

    def on_epoch(self, row, client_stats):
        if row.get("test_acc") is not None:
            self.progress.update(self.task, acc=f"test acc {row['test_acc']:.3f}")

    def finish(self) -> None:
        self.progress.stop()


def summary_rows(epochs: list[dict[str, Any]], steps_total: int, sim_time: float) -> list[tuple[str, str]]:
    """The end-of-run summary table as (metric, value) rows."""
    if not epochs:
        return [("epochs completed", "0")]
    last = epochs[-1]
    tested = [e for e in epochs if e.get("test_acc") is not None]
    best = max(tested, key=lambda e: e["test_acc"]) if tested else None
    rows = [
        ("epochs completed", str(last["epoch"])),
        ("steps", str(steps_total)),
        ("final train loss", f"{last['train_loss']:.4f}"),
        ("final train accuracy", f"{last['train_acc']:.4f}"),
    ]
    if last.get("test_acc") is not None:
        rows += [
            ("final test loss", f"{last['test_loss']:.4f}"),
            ("final test accuracy", f"{last['test_acc']:.4f}"),
        ]
    if best is not None:
        rows.append(("best test accuracy", f"{best['test_acc']:.4f} (epoch {best['epoch']})"))
    rows += [("simulated time", format_duration(sim_time)), ("wall time", format_duration(last["wall_time"]))]
    return rows


def render_table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)
