"""The planning instance: what the split planner knows about the model, the clients and the network.

Clients that share every parameter the step time depends on (device, link, memory, power, cap) are
planned together as one *client class*: its members use one cut and one uplink share each. A class
built from a device group may hold members with different per-step sample counts ``b_k``; the
phases of the step wait for its busiest member, so the class carries ``samples`` = max_k b_k (what
its slowest member processes) and ``total_samples`` = sum_k b_k (what the server processes for it).
One class per client (``count`` = 1) gives per-client decisions.

Costs per cut come from the model's per-block profile (:class:`psl_core.models.CutSummary`): forward
FLOPs on each side, bytes up/down per sample, client-part parameter bytes and the activation bytes a
client keeps for its backward pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from psl_core.devices.catalog import DeviceProfile

MIB = 2**20


class PlanningError(ValueError):
    """An instance the planner cannot plan: the message names the device/field and what would fix it."""


@dataclass(frozen=True)
class CutCosts:
    """Per-cut costs, arrays of shape (C,), one entry per candidate cut (single cut, not U-shaped)."""

    cut: np.ndarray  # int: the client runs blocks [0, cut)
    name: tuple[str, ...]  # name of the last client block
    client_flops: np.ndarray  # forward FLOPs per sample on the client
    server_flops: np.ndarray  # forward FLOPs per sample on the server
    bytes_up: np.ndarray  # per sample, client -> server (smashed data + label)
    bytes_down: np.ndarray  # per sample, server -> client (gradient at the cut)
    client_param_bytes: np.ndarray
    client_activation_bytes: np.ndarray  # per sample, kept by the client for its backward pass
    full_model_flops: float  # forward FLOPs per sample of the whole model (FL mode of hsfl)
    full_model_param_bytes: float
    full_model_activation_bytes: float

    @property
    def num_cuts(self) -> int:
        return int(self.cut.shape[0])

    def client_memory_bytes(self, samples: np.ndarray) -> np.ndarray:
        """(G, C) client training memory: 3 x parameter bytes (weights, grads, optimiser state)
        + activations of ``samples`` (per class, rounded up) — the same rule as ``CutSummary``."""
        n = np.ceil(np.asarray(samples, dtype=float))[:, None]
        return 3.0 * self.client_param_bytes[None, :] + n * self.client_activation_bytes[None, :]

    @classmethod
    def from_summaries(cls, summaries: Sequence, *, profile=None) -> CutCosts:
        """From ``CutSummary``-like objects (single cuts); ``profile`` adds the full-model totals."""
        cuts = sorted(summaries, key=lambda s: s.cut)
        if not cuts:
            raise PlanningError("the model has no cut point to plan: it needs at least two blocks")
        if any(getattr(s, "cut2", None) is not None for s in cuts):
            raise PlanningError(
                "the split planner plans single cuts; U-shaped models (model.cut2) are not planned yet — "
                "clear model.cut2 to plan the cut"
            )

        def arr(attr: str) -> np.ndarray:
            return np.array([float(getattr(s, attr)) for s in cuts])

        client, server = arr("client_flops_per_sample"), arr("server_flops_per_sample")
        if profile is not None:
            full_flops = float(profile.total_flops_per_sample)
            full_params = float(profile.total_param_bytes)
            full_acts = float(sum(b.out_bytes_per_sample for b in profile.blocks))
        else:
            full_flops = float(client[0] + server[0])
            full_params = float(cuts[-1].client_param_bytes + cuts[-1].server_param_bytes)
            full_acts = float(cuts[-1].client_activation_bytes_per_sample)
        return cls(
            cut=np.array([int(s.cut) for s in cuts]),
            name=tuple(str(s.cut_name) for s in cuts),
            client_flops=client,
            server_flops=server,
            bytes_up=arr("bytes_up_per_sample"),
            bytes_down=arr("bytes_down_per_sample"),
            client_param_bytes=arr("client_param_bytes"),
            client_activation_bytes=arr("client_activation_bytes_per_sample"),
            full_model_flops=full_flops,
            full_model_param_bytes=full_params,
            full_model_activation_bytes=full_acts,
        )


@dataclass(frozen=True)
class PlanningInstance:
    """One planning problem. Per-class arrays have shape (G,); ``cuts`` holds the (C,) cut costs.

    ``uplink_bps`` is the shared uplink W (bit/s) divided by per-member shares x_g with
    sum_g count_g * x_g <= 1; None means every client keeps its own device uplink (no shares to plan).
    ``share_cap`` bounds one member's share (e.g. its radio's top rate / W); inf = no cap.
    """

    cuts: CutCosts
    label: tuple[str, ...]  # class name shown to users (device id, group name ...)
    device_id: tuple[str, ...]
    count: np.ndarray  # members (active clients) per class
    samples: np.ndarray  # per-step samples of the class's busiest member (b_k max)
    total_samples: np.ndarray  # per-step samples of all members together (sum b_k)
    speed: np.ndarray  # effective training FLOP/s (forward + backward = 3 x forward FLOPs)
    up_bps: np.ndarray  # the device's own uplink (used when uplink_bps is None)
    down_bps: np.ndarray
    latency_s: np.ndarray
    memory_bytes: np.ndarray
    power_busy_w: np.ndarray
    power_radio_w: np.ndarray
    share_cap: np.ndarray
    server_speed: float
    uplink_bps: float | None
    server_device_id: str = "server"
    class_id: tuple[int, ...] = ()  # the caller's class keys (e.g. config group indices), if any
    per_client: bool = False  # every class is one client of the config (class_id = client indices)
    fits_memory: np.ndarray = field(init=False, repr=False)  # (G, C) bool

    def __post_init__(self) -> None:
        _validate(self)
        fits = self.cuts.client_memory_bytes(self.samples) <= self.memory_bytes[:, None]
        object.__setattr__(self, "fits_memory", fits)

    @property
    def num_classes(self) -> int:
        return len(self.label)

    @property
    def num_clients(self) -> int:
        return int(self.count.sum())

    @property
    def shared(self) -> bool:
        """Whether a shared uplink is planned (shares are decisions)."""
        return self.uplink_bps is not None

    def equal_shares(self) -> np.ndarray | None:
        """Every active client gets 1/K of the shared uplink (None without a shared uplink)."""
        if not self.shared:
            return None
        return np.minimum(np.full(self.num_classes, 1.0 / self.num_clients), self.share_cap)

    def with_uplink(self, uplink_bps: float | None) -> PlanningInstance:
        """The same instance with another shared uplink W (bit/s). A cap is a device's top uplink rate
        (e.g. its radio's), so it keeps its rate: as a share of the new W it scales by W_old / W_new."""
        cap = self.share_cap
        if self.uplink_bps is not None and uplink_bps is not None:
            cap = cap * (self.uplink_bps / float(uplink_bps))
        return _replace(self, uplink_bps=uplink_bps, share_cap=cap)

    def check_feasible(self) -> None:
        """PlanningError naming every class for which no cut fits its memory, with what would fit."""
        problems = []
        need = self.cuts.client_memory_bytes(self.samples)
        for g in np.flatnonzero(~self.fits_memory.any(axis=1)):
            smallest = int(np.argmin(need[g]))
            per_sample = self.cuts.client_activation_bytes[smallest]
            fixed = 3.0 * self.cuts.client_param_bytes[smallest]
            room = self.memory_bytes[g] - fixed
            with np.errstate(over="ignore"):  # tiny per-sample sizes: +-inf reads right below
                fitting = np.floor(room / per_sample) if per_sample > 0 else (np.inf if room >= 0 else 0.0)
            hint = (
                f"lower its per-step samples to at most {fitting:.6g} (smaller batch or more clients)"
                if fitting >= 1
                else "no batch size fits: its client part's weights alone exceed the memory"
            )
            problems.append(
                f"no cut fits device {self.device_id[g]!r} ({self.label[g]}): it has "
                f"{self.memory_bytes[g] / MIB:.6g} MiB, the smallest client part (cut {int(self.cuts.cut[smallest])}, "
                f"after {self.cuts.name[smallest]!r}) needs {need[g, smallest] / MIB:.6g} MiB at "
                f"{int(np.ceil(self.samples[g]))} samples per step; give it at least "
                f"{need[g, smallest] / MIB:.6g} MiB, or {hint}"
            )
        if problems:
            raise PlanningError("; ".join(problems))


def _replace(instance: PlanningInstance, **changes) -> PlanningInstance:
    fields = {
        name: getattr(instance, name)
        for name in instance.__dataclass_fields__
        if instance.__dataclass_fields__[name].init
    }
    fields.update(changes)
    return PlanningInstance(**fields)


def _validate(inst: PlanningInstance) -> None:
    g = len(inst.label)
    if g == 0:
        raise PlanningError("the instance has no active client: give at least one client with samples > 0")
    for name in (
        "count",
        "samples",
        "total_samples",
        "speed",
        "up_bps",
        "down_bps",
        "latency_s",
        "memory_bytes",
        "power_busy_w",
        "power_radio_w",
        "share_cap",
    ):
        value = getattr(inst, name)
        if not isinstance(value, np.ndarray) or value.shape != (g,):
            raise PlanningError(
                f"{name} must be an array with one value per client class ({g}), got {value!r}"
            )
        if np.any(np.isnan(value)):
            raise PlanningError(f"{name} holds NaN values: {value}")
    if len(inst.device_id) != g:
        raise PlanningError(f"device_id must name one device per client class ({g})")
    positive = (
        "count",
        "samples",
        "total_samples",
        "speed",
        "up_bps",
        "down_bps",
        "memory_bytes",
        "share_cap",
    )
    for name in positive:
        value = getattr(inst, name)
        bad = np.flatnonzero(~(value > 0))
        if bad.size:
            k = int(bad[0])
            raise PlanningError(
                f"{name} of {inst.label[k]!r} (device {inst.device_id[k]!r}) must be > 0, got {value[k]!r}"
            )
    for name in ("samples", "total_samples", "speed", "up_bps", "down_bps", "latency_s", "memory_bytes"):
        value = getattr(inst, name)
        if not np.all(np.isfinite(value)):
            raise PlanningError(f"{name} must be finite, got {value}")
    for name in ("latency_s", "power_busy_w", "power_radio_w"):
        value = getattr(inst, name)
        if np.any(value < 0) or not np.all(np.isfinite(value)):
            raise PlanningError(f"{name} must be finite and >= 0, got {value}")
    if np.any(inst.total_samples < inst.samples * (1 - 1e-12)):
        raise PlanningError("total_samples of a class cannot be smaller than its busiest member's samples")
    if np.any(inst.count != np.round(inst.count)):
        raise PlanningError(f"count must hold whole numbers of clients, got {inst.count}")
    if not (np.isfinite(inst.server_speed) and inst.server_speed > 0):
        raise PlanningError(
            f"the server device needs a positive finite throughput, got {inst.server_speed!r}"
        )
    if inst.uplink_bps is not None and not (np.isfinite(inst.uplink_bps) and inst.uplink_bps > 0):
        raise PlanningError(
            f"the shared uplink must be a positive finite rate, got {inst.uplink_bps!r} bit/s "
            "(set it in Mbit/s, e.g. 100)"
        )
    c = inst.cuts
    for name in ("client_flops", "server_flops", "bytes_up", "bytes_down", "client_param_bytes"):
        value = getattr(c, name)
        if np.any(value < 0) or not np.all(np.isfinite(value)):
            raise PlanningError(f"cut costs {name} must be finite and >= 0, got {value}")
    if np.any(c.bytes_up <= 0):
        raise PlanningError("every cut must send some bytes up (smashed data + label)")


def build_instance(
    cuts: CutCosts,
    device_ids: Sequence[str],
    samples_per_step: Sequence[float],
    *,
    catalog: Mapping[str, DeviceProfile],
    server_device: DeviceProfile,
    uplink_mbps: float | None,
    class_of: Sequence[int] | None = None,
    class_labels: Sequence[str] | None = None,
    share_cap_mbps: Mapping[str, float] | None = None,
    memory_budget_mb: Mapping[str, float] | None = None,
    link_overrides: Mapping[str, tuple[float | None, float | None, float | None]] | None = None,
) -> PlanningInstance:
    """Per-client inputs -> a planning instance of client classes.

    ``device_ids[k]`` and ``samples_per_step[k]`` describe client k (b_k = its expected samples per step;
    clients with b_k = 0 never transmit and are left out). ``class_of[k]`` groups clients that must share
    a cut and a share (default: one class per device id). Caps (Mbit/s per device id) bound a member's
    uplink rate; memory budgets (MiB per device id) replace the device's memory; link overrides give
    (up Mbit/s, down Mbit/s, latency ms) per device id, None keeping the device's value.
    """
    device_ids = list(device_ids)
    samples = np.asarray(samples_per_step, dtype=float)
    if samples.shape != (len(device_ids),):
        raise PlanningError(
            f"need one samples-per-step value per client: {samples.shape[0] if samples.ndim else 0} "
            f"values for {len(device_ids)} clients"
        )
    if np.any(~np.isfinite(samples)) or np.any(samples < 0):
        raise PlanningError(f"samples per step must be finite and >= 0, got {samples}")
    unknown = sorted({d for d in device_ids if d not in catalog})
    if unknown:
        raise PlanningError(f"unknown device ids {unknown}; known devices: {', '.join(sorted(catalog))}")
    if class_of is None:
        order = list(dict.fromkeys(device_ids))
        class_of = [order.index(d) for d in device_ids]
        class_labels = class_labels or order
    class_of = np.asarray(class_of, dtype=int)
    if class_of.shape != samples.shape:
        raise PlanningError("class_of needs one class index per client")
    active = samples > 0
    if not active.any():
        raise PlanningError("no client has samples to process (every b_k is 0): nothing to plan")
    classes = [c for c in sorted(set(class_of.tolist())) if np.any(active & (class_of == c))]
    labels, devices = [], []
    count, bmax, bsum = [], [], []
    for c in classes:
        members = np.flatnonzero(active & (class_of == c))
        member_devices = {device_ids[k] for k in members}
        if len(member_devices) != 1:
            raise PlanningError(
                f"client class {c} mixes devices {sorted(member_devices)}: a class shares one device"
            )
        devices.append(device_ids[members[0]])
        labels.append(str(class_labels[c]) if class_labels is not None else devices[-1])
        count.append(len(members))
        bmax.append(samples[members].max())
        bsum.append(samples[members].sum())
    profiles = [catalog[d] for d in devices]
    links = dict(link_overrides or {})
    caps = dict(share_cap_mbps or {})
    budgets = dict(memory_budget_mb or {})
    for name, mapping in (("cap", caps), ("memory budget", budgets)):
        for d, v in mapping.items():
            if not (isinstance(v, int | float) and np.isfinite(v) and v > 0):
                raise PlanningError(f"{name} of device {d!r} must be a positive number, got {v!r}")

    def link(d: DeviceProfile, i: int, default: float, scale: float) -> float:
        value = links.get(d.id, (None, None, None))[i]
        return default if value is None else float(value) * scale

    w = None if uplink_mbps is None else float(uplink_mbps) * 1e6
    cap = np.array(
        [caps[d.id] * 1e6 / w if (w is not None and d.id in caps) else np.inf for d in profiles], dtype=float
    )
    return PlanningInstance(
        cuts=cuts,
        label=tuple(labels),
        device_id=tuple(devices),
        count=np.array(count, dtype=float),
        samples=np.array(bmax, dtype=float),
        total_samples=np.array(bsum, dtype=float),
        speed=np.array([d.train_flops_per_s for d in profiles], dtype=float),
        up_bps=np.array([link(d, 0, d.up_bps, 1e6) for d in profiles], dtype=float),
        down_bps=np.array([link(d, 1, d.down_bps, 1e6) for d in profiles], dtype=float),
        latency_s=np.array([link(d, 2, d.latency_s, 1e-3) for d in profiles], dtype=float),
        memory_bytes=np.array(
            [budgets[d.id] * MIB if d.id in budgets else float(d.memory_bytes) for d in profiles], dtype=float
        ),
        power_busy_w=np.array([d.busy_watts for d in profiles], dtype=float),
        power_radio_w=np.array([d.radio_watts for d in profiles], dtype=float),
        share_cap=cap,
        server_speed=float(server_device.train_flops_per_s),
        uplink_bps=w,
        server_device_id=server_device.id,
        class_id=tuple(int(c) for c in classes),
    )
