"""The exact planner: the globally best cut per client class and the best shares for them.

Why not bisection alone: with a single bottleneck (step = max over clients), a target T makes every
client independent — its smallest share is a 1-D minimum over its cuts and the target is reachable
iff those shares sum to at most 1, so bisection on T is exact. The time model's step is a sum of
three per-phase maxima plus the server's work, and the server's work is the SUM over clients of
what their cuts leave it: moving a client's cut later relieves the server but may cost uplink
share, a knapsack-like trade between clients that no per-client minimum sees (on random small
instances that minimum is off by up to 46 %; see docs). The planner therefore keeps bisection where
it is exact — the shares for fixed cuts (``shares.optimal_shares``) — and searches the cuts by
branch and bound:

* a node fixes the cuts of some classes; every free class is replaced by its cheapest cut term by
  term (smallest compute, transfer, sync and server work, each over its own memory-feasible cuts).
  The step time is nondecreasing in every term, so the optimal shares of that relaxed plan bound
  every completion from below;
* nodes whose bound is not below the best plan found are dropped; the best plan is improved by
  completing promising nodes with its own cuts; a plan with every class fixed is evaluated exactly.

The result is optimal to 1e-12 relative when the search finishes (``Plan.optimal``); with a node
budget it stops early and reports the best plan with a proven lower bound.
"""

from __future__ import annotations

import time

import numpy as np

from psl_core.devices.catalog import TRAIN_TO_FORWARD_FLOPS
from psl_core.planner.instance import PlanningInstance
from psl_core.planner.plan import Plan, best_shares, plan_with_best_shares
from psl_core.planner.shares import hyperbola_root, optimal_shares
from psl_core.planner.step_time import PhaseTerms, phase_terms

PRUNE_TOLERANCE = 1e-12  # a node is dropped when its bound is within this relative gap of the best plan
DEFAULT_MAX_NODES = 500_000
_COMPLETIONS_PER_LEVEL = 64


class _Options:
    """Per (class, cut) terms with one extra column per class: its cheapest value over feasible cuts."""

    def __init__(self, inst: PlanningInstance):
        g, c = inst.num_classes, inst.cuts.num_cuts
        every_cut = np.tile(np.arange(c)[:, None], (1, g))  # row j: every class at cut j
        t = phase_terms(inst, every_cut)
        server = (
            TRAIN_TO_FORWARD_FLOPS
            * inst.total_samples[:, None]
            * inst.cuts.server_flops[None, :]
            / inst.server_speed
        )
        feasible = inst.fits_memory
        self.shared = inst.shared
        self.relaxed = c  # the column index of the relaxed option
        self.tables = {}
        named = {
            "a": t.a.T,
            "alpha": t.alpha.T,
            "delta": t.delta.T,
            "y": t.y.T,
            "pi": t.pi.T,
            "server": server,
            "own_a": (t.a + t.own_upload_a).T,
            "own_y": (t.y + t.own_upload_y).T,
        }
        for name, table in named.items():
            cheapest = np.where(feasible, table, np.inf).min(axis=1, keepdims=True)
            self.tables[name] = np.concatenate([table, cheapest], axis=1)
        self.rows = np.arange(g)
        self.count, self.cap = inst.count, inst.share_cap

    def bound(self, nodes: np.ndarray, best: float = np.inf) -> np.ndarray:
        """Lower bound (exact value when no entry is relaxed) of the step time of each node row.

        Rows whose quick bound — each share phase on its own with the whole uplink — already reaches
        ``best`` keep that quick bound; the others get the optimal shares of their relaxed plan."""
        pick = {name: table[self.rows, nodes] for name, table in self.tables.items()}
        fixed = pick["server"].sum(axis=1) + pick["delta"].max(axis=1)
        if not self.shared:
            return fixed + pick["own_a"].max(axis=1) + pick["own_y"].max(axis=1)
        zeros = np.zeros_like(pick["a"])
        with np.errstate(divide="ignore"):
            floor_a = np.maximum(pick["a"].max(axis=1), (pick["a"] + pick["alpha"] / self.cap).max(axis=1))
            floor_y = np.maximum(
                pick["y"].max(axis=1),
                np.where(pick["pi"] > 0, pick["y"] + pick["pi"] / self.cap, -np.inf).max(axis=1),
            )
        quick = (
            fixed
            + hyperbola_root(pick["a"], pick["alpha"], zeros, self.count, floor_a)
            + hyperbola_root(pick["y"], pick["pi"], zeros, self.count, floor_y)
        )
        open_rows = np.flatnonzero(quick < best)  # the others can neither improve nor survive
        if open_rows.size == 0:
            return quick
        terms = PhaseTerms(
            a=pick["a"][open_rows],
            alpha=pick["alpha"][open_rows],
            delta=pick["delta"][open_rows],
            y=pick["y"][open_rows],
            pi=pick["pi"][open_rows],
            server=np.zeros(open_rows.size),
            own_upload_a=zeros[open_rows],
            own_upload_y=zeros[open_rows],
        )
        result = quick.copy()
        result[open_rows] = fixed[open_rows] + optimal_shares(terms, self.count, self.cap).share_time
        return result


