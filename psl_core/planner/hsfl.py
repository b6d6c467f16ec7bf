"""Hybrid split/federated learning (hsfl): per client class, FL mode or SL mode at a cut, and the shares.

A round of hsfl (methods §6; the paradigm engine's time model): FL clients download the whole model,
run their local steps on the full model and upload it; SL clients download their client part, run
their local steps through the cut in lockstep (per step: forward + upload, the server working
through every SL client's batch, download + backward) and upload their client part. Both groups run
side by side; the round ends when the last of them is done. Per member of class g, with s_g local
steps per round of b samples each:

    FL_g  = P_model 8 / down + lat + s_g 3 b F_model / theta + P_model 8 / (x_g W) + lat
    SL    = max_SL (P_c 8 / down + lat)                                  (client parts out)
            + S [ max_SL (b F_c / theta + lat + b up 8 / (x W)) + 3 sum_SL n b F_s / theta_s
                  + max_SL (b down 8 / down + lat + 2 b F_c / theta) ]  (S = max_SL s_g steps)
            + max_SL (lat + P_c 8 / (x W))                               (client parts back)
    round = max(max_FL FL_g, SL)

The planner counts every SL member active in each of the S steps; with unequal data sizes members
finish early in the engine, so the planned round is then an upper bound.

For fixed modes and cuts the shares are exact: the SL part is the same two-deadline share problem as
PSL's (its per-step phase weighted by S), the FL part a sum of hyperbolas; the uplink fraction rho
given to the SL group is found by bisection (the SL round falls and the FL round rises with rho).
Modes and cuts are enumerated in the order of a lower bound (each group alone with the whole uplink)
until the bound reaches the best round found, so the plan is optimal.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np

from psl_core.devices.catalog import TRAIN_TO_FORWARD_FLOPS
from psl_core.planner.instance import PlanningError, PlanningInstance
from psl_core.planner.shares import hyperbola_root, optimal_shares
from psl_core.planner.step_time import BITS_PER_BYTE, PhaseTerms

FL = -1  # the mode code of a class that trains the full model
MAX_COMBINATIONS = 200_000


@dataclass(frozen=True)
class HsflPlan:
    """Per class: FL or a cut index (``mode`` = -1 for FL), per-member shares, the round time."""

    mode: np.ndarray
    shares: np.ndarray
    round_time_s: float
    fl_time_s: float  # the FL group's round (0 without FL classes)
    sl_time_s: float  # the SL group's round (0 without SL classes)
    optimal: bool
    seconds: float
    combinations_solved: int


def _parts(inst: PlanningInstance, modes: np.ndarray, steps: np.ndarray):
    """Per plan row: the FL terms (p, q), the SL share terms and the SL share-free time."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        return _parts_raw(inst, modes, steps)


def _parts_raw(inst: PlanningInstance, modes: np.ndarray, steps: np.ndarray):
    c = inst.cuts
    b, speed, lat, down = inst.samples, inst.speed, inst.latency_s, inst.down_bps
    w = inst.uplink_bps
    fl = modes == FL
    ci = np.where(fl, 0, modes)
    model_bits = c.full_model_param_bytes * BITS_PER_BYTE
    fl_p = model_bits / down + 2 * lat + steps * TRAIN_TO_FORWARD_FLOPS * b * c.full_model_flops / speed
    fl_q = np.broadcast_to(model_bits / w, fl_p.shape)
    forward = b * c.client_flops[ci] / speed
    part_bits = c.client_param_bytes[ci] * BITS_PER_BYTE
    big = np.where(fl, -np.inf, 0.0)  # SL maxima skip FL classes
    s_max = np.where(fl, 0, steps).max(axis=1)
    start = (part_bits / down + lat + big).max(axis=1)
    server = TRAIN_TO_FORWARD_FLOPS * np.where(fl, 0.0, inst.total_samples * c.server_flops[ci]).sum(axis=1)
    server /= inst.server_speed
    back = (b * c.bytes_down[ci] * BITS_PER_BYTE / down + lat + 2 * forward + big).max(axis=1)
    sl_fixed = np.where(np.isfinite(start), start + s_max * (server + back), 0.0)
    # SL share terms, the per-step phase weighted by the S steps; FL rows never bind (need 0).
    sl_a = np.where(fl, -np.inf, s_max[:, None] * (forward + lat))
    sl_alpha = np.where(fl, 0.0, s_max[:, None] * b * c.bytes_up[ci] * BITS_PER_BYTE / w)
    sl_y = np.where(fl, -np.inf, lat)
    sl_pi = np.where(fl, 0.0, part_bits / w)
    return fl, fl_p, fl_q, sl_fixed, (sl_a, sl_alpha, sl_y, sl_pi)


