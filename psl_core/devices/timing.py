"""Analytic simulated time of synchronous PSL steps (methods §4); nothing ever sleeps.

Client k at step t, with b = b[t, k] > 0 samples and compute slowdown s = s[t, k] >= 1, F its client
part's forward FLOPs per sample (the part before the cut), speed its effective training FLOP/s:

    f_k = b * F / speed * s                      client forward
    u_k = b * up_bytes * 8 / up_bps + latency    upload of the smashed data (and labels)
    d_k = b * down_bytes * 8 / down_bps + latency  download of the gradient of the smashed data
    g_k = 2 * b * F / speed * s                  client backward (backward ~ 2 x forward)

A synchronous step is a chain of phases separated by barriers (the server needs every client's
smashed data before its one pass, every client needs its gradient before the backward, and the
client-part copies must agree before the next step):

    T_step = max_k (f_k + u_k) + T_server + max_k (d_k + g_k) + T_sync
    T_server = 3 * sum_k b_k * F_server,k / server_speed      (forward + backward of the global batch)
    T_sync = max_k (P_k * 8 / up_bps_k + P_k * 8 / down_bps_k + 2 * latency_k)

T_sync: every active client uploads its client-part gradient (P_k bytes) and receives the aggregate —
PSL keeps ONE client model, and keeping the copies equal costs this every step (the
methods' 2·P·8/bw with separate up and down links). Maxima run over ACTIVE clients only.

U-shaped (the head and the loss back on the client): the server's pass is split by a head phase

    T_step = max_k (f_k + u_k) + T_server/3 + max_k (a_k + h_k + r_k) + 2*T_server/3 + max_k (d_k + g_k) + T_sync
    a_k = b * ret_bytes * 8 / down_bps + latency   activations at the second cut, server -> client
    h_k = 3 * b * F_head / speed * s              head forward + backward on the client
    r_k = b * ret_bytes * 8 / up_bps + latency     their gradient, client -> server

Both messages at the second cut carry their latency. They form ONE phase with the head compute:
nothing forces a barrier between a client receiving its activations and returning their gradient,
only the server's backward waits for all clients. Labels never leave the client, so no label bytes.
Per-client cuts (each client its own F, F_server, bytes, P) change cost, never the arithmetic.
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
_OPTIONAL_CUT_FIELDS = ("head_flops_per_sample", "return_bytes_per_sample", "client_param_bytes")


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
    # U-shaped cuts and the per-step synchronisation; None means 0 for every client.
    head_flops_per_sample: np.ndarray | None = None  # forward FLOPs of the head [cut2, L) (in client_flops)
    return_bytes_per_sample: np.ndarray | None = None  # activation bytes at cut2 (in bytes_up/down)
    client_param_bytes: np.ndarray | None = None  # P_k: bytes of the client part's parameters

    @property
    def num_clients(self) -> int:
        return len(self.device_ids)

    def _or_zeros(self, values: np.ndarray | None) -> np.ndarray:
        return np.zeros(self.num_clients) if values is None else np.asarray(values, dtype=float)

    @property
    def head_flops(self) -> np.ndarray:
        """(K,) forward FLOPs per sample of the client's head (0 unless U-shaped)."""
        return self._or_zeros(self.head_flops_per_sample)

    @property
    def return_bytes(self) -> np.ndarray:
        """(K,) bytes per sample of the activation at the second cut (0 unless U-shaped)."""
        return self._or_zeros(self.return_bytes_per_sample)

    @property
    def param_bytes(self) -> np.ndarray:
        """(K,) bytes of each client's client-part parameters (what the per-step sync moves)."""
        return self._or_zeros(self.client_param_bytes)

    def sync_time(self) -> np.ndarray:
        """(K,) seconds to upload the client-part gradient and download the aggregate (with latency).

        A client part without parameters has nothing to synchronise: no message, no latency.
        """
        bits = self.param_bytes * 8.0
        return np.where(bits > 0, bits / self.up_bps + bits / self.down_bps + 2.0 * self.latency_s, 0.0)

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
    # Optional facts of a cut (duck-typed summaries may lack them: then 0, i.e. no head, no sync cost).
    for name in _OPTIONAL_CUT_FIELDS:
        cut_arrays[name] = np.array([float(getattr(c, name, 0.0)) for c in cuts])
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
    """Simulated times of one epoch; per-step arrays have length T, per-entry arrays one value per
    (step, client) entry of the count matrix, per-client arrays length K."""

    step_time: np.ndarray  # (T,) seconds: the sum of the phases below
    client_time: np.ndarray  # (nnz,) the client's own busy time at that step (0 if inactive)
    server_time: np.ndarray  # (T,) T_server, forward + backward of the global batch
    slowest_client: np.ndarray  # (T,) id of the client with the largest busy time (-1 if none active)
    bytes_up: np.ndarray  # (T,) activations (+ labels) and client-part gradients, client -> server
    bytes_down: np.ndarray  # (T,) gradients (+ U-shaped activations) and the aggregate, server -> client
    busy_time: np.ndarray  # (K,) sum of the client's busy time over the steps where it is active
    idle_time: np.ndarray  # (K,) sum over all steps of (step_time - busy at that step)
    fwd_phase: np.ndarray  # (T,) max_k (f_k + u_k)
    head_phase: np.ndarray  # (T,) U-shaped: max_k (a_k + h_k + r_k); 0 otherwise
    bwd_phase: np.ndarray  # (T,) max_k (d_k + g_k)
    sync_phase: np.ndarray  # (T,) max_k sync_k over active clients
    entry_phases: dict[str, np.ndarray]  # per entry: forward, upload, head, download, backward, sync


