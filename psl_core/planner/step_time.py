"""The synchronous step time of a plan (the time model's phases) and its energy, vectorised over plans.

A plan gives every client class a cut (an index into the instance's cut table) and, with a shared
uplink W, a per-member share x_g (sum_g count_g x_g <= 1). Per member of class g, with b = its
busiest member's samples per step, F = forward FLOPs per sample and theta the device's training
throughput (forward + backward = 3 F per sample), the phases separated by barriers are

    forward + upload    A_g = b F_client / theta + b up_bytes 8 / rate_g + latency
    server              S   = 3 sum_g (sum of its members' samples) F_server / theta_server
    download + backward D_g = b down_bytes 8 / down_g + latency + 2 b F_client / theta
    client-part sync    Y_g = P_client 8 / rate_g + P_client 8 / down_g + 2 latency  (0 if P_client = 0)

    step time T = max_g A_g + S + max_g D_g + max_g Y_g

with rate_g = x_g W on a shared uplink and the device's own uplink otherwise. The share-dependent
terms are written as ``p + q / x`` (p: the part that no share changes, q: the transfer time at the
whole of W), which is what the share solver works with.

Energy per step (SPEC section 6): busy power x compute time + radio power x transfer time, summed
over every member (so it uses the class's total samples), latency not counted as radio time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psl_core.devices.catalog import TRAIN_TO_FORWARD_FLOPS
from psl_core.planner.instance import PlanningInstance

BITS_PER_BYTE = 8.0


@dataclass(frozen=True)
class PhaseTerms:
    """Share-independent and share-dependent parts of every phase, arrays of shape (M, G) for M plans."""

    a: np.ndarray  # forward compute + latency (phase A without the upload)
    alpha: np.ndarray  # upload time of the activations at the whole shared uplink W (0 if not shared)
    delta: np.ndarray  # the whole phase D (download + latency + backward)
    y: np.ndarray  # sync without the upload: P 8 / down + 2 latency
    pi: np.ndarray  # sync upload time at the whole W (0 if not shared)
    server: np.ndarray  # (M,) server phase
    own_upload_a: np.ndarray  # activation upload at the device's own uplink (no shared uplink)
    own_upload_y: np.ndarray  # sync upload at the device's own uplink


def phase_terms(inst: PlanningInstance, cut_index: np.ndarray) -> PhaseTerms:
    """Terms of the plans whose class cuts are the rows of ``cut_index`` ((M, G) or (G,) indices)."""
    ci = np.atleast_2d(np.asarray(cut_index, dtype=np.int64))
    c = inst.cuts
    b, speed, lat = inst.samples, inst.speed, inst.latency_s
    forward = b * c.client_flops[ci] / speed
    up_bits = b * c.bytes_up[ci] * BITS_PER_BYTE
    down_bits = b * c.bytes_down[ci] * BITS_PER_BYTE
    sync_bits = c.client_param_bytes[ci] * BITS_PER_BYTE
    server = (
        TRAIN_TO_FORWARD_FLOPS * (inst.total_samples * c.server_flops[ci]).sum(axis=-1) / inst.server_speed
    )
    w = inst.uplink_bps
    zeros = np.zeros_like(forward)
    return PhaseTerms(
        a=forward + lat,
        alpha=up_bits / w if w is not None else zeros,
        delta=down_bits / inst.down_bps + lat + (TRAIN_TO_FORWARD_FLOPS - 1.0) * forward,
        # A client part without parameters has nothing to synchronise: no message, no latency.
        y=np.where(sync_bits > 0, sync_bits / inst.down_bps + 2.0 * lat, 0.0),
        pi=sync_bits / w if w is not None else zeros,
        server=server,
        own_upload_a=up_bits / inst.up_bps,
        own_upload_y=sync_bits / inst.up_bps,
    )


@dataclass(frozen=True)
class Phases:
    """Phase times of M plans, (M,) arrays; ``step`` is their sum."""

    forward_upload: np.ndarray
    server: np.ndarray
    download_backward: np.ndarray
    sync: np.ndarray

    @property
    def step(self) -> np.ndarray:
        return self.forward_upload + self.server + self.download_backward + self.sync


def _with_shares(terms: PhaseTerms, shares) -> tuple[np.ndarray, np.ndarray]:
    """(M, G) phase A and Y per class for the given shares (None = own uplinks)."""
    if shares is None:
        return terms.a + terms.own_upload_a, terms.y + terms.own_upload_y
    x = np.broadcast_to(np.asarray(shares, dtype=float), terms.a.shape)
    with np.errstate(divide="ignore"):
        return terms.a + terms.alpha / x, terms.y + terms.pi / x


def evaluate(inst: PlanningInstance, cut_index, shares=None) -> Phases:
    """Phase times of plans: ``cut_index`` (M, G) or (G,), ``shares`` broadcastable to it (shared uplink)
    or None (each device on its own uplink). A zero share on a shared uplink gives an infinite step."""
    if inst.shared and shares is None:
        raise ValueError("this instance plans a shared uplink: give every class a share")
    if not inst.shared and shares is not None:
        raise ValueError("this instance has no shared uplink: shares do not apply (pass None)")
    terms = phase_terms(inst, cut_index)
    phase_a, phase_y = _with_shares(terms, shares)
    return Phases(phase_a.max(axis=-1), terms.server, terms.delta.max(axis=-1), phase_y.max(axis=-1))


def step_energy(inst: PlanningInstance, cut_index, shares=None) -> np.ndarray:
    """(M,) client energy per step in joules: busy power x compute + radio power x transfer, all members."""
    ci = np.atleast_2d(np.asarray(cut_index, dtype=np.int64))
    c = inst.cuts
    n, total = inst.count, inst.total_samples
    compute = TRAIN_TO_FORWARD_FLOPS * total * c.client_flops[ci] / inst.speed
    up_bits = (total * c.bytes_up[ci] + n * c.client_param_bytes[ci]) * BITS_PER_BYTE
    down_bits = (total * c.bytes_down[ci] + n * c.client_param_bytes[ci]) * BITS_PER_BYTE
    if shares is None:
        up_rate = inst.up_bps
    else:
        up_rate = np.broadcast_to(np.asarray(shares, dtype=float), ci.shape) * inst.uplink_bps
    with np.errstate(divide="ignore"):
        radio = up_bits / up_rate + down_bits / inst.down_bps
    return (inst.power_busy_w * compute + inst.power_radio_w * radio).sum(axis=-1)


def energy_split(inst: PlanningInstance, cut_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fixed (M,), weights (M, G)): energy = fixed + sum_g weights_g / x_g on a shared uplink."""
    ci = np.atleast_2d(np.asarray(cut_index, dtype=np.int64))
    c = inst.cuts
    n, total = inst.count, inst.total_samples
    compute = TRAIN_TO_FORWARD_FLOPS * total * c.client_flops[ci] / inst.speed
    down_bits = (total * c.bytes_down[ci] + n * c.client_param_bytes[ci]) * BITS_PER_BYTE
    up_bits = (total * c.bytes_up[ci] + n * c.client_param_bytes[ci]) * BITS_PER_BYTE
    fixed = (inst.power_busy_w * compute + inst.power_radio_w * down_bits / inst.down_bps).sum(axis=-1)
    return fixed, inst.power_radio_w * up_bits / inst.uplink_bps