def _twins(inst: PlanningInstance, order: np.ndarray) -> np.ndarray:
    """For each class, the class before it in ``order`` with identical inputs (-1 if none).

    Identical classes (per-client plans of equal clients) can swap plans without changing the step
    time, so some optimal plan gives them nondecreasing cuts along ``order``: the search keeps only
    those, which removes the symmetric copies of every node."""
    arrays = (
        inst.count,
        inst.samples,
        inst.total_samples,
        inst.speed,
        inst.up_bps,
        inst.down_bps,
        inst.latency_s,
        inst.memory_bytes,
        inst.power_busy_w,
        inst.power_radio_w,
        inst.share_cap,
    )
    twin = np.full(inst.num_classes, -1)
    last_seen: dict[tuple, int] = {}
    for g in order:
        key = (inst.device_id[g], *(float(a[g]) for a in arrays))
        if key in last_seen:
            twin[g] = last_seen[key]
        last_seen[key] = int(g)
    return twin


def plan_exact(
    inst: PlanningInstance,
    *,
    start: Plan | None = None,
    max_nodes: int = DEFAULT_MAX_NODES,
) -> Plan:
    """Branch and bound over the cut of every class; shares optimal for the cuts. ``start`` (any plan,
    e.g. a baseline) seeds the search with an upper bound."""
    began = time.perf_counter()
    inst.check_feasible()
    options = _Options(inst)
    feasible = inst.fits_memory
    g_count = inst.num_classes
    if start is not None:
        best_cut = np.asarray(start.cut_index, dtype=np.int64).copy()
    else:
        best_cut = np.array([int(np.flatnonzero(feasible[g])[0]) for g in range(g_count)])
    best = float(options.bound(best_cut[None, :])[0])
    # Heavy classes first: fixing them early tightens the bound most.
    order = np.argsort(-(inst.total_samples * inst.cuts.client_flops.max() / inst.speed), kind="stable")
    twin = _twins(inst, order)
    nodes = np.full((1, g_count), options.relaxed, dtype=np.int64)
    node_bounds = options.bound(nodes)
    explored, stopped = 0, False
    for depth, g in enumerate(order):
        cuts = np.flatnonzero(feasible[g])
        if explored + nodes.shape[0] * cuts.size > max_nodes:
            stopped = True  # the next level alone would pass the budget: stop before building it
            break
        children = np.repeat(nodes, cuts.size, axis=0)
        children[:, g] = np.tile(cuts, nodes.shape[0])
        if twin[g] >= 0:  # identical classes are interchangeable: only cuts in nondecreasing order
            children = children[children[:, g] >= children[:, twin[g]]]
        bounds = options.bound(children, best)
        explored += children.shape[0]
        if depth == g_count - 1:
            i = int(np.argmin(bounds))
            if bounds[i] < best:
                best, best_cut = float(bounds[i]), children[i].copy()
            nodes = children[:0]
            break
        keep = bounds < best * (1.0 - PRUNE_TOLERANCE)
        children, bounds = children[keep], bounds[keep]
        if children.shape[0]:
            # Complete the most promising nodes with the best plan's cuts: a cheap better upper bound.
            top = np.argsort(bounds, kind="stable")[:_COMPLETIONS_PER_LEVEL]
            completed = np.where(children[top] == options.relaxed, best_cut[None, :], children[top])
            values = options.bound(completed, best)
            i = int(np.argmin(values))
            if values[i] < best:
                best, best_cut = float(values[i]), completed[i].copy()
            keep = bounds < best * (1.0 - PRUNE_TOLERANCE)
            children, bounds = children[keep], bounds[keep]
        nodes, node_bounds = children, bounds
        if nodes.shape[0] == 0:
            break
    lower = min(best, float(node_bounds.min())) if (stopped and nodes.shape[0]) else best
    note = (
        f"branch and bound: {explored} nodes, optimal"
        if not stopped
        else f"branch and bound stopped after {explored} nodes (budget {max_nodes}): best plan found, "
        f"proven within {100 * (best - lower) / best:.3g} % of the optimum"
    )
    step, _ = best_shares(inst, best_cut)
    return plan_with_best_shares(
        inst,
        "exact",
        best_cut,
        optimal=not stopped,
        lower_bound_s=float(step[0]) if not stopped else lower,
        seconds=time.perf_counter() - began,
        note=note,
        iterations=explored,
    )
