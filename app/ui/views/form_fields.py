"""What the New-experiment form knows about each config field, and the state ⇄ config conversions.

Pure Python (no Streamlit), so the round trip config → widget state → config is unit-tested. Widget
keys are namespaced (``<prefix>.<dotted path>``) so a page can prefill the form by writing them.
"""

from __future__ import annotations

import json
import math
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pydantic import BaseModel

from psl_core.config import AVERAGING_PARADIGMS, ExperimentConfig, set_path
from psl_core.models import block_names_for, resolve_cut_index

FORM_PREFIX = "ne"
GROUP_COLUMNS = ["device", "fraction", "up_mbps", "down_mbps", "latency_ms", "cut", "uplink_share"]
CUSTOM_COLUMNS = [
    "id",
    "name",
    "gflops",
    "up_mbps",
    "down_mbps",
    "latency_ms",
    "memory_mb",
    "busy_watts",
    "radio_watts",
]


@dataclass(frozen=True)
class FieldSpec:
    """One scalar widget: its config path, kind and (for choices) its options."""

    path: str
    # "select" | "int" | "float" | "opt_int" | "opt_float" | "text" | "opt_text" | "bool" | "cut" | "cut2"
    # | "server" | "fl_clients" (a fraction or a comma-separated list of device ids, typed as text)
    kind: str
    label: str
    options: tuple = ()


def model_field(path: str):
    """The pydantic FieldInfo of a dotted path of ExperimentConfig (e.g. ``sampling.lds_c``)."""
    model: type[BaseModel] = ExperimentConfig
    parts = path.split(".")
    for part in parts[:-1]:
        model = model.model_fields[part].annotation
    return model.model_fields[parts[-1]]


def field_help(path: str) -> str:
    """The help text of a field = its pydantic description (empty when none)."""
    return model_field(path).description or ""


def literal_options(path: str) -> tuple:
    """The allowed values of a Literal-typed field, in declaration order."""
    return typing.get_args(model_field(path).annotation)


def _spec(path: str, kind: str, label: str) -> FieldSpec:
    return FieldSpec(path, kind, label, literal_options(path) if kind == "select" else ())