#: Per-entry client phases in time order (a client's busy time is their sum).
CLIENT_PHASES = ("forward", "upload", "head", "download", "backward", "sync")


def _step_max(step: np.ndarray, values: np.ndarray, active: np.ndarray, num_steps: int) -> np.ndarray:
    out = np.zeros(num_steps)
    np.maximum.at(out, step[active], values[active])
    return out


def epoch_timing(
    step: np.ndarray,
    client: np.ndarray,
    count: np.ndarray,
    num_steps: int,
    system: ClientSystem,
    slowdown: np.ndarray | None = None,
) -> EpochTiming:
    """Simulated times of an epoch from its count matrix in COO form (step, client, count per entry).

    Entries with count 0 are inactive: they cost nothing and never set a phase maximum. Ties for the
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
    on = active.astype(float)  # inactive entries cost nothing, latency included
    speed, lat = system.speed_flops[client], system.latency_s[client]
    up, down = system.up_bps[client], system.down_bps[client]
    head_flops, ret = system.head_flops[client], system.return_bytes[client]
    part1_flops = system.client_flops_per_sample[client] - head_flops
    u_shaped = ret > 0
    # Bytes at the first cut: what goes up minus the second cut's activation (U-shaped) — i.e. smashed
    # data plus labels in a plain cut; what comes down minus the second cut's gradient.
    up_first = system.bytes_up_per_sample[client] - ret
    down_first = system.bytes_down_per_sample[client] - ret

    phases = {
        "forward": b * part1_flops / speed * s,
        "upload": b * up_first * 8.0 / up + lat * on,
        "head": np.where(
            u_shaped,
            b * ret * 8.0 / down
            + lat * on
            + 3.0 * b * head_flops / speed * s
            + b * ret * 8.0 / up
            + lat * on,
            3.0 * b * head_flops / speed * s,
        ),
        "download": b * down_first * 8.0 / down + lat * on,
        "backward": 2.0 * b * part1_flops / speed * s,
        "sync": system.sync_time()[client] * on,
    }
    fwd_phase = _step_max(step, phases["forward"] + phases["upload"], active, num_steps)
    head_phase = _step_max(step, phases["head"], active, num_steps)
    bwd_phase = _step_max(step, phases["download"] + phases["backward"], active, num_steps)
    sync_phase = _step_max(step, phases["sync"], active, num_steps)
    server_flops = b * system.server_flops_per_sample[client] * TRAIN_TO_FORWARD_FLOPS
    server_time = np.bincount(step, weights=server_flops, minlength=num_steps) / system.server_speed_flops
    step_time = fwd_phase + server_time + head_phase + bwd_phase + sync_phase
    client_time = np.where(active, sum(phases.values()), 0.0)

    # Slowest client: sort active entries by step, then busy time descending, then client id.
    slowest = np.full(num_steps, -1, dtype=np.int64)
    a_step, a_client, a_time = step[active], client[active], client_time[active]
    order = np.lexsort((a_client, -a_time, a_step))
    steps_sorted = a_step[order]
    first = np.flatnonzero(np.r_[True, steps_sorted[1:] != steps_sorted[:-1]]) if order.size else order
    slowest[steps_sorted[first]] = a_client[order][first]

    sync_bytes = system.param_bytes[client] * on
    busy = np.bincount(client, weights=client_time, minlength=k)
    return EpochTiming(
        step_time=step_time,
        client_time=client_time,
        server_time=server_time,
        slowest_client=slowest,
        bytes_up=np.bincount(
            step, weights=b * system.bytes_up_per_sample[client] + sync_bytes, minlength=num_steps
        ),
        bytes_down=np.bincount(
            step, weights=b * system.bytes_down_per_sample[client] + sync_bytes, minlength=num_steps
        ),
        busy_time=busy,
        idle_time=step_time.sum() - busy,
        fwd_phase=fwd_phase,
        head_phase=head_phase,
        bwd_phase=bwd_phase,
        sync_phase=sync_phase,
        entry_phases={name: np.where(active, value, 0.0) for name, value in phases.items()},
    )
