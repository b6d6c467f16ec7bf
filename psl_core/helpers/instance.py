"""The helper-scheduling problem of methods §5: one batch of K clients served by H helpers.

Times are milliseconds, memory is MB (MiB). Every per-client quantity that depends on the link to
the helper is a (K, H) array, so a client's release, gap and tail may differ by helper.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class HelperInputError(ValueError):
    """Bad input to the helper-scheduling library; the message says what to change."""


@dataclass(frozen=True)
class HelperInstance:
    """One batch of the U-shaped three-part workflow (methods §5).

    Per client j and helper h: ``release[j,h]`` = part-1 fwd on the client + upload of cut-1
    activations; ``p_fwd``/``p_bwd`` = helper part-2 forward / backward(+update) time; ``gap`` =
    download of cut-2 activations + part-3 fwd+bwd on the client + upload of cut-2 gradients;
    ``tail`` = download of cut-1 gradients + part-1 backward on the client. ``mem_demand[j]`` is
    the part-2 memory of client j on a helper, ``mem_capacity[h]`` the helper's capacity.
    """

    release: np.ndarray
    p_fwd: np.ndarray
    gap: np.ndarray
    p_bwd: np.ndarray
    tail: np.ndarray
    mem_demand: np.ndarray
    mem_capacity: np.ndarray
    client_devices: tuple[str, ...] = ()
    helper_devices: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        k, h = np.shape(self.release) if np.ndim(self.release) == 2 else (0, 0)
        if k < 1 or h < 1:
            raise HelperInputError("release must be a (K, H) array with K >= 1 clients and H >= 1 helpers")
        for name in ("release", "p_fwd", "gap", "p_bwd", "tail"):
            arr = np.asarray(getattr(self, name), dtype=float)
            if arr.shape != (k, h):
                raise HelperInputError(f"{name} must have shape (K, H) = ({k}, {h}), got {arr.shape}")
            if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise HelperInputError(f"{name} must be finite and >= 0 (milliseconds)")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        for name, n in (("mem_demand", k), ("mem_capacity", h)):
            arr = np.asarray(getattr(self, name), dtype=float)
            if arr.shape != (n,) or np.any(arr < 0):
                raise HelperInputError(f"{name} must be a non-negative vector of length {n}")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        if (
            self.mem_demand.sum() > self.mem_capacity.sum() + 1e-9
            or self.mem_demand.max() > self.mem_capacity.max()
        ):
            raise HelperInputError(
                "helper memory is too small for the clients: raise mem_capacity (or the scenario's "
                "memory_slack) or use fewer clients"
            )

    @property
    def num_clients(self) -> int:
        return self.release.shape[0]

    @property
    def num_helpers(self) -> int:
        return self.release.shape[1]


@dataclass(frozen=True)
class Schedule:
    """A solution: helper of each client, forward start, and backward pieces.

    ``bwd_pieces[j]`` is a tuple of (start, end) intervals whose lengths sum to ``p_bwd[j, helper[j]]``;
    non-preemptive solvers give one piece. ``bwd_start[j]`` is the first piece's start.
    """

    helper: np.ndarray
    fwd_start: np.ndarray
    bwd_pieces: tuple[tuple[tuple[float, float], ...], ...]

    @property
    def bwd_start(self) -> np.ndarray:
        return np.array([pieces[0][0] for pieces in self.bwd_pieces])

    @property
    def bwd_end(self) -> np.ndarray:
        return np.array([pieces[-1][1] for pieces in self.bwd_pieces])

    @property
    def preemptive(self) -> bool:
        return any(len(p) > 1 for p in self.bwd_pieces)

    @staticmethod
    def non_preemptive(instance: HelperInstance, helper, fwd_start, bwd_start) -> Schedule:
        """Build a schedule whose backward tasks each run in one piece."""
        helper = np.asarray(helper, dtype=int)
        bwd_start = np.asarray(bwd_start, dtype=float)
        p = instance.p_bwd[np.arange(len(helper)), helper]
        pieces = tuple(((float(s), float(s + d)),) for s, d in zip(bwd_start, p))
        return Schedule(helper, np.asarray(fwd_start, dtype=float), pieces)


def schedule_makespan(instance: HelperInstance, schedule: Schedule) -> float:
    """Makespan of a schedule = max_j (end of j's backward task + tail[j, helper]) (methods §5)."""
    idx = np.arange(instance.num_clients)
    return float(np.max(schedule.bwd_end + instance.tail[idx, schedule.helper]))
