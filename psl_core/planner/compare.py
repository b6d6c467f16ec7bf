"""All planning methods on one instance, their table, and what a missed step-time target would need."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psl_core.planner.baselines import plan_alternating, plan_one_cut, plan_per_device
from psl_core.planner.exact import DEFAULT_MAX_NODES, plan_exact
from psl_core.planner.instance import PlanningError, PlanningInstance
from psl_core.planner.plan import Plan

METHOD_TITLES = {
    "exact": "exact (branch and bound, optimal shares)",
    "one_cut": "one cut for all + equal shares",
    "per_device": "per-device best cut + equal shares",
    "alternating": "alternating optimisation (cuts ↔ shares)",
}


@dataclass(frozen=True)
class Comparison:
    """The four methods on one instance; a baseline is None when it has no feasible plan."""

    instance: PlanningInstance
    plans: dict[str, Plan | None]

    @property
    def exact(self) -> Plan:
        return self.plans["exact"]


def compare_methods(inst: PlanningInstance, *, max_nodes: int = DEFAULT_MAX_NODES) -> Comparison:
    """Run the baselines, then the exact method seeded with the best of them."""
    inst.check_feasible()
    one = plan_one_cut(inst)
    per_device = plan_per_device(inst)
    alternating = plan_alternating(inst, start=per_device)
    seeds = [p for p in (one, per_device, alternating) if p is not None]
    exact = plan_exact(inst, start=min(seeds, key=lambda p: p.step_time_s), max_nodes=max_nodes)
    return Comparison(
        inst, {"exact": exact, "one_cut": one, "per_device": per_device, "alternating": alternating}
    )


def methods_table(comparison: Comparison) -> list[dict]:
    """One row per method: step time, its phases, ratio to the exact plan, energy, cuts, planning time."""
    inst, best = comparison.instance, comparison.exact.step_time_s
    rows = []
    for name, plan in comparison.plans.items():
        if plan is None:
            rows.append({"method": METHOD_TITLES[name], "key": name, "feasible": False})
            continue
        p = plan.phases
        rows.append(
            {
                "method": METHOD_TITLES[name],
                "key": name,
                "feasible": True,
                "step_time_s": plan.step_time_s,
                "vs_exact": plan.step_time_s / best,
                "forward_upload_s": float(p.forward_upload[0]),
                "server_s": float(p.server[0]),
                "download_backward_s": float(p.download_backward[0]),
                "sync_s": float(p.sync[0]),
                "energy_j": plan.energy_j,
                "cuts": cuts_summary(inst, plan),
                "proven_optimal": plan.optimal,
                "plan_seconds": plan.seconds,
                "note": plan.note,
            }
        )
    return rows


MAX_LISTED_CLASSES = 8


def cuts_summary(inst: PlanningInstance, plan: Plan) -> str:
    """The plan's cut per class ("group 0 (rpi4b): 3, ..."), or per device with client counts when there
    are too many classes to list (per-client plans: "rpi4b: cut 1 ×9, cut 3 ×2; ...")."""
    cuts = plan.cuts(inst)
    if inst.num_classes <= MAX_LISTED_CLASSES:
        return ", ".join(f"{lab}: {int(c)}" for lab, c in zip(inst.label, cuts, strict=True))
    parts = []
    for device in dict.fromkeys(inst.device_id):
        members = [g for g in range(inst.num_classes) if inst.device_id[g] == device]
        tally = {}
        for g in members:
            tally[int(cuts[g])] = tally.get(int(cuts[g]), 0) + int(inst.count[g])
        parts.append(f"{device}: " + ", ".join(f"cut {c} ×{n}" for c, n in sorted(tally.items())))
    return "; ".join(parts)


def class_table(inst: PlanningInstance, plan: Plan) -> list[dict]:
    """One row per client class: its cut, share, samples, memory and its own phase times."""
    from psl_core.planner.step_time import phase_terms

    t = phase_terms(inst, plan.cut_index)
    x = plan.shares
    if x is None:
        up_a, up_y = t.own_upload_a[0], t.own_upload_y[0]
    else:
        up_a, up_y = t.alpha[0] / x, t.pi[0] / x
    memory = inst.cuts.client_memory_bytes(inst.samples)
    rows = []
    for g in range(inst.num_classes):
        c = int(plan.cut_index[g])
        rows.append(
            {
                "class": inst.label[g],
                "device": inst.device_id[g],
                "clients": int(inst.count[g]),
                "samples_per_step": float(inst.samples[g]),
                "cut": int(inst.cuts.cut[c]),
                "after_block": inst.cuts.name[c],
                "share": None if x is None else float(x[g]),
                "uplink_mbps": (float(x[g] * inst.uplink_bps) if x is not None else float(inst.up_bps[g]))
                / 1e6,
                "forward_upload_s": float(t.a[0, g] + up_a[g]),
                "download_backward_s": float(t.delta[0, g]),
                "sync_s": float(t.y[0, g] + up_y[g]),
                "client_memory_mib": float(memory[g, c] / 2**20),
                "memory_mib": float(inst.memory_bytes[g] / 2**20),
            }
        )
    return rows


def unlimited_uplink_floor(inst: PlanningInstance) -> float:
    """The step time no uplink can beat: the best plan when uploading costs nothing but latency."""
    fast = inst.with_uplink(None)
    free_up = np.full(inst.num_classes, 1e300)  # uploads take no time, latency stays
    fast = _with_up(fast, free_up)
    return plan_exact(fast).step_time_s


def _with_up(inst: PlanningInstance, up_bps: np.ndarray) -> PlanningInstance:
    from psl_core.planner.instance import _replace

    return _replace(inst, up_bps=up_bps)


def check_target(inst: PlanningInstance, plan: Plan, target_s: float) -> None:
    """PlanningError when ``plan`` (the exact one) misses the step-time target: says by how much, what
    bounds the step, and which shared uplink (if any) would meet the target."""
    if not (np.isfinite(target_s) and target_s > 0):
        raise PlanningError(f"the step-time target must be a positive number of seconds, got {target_s!r}")
    if plan.step_time_s <= target_s:
        return
    floor = unlimited_uplink_floor(inst)
    head = (
        f"no plan reaches a step time of {target_s:.4g} s: the best plan needs {plan.step_time_s:.4g} s "
        f"(forward+upload {plan.phases.forward_upload[0]:.4g} s, server {plan.phases.server[0]:.4g} s, "
        f"download+backward {plan.phases.download_backward[0]:.4g} s, sync {plan.phases.sync[0]:.4g} s)"
    )
    if floor > target_s * (1 - 1e-12):
        slow = int(np.argmax(inst.samples / inst.speed))
        raise PlanningError(
            f"{head}; even an unlimited uplink leaves {floor:.4g} s of compute, download and latency "
            f"(slowest per sample: {inst.device_id[slow]!r}) — raise the target, use faster devices or a "
            "faster server, or fewer samples per step"
        )
    if not inst.shared:
        rows = class_table(inst, plan)
        slowest = max(rows, key=lambda r: r["forward_upload_s"] + r["sync_s"])
        raise PlanningError(
            f"{head}; the devices' own uplinks are the limit (longest uploads: device {slowest['device']!r} "
            f"in {slowest['class']} at {slowest['uplink_mbps']:.4g} Mbit/s) — faster uplinks, or a shared "
            "uplink (--uplink-mbps), could meet it"
        )
    lo, hi = inst.uplink_bps, inst.uplink_bps
    for _ in range(60):  # grow W until the target is met
        hi *= 2.0
        if plan_exact(inst.with_uplink(hi)).step_time_s <= target_s:
            break
    else:
        capped = [
            f"{inst.device_id[g]!r} ({inst.label[g]})" for g in np.flatnonzero(np.isfinite(inst.share_cap))
        ]
        if not capped:
            raise PlanningError(
                f"{head}; only an unlimited uplink would (it leaves {floor:.4g} s): raise the target"
            )
        raise PlanningError(
            f"{head}; no shared uplink meets it: the uplink caps of {', '.join(capped)} (their top rates) "
            "bound their uploads — raise those caps or the target"
        )
    for _ in range(20):  # to within ~1e-6 of the needed W (geometric bisection)
        mid = np.sqrt(lo * hi)
        if plan_exact(inst.with_uplink(mid)).step_time_s <= target_s:
            hi = mid
        else:
            lo = mid
    rows = class_table(inst, plan)
    slowest = max(rows, key=lambda r: r["forward_upload_s"] + r["sync_s"])
    raise PlanningError(
        f"{head}; the shared uplink of {inst.uplink_bps / 1e6:.4g} Mbit/s is too small: about "
        f"{hi / 1e6:.4g} Mbit/s would meet the target (the longest uploads are those of device "
        f"{slowest['device']!r} in {slowest['class']}: {slowest['forward_upload_s']:.4g} s forward+upload and "
        f"{slowest['sync_s']:.4g} s sync at {slowest['uplink_mbps']:.4g} Mbit/s)"
    )
