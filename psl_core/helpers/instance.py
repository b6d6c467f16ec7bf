"""The helper-scheduling problem of methods §5: one batch of K clients served by H helpers.

Times are milliseconds, memory is MB (MiB). Every per-client quantity that depends on the link to
the helper is a (K, H) array, so a client's release, gap and tail may differ by helper, and every
helper quantity may differ by client (mixed helper devices).

Two variants of the problem are offered; they are different models, so their makespans are never
compared without saying which is which:
- ``non_preemptive``: every helper task (a client's part-2 forward, its part-2 backward) runs in one
  piece once started;
- ``preemptive``: a helper may interrupt a task and resume it later (the paper's slotted ILP allows
  this for both the forward and the backward task).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

VARIANTS = ("non_preemptive", "preemptive")
#: Memory fits when load <= capacity * (1 + MEMORY_RTOL): equal sums computed in another order must fit.
MEMORY_RTOL = 1e-9

Pieces = tuple[tuple[float, float], ...]


class HelperInputError(ValueError):
    """Bad input to the helper-scheduling library; the message says what to change."""


def check_variant(variant: str) -> str:
    """Return ``variant`` if it names a problem variant, else raise HelperInputError saying the choices."""
    if variant not in VARIANTS:
        raise HelperInputError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    return variant


def memory_fits(load, capacity) -> np.ndarray:
    """Elementwise: does ``load`` fit in ``capacity`` (with the library's relative tolerance)?"""
    return np.asarray(load) <= np.asarray(capacity) * (1 + MEMORY_RTOL)


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
            arr = np.array(getattr(self, name), dtype=float)
            if arr.shape != (k, h):
                raise HelperInputError(f"{name} must have shape (K, H) = ({k}, {h}), got {arr.shape}")
            if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise HelperInputError(f"{name} must be finite and >= 0 (milliseconds)")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        for name, n in (("mem_demand", k), ("mem_capacity", h)):
            arr = np.array(getattr(self, name), dtype=float)
            if arr.shape != (n,) or not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise HelperInputError(f"{name} must be a finite, non-negative vector of length {n}")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        if not memory_fits(self.mem_demand.sum(), self.mem_capacity.sum()) or not memory_fits(
            self.mem_demand.max(), self.mem_capacity.max()
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

    @property
    def chain(self) -> np.ndarray:
        """(K, H): a client's whole chain on a helper with nobody else there (no waiting)."""
        return self.release + self.p_fwd + self.gap + self.p_bwd + self.tail


@dataclass(frozen=True)
class Schedule:
    """A solution: helper of each client and the pieces (start, end) of its two helper tasks.

    ``fwd_pieces[j]`` / ``bwd_pieces[j]`` are tuples of (start, end) intervals, in time order, whose
    lengths sum to ``p_fwd[j, helper[j]]`` / ``p_bwd[j, helper[j]]``; a non-preemptive schedule has
    one piece per task.
    """

    helper: np.ndarray
    fwd_pieces: tuple[Pieces, ...]
    bwd_pieces: tuple[Pieces, ...]

    @property
    def fwd_start(self) -> np.ndarray:
        return np.array([p[0][0] if p else np.nan for p in self.fwd_pieces])

    @property
    def fwd_end(self) -> np.ndarray:
        return np.array([p[-1][1] if p else np.nan for p in self.fwd_pieces])

    @property
    def bwd_start(self) -> np.ndarray:
        return np.array([p[0][0] if p else np.nan for p in self.bwd_pieces])

    @property
    def bwd_end(self) -> np.ndarray:
        return np.array([p[-1][1] if p else np.nan for p in self.bwd_pieces])

    @property
    def preemptive(self) -> bool:
        """True when some task runs in more than one piece."""
        return any(len(p) > 1 for p in self.fwd_pieces + self.bwd_pieces)

    @staticmethod
    def non_preemptive(instance: HelperInstance, helper, fwd_start, bwd_start) -> Schedule:
        """Build a schedule whose tasks each run in one piece from the given start times."""
        helper = np.asarray(helper, dtype=int)
        idx = np.arange(len(helper))
        fs, bs = np.asarray(fwd_start, dtype=float), np.asarray(bwd_start, dtype=float)
        fe, be = fs + instance.p_fwd[idx, helper], bs + instance.p_bwd[idx, helper]
        return Schedule(
            helper,
            tuple(((float(s), float(e)),) for s, e in zip(fs, fe)),
            tuple(((float(s), float(e)),) for s, e in zip(bs, be)),
        )


def client_completion(instance: HelperInstance, schedule: Schedule) -> np.ndarray:
    """Per client: end of its backward task + its tail on its helper (when it has its gradients)."""
    idx = np.arange(instance.num_clients)
    return schedule.bwd_end + instance.tail[idx, np.asarray(schedule.helper, dtype=int)]


def schedule_makespan(instance: HelperInstance, schedule: Schedule) -> float:
    """Makespan of a schedule = max_j (end of j's backward task + tail[j, helper]) (methods §5)."""
    return float(np.max(client_completion(instance, schedule)))


def helper_makespans(instance: HelperInstance, schedule: Schedule) -> np.ndarray:
    """(H,): the latest client completion among each helper's clients (0 for an idle helper)."""
    out = np.zeros(instance.num_helpers)
    np.maximum.at(out, np.asarray(schedule.helper, dtype=int), client_completion(instance, schedule))
    return out
