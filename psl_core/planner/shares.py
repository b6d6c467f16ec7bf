"""Exact uplink shares for fixed cuts: the smallest step time a shared uplink allows.

With the cuts fixed, only the forward+upload phase A and the sync phase Y depend on the shares. A
member of class g with share x finishes them at a_g + alpha_g / x and y_g + pi_g / x, so for phase
deadlines (tau_A, tau_Y) it needs at least

    x_g(tau) = max(alpha_g / (tau_A - a_g), pi_g / (tau_Y - y_g))        (and x_g <= cap_g)

and the deadlines are reachable iff sum_g count_g x_g(tau) <= 1. The best shares minimise
tau_A + tau_Y over that set. The set is convex, so tau_Y*(tau_A) (the smallest feasible tau_Y) is
convex and so is tau_A + tau_Y*(tau_A): a golden-section search over tau_A, with tau_Y*(tau_A) found
by Newton's method on a convex decreasing sum of hyperbolas (monotone, no overshoot), gives the
optimum to machine precision. Everything is vectorised over a batch of M plans.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psl_core.planner.step_time import PhaseTerms

_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0
_NEWTON_STEPS = 100
_GOLDEN_STEPS = 80


def _needs(t: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """q / (t - p) per class ((M, G)), inf where t <= p and q > 0, 0 where q == 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return _needs_raw(t, p, q)


def _needs_raw(t, p, q):
    gap = t[:, None] - p
    r = q / gap
    r[gap <= 0] = np.inf
    r[q == 0] = 0.0
    return r


def hyperbola_root(p, q, floor_need, count, t_low) -> np.ndarray:
    """Smallest t >= t_low with sum_g count_g max(floor_need_g, q_g / (t - p_g)) <= 1, per row (M,).

    ``floor_need`` is a share each class needs anyway (from another phase); inf where no t works.
    Newton's method from a point left of the root: the function is convex and decreasing in t, so the
    iterates increase monotonically to the root and never step past it (up to rounding).
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _hyperbola_root(
            np.asarray(p, dtype=float),
            np.asarray(q, dtype=float),
            np.asarray(floor_need, dtype=float),
            count,
            np.array(t_low, dtype=float),
        )


def _hyperbola_root(p, q, floor_need, count, t_low):
    result = np.full(t_low.shape, np.inf)
    base = (count * floor_need).sum(axis=1)
    at_low = (count * np.maximum(floor_need, _needs_raw(t_low, p, q))).sum(axis=1) <= 1.0
    result[at_low] = t_low[at_low]
    todo = np.flatnonzero(~at_low & (base < 1.0))
    if todo.size == 0:
        return result
    p, q, floor_need, t_low = p[todo], q[todo], floor_need[todo], t_low[todo]
    # Two points left of (or at) the root: p_g + count_g q_g (class g alone fills the uplink), and
    # min p + sum count q over the classes with q > 0 (every hyperbola is at least q / sum count q).
    has_q = q > 0
    # (nextafter: a share need so small that p + count q rounds to p still needs t > p.)
    alone = np.where(has_q, np.maximum(p + count * q, np.nextafter(p, np.inf)), -np.inf).max(axis=1)
    pooled = np.where(has_q, p, np.inf).min(axis=1) + (count * q).sum(axis=1)
    t = np.maximum(t_low, np.maximum(alone, np.where(np.isfinite(pooled), pooled, -np.inf)))
    for _ in range(_NEWTON_STEPS):
        gap = t[:, None] - p
        hyper = q / gap
        hyper[~has_q] = 0.0
        binding = hyper > floor_need
        f = (count * np.where(binding, hyper, floor_need)).sum(axis=1) - 1.0
        slope = (count * np.where(binding, hyper / gap, 0.0)).sum(axis=1)
        # Converged rows: the uplink is used up to rounding (the next step would be lost in t anyway).
        step = np.where(f > 1e-15, np.where(slope > 0, f / slope, np.inf), 0.0)
        if not np.any(step > np.abs(t) * 1e-16):
            break
        t = t + step
    result[todo] = t
    return result


@dataclass(frozen=True)
class ShareSolution:
    """Optimal shares of M plans: phase deadlines (M,) and per-member shares (M, G)."""

    tau_a: np.ndarray
    tau_y: np.ndarray
    shares: np.ndarray

    @property
    def share_time(self) -> np.ndarray:
        """tau_A + tau_Y: the share-dependent part of the step time."""
        return self.tau_a + self.tau_y


def optimal_shares(terms: PhaseTerms, count: np.ndarray, cap: np.ndarray) -> ShareSolution:
    """Time-optimal per-member shares for the plans whose terms are given (shared uplink)."""
    a, alpha, y, pi = terms.a, terms.alpha, terms.y, terms.pi
    m = a.shape[0]
    zero = np.zeros_like(a)
    with np.errstate(divide="ignore"):
        floor_a = np.maximum(a.max(axis=1), (a + alpha / cap).max(axis=1))
        floor_y = np.maximum(y.max(axis=1), np.where(pi > 0, y + pi / cap, -np.inf).max(axis=1))
    low = hyperbola_root(a, alpha, zero, count, floor_a)  # tau_A with the sync phase unconstrained
    y_low = hyperbola_root(y, pi, zero, count, floor_y)

    def tau_y_star(tau_a):
        return hyperbola_root(y, pi, _needs(tau_a, a, alpha), count, floor_y)

    def total(tau_a):
        return tau_a + tau_y_star(tau_a)

    # Giving each phase at most half of the uplink is feasible: it bounds the optimum from above.
    half = hyperbola_root(a, 2.0 * alpha, zero, count, floor_a)
    best_t, best_f = half.copy(), total(half)
    high = np.maximum(best_f - y_low, half)
    lo, hi = low.copy(), high
    x1 = hi - _GOLDEN * (hi - lo)
    x2 = lo + _GOLDEN * (hi - lo)
    f1, f2 = total(x1), total(x2)
    for _ in range(_GOLDEN_STEPS):
        for x, f in ((x1, f1), (x2, f2)):
            better = f < best_f
            best_t, best_f = np.where(better, x, best_t), np.where(better, f, best_f)
        if np.all(hi - lo <= 1e-13 * np.maximum(np.abs(hi), 1e-300)):
            break
        left = f1 < f2  # the minimum lies in [lo, x2]
        hi = np.where(left, x2, hi)
        lo = np.where(left, lo, x1)
        new_x1 = np.where(left, hi - _GOLDEN * (hi - lo), x2)
        new_x2 = np.where(left, x1, lo + _GOLDEN * (hi - lo))
        new_f = total(np.where(left, new_x1, new_x2))
        f1, f2 = np.where(left, new_f, f2), np.where(left, f1, new_f)
        x1, x2 = new_x1, new_x2
    # The left end (tau_A as small as the uplink allows) is optimal when the sync phase has no use for
    # shares; golden section only approaches it, so compare it too.
    f_low = total(low)
    better = f_low <= best_f
    best_t, best_f = np.where(better, low, best_t), np.where(better, f_low, best_f)
    tau_y = tau_y_star(best_t)
    shares = np.maximum(_needs(best_t, a, alpha), _needs(tau_y, y, pi))
    # Newton stops a rounding error short of the root: never hand out more than the whole uplink.
    used = (count * shares).sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(used > 1.0, shares / used, shares)
    assert shares.shape == (m, a.shape[1])
    return ShareSolution(best_t, tau_y, shares)