# Sections in the order the form shows them; per section, the scalar fields it holds.
SECTIONS: dict[str, list[FieldSpec]] = {
    "Run": [_spec("name", "text", "Run name"), _spec("seed", "int", "Seed")],
    "Data": [
        _spec("data.dataset", "select", "Dataset"),
        _spec("data.data_dir", "opt_text", "Data folder"),
        _spec("data.train_limit", "opt_int", "Training samples (limit)"),
        _spec("data.test_limit", "opt_int", "Test samples (limit)"),
        _spec("data.augment", "bool", "Augment images"),
        _spec("data.crop_padding", "int", "Random-crop padding (px)"),
    ],
    "Partition (non-IID)": [
        _spec("partition.scheme", "select", "Scheme"),
        _spec("partition.num_clients", "int", "Clients K"),
        _spec("partition.alpha", "float", "Partition α (label skew)"),
        _spec("partition.classes_per_client", "int", "Classes per client C"),
        _spec("partition.shards_per_client", "int", "Shards per client"),
        _spec("partition.min_partition_size", "int", "Min. client size"),
        _spec("partition.quantity_distribution", "select", "Client-size law"),
        _spec("partition.beta", "float", "Size β (Dirichlet)"),
        _spec("partition.sigma", "float", "Size σ (log-normal)"),
    ],
    "Model & split": [
        _spec("model.arch", "select", "Architecture"),
        FieldSpec("model.cut", "cut", "Cut (client keeps blocks up to)"),
        FieldSpec("model.cut2", "cut2", "U-shaped second cut"),
        _spec("model.client_norm", "select", "Client normalisation"),
        _spec("model.server_norm", "select", "Server normalisation"),
        _spec("model.norm_groups", "opt_int", "GroupNorm groups"),
    ],
    "Paradigm": [
        _spec("paradigm.name", "select", "Paradigm"),
        _spec("paradigm.local_epochs", "int", "Local epochs E per round"),
        _spec("paradigm.local_batch", "opt_int", "Local batch b (blank: B / K)"),
        _spec("paradigm.client_fraction", "float", "Clients per round (fraction)"),
        FieldSpec("paradigm.fl_clients", "fl_clients", "hsfl: FL-mode clients (fraction or device ids)"),
    ],
    "Sampling": [
        _spec("sampling.method", "select", "Method"),
        _spec("sampling.batch_size", "int", "Global batch B"),
        _spec("sampling.per_client_batch", "opt_int", "Per-client batch b (vanilla PSL)"),
        _spec("sampling.lds_c", "float", "LDS concentration c"),
        _spec("sampling.lds_delta", "float", "LDS latency aversion δ"),
    ],
    "Training": [
        _spec("training.epochs", "int", "Epochs"),
        _spec("training.optimizer", "select", "Optimiser"),
        _spec("training.lr", "float", "Learning rate"),
        _spec("training.momentum", "float", "Momentum"),
        _spec("training.weight_decay", "float", "Weight decay"),
        _spec("training.lr_schedule", "select", "LR schedule"),
        _spec("training.lr_step_epochs", "int", "Step every (epochs)"),
        _spec("training.lr_gamma", "float", "Step decay γ"),
        _spec("training.device", "select", "Torch device"),
        _spec("training.eval_every", "int", "Evaluate every"),
        _spec("training.eval_every_unit", "select", "… epochs or steps"),
        _spec("training.eval_samples", "opt_int", "Test samples of live evaluations"),
        _spec("training.eval_batch_size", "opt_int", "Evaluation batch (empty = per device)"),
        _spec("training.precision", "select", "Precision"),
        _spec("training.compile", "bool", "torch.compile"),
        _spec("training.max_steps_per_epoch", "opt_int", "Max steps per epoch"),
        _spec("training.checkpoint_every_steps", "opt_int", "Checkpoint every (steps)"),
    ],
    "Devices & stragglers": [
        FieldSpec("system.server_device", "server", "Server device"),
        _spec("system.shared_uplink_mbps", "opt_float", "Shared uplink W (Mbit/s, blank = none)"),
        _spec("system.stragglers.persistent_fraction", "float", "Persistent straggler fraction"),
        _spec("system.stragglers.persistent_factor", "float", "Persistent slowdown ×"),
        _spec("system.stragglers.transient_prob", "float", "Transient slowdown probability"),
        _spec("system.stragglers.transient_dist", "select", "Transient slowdown law"),
        _spec("system.stragglers.transient_scale", "float", "Transient σ / Pareto shape"),
        _spec("system.helpers.num_helpers", "int", "Helpers H (0 = one server)"),
        FieldSpec("system.helpers.helper_device", "server", "Helper device"),
        _spec("system.helpers.solver", "select", "Helper assignment solver"),
        _spec("system.helpers.variant", "select", "Helper tasks (preemptive or not)"),
    ],
}

# Which section a config error line (``- partition.alpha: ...``) belongs to.
SECTION_OF_ROOT = {
    "name": "Run",
    "seed": "Run",
    "data": "Data",
    "partition": "Partition (non-IID)",
    "model": "Model & split",
    "sampling": "Sampling",
    "training": "Training",
    "system": "Devices & stragglers",
    "paradigm": "Paradigm",
}


def all_fields() -> list[FieldSpec]:
    """Every scalar field of the form, in display order."""
    return [spec for specs in SECTIONS.values() for spec in specs]


WIDE_KINDS = ("select", "cut", "cut2", "server")  # choices with long titles: a whole row each


def field_rows(specs: list[FieldSpec]) -> list[list[FieldSpec]]:
    """The form's layout of a section: a choice field on a row of its own (its option titles are long
    and were cut in a half-width column), other fields two to a row, in the section's order."""
    rows: list[list[FieldSpec]] = []
    for spec in specs:
        if spec.kind in WIDE_KINDS or not rows or len(rows[-1]) == 2 or rows[-1][0].kind in WIDE_KINDS:
            rows.append([spec])
        else:
            rows[-1].append(spec)
    return rows


def widget_key(path: str, prefix: str = FORM_PREFIX) -> str:
    """Session-state key of the widget of ``path``."""
    return f"{prefix}.{path}"


def _get(config: Mapping[str, Any], path: str) -> Any:
    node: Any = config
    for part in path.split("."):
        node = node[part]
    return node


def cut_options(arch: str) -> list[int]:
    """Valid single cuts of ``arch``: 1..L-1."""
    return list(range(1, len(block_names_for(arch))))


NO_CUT2 = 0  # the cut2 widget's "not U-shaped" (Streamlit shows a None option as "no selection")


