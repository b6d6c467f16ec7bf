"""The split planner for an experiment config: what ``psl plan`` prints and the Split planner page shows.

Everything here is pure (pandas frames from psl_core.planner): the page and the command line format it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from psl_core.config import ExperimentConfig
from psl_core.planner import (
    METHOD_TITLES,
    Comparison,
    ParetoFront,
    PlanningError,
    PlanningInstance,
    apply_plan,
    check_target,
    class_table,
    compare_methods,
    device_cut_table,
    instance_from_config,
    methods_table,
    pareto_front,
    per_device_cuts,
)
from psl_core.planner.pareto import MAX_COMBINATIONS

DEFAULT_UPLINK_MBPS = 100.0
PER_CLIENT_MAX_NODES = 50_000


@dataclass
class PlannerReport:
    """The four methods, the exact plan per group and per client, the energy front, notes."""

    config: ExperimentConfig
    instance: PlanningInstance
    comparison: Comparison
    methods: pd.DataFrame
    groups: pd.DataFrame
    clients: pd.DataFrame
    front: pd.DataFrame | None
    pareto: ParetoFront | None
    notes: list[str] = field(default_factory=list)

    @property
    def exact(self):
        return self.comparison.exact


def client_sizes(config: ExperimentConfig) -> tuple[np.ndarray | None, str | None]:
    """The partition's client sizes N_k (loads the data), or (None, why) when the data is not at hand."""
    from psl_core.engine.setup import experiment_dataset, experiment_partition

    try:
        dataset = experiment_dataset(config)
        partition = experiment_partition(config, dataset.y_train.numpy(), dataset.num_classes)
    except (ValueError, OSError) as err:
        return None, f"client sizes assumed equal: the partition could not be built ({err})"
    return np.asarray(partition.sizes, dtype=float), None


# What the planner's model (one synchronous PSL step: every client in parallel, phases with barriers,
# a shared uplink divided among them) means for each paradigm. FedAvg has no cut: nothing to plan.
_SPLITFED_NOTE = (
    "SplitFed clients step in parallel like PSL's: this is PSL's per-step view of the run; the averaging "
    "at the end of each round is not in the step time."
)
PARADIGM_NOTES = {
    "sl": "Sequential SL trains one client at a time: the plan's step time assumes PSL's parallel "
    "clients. Its cuts still say what each device can hold and compute; its uplink shares do not apply "
    "(in its turn a client has the whole link).",
    "sflv1": _SPLITFED_NOTE,
    "sflv2": _SPLITFED_NOTE,
    "hsfl": "Hybrid SL/FL: the plan treats every client as split (PSL's step). Which devices should train "
    "the whole model instead (FL mode) is not planned here.",
}


def paradigm_notes(config: ExperimentConfig) -> list[str]:
    """What the plan means for the config's paradigm (PSL: nothing to add). Raises PlanningError for a
    paradigm without a split point."""
    name = config.paradigm.name
    if name == "fedavg":
        raise PlanningError(
            "FedAvg trains the whole model on every client: there is no cut or uplink share to plan. "
            "Set paradigm.name to psl, sflv1, sflv2, sl or hsfl to plan a split."
        )
    return [PARADIGM_NOTES[name]] if name in PARADIGM_NOTES else []


