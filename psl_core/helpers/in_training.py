"""Helpers inside a training run: the simulated step time becomes the makespan of a helper schedule.

With H helpers the model is U-shaped (methods §5): part-1 and part-3 on the client, part-2 on the
client's helper. Once per run the chosen solver (any registered method, the exact one for small K)
schedules a nominal batch — each client sends its expected share of B. Every step then runs *that
schedule*: same client → helper assignment, and on each helper the same task order, retimed with the
step's batch sizes and straggler slowdowns (non-preemptive: tasks start as early as the solver's
order allows; preemptive: the solver's completion order is the priority order, so every task ends
no later than in the solver's schedule when the step equals the nominal batch). Inactive clients
are skipped. All steps of an epoch are scheduled in one vectorised call (rows = (step, helper)).

Memory is checked per step: each client's part-2 weights and optimiser state stay on its helper,
and the activations of the step's samples come on top, so a step with more samples than nominal
(LDS and UGS counts vary) can overflow a helper — that stops the run with a message saying which
step and helper, before the step runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psl_core.helpers.instance import HelperInputError, HelperInstance, check_variant, memory_fits
from psl_core.helpers.sequencing import batch_priority_schedule, batch_sequence_retime
from psl_core.helpers.solvers import SOLVERS, SolveResult, solve

MS = 1e3  # helper instances are in milliseconds
#: Largest K for which the exact solvers are offered inside training.
EXACT_MAX_CLIENTS = {"exact": 10, "brute_force": 4}


@dataclass(frozen=True)
class HelperCosts:
    """Per-sample seconds of each task piece. Client arrays are (K,), link arrays (K, H) — one
    link per (client, helper) pair — and helper arrays (H,), so helpers may be different devices."""

    part1_fwd: np.ndarray  # client compute of part-1 forward
    part1_bwd: np.ndarray
    part3_train: np.ndarray  # client part-3 forward + backward (with the loss)
    up1: np.ndarray  # (K, H) upload of cut-1 activations
    down1: np.ndarray  # (K, H) download of cut-1 gradients
    up2: np.ndarray  # (K, H) upload of cut-2 gradients
    down2: np.ndarray  # (K, H) download of cut-2 activations
    latency: np.ndarray  # (K, H) per message
    helper_fwd: np.ndarray  # (H,) part-2 forward per sample
    helper_bwd: np.ndarray  # (H,) part-2 backward per sample
    mem_per_sample_mb: float  # part-2 activation memory per sample on a helper
    mem_fixed_mb: float  # part-2 weights + gradients + optimiser state, per client
    helper_capacity_mb: np.ndarray  # (H,)

    @property
    def num_helpers(self) -> int:
        return len(self.helper_fwd)


@dataclass(frozen=True)
class HelperPlan:
    """The solver's schedule of the nominal batch, and what every step reuses from it."""

    costs: HelperCosts
    variant: str
    method: str
    nominal: SolveResult  # times in ms, on the nominal instance
    rank: np.ndarray  # (K, 2): position of each client's forward / backward task in its helper's order

    @property
    def assignment(self) -> np.ndarray:
        return np.asarray(self.nominal.schedule.helper, dtype=int)

    @property
    def nominal_makespan_s(self) -> float:
        return self.nominal.makespan / MS


def entry_times(costs: HelperCosts, client, helper, count, slowdown) -> dict[str, np.ndarray]:
    """release, p_fwd, gap, p_bwd, tail (seconds) of each (step, client) entry on its helper."""
    b, s = np.asarray(count, dtype=float), slowdown
    link = (client, helper)
    lat = costs.latency[link]
    return {
        "release": b * costs.part1_fwd[client] * s + b * costs.up1[link] + lat,
        "p_fwd": b * costs.helper_fwd[helper],
        "gap": 2 * lat + b * costs.down2[link] + b * costs.part3_train[client] * s + b * costs.up2[link],
        "p_bwd": b * costs.helper_bwd[helper],
        "tail": lat + b * costs.down1[link] + b * costs.part1_bwd[client] * s,
    }


def nominal_instance(costs: HelperCosts, nominal_counts: np.ndarray) -> HelperInstance:
    """The helper instance (ms, MB) of one batch in which client k sends ``nominal_counts[k]`` samples."""
    k, h = len(nominal_counts), costs.num_helpers
    clients, helpers = np.repeat(np.arange(k), h), np.tile(np.arange(h), k)
    times = entry_times(costs, clients, helpers, np.repeat(nominal_counts, h), np.ones(k * h))
    return HelperInstance(
        **{name: (v * MS).reshape(k, h) for name, v in times.items()},
        mem_demand=costs.mem_fixed_mb + costs.mem_per_sample_mb * np.asarray(nominal_counts, dtype=float),
        mem_capacity=costs.helper_capacity_mb,
    )


