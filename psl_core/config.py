"""The experiment config: one pydantic object that describes an experiment completely.

The same JSON drives the UI form, the CLI (``psl run config.yaml``), the worker and the stored
run. Same config + same seed = same metrics. Field descriptions are the help texts of the UI.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DatasetName = Literal["digits", "fashion_mnist", "mnist1d", "cifar10", "cifar100", "synthetic"]
SchemeName = Literal["iid", "dirichlet", "extended_dirichlet", "shards", "pathological", "quantity_skew"]
ArchName = Literal["mlp", "cnn", "resnet8", "resnet20", "resnet18"]
MethodName = Literal["fls", "fpls", "ugs", "lds", "centralised"]
ParadigmName = Literal["psl", "sl", "sflv1", "sflv2", "fedavg", "hsfl"]
# Paradigms that train one copy per client and average the copies at the end of every round.
AVERAGING_PARADIGMS = ("sflv1", "sflv2", "fedavg", "hsfl")


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_TEXT = 4096  # longest string field (a path); names are shorter, see ExperimentConfig.name


def check_plain_value(value: Any) -> Any:
    """Every number in a config fits 64 bits and every text is printable UTF-8: what the database,
    numpy and torch can hold (floats are kept finite by ``allow_inf_nan=False``)."""
    if isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
        raise ValueError("must fit in 64 bits (at most 2**63-1 = 9223372036854775807)")
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise ValueError(f"is {len(value):,} characters long; at most {MAX_TEXT} are allowed")
        bad = next((ch for ch in value if ch < " " or ch == "\x7f" or 0xD800 <= ord(ch) <= 0xDFFF), None)
        if bad is not None:
            raise ValueError(f"contains the control character {bad!r}; use printable text")
    return value


class _Section(BaseModel):
    # Unknown keys are refused: a typo in a config must not silently fall back to a default.
    # Floats must be finite: an infinite learning rate or NaN fraction is never what was meant.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        return check_plain_value(value)


# Physical ranges of the device and link fields: far beyond any real device either way, yet finite
# after the unit conversions (x 1e9 FLOP, x 2**20 bytes), so the time model never sees 0 or inf.
LINK_MBPS = {"ge": 1e-6, "le": 1e9}  # 1 bit/s .. 1 Pbit/s
LATENCY_MS = {"ge": 0, "le": 1e7}  # up to ~3 hours per message
GFLOPS = {"ge": 1e-6, "le": 1e9}  # 1 kFLOP/s .. 1 EFLOP/s
MEMORY_MB = {"ge": 1e-3, "le": 1e12}
SKEW = {"gt": 0, "le": 1e4}  # Dirichlet concentrations: beyond 1e4, nothing changes any more


class DataConfig(_Section):
    dataset: DatasetName = Field("digits", description="Training data set.")
    data_dir: str | None = Field(None, description="Folder with the dataset files (Fashion-MNIST, CIFAR).")
    train_limit: int | None = Field(None, ge=10, description="Use only this many training samples (faster).")
    test_limit: int | None = Field(None, ge=10, description="Use only this many test samples (faster).")
    augment: bool = Field(
        False, description="Random crop (zero padding crop_padding) and horizontal flip on images."
    )
    crop_padding: int = Field(
        4,
        ge=0,
        le=16,
        description="Augmentation: zero padding of the random crop, pixels (GPSL reference: 1).",
    )


class PartitionConfig(_Section):
    scheme: SchemeName = Field(
        "iid", description="How the training set is split over clients (non-IID skew)."
    )
    num_clients: int = Field(10, ge=1, le=100_000, description="Number of clients K.")
    alpha: float = Field(
        0.5,
        **SKEW,
        description="Partition α: Dirichlet concentration of the label skew (small = more skewed).",
    )
    classes_per_client: int = Field(
        2, ge=1, le=100_000, description="Classes per client C (extended_dirichlet, pathological)."
    )
    shards_per_client: int = Field(2, ge=1, le=1_000_000, description="Shards per client (shards).")
    min_partition_size: int = Field(0, ge=0, description="Smallest client size accepted (dirichlet).")
    quantity_distribution: Literal["dirichlet", "lognormal"] = Field(
        "dirichlet", description="Law of the client sizes (quantity_skew)."
    )
    beta: float = Field(1.0, **SKEW, description="Dirichlet β of the client sizes (quantity_skew).")
    sigma: float = Field(1.0, ge=1e-3, le=10, description="Log-normal σ of the client sizes (quantity_skew).")

    def scheme_params(self) -> dict[str, Any]:
        """The keyword parameters that the chosen scheme takes (same names as psl_core.data)."""
        by_scheme = {
            "iid": {},
            "dirichlet": {"alpha": self.alpha, "min_partition_size": self.min_partition_size},
            "extended_dirichlet": {"classes_per_client": self.classes_per_client, "alpha": self.alpha},
            "shards": {"shards_per_client": self.shards_per_client},
            "pathological": {"classes_per_client": self.classes_per_client},
            "quantity_skew": {
                "distribution": self.quantity_distribution,
                "beta": self.beta,
                "sigma": self.sigma,
            },
        }
        return by_scheme[self.scheme]


class ModelConfig(_Section):
    arch: ArchName = Field("cnn", description="Network; an ordered list of named blocks.")
    cut: int | str = Field(1, description="Cut: the client runs blocks [0, cut) (an index or a block name).")
    cut2: int | str | None = Field(
        None, description="Second cut for U-shaped PSL: blocks [cut2, L) and the loss run on the client."
    )
    client_norm: Literal["group", "batch", "layer", "none"] = Field(
        "group", description="Normalisation in the client part ('batch' = per-client BatchNorm)."
    )
    server_norm: Literal["group", "batch", "layer", "none"] = Field(
        "batch", description="Normalisation in the server part (BatchNorm over the global batch)."
    )
    norm_groups: int | None = Field(
        None,
        ge=1,
        description="GroupNorm groups ('group' norm); empty = the largest divisor of the channels up to 8 "
        "(GPSL reference: 32).",
    )


class SamplingConfig(_Section):
    method: MethodName = Field(
        "ugs", description="Batch sampling method (FLS, FPLS, UGS/GPSL, LDS, centralised)."
    )
    batch_size: int = Field(64, ge=1, le=10_000_000, description="Global batch size B.")
    per_client_batch: int | None = Field(
        None,
        ge=1,
        le=10_000_000,
        description="Vanilla PSL: a fixed per-client batch b (FLS with b_k = b, effective batch K·b).",
    )
    lds_c: float = Field(
        1.0,
        ge=1e-3,
        le=1e3,
        description="LDS concentration c (1 = UGS's share variance; LDS's counts still vary ~2× as much as "
        "UGS's; larger = steadier).",
    )
    lds_delta: float = Field(
        0.0,
        ge=0,
        le=100,
        description="LDS latency aversion δ: share ∝ data × (latency / median latency)^−δ "
        "(0 = ignore latency, 1 = share ∝ data / latency).",
    )


class ParadigmConfig(_Section):
    name: ParadigmName = Field(
        "psl",
        description=(
            "How clients and server train: psl (parallel split learning, one global batch per step), "
            "sl (sequential split learning), sflv1 / sflv2 (SplitFed v1 / v2), fedavg (federated "
            "averaging), hsfl (hybrid: some clients federated, the others split)."
        ),
    )
    local_epochs: int = Field(
        1, ge=1, le=1000, description="Local epochs E per round (sl, sflv1, sflv2, fedavg, hsfl)."
    )
    local_batch: int | None = Field(
        None,
        ge=1,
        description="Local batch b of every client (default: max(1, round(B / K)), PSL's per-client share).",
    )
    client_fraction: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Share of the clients that take part in each round, drawn with the seed (averaging paradigms).",
    )
    fl_clients: float | list[str] = Field(
        0.5,
        description=(
            "hsfl: which clients train the full model (FL mode): a fraction of the fastest clients, "
            "or a list of device ids; the others train through the cut (SL mode)."
        ),
    )

    @field_validator("fl_clients")
    @classmethod
    def _fl_clients_valid(cls, value: float | list[str]) -> float | list[str]:
        if isinstance(value, list):
            if not all(isinstance(v, str) and v.strip() for v in value):
                raise ValueError("fl_clients as a list must hold device ids (non-empty strings)")
            return value
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"fl_clients as a fraction must lie in [0, 1], got {value}")
        return value

    @property
    def uses_rounds(self) -> bool:
        """Whether training is organised in rounds (every paradigm but psl)."""
        return self.name != "psl"


class TrainingConfig(_Section):
    epochs: int = Field(
        5, ge=1, le=10_000, description="Training epochs (rounds for sl, sflv1, sflv2, fedavg and hsfl)."
    )
    optimizer: Literal["sgd", "adam"] = Field("sgd", description="Optimiser.")
    lr: float = Field(0.05, gt=0, le=1e6, description="Learning rate.")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum.")
    weight_decay: float = Field(5e-4, ge=0, le=1e3, description="Weight decay.")
    lr_schedule: Literal["constant", "step", "cosine"] = Field(
        "constant", description="Learning-rate schedule."
    )
    lr_step_epochs: int = Field(10, ge=1, description="Step schedule: epochs between decays.")
    lr_gamma: float = Field(0.1, gt=0, le=1, description="Step schedule: decay factor.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where to train ('auto' = CUDA if present)."
    )
    eval_every: int = Field(
        1, ge=1, description="Evaluate on the test set every this many epochs (or steps: eval_every_unit)."
    )
    eval_every_unit: Literal["epochs", "steps"] = Field(
        "epochs", description="Unit of eval_every; step evaluations are kept with that step's metrics."
    )
    eval_samples: int | None = Field(
        2000,
        ge=10,
        description="Test samples (a fixed class-stratified subset) of the evaluations during training; "
        "the last evaluation always uses the whole test set. Empty = the whole test set every time.",
    )
    eval_batch_size: int | None = Field(
        None, ge=1, description="Evaluation batch size (empty = chosen for the device: 128 CPU, 1024 GPU)."
    )
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="Numeric precision: fp32, bf16 autocast, or fp16 autocast with loss scaling."
    )
    compile: bool = Field(
        False,
        description="torch.compile the model's blocks (slow first steps, faster after; needs a C++ compiler on CPU).",
    )
    max_steps_per_epoch: int | None = Field(None, ge=1, description="Cut each epoch short (quick demos).")
    checkpoint_every_steps: int | None = Field(
        None, ge=1, description="Also checkpoint every this many steps (besides every epoch)."
    )


class ClientGroup(_Section):
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


class CustomDevice(_Section):
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


class StragglerConfig(_Section):
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


class HelperConfig(_Section):
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


class SystemConfig(_Section):
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


class ExperimentConfig(_Section):
    name: str = Field("experiment", min_length=1, max_length=200)
    seed: int = Field(
        0, ge=0, le=INT64_MAX, description="Seed of everything random (same config + seed = same metrics)."
    )
    data: DataConfig = Field(default_factory=DataConfig)
    partition: PartitionConfig = Field(default_factory=PartitionConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    system: SystemConfig = Field(default_factory=SystemConfig)
    paradigm: ParadigmConfig = Field(default_factory=ParadigmConfig)

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentConfig:
        self._check_paradigm()  # first: its advice (e.g. "no cut2 here") outranks PSL-only advice
        if self.sampling.method == "centralised" and self.partition.num_clients != 1:
            # Centralised reference = one client holding everything (methods §2); say so instead of guessing.
            raise ValueError(
                "sampling.method 'centralised' is the K = 1 reference: set partition.num_clients to 1 "
                f"(it is {self.partition.num_clients})"
            )
        if self.system.helpers.num_helpers and self.model.cut2 is None:
            raise ValueError(
                "system.helpers.num_helpers > 0 needs a U-shaped model: set model.cut2 (part-3 on the client)"
            )
        links = self.system.helpers.link_mbps
        if links is not None and len(links) != self.partition.num_clients:
            raise ValueError(
                f"system.helpers.link_mbps has {len(links)} rows: give one row per client "
                f"(partition.num_clients = {self.partition.num_clients})"
            )
        if self.sampling.per_client_batch is not None and self.sampling.method != "fls":
            raise ValueError("sampling.per_client_batch (vanilla PSL) only applies to method 'fls'")
        return self

    def _check_paradigm(self) -> None:
        p = self.paradigm
        if p.name == "psl":
            return
        if self.model.cut2 is not None:
            raise ValueError(
                f"paradigm.name {p.name!r} has no U-shaped variant here: remove model.cut2 or use paradigm 'psl'"
            )
        if self.system.helpers.num_helpers:
            raise ValueError(
                f"helpers serve PSL only: set system.helpers.num_helpers to 0 for paradigm {p.name!r}"
            )
        if p.client_fraction < 1 and p.name not in AVERAGING_PARADIGMS:
            raise ValueError(
                f"paradigm.client_fraction {p.client_fraction:g} < 1 needs an averaging paradigm "
                f"({', '.join(AVERAGING_PARADIGMS)}); {p.name!r} trains every client in every round"
            )

    def config_hash(self) -> str:
        """sha256 of the canonical JSON (what the store keys identical configs by).

        Fields and sections added after the first release are left out while they hold their defaults,
        so a config written before they existed keeps its hash (and the store still finds its runs).
        """
        data = self.model_dump(mode="json")
        _drop_unset_late_fields(data)
        return hashlib.sha256(canonical_json(data).encode()).hexdigest()


# Added after the first release, dropped from the hash while they hold their defaults:
# whole sections (→ a function giving their default dump) and single fields (dropped while None).
_LATE_SECTION_DEFAULTS = {"paradigm": lambda: ParadigmConfig().model_dump(mode="json")}
_LATE_SYSTEM_FIELDS = ("shared_uplink_mbps",)
_LATE_CLIENT_GROUP_FIELDS = ("uplink_share",)
_LATE_CUSTOM_DEVICE_FIELDS = ("busy_watts", "radio_watts")


def _drop_if_none(record: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        if record.get(name) is None:
            record.pop(name, None)


def _drop_unset_late_fields(data: dict[str, Any]) -> None:
    for name, default in _LATE_SECTION_DEFAULTS.items():
        if data.get(name) == default():
            del data[name]
    system = data.get("system", {})
    _drop_if_none(system, _LATE_SYSTEM_FIELDS)
    for group in system.get("clients", []):
        _drop_if_none(group, _LATE_CLIENT_GROUP_FIELDS)
    for device in system.get("custom_devices", []):
        _drop_if_none(device, _LATE_CUSTOM_DEVICE_FIELDS)


def canonical_json(data: dict) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


class ConfigError(ValueError):
    """A config that does not validate; the message names each field, value and what is allowed."""


def format_problem_lines(problems: list[tuple[str, str, Any]]) -> str:
    """The ConfigError text: a header, then ``- path: message (got value)`` per problem."""
    lines = []
    for path, message, value in problems:
        shown = "" if value is None or isinstance(value, (dict, list)) else f" (got {_short_repr(value)})"
        lines.append(f"- {path or '(config)'}: {message}{shown}")
    return "invalid experiment config:\n" + "\n".join(lines)


def _short_repr(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int beyond Python's 4300-digit str() limit
        return f"an integer of about {int(value.bit_length() * 0.30103)} digits"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_validation_error(err: ValidationError) -> str:
    return format_problem_lines(
        [
            (".".join(str(p) for p in e["loc"]), e["msg"].removeprefix("Value error, "), e.get("input"))
            for e in err.errors()
        ]
    )


def parse_config(data: dict[str, Any]) -> ExperimentConfig:
    """Validate a config dict; raise ConfigError with one line per problem."""
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err)) from None


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c = value`` in a nested dict (used by ``--set`` and sweeps)."""
    keys = dotted.split(".")
    node = data
    for k in keys[:-1]:
        if not isinstance(node.get(k), dict):
            node[k] = {}
        node = node[k]
    node[keys[-1]] = value


def apply_overrides(config: ExperimentConfig, overrides: dict[str, Any]) -> ExperimentConfig:
    """A new validated config with dotted-path overrides applied (e.g. {'sampling.method': 'lds'})."""
    data = config.model_dump(mode="json")
    for path, value in overrides.items():
        set_path(data, path, value)
    return parse_config(data)
