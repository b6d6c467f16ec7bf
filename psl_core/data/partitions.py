"""Public partition API: `partition_labels` and the `PARTITION_SCHEMES` catalogue (methods §3).

All schemes are seeded, disjoint and complete: every training sample belongs to exactly one client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from psl_core.data.partition_schemes import SCHEME_CLASSES, PartitionError

__all__ = ["PARTITION_SCHEMES", "Partition", "PartitionError", "PartitionSchemeInfo", "partition_labels"]


@dataclass
class Partition:
    """Which training samples each client holds."""

    client_indices: list[
        np.ndarray
    ]  # int64 index arrays into the training set, sorted; disjoint; union == arange(N)
    counts: np.ndarray  # (K, C) int64 per-client class counts
    scheme: str
    params: dict  # the scheme's parameters with defaults filled in
    details: dict[str, Any] = field(default_factory=dict)  # scheme facts, e.g. the classes each client picked

    @property
    def sizes(self) -> np.ndarray:
        """(K,) number of samples per client (may contain 0 for dirichlet with min_partition_size=0)."""
        return self.counts.sum(axis=1)


@dataclass(frozen=True)
class PartitionSchemeInfo:
    name: str
    title: str
    description: str
    params: dict[str, tuple[Any, str]]  # parameter name -> (default, help text)


PARTITION_SCHEMES: dict[str, PartitionSchemeInfo] = {
    name: PartitionSchemeInfo(name, cls.title, cls.description, dict(cls.params))
    for name, cls in SCHEME_CLASSES.items()
}


def _check_labels(labels: Any, num_classes: int | None) -> tuple[np.ndarray, int]:
    array = np.asarray(labels)
    if array.ndim != 1 or len(array) == 0:
        raise PartitionError(f"labels must be a non-empty 1-D array, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise PartitionError(f"labels must be integers, got dtype {array.dtype}")
    if array.min() < 0:
        raise PartitionError(f"labels must be >= 0, found {int(array.min())}")
    inferred = int(array.max()) + 1
    if num_classes is None:
        num_classes = inferred
    elif (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, (int, np.integer))
        or num_classes < inferred
    ):
        raise PartitionError(
            f"num_classes={num_classes!r} is not allowed; labels go up to {inferred - 1}, so use >= {inferred}"
        )
    return array.astype(np.int64), int(num_classes)


def partition_labels(
    labels: np.ndarray,
    num_clients: int,
    scheme: str,
    *,
    num_classes: int | None = None,
    seed: int = 0,
    **params: Any,
) -> Partition:
    """Split sample indices among ``num_clients`` clients by ``scheme`` (a key of PARTITION_SCHEMES).

    ``params`` are the scheme's parameters (see PARTITION_SCHEMES[scheme].params); unknown names, bad
    values and impossible requests raise PartitionError saying what to change. Same inputs and seed
    give the same partition.
    """
    if scheme not in SCHEME_CLASSES:
        raise PartitionError(
            f"unknown partition scheme {scheme!r}; choose one of: {', '.join(SCHEME_CLASSES)}"
        )
    partitioner = SCHEME_CLASSES[scheme](**params)
    labels, num_classes = _check_labels(labels, num_classes)
    n = len(labels)
    if (
        isinstance(num_clients, bool)
        or not isinstance(num_clients, (int, np.integer))
        or not 1 <= num_clients <= n
    ):
        raise PartitionError(
            f"num_clients={num_clients!r} is not allowed; use an integer from 1 to N={n} samples"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise PartitionError(f"seed={seed!r} is not allowed; use an integer >= 0")
    num_clients = int(num_clients)
    present = np.flatnonzero(np.bincount(labels, minlength=num_classes))
    partitioner.check_data(n, num_clients, present)

    rng = np.random.default_rng(int(seed))
    owner, details = partitioner.assign(labels, num_clients, num_classes, rng)
    # Grouping by owner with a stable sort keeps each client's indices in ascending order.
    order = np.argsort(owner, kind="stable")
    sizes = np.bincount(owner, minlength=num_clients)
    client_indices = [part.astype(np.int64) for part in np.split(order, np.cumsum(sizes)[:-1])]
    counts = np.bincount(owner * num_classes + labels, minlength=num_clients * num_classes)
    return Partition(
        client_indices=client_indices,
        counts=counts.reshape(num_clients, num_classes).astype(np.int64),
        scheme=scheme,
        params=dict(partitioner.values),
        details=details,
    )
