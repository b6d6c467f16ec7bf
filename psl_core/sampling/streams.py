"""Turn a count matrix into the training-set indices each client draws at each step.

Each client draws its b[t, k] samples locally without replacement, in the order of a local random
permutation. Non-streaming schedules (FLS, FPLS, UGS) use a fresh permutation per client per epoch;
streaming (LDS) continues each client's current pass across epochs and reshuffles when it is used up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psl_core.sampling.counts import CountMatrix
from psl_core.sampling.validation import ScheduleError


@dataclass
class EpochBatches:
    """All global batches of one epoch, concatenated; step t is ``[step_offsets[t], step_offsets[t+1])``."""

    sample_index: np.ndarray
    client_id: np.ndarray
    step_offsets: np.ndarray
    counts: CountMatrix

    def step(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """(sample_index, client_id) of step t's global batch."""
        lo, hi = self.step_offsets[t], self.step_offsets[t + 1]
        return self.sample_index[lo:hi], self.client_id[lo:hi]


def _grouped_permutation(group_sizes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Concatenated independent random permutations of range(n_g) for every group g (no loop)."""
    group_sizes = np.asarray(group_sizes, dtype=np.int64)
    total = int(group_sizes.sum())
    group = np.repeat(np.arange(group_sizes.size), group_sizes)
    # group + U[0,1) sorts by group first and randomly within it: one float argsort instead of a lexsort.
    order = np.argsort(group + rng.random(total))
    starts = np.cumsum(group_sizes) - group_sizes
    return order - np.repeat(starts, group_sizes)


class ClientSampler:
    """Draws every client's local samples for the counts of an epoch."""

    def __init__(self, client_indices: list[np.ndarray]) -> None:
        if len(client_indices) == 0:
            raise ScheduleError("client_indices must list the training-set indices of at least one client")
        arrays = [np.asarray(idx, dtype=np.int64).ravel() for idx in client_indices]
        self.client_sizes = np.array([a.size for a in arrays], dtype=np.int64)
        self._flat = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
        self._offset = np.cumsum(self.client_sizes) - self.client_sizes
        # Streaming state: current pass permutation (local positions) and samples used in it.
        # used == N_k means "pass exhausted, reshuffle at next use" (also the initial state).
        self._perm = np.zeros(self._flat.size, dtype=np.int64)
        self._used = self.client_sizes.copy()

    def epoch(
        self, counts: CountMatrix, rng: np.random.Generator, *, streaming: bool = False
    ) -> EpochBatches:
        """Sample indices for ``counts``; rows of a step are grouped by client, clients ascending."""
        sizes = self.client_sizes
        if counts.num_clients != sizes.size:
            raise ScheduleError(
                f"count matrix has {counts.num_clients} clients but the sampler has {sizes.size}; "
                "build both from the same partition"
            )
        demand = counts.client_totals()
        if (demand[sizes == 0] > 0).any():
            raise ScheduleError("the count matrix asks samples from a client that holds none")
        if streaming:
            start = self._used
        else:
            if (demand > sizes).any():
                k = int(np.flatnonzero(demand > sizes)[0])
                raise ScheduleError(
                    f"client {k} must give {demand[k]} samples but holds {sizes[k]}; "
                    "use streaming=True for schedules that cycle through local data (LDS)"
                )
            start = sizes  # everyone starts a fresh pass
        n_safe = np.maximum(sizes, 1)
        # New passes client k opens this epoch: its stream runs from `start` to `start + demand`.
        new_passes = np.where(sizes > 0, np.maximum(-(-(start + demand) // n_safe) - 1, 0), 0)
        new_sizes = np.repeat(sizes, new_passes)
        new_perm = _grouped_permutation(new_sizes, rng)
        new_offset = np.cumsum(sizes * new_passes) - sizes * new_passes

        # Each entry's first stream position: segmented exclusive cumsum over the client's steps.
        by_client = np.argsort(counts.client, kind="stable")  # keeps step order within a client
        cnt_c = counts.count[by_client]
        cli_c = counts.client[by_client]
        csum = np.cumsum(cnt_c)
        seg = np.searchsorted(cli_c, np.arange(sizes.size + 1))
        base = np.r_[0, csum][seg]
        first_c = start[cli_c] + csum - cnt_c - base[cli_c]
        entry_first = np.empty_like(first_c)
        entry_first[by_client] = first_c

        total = counts.total
        entry_of_row = np.repeat(np.arange(counts.nnz), counts.count)
        row_start = np.cumsum(counts.count) - counts.count
        client = counts.client[entry_of_row]
        stream_pos = entry_first[entry_of_row] + np.arange(total) - row_start[entry_of_row]
        n_row = sizes[client]
        in_current = stream_pos < n_row
        local = np.where(
            in_current,
            self._perm[self._offset[client] + np.minimum(stream_pos, n_row - 1)],
            # np.where evaluates both branches: rows still in the current pass compute a meaningless
            # (possibly negative) position here, so clip it into range; their value is not used.
            new_perm[
                np.clip(
                    new_offset[client] + (stream_pos // n_row - 1) * n_row + stream_pos % n_row,
                    0,
                    max(new_perm.size - 1, 0),
                )
            ]
            if new_perm.size
            else 0,
        )
        sample_index = self._flat[self._offset[client] + local]

        if streaming:
            self._advance(new_passes, new_perm, new_offset, start + demand)
        step_offsets = np.r_[0, np.cumsum(counts.step_totals())].astype(np.int64)
        return EpochBatches(sample_index.astype(np.int64), client.astype(np.int64), step_offsets, counts)

    def _advance(self, new_passes, new_perm, new_offset, end_pos) -> None:
        """Keep each client's last opened pass and its position in it."""
        sizes = self.client_sizes
        opened = new_passes > 0
        if opened.any():
            k = np.flatnonzero(opened)
            last_start = np.repeat(new_offset[k] + (new_passes[k] - 1) * sizes[k], sizes[k])
            within = np.arange(int(sizes[k].sum())) - np.repeat(np.cumsum(sizes[k]) - sizes[k], sizes[k])
            self._perm[np.repeat(self._offset[k], sizes[k]) + within] = new_perm[last_start + within]
        self._used = np.where(opened, end_pos - new_passes * sizes, end_pos)

    def state_dict(self) -> dict:
        """Streaming state: current pass permutations and positions (for checkpoint/resume)."""
        return {
            "perm": self._perm.copy(),
            "used": self._used.copy(),
            "client_sizes": self.client_sizes.copy(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore the streaming state saved by ``state_dict``."""
        if not np.array_equal(np.asarray(state["client_sizes"]), self.client_sizes):
            raise ScheduleError(
                "sampler state was saved for other client sizes; rebuild the sampler for them"
            )
        perm, used = np.asarray(state["perm"], dtype=np.int64), np.asarray(state["used"], dtype=np.int64)
        if perm.shape != self._perm.shape or used.shape != self._used.shape:
            raise ScheduleError("sampler state has the wrong shape for this partition")
        self._perm, self._used = perm.copy(), used.copy()
