"""Batch-composition schedules (FLS, FPLS, UGS/GPSL, LDS, centralised), sample streams, batch deviation."""

from psl_core.sampling.counts import CountMatrix
from psl_core.sampling.deviation import batch_deviation, label_distribution
from psl_core.sampling.lds import LDSSampler, lds_concentration, lds_preferences
from psl_core.sampling.schedules import (
    SAMPLING_METHODS,
    MethodInfo,
    epoch_counts,
    fls_counts,
    fpls_counts,
    ugs_counts,
)
from psl_core.sampling.streams import ClientSampler, EpochBatches
from psl_core.sampling.validation import ScheduleError

__all__ = [
    "SAMPLING_METHODS",
    "ClientSampler",
    "CountMatrix",
    "EpochBatches",
    "LDSSampler",
    "MethodInfo",
    "ScheduleError",
    "batch_deviation",
    "epoch_counts",
    "fls_counts",
    "fpls_counts",
    "label_distribution",
    "lds_concentration",
    "lds_preferences",
    "ugs_counts",
]