def plan_config(
    config: ExperimentConfig,
    *,
    uplink_mbps: float | None = None,
    sizes: np.ndarray | None = None,
    target_s: float | None = None,
    with_front: bool = True,
    caps_mbps: dict[str, float] | None = None,
    per_client: bool = False,
) -> PlannerReport:
    """Plan ``config``'s device mix: the four methods, the exact plan's tables and the energy front.

    ``uplink_mbps`` (W) overrides the config's shared uplink; with neither, every device keeps its own
    uplink and only the cuts are planned. ``per_client`` gives every client its own cut and share (exact
    per client; such a plan cannot be applied to a config). Raises PlanningError with what to change."""
    notes = paradigm_notes(config)
    inst = instance_from_config(
        config, uplink_mbps=uplink_mbps, client_sizes=sizes, share_cap_mbps=caps_mbps, per_client=per_client
    )
    unknown = sorted(set(caps_mbps or {}) - set(inst.device_id))
    if unknown:
        raise PlanningError(
            f"cap for device(s) {unknown} not in this experiment's mix ({', '.join(inst.device_id)})"
        )
    if sizes is None:
        notes.append("Client sizes assumed equal (the partition was not given).")
    # One class per client multiplies the cut combinations: a smaller search budget keeps the answer
    # interactive (the plan then says how close to the optimum it is proven to be).
    comparison = (
        compare_methods(inst, max_nodes=PER_CLIENT_MAX_NODES) if per_client else compare_methods(inst)
    )
    if target_s is not None:
        check_target(inst, comparison.exact, target_s)
    methods = pd.DataFrame(methods_table(comparison))
    front_frame, pareto = None, None
    if with_front:
        try:
            pareto = pareto_front(inst)
        except PlanningError as err:
            notes.append(f"No energy front: {err}")
        else:
            front_frame = front_table(inst, pareto)
    if not inst.shared:
        notes.append("No shared uplink: every device keeps its own uplink and only the cuts are planned.")
    if config.sampling.method == "lds" and config.sampling.lds_delta > 0:
        notes.append(
            "LDS with δ > 0 moves samples away from slow clients; the plan assumes UGS's expected counts."
        )
    return PlannerReport(
        config=config,
        instance=inst,
        comparison=comparison,
        methods=methods,
        groups=pd.DataFrame(class_table(inst, comparison.exact)),
        clients=client_frame(config, inst, sizes),
        front=front_frame,
        pareto=pareto,
        notes=notes,
    )


def client_frame(config: ExperimentConfig, inst: PlanningInstance, sizes) -> pd.DataFrame:
    """One row per client: its group, device, expected samples per step and its group's exact cut/share."""
    from psl_core.engine.setup import assign_client_groups
    from psl_core.planner import expected_samples_per_step

    k = config.partition.num_clients
    n = np.ones(k) if sizes is None else np.asarray(sizes, dtype=float)
    s = config.sampling
    b = expected_samples_per_step(s.method, n, s.batch_size, s.per_client_batch)
    group_of = assign_client_groups(config.system.clients, k, config.seed)
    return pd.DataFrame({"client": np.arange(k), "group": group_of, "samples_per_step": b, "data_size": n})


def plan_columns(report: PlannerReport, plan) -> pd.DataFrame:
    """Per-client table for ``plan``: the client frame joined with its class's cut and share (its group's,
    or its own in a per-client plan)."""
    inst = report.instance
    by_class = {
        cid: (int(inst.cuts.cut[plan.cut_index[c]]), None if plan.shares is None else float(plan.shares[c]))
        for c, cid in enumerate(inst.class_id)
    }
    frame = report.clients.copy()
    frame["device"] = [report.config.system.clients[g].device for g in frame["group"]]
    key = frame["client"] if inst.per_client else frame["group"]
    frame["cut"] = [by_class.get(c, (None, None))[0] for c in key]
    frame["share"] = [by_class.get(c, (None, None))[1] if b > 0 else None
                      for c, b in zip(key, frame["samples_per_step"], strict=True)]  # fmt: skip
    if inst.shared:
        frame["uplink_mbps"] = frame["share"] * inst.uplink_bps / 1e6
    return frame


def front_table(inst: PlanningInstance, pareto: ParetoFront) -> pd.DataFrame:
    """One row per Pareto plan: step time, energy, cuts, and whether it is the chosen one."""
    rows = []
    for i, plan in enumerate(pareto.plans):
        rows.append(
            {
                "point": i,
                "step_time_s": plan.step_time_s,
                "energy_j": plan.energy_j,
                "cuts": ", ".join(str(int(c)) for c in plan.cuts(inst)),
                "chosen": plan is pareto.chosen,
            }
        )
    return pd.DataFrame(rows)


