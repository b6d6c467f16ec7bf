"""Split advisor: per device, the cut that minimises the expected step time within its memory budget.

Expected step time of a device at a cut, for ``samples_per_step`` samples and no straggling (the
methods §4 model, one client alone):

    compute_s  = n * F_client * 3 / device_speed + n * F_server * 3 / server_speed
    transfer_s = n * (up_bytes * 8 / up_bps + down_bytes * 8 / down_bps) + 2 * latency
    step_time_s = compute_s + transfer_s

A weak device prefers an early cut (little client compute) unless its link makes the larger early
activations too expensive; a memory budget removes the cuts whose client part does not fit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from psl_core.devices.catalog import DeviceProfile
from psl_core.devices.timing import build_client_system


@dataclass(frozen=True)
class CutOption:
    """One (device, cut) row of the advisor's table."""

    device_id: str
    cut: int
    cut_name: str
    step_time_s: float
    compute_s: float  # client + server compute for samples_per_step samples
    transfer_s: float  # activations up + gradients down + 2 latencies
    client_memory_bytes: int
    fits_memory: bool


@dataclass(frozen=True)
class SplitAdvice:
    """Best cut per device (fits memory, minimal expected step time) and the full table behind it."""

    best_cut: dict[str, int]
    table: list[CutOption]


def advise_cuts(
    cut_summaries: Sequence,
    device_ids: Sequence[str],
    *,
    samples_per_step: int,
    catalog: Mapping[str, DeviceProfile],
    server_device: DeviceProfile,
    memory_budget_bytes: Mapping[str, int] | None = None,
) -> SplitAdvice:
    """Choose a cut per distinct device in ``device_ids`` among ``cut_summaries`` (CutSummary-like).

    Each summary needs ``cut``, ``cut_name``, the four per-sample cost attributes and a method
    ``client_memory_bytes(batch_size) -> int``. A device's budget defaults to its ``memory_bytes``.
    Ties in step time go to the earlier cut (less client memory). Raises ValueError naming the device
    and the smallest memory any cut needs when no cut fits its budget.
    """
    if samples_per_step < 1:
        raise ValueError(f"samples_per_step must be >= 1, got {samples_per_step}")
    cuts = sorted(cut_summaries, key=lambda c: c.cut)
    if not cuts:
        raise ValueError("no cut summaries given: the model needs at least one cut point")
    devices = list(dict.fromkeys(device_ids))
    if not devices:
        raise ValueError("device_ids is empty: give the devices to advise for")
    budgets = dict(memory_budget_bytes or {})
    memory = [int(c.client_memory_bytes(samples_per_step)) for c in cuts]

    table: list[CutOption] = []
    best_cut: dict[str, int] = {}
    for device_id in devices:  # a handful of device types, each evaluated vectorised over cuts
        system = build_client_system([device_id] * len(cuts), cuts, server_device, catalog=catalog)
        n = float(samples_per_step)
        server_compute = n * system.server_flops_per_sample * 3.0 / system.server_speed_flops
        compute = n * system.compute_time_per_sample() + server_compute
        transfer = n * system.transfer_time_per_sample() + 2.0 * system.latency_s
        budget = budgets.get(device_id, catalog[device_id].memory_bytes)
        rows = [
            CutOption(
                device_id=device_id,
                cut=int(c.cut),
                cut_name=str(c.cut_name),
                step_time_s=float(compute[i] + transfer[i]),
                compute_s=float(compute[i]),
                transfer_s=float(transfer[i]),
                client_memory_bytes=memory[i],
                fits_memory=memory[i] <= budget,
            )
            for i, c in enumerate(cuts)
        ]
        feasible = [r for r in rows if r.fits_memory]
        if not feasible:
            raise ValueError(
                f"no cut fits device {device_id!r} within its memory budget of {budget / 2**20:.3g} MiB at "
                f"{samples_per_step} samples per step; the smallest client part needs {min(memory) / 2**20:.3g} MiB "
                "(raise the budget, lower the batch, or use another device)"
            )
        best_cut[device_id] = min(feasible, key=lambda r: (r.step_time_s, r.cut)).cut
        table.extend(rows)
    return SplitAdvice(best_cut=best_cut, table=table)
