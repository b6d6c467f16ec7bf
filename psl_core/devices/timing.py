"""Analytic simulated time of synchronous PSL steps (methods §4); nothing ever sleeps.

Client k at step t, with b = b[t, k] > 0 samples and slowdown s = s[t, k] >= 1:

    t_k = b * F_client,k * 3 / speed_k * s                       (forward + backward compute)
        + b * up_bytes_k * 8 / up_bps_k + b * down_bytes_k * 8 / down_bps_k   (activations up, grads down)
        + 2 * latency_k                                             (one message each way)

This is the methods' (§4) ``2 * b * act_bytes * 8 / bw`` with separate up/down links and byte counts. The
synchronous step time is max over ACTIVE clients of t_k plus the server compute of the global batch,
sum_k b_k * F_server,k * 3 / server_speed (F per client because per-client cuts move blocks between
client and server). Per-client cuts therefore change cost, never the arithmetic of training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from psl_core.devices.catalog import TRAIN_TO_FORWARD_FLOPS, DeviceProfile

_CUT_FIELDS = (
    "client_flops_per_sample",
    "server_flops_per_sample",
    "bytes_up_per_sample",
    "bytes_down_per_sample",
)


@dataclass(frozen=True)
class ClientSystem:
    """Everything the time model needs, per client (arrays of shape (K,))."""

    speed_flops: np.ndarray  # effective training FLOP/s
    up_bps: np.ndarray
    down_bps: np.ndarray
    latency_s: np.ndarray
    client_flops_per_sample: np.ndarray  # forward FLOPs for that client's own cut
    server_flops_per_sample: np.ndarray
    bytes_up_per_sample: np.ndarray
    bytes_down_per_sample: np.ndarray
    server_speed_flops: float
    device_ids: tuple[str, ...]

    @property
    def num_clients(self) -> int:
        return len(self.device_ids)

    def compute_time_per_sample(self) -> np.ndarray:
        """(K,) client compute seconds per sample, forward + backward, no straggling."""
        return self.client_flops_per_sample * TRAIN_TO_FORWARD_FLOPS / self.speed_flops

    def transfer_time_per_sample(self) -> np.ndarray:
        """(K,) seconds per sample to send activations up and receive gradients down (no latency)."""
        return self.bytes_up_per_sample * 8.0 / self.up_bps + self.bytes_down_per_sample * 8.0 / self.down_bps

    def expected_time_per_sample(self) -> np.ndarray:
        """(K,) client-side seconds per sample (compute + transfer, no latency): the LDS latency input."""
        return self.compute_time_per_sample() + self.transfer_time_per_sample()


def _per_client(value, default: np.ndarray, scale: float, label: str) -> np.ndarray:
    """A (K,) array from an optional scalar/array override in user units (``scale`` converts to SI)."""
    if value is None:
        return default
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        arr = np.full(default.shape, float(arr))
    elif arr.shape != default.shape:
        raise ValueError(
            f"{label} override must be a scalar or one value per client {default.shape}, got {arr.shape}"
        )
    return arr * scale


def build_client_system(
    device_ids: Sequence[str],
    cut_summaries: Sequence,
    server_device: DeviceProfile,
    *,
    catalog: Mapping[str, DeviceProfile],
    up_mbps=None,
    down_mbps=None,
    latency_ms=None,
) -> ClientSystem:
    """Assemble the per-client arrays from device ids, each client's cut summary and optional link overrides.

    ``cut_summaries[k]`` is any object with ``client_flops_per_sample``, ``server_flops_per_sample``,
    ``bytes_up_per_sample`` and ``bytes_down_per_sample`` (duck-typed). A single summary is broadcast to
    every client (same cut for all). Overrides (scalar or (K,)) replace the devices' default links.
    """
    device_ids = tuple(device_ids)
    k = len(device_ids)
    if k == 0:
        raise ValueError("device_ids is empty: give one device id per client")
    unknown = sorted({d for d in device_ids if d not in catalog})
    if unknown:
        raise ValueError(f"unknown device ids {unknown}; known devices: {', '.join(sorted(catalog))}")
    cuts = list(cut_summaries)
    if len(cuts) == 1:
        cuts = cuts * k
    if len(cuts) != k:
        raise ValueError(f"need one cut summary per client (or one for all): got {len(cuts)} for {k} clients")
    for name in _CUT_FIELDS:
        missing = [i for i, c in enumerate(cuts) if not hasattr(c, name)]
        if missing:
            raise ValueError(f"cut summaries {missing[:5]} lack attribute {name!r}")
    cut_arrays = {name: np.array([float(getattr(c, name)) for c in cuts]) for name in _CUT_FIELDS}
    for name, arr in cut_arrays.items():
        if np.any(arr < 0) or not np.all(np.isfinite(arr)):
            raise ValueError(f"cut summary {name} must be finite and >= 0, got {arr}")
    devices = [catalog[d] for d in device_ids]
    up = _per_client(up_mbps, np.array([d.up_bps for d in devices]), 1e6, "up_mbps")
    down = _per_client(down_mbps, np.array([d.down_bps for d in devices]), 1e6, "down_mbps")
    latency = _per_client(latency_ms, np.array([d.latency_s for d in devices]), 1e-3, "latency_ms")
    if np.any(up <= 0) or np.any(down <= 0):
        raise ValueError("bandwidths must be > 0 Mbit/s for every client")
    if np.any(latency < 0):
        raise ValueError("latency must be >= 0 ms for every client")
    if not server_device.train_flops_per_s > 0:
        raise ValueError(f"server device {server_device.id!r} needs a positive throughput")
    return ClientSystem(
        speed_flops=np.array([d.train_flops_per_s for d in devices]),
        up_bps=up,
        down_bps=down,
        latency_s=latency,
        server_speed_flops=float(server_device.train_flops_per_s),
        device_ids=device_ids,
        **cut_arrays,
    )


@dataclass(frozen=True)
class EpochTiming:
    """Simulated times of one epoch; per-step arrays have length T, per-client arrays length K."""

    step_time: np.ndarray  # (T,) seconds
    client_time: np.ndarray  # (nnz,) t_k per (step, client) entry
    server_time: np.ndarray  # (T,)
    slowest_client: np.ndarray  # (T,) id of the client with the largest t_k (-1 if none active)
    bytes_up: np.ndarray  # (T,)
    bytes_down: np.ndarray  # (T,)
    busy_time: np.ndarray  # (K,) sum of t_k over the steps where the client is active
    idle_time: np.ndarray  # (K,) sum over all steps of (step_time - busy at that step)


def epoch_timing(
    step: np.ndarray,
    client: np.ndarray,
    count: np.ndarray,
    num_steps: int,
    system: ClientSystem,
    slowdown: np.ndarray | None = None,
) -> EpochTiming:
    """Simulated times of an epoch from its count matrix in COO form (step, client, count per entry).

    Entries with count 0 are inactive: they cost nothing and never set the step maximum. Ties for the
    slowest client go to the lowest client id. Vectorised over entries (no loop over steps or clients).
    """
    step, client = np.asarray(step, dtype=np.int64), np.asarray(client, dtype=np.int64)
    count = np.asarray(count)
    nnz, k = step.shape[0], system.num_clients
    if step.ndim != 1 or client.shape != step.shape or count.shape != step.shape:
        raise ValueError(
            f"step, client and count must be 1-D of equal length, got {step.shape}, {client.shape}, {count.shape}"
        )
    if num_steps < 0:
        raise ValueError(f"num_steps must be >= 0, got {num_steps}")
    if nnz and (step.min() < 0 or step.max() >= num_steps):
        raise ValueError(f"step indices must lie in [0, {num_steps}), got [{step.min()}, {step.max()}]")
    if nnz and (client.min() < 0 or client.max() >= k):
        raise ValueError(
            f"client ids must lie in [0, {k}) for this system, got [{client.min()}, {client.max()}]"
        )
    if nnz and count.min() < 0:
        raise ValueError("sample counts must be >= 0")
    s = np.ones(nnz) if slowdown is None else np.asarray(slowdown, dtype=float)
    if s.shape != (nnz,):
        raise ValueError(f"slowdown must have one factor per entry ({nnz},), got {s.shape}")
    if nnz and s.min() < 1.0:
        raise ValueError("slowdown factors must be >= 1 (a straggler is never faster than its device)")

    b = count.astype(float)
    active = b > 0
    compute = b * system.compute_time_per_sample()[client] * s
    up_bytes = b * system.bytes_up_per_sample[client]
    down_bytes = b * system.bytes_down_per_sample[client]
    transfer = up_bytes * 8.0 / system.up_bps[client] + down_bytes * 8.0 / system.down_bps[client]
    client_time = np.where(active, compute + transfer + 2.0 * system.latency_s[client], 0.0)

    server_flops = b * system.server_flops_per_sample[client] * TRAIN_TO_FORWARD_FLOPS
    server_time = np.bincount(step, weights=server_flops, minlength=num_steps) / system.server_speed_flops
    max_client = np.zeros(num_steps)
    np.maximum.at(max_client, step[active], client_time[active])
    step_time = max_client + server_time

    # Slowest client: sort active entries by step, then time descending, then client id; first per step.
    slowest = np.full(num_steps, -1, dtype=np.int64)
    a_step, a_client, a_time = step[active], client[active], client_time[active]
    order = np.lexsort((a_client, -a_time, a_step))
    steps_sorted = a_step[order]
    first = np.flatnonzero(np.r_[True, steps_sorted[1:] != steps_sorted[:-1]]) if order.size else order
    slowest[steps_sorted[first]] = a_client[order][first]

    busy = np.bincount(client, weights=client_time, minlength=k)
    return EpochTiming(
        step_time=step_time,
        client_time=client_time,
        server_time=server_time,
        slowest_client=slowest,
        bytes_up=np.bincount(step, weights=up_bytes, minlength=num_steps),
        bytes_down=np.bincount(step, weights=down_bytes, minlength=num_steps),
        busy_time=busy,
        idle_time=step_time.sum() - busy,
    )
