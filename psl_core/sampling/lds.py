"""LDS - latent Dirichlet sampling (methods §2, project definition).

Each step the client shares are theta ~ Dir(alpha), alpha_k = c * Z * pi_k, and the counts are
b[t, :] ~ Multinomial(B, theta), capped by what each client has left in its current local pass; the
overflow is re-drawn among the clients that still have room.

How it is computed without loops over steps or clients:
- the Dirichlet-multinomial draws of all T steps come from the Polya urn (draw j copies a uniformly
  chosen earlier draw of its step with probability (j-1)/(A+j-1), else is a fresh draw from pi): a
  loop over the B positions with arrays over T;
- the caps are enforced by fix-up rounds on the sparse entries sorted by (client, step): a segmented
  cumulative sum gives every client's position in its stream, an entry that crosses a pass boundary is
  cut back to the client's remaining room (each client's FIRST crossing per round, since cutting moves
  its later positions), and the cut units are re-drawn from the step's posterior predictive
  (alpha_k + demand_k, i.e. the urn continued) restricted to clients with room left.
"""

from __future__ import annotations

import numpy as np

from psl_core.sampling.counts import CountMatrix
from psl_core.sampling.validation import ScheduleError, check_batch_size, check_client_sizes

#: Failed re-draw attempts of an overflow unit before it is placed among ALL clients with room.
_MAX_REJECTIONS = 16
#: Safety net for the fix-up rounds; in practice a handful (about the passes per client per epoch).
_MAX_ROUNDS = 100_000


def lds_preferences(client_sizes, *, delta: float = 0.0, latency_per_sample=None) -> np.ndarray:
    """pi_k proportional to (N_k / N) * (l_k / median l)^(-delta), l_k the expected per-sample latency.

    The ratio to the median is scale-free (seconds or milliseconds give the same pi) and cannot starve a
    client: delta = 1 makes a client's share proportional to its data over its latency, delta = 2 to its
    data over its latency squared. The median runs over the clients that hold data. (An earlier z-score
    form, exp(-delta * z_k), let one slow client's weight collapse: at delta = 2 a 10x slower client
    holding half the data received no samples at all.)
    """
    sizes = np.asarray(client_sizes, dtype=np.int64)
    live = sizes > 0
    log_w = np.where(live, np.log(np.maximum(sizes, 1)).astype(float), -np.inf)
    if latency_per_sample is not None and delta > 0:
        lat = np.asarray(latency_per_sample, dtype=float)
        if (lat[live] <= 0).any():
            raise ScheduleError(
                "LDS latency aversion (delta > 0) needs a per-sample latency > 0 for every client with "
                "data; check the device throughputs and links, or set delta = 0"
            )
        ratio = lat / np.median(lat[live])
        log_w = np.where(live, log_w - delta * np.log(np.where(live, ratio, 1.0)), -np.inf)
    # Subtracting the maximum before exp avoids overflow for large delta without changing pi.
    w = np.exp(log_w - log_w[live].max())
    return w / w.sum()


def lds_concentration(num_samples: int, batch_size: int) -> float:
    """Z = B(N-1)/(N-B) - 1: with c = 1, Var(theta_k) equals the hypergeometric share variance.

    For N <= B one step takes every sample, so the shares are deterministic: Z = inf.
    """
    if num_samples <= batch_size:
        return float("inf")
    return batch_size * (num_samples - 1) / (num_samples - batch_size) - 1.0


