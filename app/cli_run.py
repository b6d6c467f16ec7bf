"""Sinks of the command line: CSV files in an output folder and a progress bar on the terminal."""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from app.formatting import format_duration
from psl_core.engine import EPOCH_FIELDS, STEP_FIELDS, RunInfo, Sink

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


class ProgressSink(Sink):
    """A one-line progress bar (steps, epoch, ETA, last loss) redrawn in place on ``stream``."""

    def __init__(self, stream: TextIO = sys.stderr, width: int = 28):
        self.stream, self.width = stream, width
        self.info: RunInfo | None = None
        self.t0 = time.perf_counter()
        self.last: dict[str, Any] = {}
        self.last_acc: float | None = None

    def on_start(self, info):
        self.info, self.t0 = info, time.perf_counter()

    def on_steps(self, rows):
        self.last = rows[-1]
        self._draw()

    def on_epoch(self, row, client_stats):
        if row.get("test_acc") is not None:
            self.last_acc = row["test_acc"]
        self._draw()

    def _draw(self) -> None:
        if not self.info or not self.last:
            return
        total, start = self.info.total_steps, self.info.start_step
        step = self.last["step"]
        frac = step / max(1, total)
        done = int(self.width * frac)
        rate = (step - start) / max(1e-9, time.perf_counter() - self.t0)
        eta = (total - step) / rate if rate > 0 else 0.0
        acc = f" test acc {self.last_acc:.3f}" if self.last_acc is not None else ""
        self.stream.write(
            f"\r[{'#' * done}{'.' * (self.width - done)}] {frac:6.1%} step {step}/{total} "
            f"epoch {self.last['epoch']}/{self.info.epochs} ETA {format_duration(eta)} "
            f"loss {self.last['loss']:.4f}{acc}  "
        )
        self.stream.flush()

    def finish(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


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
