"""Simulated time, traffic and client energy of every paradigm (SPEC §4 and §6); nothing ever sleeps.

Per (step, client) entry with b samples and straggler factor s, client k at its own cut:
  f = b·F_client/speed·s (forward), g = 2f (backward), c = 3·b·F_model/speed·s (full-model step),
  u = b·bytes_up·8/up + latency (smashed data + labels up), d = b·bytes_down·8/down + latency.
Model transfers of P bytes take P·8/bandwidth + latency each way.

* split, parallel (sflv1, sflv2, the SL clients of hsfl): a step is three phases with barriers,
  max_k (f + u) + server + max_k (d + g), where the server works through every client's batch one
  after the other: Σ_k 3·b_k·F_server,k / speed_server. A round starts when every client holds the
  current client part (max_k download of P_client,k) and ends when all have sent it back (max_k upload).
* full model, local (fedavg, the FL clients of hsfl): no barrier between local steps; a round lasts
  max_k (download P_model + Σ_t c_k,t + upload P_model). The time logged at step t is the moment every
  client has finished its t-th local step (max_k of its download + compute so far); the last step
  also carries the uploads.
* hsfl: both groups in parallel; a step ends when both have reached it.
* sl: one client at a time: each step f + u + server + d + g; each client downloads the client part
  before its first step and uploads it after its last (the hand-off).

Energy per client (SPEC §6): E_k = P_busy,k · compute time + P_radio,k · transfer time (bits over
the link; latency is waiting, not sending). Traffic counts every byte each way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psl_core.devices.catalog import TRAIN_TO_FORWARD_FLOPS


@dataclass(frozen=True)
class ClientCosts:
    """Per-client constants (arrays of length K) and the model's totals."""

    speed: np.ndarray  # effective training FLOP/s
    up_bps: np.ndarray
    down_bps: np.ndarray
    latency: np.ndarray  # s per message
    client_flops: np.ndarray  # forward FLOPs per sample of the client part at the client's cut
    server_flops: np.ndarray  # forward FLOPs per sample of the server part
    act_up: np.ndarray  # bytes per sample client → server (smashed data + label)
    act_down: np.ndarray  # bytes per sample server → client (gradient of the smashed data)
    client_param_bytes: np.ndarray  # P_client at the client's cut
    model_param_bytes: float  # P_model
    model_flops: float  # forward FLOPs per sample of the whole model
    server_speed: float
    busy_watts: np.ndarray
    radio_watts: np.ndarray

    @classmethod
    def from_setup(cls, setup) -> ClientCosts:
        """From an ExperimentSetup: its time-model system, per-client cuts and device powers."""
        from psl_core.engine.setup import device_catalog

        catalog = device_catalog(setup.config)
        devices = [catalog[d] for d in setup.client_device_ids]
        return cls.from_parts(setup.system, setup.client_cut_summaries, setup.profile, devices)

    @classmethod
    def from_parts(cls, system, cut_summaries, profile, devices) -> ClientCosts:
        """From a ClientSystem, each client's CutSummary (or one for all), the model's profile and the
        clients' DeviceProfiles."""
        k = system.num_clients
        summaries = list(cut_summaries) * (k if len(cut_summaries) == 1 else 1)
        return cls(
            speed=system.speed_flops,
            up_bps=system.up_bps,
            down_bps=system.down_bps,
            latency=system.latency_s,
            client_flops=system.client_flops_per_sample,
            server_flops=system.server_flops_per_sample,
            act_up=system.bytes_up_per_sample,
            act_down=system.bytes_down_per_sample,
            client_param_bytes=np.array([float(c.client_param_bytes) for c in summaries]),
            model_param_bytes=float(profile.total_param_bytes),
            model_flops=float(profile.total_flops_per_sample),
            server_speed=float(system.server_speed_flops),
            busy_watts=np.array([d.busy_watts for d in devices]),
            radio_watts=np.array([d.radio_watts for d in devices]),
        )

    @property
    def num_clients(self) -> int:
        return len(self.speed)


