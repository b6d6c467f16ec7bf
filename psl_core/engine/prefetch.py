"""Epoch plans, prepared one epoch ahead on a background thread and moved to the device once.

Planning an epoch is pure numpy (methods §2): the next epoch's plan can be drawn while this epoch
trains. Plans stay sequential — epoch e+1 is drawn from the sampler state that epoch e left — so
prefetching changes when a plan is computed, never what it contains.

Everything a step needs from the plan goes to the device once per epoch: the sample index and, for
per-client BatchNorm, each row's segment (its client's rank among the step's active clients) and
each segment's row count. A step then only slices these with host offsets: no per-step transfer,
no device read.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from psl_core.engine.plan import EpochPlan, EpochPlanner
from psl_core.models.norms import ClientSegments


@dataclass
class PreparedEpoch:
    """One epoch's plan with its device-side index tensors."""

    plan: EpochPlan
    planner_state: dict  # the planner's state before this plan was drawn (mid-epoch checkpoints)
    next_planner_state: dict  # … and after it (the state a checkpoint at the epoch's end must carry)
    sample_index: torch.Tensor  # (rows,) training-set row of every sample of the epoch, on the device
    row_offsets: np.ndarray  # (T+1,) step t is rows [row_offsets[t], row_offsets[t+1])
    segment_of_row: torch.Tensor | None  # (rows,) segment of each row within its step, on the device
    rows_of_segment: torch.Tensor | None  # (entries,) rows of each (step, client) entry, float, device
    entry_offsets: np.ndarray | None  # (T+1,) step t's segments are entries [entry_offsets[t], …[t+1])
    client_of_entry: torch.Tensor | None = None  # (entries,) the client of each entry, on the device

    def batch_rows(self, t: int) -> torch.Tensor:
        return self.sample_index[self.row_offsets[t] : self.row_offsets[t + 1]]

    def segments(self, t: int) -> ClientSegments:
        """Step ``t``'s client segments (slices of the epoch's tensors; nothing is read back)."""
        lo, hi = self.entry_offsets[t], self.entry_offsets[t + 1]
        rows = self.segment_of_row[self.row_offsets[t] : self.row_offsets[t + 1]]
        return ClientSegments(
            rows,
            self.rows_of_segment[lo:hi],
            int(hi - lo),
            clients=self.client_of_entry[lo:hi],
            num_clients=self.plan.counts.num_clients,
        )


def prepare_epoch(
    planner: EpochPlanner, epoch: int, planner_state: dict, device: torch.device, segmented: bool
) -> PreparedEpoch:
    """Draw ``epoch``'s plan (the planner must be in ``planner_state``) and upload its indices."""
    plan = planner.plan(epoch)
    next_state = planner.state_dict()
    batches, counts = plan.batches, plan.counts
    segment_of_row = rows_of_segment = entry_offsets = client_of_entry = None
    if segmented:
        # Entries are sorted by (step, client) and a step's rows are grouped the same way, so a row's
        # segment is its entry's rank within the step.
        entry_offsets = counts.step_offsets()
        rank = np.arange(counts.nnz) - entry_offsets[counts.step]
        segment_of_row = torch.as_tensor(np.repeat(rank, counts.count), device=device)
        rows_of_segment = torch.as_tensor(counts.count, dtype=torch.float32, device=device)
        client_of_entry = torch.as_tensor(counts.client, dtype=torch.long, device=device)
    return PreparedEpoch(
        plan,
        planner_state,
        next_state,
        torch.as_tensor(batches.sample_index, device=device),
        batches.step_offsets,
        segment_of_row,
        rows_of_segment,
        entry_offsets,
        client_of_entry,
    )


class PlanPrefetcher:
    """Hands out prepared epochs in order; while one trains, the next is prepared on a thread.

    Only the prefetch thread touches the planner once the first epoch is handed out, and each
    epoch is drawn from the state the previous one left, so the sequence of plans is exactly the
    one a synchronous loop draws.
    """

    def __init__(self, planner: EpochPlanner, epochs: int, device: torch.device, segmented: bool):
        self.planner, self.epochs, self.device, self.segmented = planner, epochs, device, segmented
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="psl-plan")
        self._ahead: tuple[int, Future] | None = None

    def get(self, epoch: int) -> PreparedEpoch:
        """Epoch ``epoch`` prepared (drawn now, from the planner's state, unless it was prefetched)."""
        if self._ahead is not None and self._ahead[0] == epoch:
            prepared = self._ahead[1].result()
        else:
            self._drop_ahead()
            state = self.planner.state_dict()
            prepared = prepare_epoch(self.planner, epoch, state, self.device, self.segmented)
        self._ahead = None
        if epoch + 1 < self.epochs:
            nxt = epoch + 1
            future = self._pool.submit(
                prepare_epoch, self.planner, nxt, prepared.next_planner_state, self.device, self.segmented
            )
            self._ahead = (nxt, future)
        return prepared

    def _drop_ahead(self) -> None:
        if self._ahead is not None:
            self._ahead[1].cancel()
            try:
                self._ahead[1].result()  # let a running draw finish before the planner is reused
            except Exception:  # noqa: BLE001 - a plan nobody will use; its error does not matter
                pass
            self._ahead = None

    def close(self) -> None:
        self._drop_ahead()
        self._pool.shutdown(wait=True)
