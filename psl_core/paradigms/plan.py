"""One round's plan, computed before its first step (SPEC §6): who takes part, in which order, which
samples every client uses at every local step, and each (step, client) straggler factor.

A round = every participating client runs E local epochs over its own data in batches of b. Local
epoch e of round r draws its batches exactly as PSL's FLS schedule with b_k = b draws epoch r·E + e
(same count matrix, same random stream), so with one client every paradigm sees the same batches as
PSL and the centralised reference. Clients run their local steps side by side: stacked step j is
every client's j-th local step of the round (its E epochs back to back: epoch e of client k fills its steps e·n_k … (e+1)·n_k − 1); a client that has finished
is masked. Plans are a pure function of (config, seed, round), which makes mid-round resume exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psl_core.sampling import ClientSampler, epoch_counts

# Random streams, one per purpose; 1 and 2 are the ones PSL's planner uses for batches and stragglers.
STREAM_BATCHES, STREAM_STRAGGLERS, STREAM_PARTICIPANTS, STREAM_ORDER = 1, 2, 3, 4


def default_local_batch(batch_size: int, num_clients: int) -> int:
    """b when ``paradigm.local_batch`` is unset: PSL's per-client share max(1, round(B / K))."""
    return max(1, int(np.round(batch_size / num_clients)))


def num_participants(num_clients: int, fraction: float) -> int:
    """m = max(1, round(C · K)) clients per round (McMahan et al.)."""
    return max(1, min(num_clients, int(np.round(fraction * num_clients))))


@dataclass
class RoundPlan:
    """Row r of every (…, m) array is client ``clients[r]``."""

    round: int  # 0-based
    clients: np.ndarray  # (m,) participating client ids, in row order
    index: np.ndarray  # (S, m, b) training-set indices, -1 = padding
    count: np.ndarray  # (S, m) valid rows per stacked step (0 = the client has finished)
    slowdown: np.ndarray  # (S, m) straggler factor (1 where count is 0)
    order: np.ndarray  # (m,) row indices in the round's shuffled client order (sl, sflv2)
    weights: np.ndarray  # (m,) averaging weights N_k / Σ N over the participants

    @property
    def num_steps(self) -> int:
        return self.count.shape[0]

    @property
    def local_batch(self) -> int:
        return self.index.shape[2]


class RoundPlanner:
    """Plans rounds for ``sizes`` (N_k) with the sampler of the partition's client indices."""

    def __init__(
        self,
        client_indices: list[np.ndarray],
        *,
        seed: int,
        local_batch: int,
        local_epochs: int,
        client_fraction: float,
        stragglers,
        row_key: np.ndarray | None = None,
        max_steps: int | None = None,
    ):
        self.sampler = ClientSampler(client_indices)
        self.sizes = self.sampler.client_sizes
        self.seed = seed
        self.local_batch = local_batch
        self.local_epochs = local_epochs
        self.num_clients = len(self.sizes)
        self.m = num_participants(self.num_clients, client_fraction)
        self.stragglers = stragglers
        # Rows are sorted by (row_key, most data first, client id): sflv2 groups the clients of one cut
        # into a contiguous block, and within a block the clients still training at any local step
        # are a prefix of it, so a step computes only the rows that are active.
        self.row_key = np.zeros(self.num_clients, dtype=np.int64) if row_key is None else np.asarray(row_key)
        self.max_steps = max_steps

    def participants(self, round_no: int) -> np.ndarray:
        if self.m == self.num_clients:
            chosen = np.arange(self.num_clients)
        else:
            rng = np.random.default_rng([self.seed, round_no, STREAM_PARTICIPANTS])
            chosen = rng.choice(self.num_clients, size=self.m, replace=False)
        return chosen[np.lexsort((chosen, -self.sizes[chosen], self.row_key[chosen]))]

    def local_steps(self, clients: np.ndarray) -> np.ndarray:
        """(m,) local steps of each participant in one round: E · ceil(N_k / b)."""
        return self.local_epochs * -(-self.sizes[clients] // self.local_batch)

    def steps_in_round(self, round_no: int, *, sequential: bool = False) -> int:
        """Stacked steps of a round (sequential: the sum over clients), without drawing batches."""
        steps = self.local_steps(self.participants(round_no))
        total = int(steps.sum() if sequential else steps.max(initial=0))
        return min(total, self.max_steps) if self.max_steps else total

    def plan(self, round_no: int) -> RoundPlan:
        clients = self.participants(round_no)
        m, b = len(clients), self.local_batch
        row_of = np.full(self.num_clients, -1)
        row_of[clients] = np.arange(m)
        sizes = np.zeros_like(self.sizes)
        sizes[clients] = self.sizes[clients]
        per_epoch = -(-self.sizes[clients] // b)  # (m,) local steps per local epoch
        num_steps = int(per_epoch.max(initial=0)) * self.local_epochs
        index = np.full((num_steps, m, b), -1, dtype=np.int64)
        for e in range(self.local_epochs):  # a loop over local epochs, not clients
            rng = np.random.default_rng([self.seed, round_no * self.local_epochs + e, STREAM_BATCHES])
            counts = epoch_counts("fls", sizes, b, rng, per_client_batch=b)
            batches = self.sampler.epoch(counts, rng)
            rows = row_of[counts.client]
            local_step = e * per_epoch[rows] + counts.step
            entry = np.repeat(np.arange(counts.nnz), counts.count)
            position = np.arange(counts.total) - np.repeat(
                np.cumsum(counts.count) - counts.count, counts.count
            )
            index[local_step[entry], rows[entry], position] = batches.sample_index
        if self.max_steps is not None:
            index = index[: self.max_steps]
        count = (index >= 0).sum(axis=2)
        slowdown = np.ones(count.shape)
        step_of, row_of_entry = np.nonzero(count)
        rng = np.random.default_rng([self.seed, round_no, STREAM_STRAGGLERS])
        slowdown[step_of, row_of_entry] = self.stragglers.slowdowns(clients[row_of_entry], rng)
        order = np.random.default_rng([self.seed, round_no, STREAM_ORDER]).permutation(m)
        held = self.sizes[clients].astype(float)
        weights = held / held.sum() if held.sum() > 0 else np.zeros(m)
        return RoundPlan(round_no, clients, index, count, slowdown, order, weights)


def sequential_order(plan: RoundPlan) -> tuple[np.ndarray, np.ndarray]:
    """sl: (row, local step) of every step of the round, the clients one after the other in the
    round's shuffled order, each through all its local steps."""
    steps = (plan.count > 0).sum(axis=0)[plan.order]
    rows = np.repeat(plan.order, steps)
    local = np.arange(len(rows)) - np.repeat(np.cumsum(steps) - steps, steps)
    return rows, local
