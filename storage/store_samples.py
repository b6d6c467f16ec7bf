"""Chart samples of finished runs, kept in the database.

``Store.read_step_series`` samples a long run server-side (a stride sample plus each bucket's min/max
rows of the ``extremes`` columns). For a 10^6-step run that is ~0.5 s of database work — paid by the
first page that showed the run after every server start. A finished run's rows no longer change, so
the sample for the charts' default size (``CHART_SAMPLE_POINTS``, extremes ``CHART_SAMPLE_EXTREMES``),
with EVERY column, is kept in ``step_samples`` when the run finishes (``Store.finish_run``) or, for runs
finished before, the first time it is read. Any column subset of it is exactly what sampling anew would
return: which steps a sample holds depends only on the step range, the row count, ``max_points`` and
the extremes, never on the columns asked for.

A kept sample is used only while the run is still finished at the same ``finished_at`` with the same
first and last step; a run re-queued, resumed or re-run gets a new one when it finishes again.
"""

from __future__ import annotations

import io
import json
from datetime import datetime

import pandas as pd
from sqlalchemy import delete, select
from sqlmodel import Session

from storage.records import as_utc
from storage.session import StoreBase
from storage.tables import FINAL_STATUSES, Run, StepSample

# The live pages' first load of a long run (app/ui/views/series.py uses these): a few times a chart's
# width, so the chart's own spike-keeping downsample still has material.
CHART_SAMPLE_POINTS = 6000
CHART_SAMPLE_EXTREMES = ("loss",)


def frame_to_bytes(frame: pd.DataFrame) -> bytes:
    """Arrow IPC (Feather) bytes: keeps every dtype, and unlike pickle cannot run code when read."""
    buffer = io.BytesIO()
    frame.reset_index(drop=True).to_feather(buffer)
    return buffer.getvalue()


def frame_from_bytes(data: bytes) -> pd.DataFrame:
    return pd.read_feather(io.BytesIO(data))


def restrict(frame: pd.DataFrame, wanted: list[str]) -> pd.DataFrame:
    """``wanted`` columns of a sample with every column, as sampling with ``columns=wanted`` returns
    them (a name the run never logged is an all-NaN column)."""
    out = frame[[name for name in wanted if name in frame.columns]].copy()
    for name in wanted:
        if name not in out.columns:
            out[name] = float("nan")
    return out[wanted]


class SampleStore(StoreBase):
    """Keeping and finding finished runs' chart samples (the ``step_samples`` table)."""

    def _finished_stamp(self, run_id: int) -> datetime | None:
        """When the run finished, or None while it is queued or running (or gone)."""
        query = select(Run.status, Run.finished_at).where(Run.id == run_id)
        row = self._read(lambda session: session.execute(query).first())
        if row is None or row[0] not in FINAL_STATUSES or row[1] is None:
            return None
        return as_utc(row[1])

    def _kept_sample(
        self,
        run_id: int,
        stamp: datetime,
        first: int,
        last: int,
        max_points: int,
        extremes: list[str],
    ) -> pd.DataFrame | None:
        """The kept sample of the run finished at ``stamp``, if it still stands for its rows (else None)."""
        kept = self._read(lambda session: session.get(StepSample, run_id))
        if (
            kept is None
            or as_utc(kept.finished_at) != stamp
            or (kept.first_step, kept.last_step, kept.max_points) != (first, last, max_points)
            or json.loads(kept.extremes) != list(extremes)
        ):
            return None
        try:
            frame = frame_from_bytes(kept.frame)
        except Exception:  # noqa: BLE001 - an unreadable copy is no copy: sample anew
            return None
        frame.attrs["sampled_from"] = int(kept.rows_stored)
        return frame

    def _keep_sample(  # noqa: PLR0913
        self,
        run_id: int,
        stamp: datetime,
        frame: pd.DataFrame,
        first: int,
        last: int,
        max_points: int,
        extremes: list[str],
    ) -> bool:
        """Keep a sample with every column of the run finished at ``stamp`` (True if kept). Never raises:
        the sample is a copy, so a read-only home, a busy or full database only means it is sampled
        again later."""
        try:
            data = frame_to_bytes(frame)
            if not frame_from_bytes(data).equals(frame):
                return False  # e.g. list-valued extras come back as arrays: keep only exact copies
            row = StepSample(
                run_id=run_id,
                finished_at=stamp,
                first_step=first,
                last_step=last,
                rows_stored=int(frame.attrs["sampled_from"]),
                max_points=max_points,
                extremes=json.dumps(list(extremes)),
                frame=data,
            )

            def work(session: Session) -> None:
                session.execute(delete(StepSample).where(StepSample.run_id == run_id))
                session.add(row)

            self._write(work)
        except Exception:  # noqa: BLE001 - read-only, busy, full, the run deleted meanwhile, Arrow
            return False
        return True