def applied_config(report: PlannerReport, which: str = "exact") -> ExperimentConfig:
    """The config with a plan written in: 'exact' or 'chosen' (the energy front's chosen point)."""
    if which == "chosen":
        if report.pareto is None:
            raise PlanningError("there is no energy front to choose from; apply the exact plan")
        plan = report.pareto.chosen
    elif which in report.comparison.plans and report.comparison.plans[which] is not None:
        plan = report.comparison.plans[which]
    else:
        raise PlanningError(f"unknown or infeasible plan {which!r}; choose exact, chosen or a method name")
    return apply_plan(report.config, report.instance, plan)


def report_json(report: PlannerReport) -> dict:
    """Everything the command line's --json prints (numbers as plain floats)."""
    inst = report.instance
    return {
        "uplink_mbps": None if inst.uplink_bps is None else inst.uplink_bps / 1e6,
        "per_client": inst.per_client,
        "methods": _records(report.methods),
        "groups": _records(report.groups),
        "clients": _records(plan_columns(report, report.exact)),
        "front": None if report.front is None else _records(report.front),
        "chosen": None if report.pareto is None else report.pareto.explanation,
        "notes": report.notes,
    }


def _records(frame: pd.DataFrame) -> list[dict]:
    return [
        {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
        for row in frame.astype(object).where(frame.notna(), None).to_dict("records")
    ]


def method_phases_frame(methods: pd.DataFrame) -> pd.DataFrame:
    """Long frame (method, phase, seconds) for the stacked bars of the methods chart."""
    feasible = methods[methods["feasible"]]
    phases = {
        "forward_upload_s": "forward + upload",
        "server_s": "server",
        "download_backward_s": "download + backward",
        "sync_s": "client-part sync",
    }
    long = feasible.melt(id_vars=["method"], value_vars=list(phases), var_name="phase", value_name="seconds")
    long["phase"] = long["phase"].map(phases)
    long["order"] = long["phase"].map({v: i for i, v in enumerate(phases.values())})
    return long


def device_advice(
    config: ExperimentConfig, memory_budget_mb: dict[str, float] | None = None
) -> tuple[dict[str, int], pd.DataFrame]:
    """Per device group, the cut that is fastest for one of its clients alone within its memory (the
    planner's per-device method), and the per-cut table behind it (what ``psl advise`` prints)."""
    inst = instance_from_config(config)
    if memory_budget_mb:
        from psl_core.planner.instance import MIB, _replace

        unknown = sorted(set(memory_budget_mb) - set(inst.device_id))
        if unknown:
            raise PlanningError(f"memory budget for device(s) {unknown} not in this experiment's mix")
        memory = np.array(
            [
                memory_budget_mb.get(d, m / MIB) * MIB
                for d, m in zip(inst.device_id, inst.memory_bytes, strict=True)
            ]
        )
        inst = _replace(inst, memory_bytes=memory)
    best = per_device_cuts(inst)
    rows = device_cut_table(inst)
    table = pd.DataFrame(
        [
            {
                "device": r.device_id,
                "group": r.label,
                "cut": r.cut,
                "after block": r.cut_name,
                "step time (ms)": round(r.step_time_s * 1e3, 3),
                "compute (ms)": round(r.compute_s * 1e3, 3),
                "transfer (ms)": round(r.transfer_s * 1e3, 3),
                "client memory (MiB)": round(r.client_memory_bytes / 2**20, 3),
                "fits memory": r.fits_memory,
                "best": int(inst.cuts.cut[best[list(inst.label).index(r.label)]]) == r.cut,
            }
            for r in rows
        ]
    )
    best_cut = {inst.label[g]: int(inst.cuts.cut[best[g]]) for g in range(inst.num_classes)}
    return best_cut, table


__all__ = [
    "DEFAULT_UPLINK_MBPS",
    "MAX_COMBINATIONS",
    "METHOD_TITLES",
    "PlannerReport",
    "applied_config",
    "client_sizes",
    "device_advice",
    "front_table",
    "method_phases_frame",
    "plan_columns",
    "plan_config",
    "report_json",
]