@dataclass
class RoundCosts:
    """Costs of one round (or one PSL epoch). Per-step arrays (S,), per-client arrays (K,)."""

    step_time: np.ndarray
    elapsed: np.ndarray  # seconds from the round start to the end of each step
    bytes_up: np.ndarray
    bytes_down: np.ndarray
    energy: np.ndarray  # J spent by all clients during each step
    slowest_client: np.ndarray  # the client that ends each step last (-1: none)
    round_time: float
    client_busy: np.ndarray  # s computing or on the link
    client_energy: np.ndarray  # J
    client_bytes: np.ndarray  # bytes sent + received
    # Busy seconds per step: (S, m) per row of the round (stacked paradigms) or (S,) for the step's
    # one client (sl). Model transfers count in the first and last step.
    step_busy: np.ndarray | None = None


@dataclass
class _Part:
    """What one group of rows contributes: its own step-end times and sums over its rows."""

    frontier: np.ndarray  # (S,) when the group has finished each step (round-relative)
    end: float  # when the group's round ends (after its uploads)
    finish: np.ndarray  # (S, n) when each row's own work of each step ends (-inf: inactive)
    busy: np.ndarray  # (S, n) seconds each row computes or transfers in each step
    bytes_up: np.ndarray
    bytes_down: np.ndarray
    energy: np.ndarray
    row_busy: np.ndarray  # (n,)
    row_energy: np.ndarray
    row_bytes: np.ndarray


def _transfer(nbytes, bps):
    return np.asarray(nbytes, dtype=float) * 8.0 / bps


def _split_parallel(cc: ClientCosts, clients, count, slowdown) -> _Part:
    b, k = count.astype(float), clients
    active = b > 0
    compute = TRAIN_TO_FORWARD_FLOPS * b * cc.client_flops[k] / cc.speed[k] * slowdown
    tx_up, tx_down = _transfer(b * cc.act_up[k], cc.up_bps[k]), _transfer(b * cc.act_down[k], cc.down_bps[k])
    fwd_up = np.where(active, compute / 3 + tx_up + cc.latency[k], 0.0)
    down_bwd = np.where(active, tx_down + cc.latency[k] + compute * 2 / 3, 0.0)
    server = (TRAIN_TO_FORWARD_FLOPS * b * cc.server_flops[k]).sum(axis=1) / cc.server_speed
    step = fwd_up.max(axis=1, initial=0.0) + server + down_bwd.max(axis=1, initial=0.0)
    model_down = _transfer(cc.client_param_bytes[k], cc.down_bps[k])
    model_up = _transfer(cc.client_param_bytes[k], cc.up_bps[k])
    start = float((model_down + cc.latency[k]).max(initial=0.0))
    end_phase = float((model_up + cc.latency[k]).max(initial=0.0))
    frontier = start + np.cumsum(step)
    step_start = frontier - step
    energy_entry = cc.busy_watts[k] * compute + cc.radio_watts[k] * (tx_up + tx_down)
    part = _Part(
        frontier=frontier,
        end=(frontier[-1] if len(frontier) else start) + end_phase,
        finish=np.where(active, step_start[:, None] + fwd_up + server[:, None] + down_bwd, -np.inf),
        busy=_with_transfers(fwd_up + down_bwd, model_down + cc.latency[k], model_up + cc.latency[k]),
        bytes_up=(b * cc.act_up[k]).sum(axis=1),
        bytes_down=(b * cc.act_down[k]).sum(axis=1),
        energy=energy_entry.sum(axis=1),
        row_busy=(fwd_up + down_bwd).sum(axis=0) + model_down + model_up + 2 * cc.latency[k],
        row_energy=energy_entry.sum(axis=0) + cc.radio_watts[k] * (model_down + model_up),
        row_bytes=(b * (cc.act_up[k] + cc.act_down[k])).sum(axis=0) + 2 * cc.client_param_bytes[k],
    )
    _add_model_transfers(
        part, cc.client_param_bytes[k], cc.radio_watts[k] * model_down, cc.radio_watts[k] * model_up
    )
    return part


