"""Names for runs and groups of runs by what differs between them ("UGS · K=64 · seed 1").

Sweep members share a name prefix and most of their config, so a legend of names cannot tell them
apart. These functions look at the configs being shown together, find the settings that differ, and
name each run (and each seed group: runs that differ only by seed) by those settings.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

SEED_KEY = "seed"
NOT_COMPARED = ("name",)  # names are free text: they never make two configs different
LABEL_LIMIT = 70  # characters; longer labels are cut with an ellipsis


def flatten_config(config: Mapping, prefix: str = "") -> dict[str, object]:
    """Nested config as dotted keys (``sampling.lds_c``); lists are kept as JSON text."""
    flat: dict[str, object] = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_config(value, dotted + "."))
        elif isinstance(value, list):
            flat[dotted] = json.dumps(value, sort_keys=True)
        else:
            flat[dotted] = value
    return flat


def value_text(value: Any) -> str:
    """How a config value reads in a label or a table cell (None as 'none', floats short)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _named(symbol: str) -> Callable[[Any], str]:
    return lambda v: f"{symbol}={value_text(v)}"


# How a differing setting reads in a label, in the order labels list them; other keys read 'leaf=value'.
PARADIGM_SHORT = {
    "psl": "PSL",
    "sl": "SL",
    "sflv1": "SFLv1",
    "sflv2": "SFLv2",
    "fedavg": "FedAvg",
    "hsfl": "HSFL",
}
LABEL_PARTS: dict[str, Callable[[Any], str]] = {
    "paradigm.name": lambda v: PARADIGM_SHORT.get(str(v), value_text(v)),
    "paradigm.local_epochs": _named("E"),
    "paradigm.client_fraction": _named("fraction"),
    "data.dataset": value_text,
    "sampling.method": lambda v: value_text(v).upper(),
    "partition.scheme": value_text,
    "partition.num_clients": _named("K"),
    "partition.alpha": _named("α"),
    "partition.classes_per_client": _named("C"),
    "sampling.batch_size": _named("B"),
    "sampling.per_client_batch": _named("b"),
    "sampling.lds_c": _named("c"),
    "sampling.lds_delta": _named("δ"),
    "model.arch": value_text,
    "model.cut": _named("cut"),
    "model.cut2": _named("cut2"),
    "training.lr": _named("lr"),
    "training.epochs": lambda v: f"{value_text(v)} epochs",
}


def differing_keys(configs: Mapping[int, Mapping], *, ignore: tuple[str, ...] = NOT_COMPARED) -> list[str]:
    """Dotted keys whose values are not the same in every config (a key missing somewhere differs),
    in label order: the known settings first, other keys alphabetically, the seed last."""
    flat = [flatten_config(c) for c in configs.values()]
    if len(flat) < 2:
        return []
    keys = set().union(*flat) - set(ignore)
    missing = object()
    differ = {k for k in keys if len({json.dumps(f.get(k, missing), default=repr) for f in flat}) > 1}
    known = [k for k in LABEL_PARTS if k in differ]
    others = sorted(k for k in differ if k not in LABEL_PARTS and k != SEED_KEY)
    return known + others + ([SEED_KEY] if SEED_KEY in differ else [])


def describe(config: Mapping, keys: list[str]) -> str:
    """``config`` named by ``keys``: 'UGS · K=64 · seed 1' (cut at LABEL_LIMIT characters)."""
    flat = flatten_config(config)
    parts = []
    for key in keys:
        value = flat.get(key)
        if key == SEED_KEY:
            parts.append(f"seed {value_text(value)}")
        elif key in LABEL_PARTS:
            parts.append(LABEL_PARTS[key](value))
        else:
            parts.append(f"{key.rsplit('.', 1)[-1]}={value_text(value)[:24]}")
    text = " · ".join(parts)
    return text if len(text) <= LABEL_LIMIT else text[: LABEL_LIMIT - 1] + "…"


def _unique(labels: dict[int, str]) -> dict[int, str]:
    """Labels that two runs share get the run id appended; empty labels become the run id."""
    counts: dict[str, int] = {}
    for label in labels.values():
        counts[label] = counts.get(label, 0) + 1
    return {
        run_id: (f"#{run_id}" if not label else f"{label} (#{run_id})" if counts[label] > 1 else label)
        for run_id, label in labels.items()
    }


def run_labels(configs: Mapping[int, Mapping], names: Mapping[int, str] | None = None) -> dict[int, str]:
    """Run id -> a label naming the run by the settings that differ among ``configs`` (seed included).
    Runs whose configs are identical are named by their names, or their ids; labels are unique."""
    keys = differing_keys(configs)
    if keys:
        labels = {run_id: describe(config, keys) for run_id, config in configs.items()}
    else:
        names = names or {}
        labels = {run_id: str(names.get(run_id, "")).strip()[:LABEL_LIMIT] for run_id in configs}
    return _unique(labels)


def group_labels(configs: Mapping[int, Mapping]) -> dict[int, str]:
    """Run id -> the label of its seed group: runs whose configs differ only by seed (and name) share
    it. Groups are named by the settings that differ between groups ('UGS · B=64'); when only seeds
    differ, by the sampling method. Labels end with the group size when it has more than one run."""
    keys = differing_keys(configs, ignore=(*NOT_COMPARED, SEED_KEY))
    named = {
        run_id: describe(config, keys) if keys else describe(config, ["sampling.method"])
        for run_id, config in configs.items()
    }
    sizes: dict[str, int] = {}
    for label in named.values():
        sizes[label] = sizes.get(label, 0) + 1
    return {
        run_id: f"{label} ({sizes[label]} runs)" if sizes[label] > 1 else label
        for run_id, label in named.items()
    }


def group_order(groups: Mapping[int, str]) -> list[str]:
    """Distinct group labels in the order of their first run id: the colour domain of a page, so a
    group keeps its colour in every chart of the page."""
    return list(dict.fromkeys(groups[r] for r in sorted(groups)))
