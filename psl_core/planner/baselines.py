"""The planner's comparison methods, on the same instance and the same time model as the exact one.

* ``plan_one_cut``: one cut for every client (the best such cut) and equal shares 1/K.
* ``plan_per_device``: every class picks the cut that would be fastest for it alone (its own phases,
  the server's work for its own samples, equal share) — the per-device split advice; equal shares.
* ``plan_alternating``: the alternating optimisation of the split-federated-learning-over-wireless
  literature: shares given cuts (optimal, ``shares.optimal_shares``) and cuts given shares (every
  class in turn moves to the cut that shortens the step most with the shares held fixed, until no
  class moves), repeated until the cuts stop changing. Each half-step never lengthens the step, so it
  ends at a plan neither half can improve — which need not be the optimum.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from psl_core.devices.catalog import TRAIN_TO_FORWARD_FLOPS
from psl_core.planner.instance import PlanningInstance
from psl_core.planner.plan import Plan, best_shares, make_plan, plan_with_best_shares
from psl_core.planner.step_time import evaluate, phase_terms

MAX_ALTERNATIONS = 100


@dataclass(frozen=True)
class DeviceCutRow:
    """One (class, cut) row of the per-device table: the step time that class would have alone."""

    label: str
    device_id: str
    cut: int
    cut_name: str
    step_time_s: float  # alone: its phases + the server's work for its own samples
    compute_s: float  # client forward + backward and the server's share for its samples
    transfer_s: float  # activations up and down, client-part sync, latencies
    client_memory_bytes: float
    fits_memory: bool


def device_cut_table(inst: PlanningInstance, shares: np.ndarray | None = None) -> list[DeviceCutRow]:
    """Per class and cut, the step time of one member alone (equal shares by default)."""
    c_count = inst.cuts.num_cuts
    every_cut = np.tile(np.arange(c_count)[:, None], (1, inst.num_classes))
    t = phase_terms(inst, every_cut)
    x = inst.equal_shares() if shares is None else np.asarray(shares, dtype=float)
    if inst.shared:
        upload = t.alpha / x + t.pi / x
    else:
        upload = t.own_upload_a + t.own_upload_y
    forward = t.a - inst.latency_s
    backward = (TRAIN_TO_FORWARD_FLOPS - 1.0) * forward
    own_server = (
        TRAIN_TO_FORWARD_FLOPS * inst.samples[None, :] * inst.cuts.server_flops[:, None] / inst.server_speed
    )
    compute = forward + backward + own_server
    total = t.a + t.delta + t.y + upload + own_server
    memory = inst.cuts.client_memory_bytes(inst.samples)
    rows = []
    for g in range(inst.num_classes):
        for j in range(c_count):
            rows.append(
                DeviceCutRow(
                    label=inst.label[g],
                    device_id=inst.device_id[g],
                    cut=int(inst.cuts.cut[j]),
                    cut_name=inst.cuts.name[j],
                    step_time_s=float(total[j, g]),
                    compute_s=float(compute[j, g]),
                    transfer_s=float(total[j, g] - compute[j, g]),
                    client_memory_bytes=float(memory[g, j]),
                    fits_memory=bool(inst.fits_memory[g, j]),
                )
            )
    return rows


def per_device_cuts(inst: PlanningInstance, shares: np.ndarray | None = None) -> np.ndarray:
    """(G,) cut index per class: its fastest memory-feasible cut alone; ties go to the earlier cut."""
    inst.check_feasible()
    rows = device_cut_table(inst, shares)
    times = np.array([r.step_time_s for r in rows]).reshape(inst.num_classes, inst.cuts.num_cuts)
    return np.where(inst.fits_memory, times, np.inf).argmin(axis=1)


def plan_one_cut(inst: PlanningInstance) -> Plan | None:
    """The best single cut for every class, equal shares; None when no cut fits every class's memory."""
    began = time.perf_counter()
    inst.check_feasible()
    common = np.flatnonzero(inst.fits_memory.all(axis=0))
    if common.size == 0:
        return None
    candidates = np.tile(common[:, None], (1, inst.num_classes))
    steps = evaluate(inst, candidates, inst.equal_shares()).step
    best = candidates[int(np.argmin(steps))]
    return make_plan(
        inst,
        "one_cut",
        best,
        inst.equal_shares(),
        seconds=time.perf_counter() - began,
        note=f"cut {int(inst.cuts.cut[best[0]])} for every client, equal shares",
    )


def plan_per_device(inst: PlanningInstance) -> Plan:
    """Every class at its own fastest cut alone, equal shares."""
    began = time.perf_counter()
    cuts = per_device_cuts(inst)
    return make_plan(
        inst,
        "per_device",
        cuts,
        inst.equal_shares(),
        seconds=time.perf_counter() - began,
        note="each device's fastest cut on its own, equal shares",
    )


def _best_cuts_given_shares(inst: PlanningInstance, cut_index: np.ndarray, shares) -> np.ndarray:
    """Coordinate descent over classes with the shares fixed, until no class moves."""
    cuts = cut_index.copy()
    current = float(evaluate(inst, cuts[None, :], None if shares is None else shares[None, :]).step[0])
    for _ in range(inst.num_classes * inst.cuts.num_cuts + 1):
        moved = False
        for g in range(inst.num_classes):
            options = np.flatnonzero(inst.fits_memory[g])
            candidates = np.repeat(cuts[None, :], options.size, axis=0)
            candidates[:, g] = options
            steps = evaluate(inst, candidates, None if shares is None else shares[None, :]).step
            i = int(np.argmin(steps))
            if steps[i] < current * (1.0 - 1e-12):
                cuts, current, moved = candidates[i].copy(), float(steps[i]), True
        if not moved:
            break
    return cuts


def plan_alternating(inst: PlanningInstance, start: Plan | None = None) -> Plan:
    """Alternate shares given cuts and cuts given shares from ``start`` (default: the per-device plan)."""
    began = time.perf_counter()
    inst.check_feasible()
    cuts = (start.cut_index if start is not None else per_device_cuts(inst)).copy()
    rounds = 0
    while rounds < MAX_ALTERNATIONS:
        rounds += 1
        _, shares = best_shares(inst, cuts)
        shares = None if shares is None else shares[0]
        new_cuts = _best_cuts_given_shares(inst, cuts, shares)
        if np.array_equal(new_cuts, cuts):
            break
        cuts = new_cuts
    return plan_with_best_shares(
        inst,
        "alternating",
        cuts,
        seconds=time.perf_counter() - began,
        note=f"stopped after {rounds} rounds: no cut change helps with these shares",
        iterations=rounds,
    )