def cut_label(arch: str, cut: int | None) -> str:
    """'after conv1 (1)' — how a cut index reads in the form."""
    if cut is None or cut == NO_CUT2:
        return "none (not U-shaped)"
    return f"after {block_names_for(arch)[cut - 1]} ({cut})"


def _as_cut_index(arch: str, cut: Any) -> Any:
    # Names are turned into indices so the selectbox holds one canonical value; a bad cut is kept as is
    # (validation then says what to change).
    try:
        return resolve_cut_index(block_names_for(arch), cut)
    except ValueError:
        return cut


def full_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with every default filled in (validates; raises ConfigError/ValidationError)."""
    return ExperimentConfig.model_validate(dict(config)).model_dump(mode="json")


def form_state_from_config(config: Mapping[str, Any], prefix: str = FORM_PREFIX) -> dict[str, Any]:
    """Widget values (key → value) that show ``config``; ``config`` should have every field filled."""
    state: dict[str, Any] = {}
    for spec in all_fields():
        value = _get(config, spec.path)
        if spec.kind == "float" or (spec.kind == "opt_float" and value is not None):
            value = float(value)
        elif spec.kind == "cut2" and value is None:
            value = NO_CUT2
        elif spec.kind in ("cut", "cut2"):
            value = _as_cut_index(config["model"]["arch"], value)
        elif spec.kind == "opt_text":
            value = value or ""
        elif spec.kind == "fl_clients":
            value = fl_clients_text(value)
        state[widget_key(spec.path, prefix)] = value
    return state


def fl_clients_text(value: Any) -> str:
    """``paradigm.fl_clients`` as the form shows it: '0.5', or 'rpi4b, jetson_gpu'."""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def parse_fl_clients(text: Any) -> float | list[str] | str:
    """The form's text back to a config value: a number is a fraction, anything else a list of device
    ids; an unreadable entry is passed on as typed so that validation names it."""
    if not isinstance(text, str):
        return text
    stripped = text.strip()
    try:
        return float(stripped)
    except ValueError:
        ids = [part.strip() for part in stripped.split(",")]
        return ids if all(ids) else stripped


def groups_frame(config: Mapping[str, Any]) -> pd.DataFrame:
    """The client groups of ``config`` as the editable table (cut as text: an index or a block name)."""
    rows = [{c: g.get(c) for c in GROUP_COLUMNS} for g in config["system"]["clients"]]
    df = pd.DataFrame(rows, columns=GROUP_COLUMNS)
    df["cut"] = [None if c is None else str(c) for c in df["cut"]]
    return df.astype(
        {"fraction": float, "up_mbps": float, "down_mbps": float, "latency_ms": float, "uplink_share": float}
    )


def custom_frame(config: Mapping[str, Any]) -> pd.DataFrame:
    """The custom devices of ``config`` as the editable table."""
    rows = [{c: d.get(c) for c in CUSTOM_COLUMNS} for d in config["system"]["custom_devices"]]
    df = pd.DataFrame(rows, columns=CUSTOM_COLUMNS)
    return df.astype({c: float for c in CUSTOM_COLUMNS[2:]})


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def _cell(value: Any) -> Any:
    if _blank(value):
        return None
    return value.item() if hasattr(value, "item") else value


def parse_cut_text(value: Any) -> int | str | None:
    """A per-device cut cell: blank → None, digits → int, otherwise a block name."""
    if _blank(value):
        return None
    text = str(value).strip()
    return int(text) if text.lstrip("-").isdigit() else text


def groups_from_frame(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Client groups from the edited table; fully blank rows are dropped, blank cells mean 'default'."""
    groups = []
    for row in df.to_dict("records"):
        if all(_blank(row.get(c)) for c in GROUP_COLUMNS):
            continue
        group = {c: _cell(row.get(c)) for c in GROUP_COLUMNS if c != "cut"}
        group["cut"] = parse_cut_text(row.get("cut"))
        groups.append(group)
    return groups