def _full_local(cc: ClientCosts, clients, count, slowdown) -> _Part:
    b, k = count.astype(float), clients
    compute = TRAIN_TO_FORWARD_FLOPS * b * cc.model_flops / cc.speed[k] * slowdown
    model_down = _transfer(np.full(len(k), cc.model_param_bytes), cc.down_bps[k])
    model_up = _transfer(np.full(len(k), cc.model_param_bytes), cc.up_bps[k])
    download = model_down + cc.latency[k]
    done = download + np.cumsum(compute, axis=0)  # (S, n) when each row finishes each local step
    upload = model_up + cc.latency[k]
    finished = done[-1] if len(done) else download
    energy_entry = cc.busy_watts[k] * compute
    part = _Part(
        frontier=done.max(axis=1, initial=0.0),
        end=float((finished + upload).max(initial=0.0)),
        finish=np.where(b > 0, done, -np.inf),
        busy=_with_transfers(compute, download, upload),
        bytes_up=np.zeros(len(b)),
        bytes_down=np.zeros(len(b)),
        energy=energy_entry.sum(axis=1),
        row_busy=compute.sum(axis=0) + download + upload,
        row_energy=energy_entry.sum(axis=0) + cc.radio_watts[k] * (model_down + model_up),
        row_bytes=np.full(len(k), 2 * cc.model_param_bytes),
    )
    _add_model_transfers(
        part,
        np.full(len(k), cc.model_param_bytes),
        cc.radio_watts[k] * model_down,
        cc.radio_watts[k] * model_up,
    )
    return part


