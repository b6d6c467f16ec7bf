"""The experiment config: one pydantic object that describes an experiment completely.

The same JSON drives the UI form, the CLI (``psl run config.yaml``), the worker and the stored
run. Same config + same seed = same metrics. Field descriptions are the help texts of the UI.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

# Re-exported: psl_core.config stays the one import path of every config class and bound.
from psl_core.config_base import (  # noqa: F401
    GFLOPS,
    INT64_MAX,
    INT64_MIN,
    LATENCY_MS,
    LINK_MBPS,
    MAX_TEXT,
    MEMORY_MB,
    SKEW,
    ConfigSection,
    check_plain_value,
)
from psl_core.config_system import (  # noqa: F401
    ClientGroup,
    CustomDevice,
    HelperConfig,
    StragglerConfig,
    SystemConfig,
)

DatasetName = Literal["digits", "fashion_mnist", "mnist1d", "cifar10", "cifar100", "synthetic"]
SchemeName = Literal["iid", "dirichlet", "extended_dirichlet", "shards", "pathological", "quantity_skew"]
ArchName = Literal["mlp", "cnn", "resnet8", "resnet20", "resnet18"]
MethodName = Literal["fls", "fpls", "ugs", "lds", "centralised"]
ParadigmName = Literal["psl", "sl", "sflv1", "sflv2", "fedavg", "hsfl"]
# Paradigms that train one copy per client and average the copies at the end of every round.
AVERAGING_PARADIGMS = ("sflv1", "sflv2", "fedavg", "hsfl")


class DataConfig(ConfigSection):
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


class PartitionConfig(ConfigSection):
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


class ModelConfig(ConfigSection):
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


class SamplingConfig(ConfigSection):
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


class ParadigmConfig(ConfigSection):
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


class TrainingConfig(ConfigSection):
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


class ExperimentConfig(ConfigSection):
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