def custom_devices_from_frame(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Custom devices from the edited table; blank optional cells take the model's defaults."""
    devices = []
    for row in df.to_dict("records"):
        if all(_blank(row.get(c)) for c in CUSTOM_COLUMNS):
            continue
        device = {c: _cell(row.get(c)) for c in CUSTOM_COLUMNS}
        devices.append({k: v for k, v in device.items() if v is not None or k in ("id", "gflops")})
    return devices


def config_from_state(
    state: Mapping[str, Any],
    groups: pd.DataFrame,
    custom: pd.DataFrame,
    prefix: str = FORM_PREFIX,
) -> dict[str, Any]:
    """The config dict the form shows (not validated: parse_config says what is wrong)."""
    config: dict[str, Any] = {}
    for spec in all_fields():
        value = state.get(widget_key(spec.path, prefix))
        if spec.kind == "opt_text":
            value = value.strip() if isinstance(value, str) and value.strip() else None
        elif spec.kind == "cut2" and value == NO_CUT2:
            value = None
        elif spec.kind == "fl_clients":
            value = parse_fl_clients(value)
        set_path(config, spec.path, value)
    config["system"]["clients"] = groups_from_frame(groups)
    config["system"]["custom_devices"] = custom_devices_from_frame(custom)
    return config


_RERUN_SUFFIX = re.compile(r"\s*\(re-run of #\d+\)$")


def rerun_config(config: Mapping[str, Any], run_id: int) -> dict[str, Any]:
    """A copy of a stored run's config to edit and launch again, named '<name> (re-run of #id)' so the
    new run is told apart from the original (an earlier '(re-run of #n)' suffix is replaced)."""
    copy = json.loads(json.dumps(dict(config)))
    name = _RERUN_SUFFIX.sub("", str(copy.get("name") or "run"))
    copy["name"] = f"{name} (re-run of #{int(run_id)})"
    return copy


def merged_with_defaults(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` laid over the default config WITHOUT validating (an invalid prefill still shows)."""

    def merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(base)
        for key, value in over.items():
            out[key] = (
                merge(base[key], value)
                if isinstance(base.get(key), dict) and isinstance(value, Mapping)
                else value
            )
        return out

    return merge(ExperimentConfig().model_dump(mode="json"), config)


ROUND_PARADIGMS = ("sl", *AVERAGING_PARADIGMS)

# Which fields matter for the current choices (the form draws only these; the others keep their values
# and appear when a choice makes them matter): a field is relevant when the other field holds one of
# the values (a list: when ANY of its conditions holds).
_RELEVANT_WHEN: dict[str, tuple[str, tuple] | list[tuple[str, tuple]]] = {
    "data.data_dir": ("data.dataset", ("fashion_mnist", "cifar10", "cifar100")),
    "data.crop_padding": ("data.augment", (True,)),
    "model.norm_groups": [("model.client_norm", ("group",)), ("model.server_norm", ("group",))],
    "partition.alpha": ("partition.scheme", ("dirichlet", "extended_dirichlet")),
    "partition.classes_per_client": ("partition.scheme", ("extended_dirichlet", "pathological")),
    "partition.shards_per_client": ("partition.scheme", ("shards",)),
    "partition.min_partition_size": ("partition.scheme", ("dirichlet",)),
    "partition.quantity_distribution": ("partition.scheme", ("quantity_skew",)),
    "partition.beta": ("partition.scheme", ("quantity_skew",)),
    "partition.sigma": ("partition.scheme", ("quantity_skew",)),
    "sampling.per_client_batch": ("sampling.method", ("fls",)),
    "sampling.lds_c": ("sampling.method", ("lds",)),
    "sampling.lds_delta": ("sampling.method", ("lds",)),
    "training.momentum": ("training.optimizer", ("sgd",)),
    "sampling.method": ("paradigm.name", ("psl",)),
    "paradigm.local_epochs": ("paradigm.name", ROUND_PARADIGMS),
    "paradigm.local_batch": ("paradigm.name", ROUND_PARADIGMS),
    "paradigm.client_fraction": ("paradigm.name", AVERAGING_PARADIGMS),
    "paradigm.fl_clients": ("paradigm.name", ("hsfl",)),
    "training.lr_step_epochs": ("training.lr_schedule", ("step",)),
    "training.lr_gamma": ("training.lr_schedule", ("step",)),
}


def shown_when(path: str) -> list[tuple[str, tuple]]:
    """The conditions under which the form draws ``path``: (other field's path, its values), any of
    them (empty: always drawn)."""
    rule = _RELEVANT_WHEN.get(path)
    if rule is None:
        return []
    return rule if isinstance(rule, list) else [rule]


def field_relevant(path: str, state: Mapping[str, Any], prefix: str = FORM_PREFIX) -> bool:
    """Whether ``path`` has an effect given the other widget values (irrelevant ones are not drawn)."""
    conditions = shown_when(path)
    return not conditions or any(
        state.get(widget_key(other, prefix)) in values for other, values in conditions
    )