def _round_times(inst: PlanningInstance, modes: np.ndarray, steps: np.ndarray):
    """Exact best round (M,) for each row of modes, with its shares (M, G) and the two groups' times."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        return _round_times_raw(inst, modes, steps)


def _round_times_raw(inst: PlanningInstance, modes: np.ndarray, steps: np.ndarray):
    fl, fl_p, fl_q, sl_fixed, (a, alpha, y, pi) = _parts(inst, modes, steps)
    m, g = modes.shape
    n, cap = inst.count, inst.share_cap
    has_fl, has_sl = fl.any(axis=1), (~fl).any(axis=1)
    zeros = np.zeros((m, g))

    def fl_time(rho):  # FL group's round with a fraction 1 - rho of the uplink
        left = np.where(has_fl, np.maximum(1.0 - rho, 1e-300), 1.0)
        low = np.where(fl, fl_p + fl_q / cap, -np.inf).max(axis=1)
        t = hyperbola_root(np.where(fl, fl_p, 0.0), np.where(fl, fl_q, 0.0) / left[:, None], zeros, n, low)
        return np.where(has_fl, t, 0.0)

    def sl_time(rho):  # SL group's round with a fraction rho of the uplink
        scale = np.where(has_sl, np.maximum(rho, 1e-300), 1.0)[:, None]
        terms = PhaseTerms(
            a=np.where(fl, 0.0, a), alpha=alpha / scale, delta=zeros, y=np.where(fl, 0.0, y), pi=pi / scale,
            server=np.zeros(m), own_upload_a=zeros, own_upload_y=zeros,
        )  # fmt: skip
        # Shares of the SL group's fraction rho: a member's cap of the whole uplink is cap / rho of it.
        share = optimal_shares(terms, n, cap / scale)
        return np.where(has_sl, sl_fixed + share.share_time, 0.0), share.shares * scale

    rho_lo = np.where(has_fl, 0.0, 1.0)
    rho_hi = np.where(has_sl, 1.0, 0.0)
    lo, hi = rho_lo.copy(), rho_hi.copy()
    both = has_fl & has_sl
    for _ in range(48 if both.any() else 0):  # the uplink split rho to ~4e-15
        mid = 0.5 * (lo + hi)
        sl_slower = sl_time(mid)[0] > fl_time(mid)
        lo, hi = np.where(both & sl_slower, mid, lo), np.where(both & ~sl_slower, mid, hi)
    rho = np.where(both, 0.5 * (lo + hi), rho_hi)
    # Evaluate both ends of the final bracket and keep the better (the balance point is between them).
    candidates = [np.where(both, lo, rho), np.where(both, hi, rho)]
    best_round, best_shares, best_fl, best_sl = None, None, None, None
    for r in candidates:
        sl, sl_shares = sl_time(r)
        fl_round = fl_time(r)
        fl_shares = np.where(fl, fl_q / np.maximum(fl_round[:, None] - fl_p, 1e-300), 0.0)
        total = np.maximum(sl, fl_round)
        shares = np.where(fl, fl_shares, sl_shares)
        if best_round is None:
            best_round, best_shares, best_fl, best_sl = total, shares, fl_round, sl
        else:
            better = total < best_round
            best_round = np.where(better, total, best_round)
            best_shares = np.where(better[:, None], shares, best_shares)
            best_fl, best_sl = np.where(better, fl_round, best_fl), np.where(better, sl, best_sl)
    return best_round, best_shares, best_fl, best_sl


def _quick_bound(inst: PlanningInstance, modes: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Each group alone with the whole uplink: a lower bound of the round (M,)."""
    fl = modes == FL
    has_fl, has_sl = fl.any(axis=1), (~fl).any(axis=1)
    _, fl_p, fl_q, sl_fixed, (a, alpha, y, pi) = _parts(inst, modes, steps)
    n, cap = inst.count, inst.share_cap
    zeros = np.zeros(modes.shape)
    terms = PhaseTerms(
        a=np.where(fl, 0.0, a), alpha=alpha, delta=zeros, y=np.where(fl, 0.0, y), pi=pi,
        server=np.zeros(modes.shape[0]), own_upload_a=zeros, own_upload_y=zeros,
    )  # fmt: skip
    sl = np.where(has_sl, sl_fixed + optimal_shares(terms, n, cap).share_time, 0.0)
    low = np.where(fl, fl_p + fl_q / cap, -np.inf).max(axis=1)
    fl_round = hyperbola_root(np.where(fl, fl_p, 0.0), np.where(fl, fl_q, 0.0), zeros, n, low)
    return np.maximum(sl, np.where(has_fl, fl_round, 0.0))


