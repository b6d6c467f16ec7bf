"""Exact uplink shares for fixed cuts: the smallest step time a shared uplink allows.

With the cuts fixed, only the forward+upload phase A and the sync phase Y depend on the shares. A
member of class g with share x finishes them at a_g + alpha_g / x and y_g + pi_g / x, so for phase
deadlines (tau_A, tau_Y) it needs at least

    x_g(tau) = max(alpha_g / (tau_A - a_g), pi_g / (tau_Y - y_g))        (and x_g <= cap_g)

and the deadlines are reachable iff sum_g count_g x_g(tau) <= 1. The best shares minimise
tau_A + tau_Y over that set. The set is convex, so tau_Y*(tau_A) (the smallest feasible tau_Y) is
convex and so is F(tau_A) = tau_A + tau_Y*(tau_A): its minimum is where its slope changes sign,
found by regula falsi (Illinois rule, bisection as a fallback) on the slope, which the implicit
function theorem gives in closed form; tau_Y*(tau_A) comes from Newton's method on a convex
decreasing sum of hyperbolas (monotone, no overshoot). The optimum is found to machine precision. Everything is vectorised over a batch of M plans.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psl_core.planner.step_time import PhaseTerms

_NEWTON_STEPS = 100
_SEARCH_STEPS = 200


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
    high = np.maximum(total(half) - y_low, half)

    def slope(tau_a, rows):
        """F'(tau_A) = 1 + d tau_Y* / d tau_A on ``rows`` (a subgradient at kinks); -inf where tau_Y* is
        infinite."""
        a_r, alpha_r, y_r, pi_r, floor_r = a[rows], alpha[rows], y[rows], pi[rows], floor_y[rows]
        need_a = _needs(tau_a, a_r, alpha_r)
        tau_y = hyperbola_root(y_r, pi_r, need_a, count, floor_r)
        finite = np.isfinite(tau_y)
        safe_y = np.where(finite, tau_y, floor_r + 1.0)
        need_y = _needs(safe_y, y_r, pi_r)
        a_binds = need_a >= need_y
        # d need / d tau = -q / (tau - p)^2, written without squaring a need (tiny q must not underflow)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            da = (count * np.where(a_binds & (alpha_r > 0), alpha_r / (tau_a[:, None] - a_r) ** 2, 0.0)).sum(
                axis=1
            )
            dy = (count * np.where(~a_binds & (pi_r > 0), pi_r / (safe_y[:, None] - y_r) ** 2, 0.0)).sum(
                axis=1
            )
            g = np.where(dy > 0, 1.0 - da / dy, -np.inf)
        # The sync deadline sits at its floor (to a few ulps: needs too small to move it): only tau_A moves.
        g = np.where(tau_y <= floor_r + 8 * np.spacing(np.abs(floor_r)), 1.0, g)
        return np.where(finite, g, -np.inf)

    # F is convex: find where its slope changes sign — regula falsi with the Illinois rule, bisection
    # while the slope is infinite or the bracket stops halving — on the rows not yet converged; then
    # take the better end of each final bracket.
    every = np.arange(m)
    lo, hi = low.copy(), high.copy()
    g_lo, g_hi = slope(lo, every), slope(hi, every)
    side = np.zeros(m, dtype=int)  # which end moved last: -1 lo, +1 hi
    slow = np.zeros(m, dtype=int)  # steps in a row that did not halve the bracket
    for _ in range(_SEARCH_STEPS):
        rows = np.flatnonzero((g_lo < 0) & (g_hi > 0) & (hi - lo > 1e-14 * np.maximum(np.abs(hi), 1e-300)))
        if rows.size == 0:
            break
        left_end, right_end, gl, gh = lo[rows], hi[rows], g_lo[rows], g_hi[rows]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            secant = (left_end * gh - right_end * gl) / (gh - gl)
        use_secant = (
            np.isfinite(gl)
            & np.isfinite(secant)
            & (secant > left_end)
            & (secant < right_end)
            & (slow[rows] < 2)
        )
        x = np.where(use_secant, secant, 0.5 * (left_end + right_end))
        g_x = slope(x, rows)
        right, left = g_x >= 0, g_x < 0
        # Illinois: an end kept twice in a row has its slope halved, so the bracket shrinks from both sides.
        gl = np.where(right & (side[rows] == 1), 0.5 * gl, gl)
        gh = np.where(left & (side[rows] == -1), 0.5 * gh, gh)
        new_l, new_h = np.where(left, x, left_end), np.where(right, x, right_end)
        slow[rows] = np.where(new_h - new_l > 0.5 * (right_end - left_end), slow[rows] + 1, 0)
        lo[rows], hi[rows] = new_l, new_h
        g_lo[rows], g_hi[rows] = np.where(left, g_x, gl), np.where(right, g_x, gh)
        side[rows] = np.where(right, 1, -1)
    f_lo, f_hi = total(lo), total(hi)
    best_t = np.where(f_lo <= f_hi, lo, hi)
    best_f = np.minimum(f_lo, f_hi)
    # The left end (tau_A as small as the uplink allows) is optimal when the sync phase has no use for
    # shares; the search only approaches it, so compare it too.
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