def _with_transfers(busy: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Per-step busy time with each row's model download added to step 0 and upload to the last."""
    busy = busy.copy()
    if len(busy):
        busy[0] += first
        busy[-1] += last
    return busy


def _add_model_transfers(part: _Part, nbytes, energy_down, energy_up) -> None:
    """Downloads at the first step, uploads at the last."""
    if not len(part.frontier):
        return
    part.bytes_down[0] += nbytes.sum()
    part.bytes_up[-1] += nbytes.sum()
    part.energy[0] += energy_down.sum()
    part.energy[-1] += energy_up.sum()


def round_costs(cc: ClientCosts, paradigm: str, clients, count, slowdown, fl_rows=None) -> RoundCosts:
    """Costs of one round of ``paradigm`` ∈ {sflv1, sflv2, fedavg, hsfl} for rows ``clients`` (m,),
    ``count`` and ``slowdown`` (S, m). ``fl_rows`` (m,) bool: the hsfl clients in FL mode."""
    clients = np.asarray(clients)
    num_steps, m = count.shape
    if paradigm == "hsfl":
        fl = np.zeros(m, bool) if fl_rows is None else np.asarray(fl_rows, bool)
        groups = [(_full_local, fl), (_split_parallel, ~fl)]
    else:
        groups = [(_full_local if paradigm == "fedavg" else _split_parallel, np.ones(m, bool))]
    parts = [
        (fn(cc, clients[rows], count[:, rows], slowdown[:, rows]), rows) for fn, rows in groups if rows.any()
    ]
    frontier = np.max([p.frontier for p, _ in parts], axis=0) if num_steps else np.zeros(0)
    round_time = max(p.end for p, _ in parts)
    if num_steps:
        frontier[-1] = round_time
    finish = np.full((num_steps, m), -np.inf)
    busy = np.zeros((num_steps, m))
    per_client = {name: np.zeros(cc.num_clients) for name in ("busy", "energy", "bytes")}
    for part, rows in parts:
        finish[:, rows] = part.finish
        busy[:, rows] = part.busy
        per_client["busy"][clients[rows]] = part.row_busy
        per_client["energy"][clients[rows]] = part.row_energy
        per_client["bytes"][clients[rows]] = part.row_bytes
    slowest = np.where(count.any(axis=1), clients[finish.argmax(axis=1)] if m else -1, -1)
    return RoundCosts(
        step_time=np.diff(frontier, prepend=0.0),
        elapsed=frontier,
        bytes_up=sum(p.bytes_up for p, _ in parts),
        bytes_down=sum(p.bytes_down for p, _ in parts),
        energy=sum(p.energy for p, _ in parts),
        slowest_client=slowest,
        round_time=float(round_time),
        client_busy=per_client["busy"],
        client_energy=per_client["energy"],
        client_bytes=per_client["bytes"],
        step_busy=busy,
    )


def sequential_costs(cc: ClientCosts, clients, count, slowdown) -> RoundCosts:
    """Costs of one sl round whose steps are the flat sequence given by ``clients``, ``count``,
    ``slowdown`` (each (S,)): step i is client clients[i]'s batch of count[i] samples."""
    k, b = np.asarray(clients), np.asarray(count, dtype=float)
    compute = TRAIN_TO_FORWARD_FLOPS * b * cc.client_flops[k] / cc.speed[k] * slowdown
    tx_up, tx_down = _transfer(b * cc.act_up[k], cc.up_bps[k]), _transfer(b * cc.act_down[k], cc.down_bps[k])
    server = TRAIN_TO_FORWARD_FLOPS * b * cc.server_flops[k] / cc.server_speed
    step = compute + tx_up + tx_down + 2 * cc.latency[k] + server
    first = np.r_[True, k[1:] != k[:-1]] if len(k) else np.zeros(0, bool)
    last = np.r_[k[1:] != k[:-1], True] if len(k) else np.zeros(0, bool)
    model_down = _transfer(cc.client_param_bytes[k], cc.down_bps[k]) * first
    model_up = _transfer(cc.client_param_bytes[k], cc.up_bps[k]) * last
    step = step + (model_down + model_up) + cc.latency[k] * (first.astype(float) + last)
    energy = cc.busy_watts[k] * compute + cc.radio_watts[k] * (tx_up + tx_down + model_down + model_up)
    nbytes_up = b * cc.act_up[k] + cc.client_param_bytes[k] * last
    nbytes_down = b * cc.act_down[k] + cc.client_param_bytes[k] * first
    busy_step = step - server
    n = cc.num_clients
    elapsed = np.cumsum(step)
    return RoundCosts(
        step_time=step,
        elapsed=elapsed,
        bytes_up=nbytes_up,
        bytes_down=nbytes_down,
        energy=energy,
        slowest_client=k.copy(),
        round_time=float(elapsed[-1]) if len(elapsed) else 0.0,
        client_busy=np.bincount(k, weights=busy_step, minlength=n),
        client_energy=np.bincount(k, weights=energy, minlength=n),
        client_bytes=np.bincount(k, weights=nbytes_up + nbytes_down, minlength=n),
        step_busy=busy_step,
    )


def psl_energy(
    cc: ClientCosts, step, client, count, num_steps: int, slowdown
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PSL (SPEC §4) for an epoch's count matrix in COO form: (energy per step (T,), energy per client
    (K,), bytes per client (K,)), counting the per-step synchronisation of the client part: every
    active client uploads its gradient (P_client) and receives the aggregate."""
    k, b = np.asarray(client), np.asarray(count, dtype=float)
    active = b > 0
    compute = TRAIN_TO_FORWARD_FLOPS * b * cc.client_flops[k] / cc.speed[k] * slowdown
    sync = np.where(active, cc.client_param_bytes[k], 0.0)
    transfer = _transfer(b * cc.act_up[k] + sync, cc.up_bps[k]) + _transfer(
        b * cc.act_down[k] + sync, cc.down_bps[k]
    )
    energy = cc.busy_watts[k] * compute + cc.radio_watts[k] * transfer
    nbytes = b * (cc.act_up[k] + cc.act_down[k]) + 2 * sync
    n = cc.num_clients
    return (
        np.bincount(step, weights=energy, minlength=num_steps),
        np.bincount(k, weights=energy, minlength=n),
        np.bincount(k, weights=nbytes, minlength=n),
    )
