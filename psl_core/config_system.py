"""The ``system`` section of the experiment config: client device groups, custom devices,
stragglers, helpers and the shared uplink (re-exported by :mod:`psl_core.config`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from psl_core.config_base import GFLOPS, LATENCY_MS, LINK_MBPS, MEMORY_MB, ConfigSection


class ClientGroup(ConfigSection):
    device: str = Field("rpi4b", description="Device id from the catalog (or a custom device).")
    fraction: float = Field(1.0, gt=0, le=1, description="Share of the clients with this device.")
    up_mbps: float | None = Field(None, **LINK_MBPS, description="Uplink Mbit/s (default: the device's).")
    down_mbps: float | None = Field(None, **LINK_MBPS, description="Downlink Mbit/s (default: the device's).")
    latency_ms: float | None = Field(
        None, **LATENCY_MS, description="Per-message latency ms (default: the device's)."
    )
    cut: int | str | None = Field(None, description="Per-device cut (cost only); default: the model's cut.")
    uplink_share: float | None = Field(
        None,
        gt=0,
        le=1,
        description=(
            "Share of the shared uplink W given to EACH client of this group (needs "
            "system.shared_uplink_mbps); groups without one split what is left equally."
        ),
    )


class CustomDevice(ConfigSection):
    id: str = Field(..., min_length=1)
    name: str = ""
    gflops: float = Field(..., **GFLOPS, description="Effective training throughput, GFLOP/s.")
    up_mbps: float = Field(50.0, **LINK_MBPS)
    down_mbps: float = Field(50.0, **LINK_MBPS)
    latency_ms: float = Field(5.0, **LATENCY_MS)
    memory_mb: float = Field(4096.0, **MEMORY_MB)
    busy_watts: float | None = Field(
        None, gt=0, le=1e6, description="Power while training, W (default: assumed 5 W)."
    )
    radio_watts: float | None = Field(
        None, gt=0, le=1e6, description="Power while sending/receiving, W (default: assumed 2 W)."
    )


class StragglerConfig(ConfigSection):
    persistent_fraction: float = Field(
        0.0, ge=0, le=1, description="Fraction of clients that are always slow."
    )
    persistent_factor: float = Field(10.0, ge=1, le=1e4, description="Slowdown of the persistent stragglers.")
    transient_prob: float = Field(0.0, ge=0, le=1, description="Per step, chance that a client is slowed.")
    transient_dist: Literal["lognormal", "pareto"] = Field(
        "lognormal", description="Law of transient slowdowns."
    )
    transient_scale: float = Field(
        1.0, ge=1e-2, le=100, description="Lognormal σ or Pareto shape of transient slowdowns."
    )


class HelperConfig(ConfigSection):
    num_helpers: int = Field(
        0,
        ge=0,
        le=1000,
        description="Helper servers H (0 = one server). Needs a U-shaped model (model.cut2).",
    )
    helper_device: str = Field("vm", description="Device id of every helper (unless helper_devices is set).")
    helper_devices: list[str] = Field(
        default_factory=list,
        description="Device id of each helper, one per helper (mixed helpers); empty = helper_device for all.",
    )
    solver: Literal["baseline", "greedy", "decomposition", "local_search", "lns", "exact", "brute_force"] = (
        Field(
            "greedy",
            description="How clients are assigned to helpers and tasks ordered (see the Helpers & scheduling page); "
            "'exact' is offered for at most 10 clients, 'brute_force' for 4.",
        )
    )
    variant: Literal["non_preemptive", "preemptive"] = Field(
        "non_preemptive",
        description="Whether a helper may interrupt a task and resume it later (the paper's model preempts).",
    )
    link_mbps: list[list[float]] | None = Field(
        None,
        description="Bandwidth (Mbit/s, both directions) of every client-helper link: one row per client, one "
        "value per helper. None = each client's own link.",
    )
    link_mbps_range: tuple[float, float] | None = Field(
        None,
        description="Draw every client-helper link bandwidth uniformly in [low, high] Mbit/s (seeded); ignored "
        "when link_mbps is set.",
    )

    @model_validator(mode="after")
    def _consistent_helpers(self) -> HelperConfig:
        if self.helper_devices and len(self.helper_devices) != self.num_helpers:
            raise ValueError(
                f"system.helpers.helper_devices lists {len(self.helper_devices)} devices for num_helpers = "
                f"{self.num_helpers}: give one device per helper or leave it empty"
            )
        if self.link_mbps is not None:
            bad = [i for i, row in enumerate(self.link_mbps) if len(row) != self.num_helpers]
            if bad:
                raise ValueError(
                    f"system.helpers.link_mbps row {bad[0]} has {len(self.link_mbps[bad[0]])} values: give one "
                    f"bandwidth per helper ({self.num_helpers})"
                )
            if any(not (v > 0) for row in self.link_mbps for v in row):
                raise ValueError("system.helpers.link_mbps must hold bandwidths > 0 Mbit/s")
        if self.link_mbps_range is not None:
            lo, hi = self.link_mbps_range
            if not 0 < lo <= hi:
                raise ValueError(
                    f"system.helpers.link_mbps_range must be [low, high] with 0 < low <= high, got {[lo, hi]}"
                )
        return self


class SystemConfig(ConfigSection):
    clients: list[ClientGroup] = Field(
        default_factory=lambda: [ClientGroup()], description="Device mix of the clients."
    )
    server_device: str = Field("vm", description="Device id of the server.")
    custom_devices: list[CustomDevice] = Field(default_factory=list)
    stragglers: StragglerConfig = Field(default_factory=StragglerConfig)
    helpers: HelperConfig = Field(default_factory=HelperConfig)
    shared_uplink_mbps: float | None = Field(
        None,
        gt=0,
        description=(
            "Shared uplink W in Mbit/s (a wireless cell): each client uploads at its group's "
            "uplink_share x W instead of its device's own uplink. Empty = every device its own uplink."
        ),
    )

    @model_validator(mode="after")
    def _fractions_sum_to_one(self) -> SystemConfig:
        total = sum(g.fraction for g in self.clients)
        if not self.clients or abs(total - 1.0) > 1e-6:
            raise ValueError(f"system.clients fractions must sum to 1 (they sum to {total:g}); adjust them")
        return self