class LDSSampler:
    """Stateful LDS schedule: remembers each client's position in its current local pass across epochs."""

    def __init__(
        self,
        client_sizes,
        batch_size,
        *,
        c: float = 1.0,
        delta: float = 0.0,
        latency_per_sample: np.ndarray | None = None,
    ) -> None:
        self.client_sizes = check_client_sizes(client_sizes)
        self.batch_size = check_batch_size(batch_size)
        if not (c > 0) or np.isnan(c):
            raise ScheduleError(f"LDS concentration c must be > 0 (1 = like UGS, larger = steadier), got {c}")
        if not np.isfinite(delta) or delta < 0:
            raise ScheduleError(f"LDS latency penalty delta must be a finite number >= 0, got {delta}")
        if latency_per_sample is not None:
            lat = np.asarray(latency_per_sample, dtype=float)
            if lat.shape != self.client_sizes.shape or not np.all(np.isfinite(lat)) or (lat < 0).any():
                raise ScheduleError(
                    f"latency_per_sample must hold one finite value >= 0 per client ({self.client_sizes.size})"
                )
            latency_per_sample = lat
        self.c = float(c)
        self.delta = float(delta)
        self.num_samples = int(self.client_sizes.sum())
        self.num_steps = -(-self.num_samples // self.batch_size)
        self.pi = lds_preferences(self.client_sizes, delta=self.delta, latency_per_sample=latency_per_sample)
        self.concentration = lds_concentration(self.num_samples, self.batch_size)
        with np.errstate(invalid="ignore"):
            self.alpha = np.where(self.pi > 0, self.c * self.concentration * self.pi, 0.0)
        self._used = np.zeros(self.client_sizes.size, dtype=np.int64)  # samples used in current pass

    @property
    def alpha_total(self) -> float:
        """A = sum_k alpha_k."""
        return float(self.alpha.sum())

    def draw_shares(self, rng: np.random.Generator, num_steps: int) -> np.ndarray:
        """(num_steps, K) Dirichlet shares theta (dense; for analysis and tests on small K)."""
        live = self.pi > 0
        shares = np.zeros((num_steps, self.client_sizes.size))
        if np.isinf(self.alpha_total):
            shares[:, live] = self.pi[live]
        else:
            shares[:, live] = rng.dirichlet(self.alpha[live], size=num_steps)
        return shares

    def draw_demand(self, rng: np.random.Generator, num_steps: int) -> np.ndarray:
        """(num_steps, B) owner of every draw, uncapped Dirichlet-multinomial via the Polya urn."""
        batch = self.batch_size
        cdf = np.cumsum(self.pi)
        fresh = np.searchsorted(cdf, rng.random((num_steps, batch)) * cdf[-1], side="right")
        draws = np.minimum(fresh, self.client_sizes.size - 1)
        a_total = self.alpha_total
        j = np.arange(batch, dtype=float)  # number of earlier draws of the step
        with np.errstate(invalid="ignore", divide="ignore"):
            copy_prob = np.where(j > 0, j / (a_total + j), 0.0)
        copy = rng.random((num_steps, batch)) < copy_prob
        source = np.floor(rng.random((num_steps, batch)) * j).astype(np.int64)
        rows = np.arange(num_steps)
        for pos in range(1, batch):
            col = copy[:, pos]
            if col.any():
                draws[col, pos] = draws[rows[col], source[col, pos]]
        return draws

    def epoch_counts(self, rng: np.random.Generator, *, num_steps: int | None = None) -> CountMatrix:
        """One epoch (T = ceil(N/B) steps of B samples); advances each client's position in its pass.

        ``num_steps`` < T draws only the first steps of the epoch (``training.max_steps_per_epoch``), and
        the pass positions advance by exactly what those steps use, so the clients' sample streams (which
        only stream the steps that run) stay in step with the schedule.
        """
        sizes, num_clients = self.client_sizes, self.client_sizes.size
        if num_steps is None:
            num_steps = self.num_steps
        if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
            raise ScheduleError(f"num_steps must be a positive integer, got {num_steps!r}")
        num_steps = int(min(num_steps, self.num_steps))
        if self.num_samples <= self.batch_size:
            # One step takes every client's remaining pass: the shares are fully determined.
            room = np.where(sizes > 0, sizes - self._used, 0)
            live = np.flatnonzero(room > 0)
            self._used[:] = 0
            return CountMatrix(1, num_clients, np.zeros(live.size), live, room[live])
        draws = self.draw_demand(rng, num_steps)
        key = (draws * num_steps + np.arange(num_steps)[:, None]).ravel()  # client-major key
        key.sort()
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        count = np.diff(np.r_[starts, key.size])
        key = key[starts]
        key, count = _enforce_caps(key, count, draws, sizes, self._used, self.pi, self.alpha_total, rng)
        client, step = key // num_steps, key % num_steps
        totals = np.bincount(client, weights=count, minlength=num_clients).astype(np.int64)
        self._used = np.where(sizes > 0, (self._used + totals) % np.maximum(sizes, 1), 0)
        order = np.lexsort((client, step))
        return CountMatrix(num_steps, num_clients, step[order], client[order], count[order])

    def state_dict(self) -> dict:
        """Per-client position in the current local pass (for checkpoint/resume)."""
        return {"used": self._used.copy(), "client_sizes": self.client_sizes.copy()}

    def load_state_dict(self, state: dict) -> None:
        """Restore positions saved by ``state_dict`` (same client sizes required)."""
        used = np.asarray(state["used"], dtype=np.int64)
        if not np.array_equal(np.asarray(state.get("client_sizes", self.client_sizes)), self.client_sizes):
            raise ScheduleError("LDS state was saved for other client sizes; rebuild the sampler for them")
        if (
            used.shape != self._used.shape
            or (used < 0).any()
            or (used >= np.maximum(self.client_sizes, 1)).any()
        ):
            raise ScheduleError("LDS state 'used' must hold one position 0 <= used_k < N_k per client")
        self._used = used.copy()


class _Positions:
    """Every client's stream position before each entry, from a segmented cumulative sum."""

    def __init__(self, key, count, sizes, used, num_steps):
        self.key, self.count, self.sizes, self.used, self.num_steps = key, count, sizes, used, num_steps
        self.client = key // num_steps
        self.seg = np.searchsorted(self.client, np.arange(sizes.size + 1))
        csum = np.cumsum(count)
        base = np.r_[0, csum][self.seg]  # samples of all earlier clients, per client (K+1,)
        self.before = used[self.client] + csum - count - base[self.client]
        self.client_end = used + np.diff(base)  # position after the client's last entry

    def room_at_entries(self) -> np.ndarray:
        """Samples each entry's client has left in its current pass before that entry."""
        n = self.sizes[self.client]
        return n - self.before % n

    def room_after(self, client: np.ndarray, step: np.ndarray) -> np.ndarray:
        """Room client[i] still has at step[i] after its current count there."""
        query = client * self.num_steps + step
        idx = np.searchsorted(self.key, query)
        safe = np.minimum(idx, self.key.size - 1)
        match = (idx < self.key.size) & (self.key[safe] == query)
        inside = idx < self.seg[client + 1]
        before = np.where(inside, self.before[safe], self.client_end[client])
        n = np.maximum(self.sizes[client], 1)
        have = np.where(match, self.count[safe], 0)
        return np.where(self.sizes[client] > 0, n - before % n - have, 0)


def _enforce_caps(key, count, draws, sizes, used, pi, alpha_total, rng):
    """Cut entries crossing a pass boundary back to the room left; re-draw the cut units elsewhere."""
    num_steps, batch = draws.shape
    num_clients = sizes.size
    cdf = np.cumsum(pi)
    with np.errstate(invalid="ignore"):
        copy_prob = batch / (alpha_total + batch) if np.isfinite(alpha_total) else 0.0
    pending_step = np.zeros(0, dtype=np.int64)
    pending_fails = np.zeros(0, dtype=np.int64)
    for _ in range(_MAX_ROUNDS):
        pos = _Positions(key, count, sizes, used, num_steps)
        room = pos.room_at_entries()
        over = np.flatnonzero(count > room)
        if over.size:
            client = pos.client[over]
            first = over[np.r_[True, client[1:] != client[:-1]]]
            excess = count[first] - room[first]
            count = count.copy()
            count[first] = room[first]
            pending_step = np.r_[pending_step, np.repeat(key[first] % num_steps, excess)]
            pending_fails = np.r_[pending_fails, np.zeros(int(excess.sum()), dtype=np.int64)]
            pos = _Positions(key, count, sizes, used, num_steps)
        elif pending_step.size == 0:
            return key, count
        if pending_step.size == 0:
            continue
        # Posterior-predictive candidate for each pending unit: copy one of the step's draws or pi.
        n_units = pending_step.size
        fresh = np.minimum(np.searchsorted(cdf, rng.random(n_units) * cdf[-1], side="right"), num_clients - 1)
        copied = draws[pending_step, rng.integers(0, batch, n_units)]
        cand = np.where(rng.random(n_units) < copy_prob, copied, fresh)
        stuck = pending_fails >= _MAX_REJECTIONS
        if stuck.any():
            cand[stuck] = _any_client_with_room(pos, pending_step[stuck], pi, rng)
        free = np.where(cand >= 0, pos.room_after(np.maximum(cand, 0), pending_step), 0)
        # Accept at most `free` units per (client, step) among this round's candidates.
        cand_key = np.maximum(cand, 0) * num_steps + pending_step
        order = np.argsort(cand_key, kind="stable")
        sorted_key = cand_key[order]
        grp_start = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
        rank_sorted = np.arange(n_units) - np.repeat(grp_start, np.diff(np.r_[grp_start, n_units]))
        rank = np.empty(n_units, dtype=np.int64)
        rank[order] = rank_sorted
        accept = (cand >= 0) & (rank < free)
        # No client has room at that step: the step stays short. Only final when no entry crosses a
        # pass boundary and no unit is pending at an earlier step (either could still move positions).
        dropped = stuck & (cand < 0) & (over.size == 0) & (pending_step == pending_step.min())
        key, count = _add_entries(key, count, cand_key[accept])
        keep = ~accept & ~dropped
        pending_step, pending_fails = pending_step[keep], pending_fails[keep] + 1
    raise RuntimeError("LDS cap enforcement did not converge; please report the client sizes and seed")


def _any_client_with_room(pos: _Positions, steps: np.ndarray, pi, rng) -> np.ndarray:
    """For units that kept being rejected: draw among all clients with room at their step (-1: none)."""
    uniq, inverse = np.unique(steps, return_inverse=True)
    num_clients = pos.sizes.size
    clients = np.tile(np.arange(num_clients), uniq.size)
    free = pos.room_after(clients, np.repeat(uniq, num_clients)).reshape(uniq.size, num_clients)
    weight = np.where(free > 0, pi[None, :] + 1e-300, 0.0)[inverse]
    cdf = np.cumsum(weight, axis=1)
    total = cdf[:, -1]
    pick = (cdf < (rng.random(steps.size) * total)[:, None]).sum(axis=1)
    return np.where(total > 0, np.minimum(pick, num_clients - 1), -1)


def _add_entries(key, count, new_key):
    """Add one unit at each of ``new_key`` (may repeat) to the sorted sparse entries."""
    if new_key.size == 0:
        return key, count
    new_key, add = np.unique(new_key, return_counts=True)
    idx = np.searchsorted(key, new_key)
    safe = np.minimum(idx, key.size - 1)
    exists = (idx < key.size) & (key[safe] == new_key)
    count = count.copy()
    np.add.at(count, idx[exists], add[exists])
    return np.insert(key, idx[~exists], new_key[~exists]), np.insert(count, idx[~exists], add[~exists])