def steps_per_round(sizes, local_batch: int, local_epochs: int) -> np.ndarray:
    """Local steps per round of each client: E * ceil(N_k / b) (0 for an empty client)."""
    sizes = np.asarray(sizes, dtype=float)
    return local_epochs * np.ceil(sizes / local_batch)


def plan_hsfl(inst: PlanningInstance, steps: np.ndarray) -> HsflPlan:
    """The best FL/SL mode and cut per class and the shares, for ``steps`` (G,) local steps per round
    (the busiest member's). The instance's ``samples`` are the local batch b. Needs a shared uplink."""
    began = time.perf_counter()
    if not inst.shared:
        raise PlanningError("hsfl planning divides a shared uplink: give one (e.g. --uplink-mbps 100)")
    inst.check_feasible()
    steps = np.asarray(steps, dtype=float)
    if steps.shape != (inst.num_classes,) or np.any(steps < 1):
        raise PlanningError(f"need >= 1 local step per round for every class, got {steps}")
    full_memory = (
        3.0 * inst.cuts.full_model_param_bytes + np.ceil(inst.samples) * inst.cuts.full_model_activation_bytes
    )
    options = [
        ([FL] if full_memory[g] <= inst.memory_bytes[g] else []) + list(np.flatnonzero(inst.fits_memory[g]))
        for g in range(inst.num_classes)
    ]
    total = int(np.prod([len(o) for o in options], dtype=float))
    if total > MAX_COMBINATIONS:
        raise PlanningError(
            f"hsfl planning enumerates {total:,} mode/cut combinations, more than {MAX_COMBINATIONS:,}: "
            "merge device groups"
        )
    modes = np.array(list(itertools.product(*options)), dtype=np.int64)
    bound = _quick_bound(inst, modes, steps)
    order = np.argsort(bound, kind="stable")
    best, best_row, solved = np.inf, None, 0
    chunk = 64
    for start in range(0, order.size, chunk):
        rows = order[start : start + chunk]
        if bound[rows[0]] >= best:
            break
        rounds, shares, fl_t, sl_t = _round_times(inst, modes[rows], steps)
        solved += rows.size
        i = int(np.argmin(rounds))
        if rounds[i] < best:
            best = float(rounds[i])
            best_row = (modes[rows[i]], shares[i], float(fl_t[i]), float(sl_t[i]))
    mode, shares, fl_t, sl_t = best_row
    return HsflPlan(
        mode=mode,
        shares=shares,
        round_time_s=best,
        fl_time_s=fl_t,
        sl_time_s=sl_t,
        optimal=True,
        seconds=time.perf_counter() - began,
        combinations_solved=solved,
    )


def hsfl_round_time(inst: PlanningInstance, steps, mode, shares) -> float:
    """The round time of given modes, cuts and per-member shares (evaluation, no optimisation)."""
    modes = np.asarray(mode, dtype=np.int64)[None, :]
    fl, fl_p, fl_q, sl_fixed, (a, alpha, y, pi) = _parts(inst, modes, np.asarray(steps, dtype=float))
    x = np.asarray(shares, dtype=float)[None, :]
    with np.errstate(divide="ignore"):
        fl_round = np.where(fl, fl_p + fl_q / x, -np.inf).max()
        sl_a = np.where(fl, -np.inf, a + alpha / x).max()
        sl_y = np.where(fl, -np.inf, y + pi / x).max()
    sl = float(sl_fixed[0] + sl_a + sl_y) if (~fl).any() else 0.0
    return float(max(sl, fl_round if fl.any() else 0.0))
