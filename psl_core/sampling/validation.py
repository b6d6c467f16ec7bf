"""Input checks shared by every schedule; bad input raises ScheduleError saying what to change."""

from __future__ import annotations

import numpy as np


class ScheduleError(ValueError):
    """A batch-composition schedule was asked for something it cannot do."""


def check_client_sizes(client_sizes) -> np.ndarray:
    """Return client sizes N_k as int64, refusing negatives, non-integers and an all-empty federation."""
    sizes = np.asarray(client_sizes)
    if sizes.ndim != 1 or sizes.size == 0:
        raise ScheduleError(
            f"client_sizes must be a non-empty 1-D list of sample counts, got shape {sizes.shape}"
        )
    if not np.issubdtype(sizes.dtype, np.integer):
        if not np.all(np.isfinite(sizes)) or not np.all(sizes == np.round(sizes)):
            raise ScheduleError("client_sizes must be whole numbers of samples")
    sizes = sizes.astype(np.int64)
    if (sizes < 0).any():
        bad = np.flatnonzero(sizes < 0)[:5].tolist()
        raise ScheduleError(f"client_sizes must be >= 0; clients {bad} have negative sizes")
    if sizes.sum() == 0:
        raise ScheduleError(
            "every client is empty (sum of client_sizes is 0): assign samples to clients first"
        )
    return sizes


def check_batch_size(batch_size) -> int:
    """Return B as int, refusing B <= 0 and non-integers."""
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or int(batch_size) <= 0:
        raise ScheduleError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)