def task_ranks(result: SolveResult) -> np.ndarray:
    """(K, 2) order of every task on its helper by completion time (forward before backward on ties)."""
    sched = result.schedule
    k = len(sched.helper)
    done = np.stack([sched.fwd_end, sched.bwd_end], axis=1)
    keys = np.lexsort((np.tile([0, 1], k), done.ravel()))
    rank = np.empty(2 * k, dtype=int)
    rank[keys] = np.arange(2 * k)
    return rank.reshape(k, 2)


def plan_helpers(
    costs: HelperCosts, nominal_counts: np.ndarray, method: str, variant: str, seed: int
) -> HelperPlan:
    """Solve the nominal batch with ``method`` in ``variant`` (any registered solver)."""
    check_variant(variant)
    if method not in SOLVERS:
        raise HelperInputError(f"unknown helper solver {method!r}; choose one of {', '.join(SOLVERS)}")
    limit = EXACT_MAX_CLIENTS.get(method)
    if limit is not None and len(nominal_counts) > limit:
        raise HelperInputError(
            f"system.helpers.solver {method!r} is offered for at most {limit} clients (K = {len(nominal_counts)}); "
            "use 'lns' or 'local_search'"
        )
    result = solve(nominal_instance(costs, nominal_counts), method, variant=variant, seed=seed)
    return HelperPlan(costs, variant, method, result, task_ranks(result))


def check_step_memory(
    plan: HelperPlan, step: np.ndarray, client: np.ndarray, count: np.ndarray, num_steps: int
) -> None:
    """Raise HelperInputError naming the first (step, helper) whose clients overflow its memory."""
    costs = plan.costs
    h = costs.num_helpers
    fixed = np.bincount(plan.assignment, minlength=h) * costs.mem_fixed_mb  # every client's part-2 copy
    load = np.tile(fixed, (num_steps, 1)).astype(float)
    np.add.at(load, (step, plan.assignment[client]), costs.mem_per_sample_mb * np.asarray(count, dtype=float))
    bad = np.argwhere(~memory_fits(load, costs.helper_capacity_mb[None, :]))
    if len(bad):
        t, m = bad[0]
        raise HelperInputError(
            f"step {t}: helper {m} would hold {load[t, m]:.1f} MB of part-2 weights and activations, more than "
            f"its {costs.helper_capacity_mb[m]:.1f} MB; raise system.helpers.num_helpers, use a helper device "
            "with more memory or a smaller sampling.batch_size"
        )


def step_makespans(
    plan: HelperPlan,
    step: np.ndarray,
    client: np.ndarray,
    count: np.ndarray,
    num_steps: int,
    slowdown: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per step makespan (T,), and per entry: client busy time and completion time (nnz,), seconds."""
    costs = plan.costs
    check_step_memory(plan, step, client, count, num_steps)
    helper = plan.assignment[client]
    times = entry_times(costs, client, helper, count, slowdown)
    nnz = len(client)
    busy = times["release"] + times["gap"] + times["tail"]
    if nnz == 0:
        return np.zeros(num_steps), busy, busy
    # Rows are (step, helper) groups; members are entry ids, padded to the largest group.
    group = step * costs.num_helpers + helper
    order = np.lexsort((plan.rank[client, 0], group))
    uniq, start, sizes = np.unique(group[order], return_index=True, return_counts=True)
    pos = np.arange(nnz) - np.repeat(start, sizes)
    row = np.repeat(np.arange(len(uniq)), sizes)
    width = int(sizes.max())
    members = np.zeros((len(uniq), width), dtype=int)
    mask = np.zeros_like(members, dtype=bool)
    members[row, pos], mask[row, pos] = order, True
    # One virtual "helper" column: every entry's times are already those of its own helper.
    instance = HelperInstance(
        **{name: (v * MS)[:, None] for name, v in times.items()},
        mem_demand=np.zeros(nnz),
        mem_capacity=np.ones(1),
    )
    zeros = np.zeros(len(uniq), dtype=int)
    task_rank = np.concatenate([plan.rank[client[members], 0], plan.rank[client[members], 1]], axis=1)
    task_rank = np.where(np.concatenate([mask, mask], axis=1), task_rank, np.iinfo(np.int64).max)
    if plan.variant == "preemptive":
        _, bwd_end, _ = batch_priority_schedule(instance, members, mask, zeros, -task_rank.astype(float))
    else:
        sequence = np.argsort(task_rank, axis=1, kind="stable")
        sequence = np.where(
            np.take_along_axis(task_rank, sequence, axis=1) == np.iinfo(np.int64).max, -1, sequence
        )
        _, bwd_start, _ = batch_sequence_retime(instance, members, mask, zeros, sequence)
        bwd_end = bwd_start + instance.p_bwd[members, 0]
    completion = np.empty(nnz)
    completion[members[mask]] = (bwd_end[mask] + instance.tail[members[mask], 0]) / MS
    makespan = np.zeros(num_steps)
    np.maximum.at(makespan, step, completion)
    return makespan, busy, completion
