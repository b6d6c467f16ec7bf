"""Sparse (COO) count matrix b[t, k]: samples client k contributes at step t of one epoch.

A dense T x K matrix is too large for realistic settings (N = 1e6, K = 1e4, B = 128 gives 78 M cells),
so schedules return only the non-zero entries, sorted by (step, client).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Largest dense matrix ``to_dense`` agrees to build (cells), about 400 MB of int64.
MAX_DENSE_CELLS = 50_000_000


@dataclass(frozen=True)
class CountMatrix:
    """Non-zero entries of the T x K count matrix of one epoch, sorted by (step, client)."""

    num_steps: int
    num_clients: int
    step: np.ndarray
    client: np.ndarray
    count: np.ndarray

    def __post_init__(self) -> None:
        for name in ("step", "client", "count"):
            arr = np.asarray(getattr(self, name), dtype=np.int64)
            object.__setattr__(self, name, arr)
        if not (self.step.shape == self.client.shape == self.count.shape) or self.step.ndim != 1:
            raise ValueError("step, client and count must be 1-D arrays of the same length")

    @property
    def nnz(self) -> int:
        """Number of stored (step, client) entries."""
        return int(self.count.size)

    @property
    def total(self) -> int:
        """Total number of samples drawn in the epoch."""
        return int(self.count.sum())

    def step_offsets(self) -> np.ndarray:
        """(T+1,) entry offsets: step t's entries are ``[offsets[t], offsets[t+1])``."""
        return np.searchsorted(self.step, np.arange(self.num_steps + 1), side="left").astype(np.int64)

    def to_dense(self) -> np.ndarray:
        """Dense (T, K) int64 matrix; refuses matrices above ``MAX_DENSE_CELLS`` cells."""
        cells = self.num_steps * self.num_clients
        if cells > MAX_DENSE_CELLS:
            raise ValueError(
                f"to_dense would build {self.num_steps} x {self.num_clients} = {cells} cells "
                f"(limit {MAX_DENSE_CELLS}); use step_slice/step_totals/client_totals instead"
            )
        dense = np.zeros((self.num_steps, self.num_clients), dtype=np.int64)
        dense[self.step, self.client] = self.count
        return dense

    def step_totals(self) -> np.ndarray:
        """(T,) realised global batch size of every step."""
        return _weighted_bincount(self.step, self.count, self.num_steps)

    def client_totals(self) -> np.ndarray:
        """(K,) samples each client contributes over the epoch."""
        return _weighted_bincount(self.client, self.count, self.num_clients)

    def active_clients(self) -> np.ndarray:
        """(T,) number of clients with b[t, k] > 0 at every step."""
        return np.bincount(self.step, minlength=self.num_steps).astype(np.int64)

    def step_slice(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """(clients, counts) of step ``t``, clients ascending."""
        if not 0 <= t < self.num_steps:
            raise IndexError(f"step {t} is outside 0..{self.num_steps - 1}")
        lo, hi = np.searchsorted(self.step, [t, t + 1], side="left")
        return self.client[lo:hi], self.count[lo:hi]

    @classmethod
    def from_dense(cls, dense: np.ndarray) -> CountMatrix:
        """Build from a dense (T, K) array of non-negative integers."""
        dense = np.asarray(dense)
        if dense.ndim != 2:
            raise ValueError(f"dense count matrix must be 2-D (T, K), got shape {dense.shape}")
        if (dense < 0).any():
            raise ValueError("count matrix entries must be non-negative")
        step, client = np.nonzero(dense)  # row-major: already sorted by (step, client)
        return cls(dense.shape[0], dense.shape[1], step, client, dense[step, client])

    @classmethod
    def from_entries(
        cls, num_steps: int, num_clients: int, step: np.ndarray, client: np.ndarray, count: np.ndarray
    ) -> CountMatrix:
        """Build from unsorted entries; duplicates (same step and client) are summed, zeros dropped."""
        step = np.asarray(step, dtype=np.int64)
        client = np.asarray(client, dtype=np.int64)
        count = np.asarray(count, dtype=np.int64)
        key = step * num_clients + client
        order = np.argsort(key, kind="stable")
        key, count = key[order], count[order]
        if key.size:
            starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
            key, count = key[starts], np.add.reduceat(count, starts)
        keep = count > 0
        key, count = key[keep], count[keep]
        return cls(num_steps, num_clients, key // num_clients, key % num_clients, count)


def _weighted_bincount(index: np.ndarray, weights: np.ndarray, length: int) -> np.ndarray:
    # bincount with float weights is exact for integer totals below 2**53, far above any epoch size.
    return np.bincount(index, weights=weights, minlength=length).astype(np.int64)
