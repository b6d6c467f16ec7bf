"""Defect 3: runs and seed groups are named by what differs between them, and keep one colour per
group across the charts of a page."""

from __future__ import annotations

import pandas as pd

from app.ui.charts.metrics import metric_chart
from app.ui.views.compare import mean_band
from app.ui.views.labels import differing_keys, group_labels, group_order, run_labels
from psl_core.config import ExperimentConfig
from psl_core.sweep import sweep_configs


def _sweep() -> dict[int, dict]:
    base = ExperimentConfig(name="demo digits")
    configs = sweep_configs(
        base, {"sampling.method": ["ugs", "fls"], "sampling.batch_size": [32, 64]}, [0, 1]
    )
    return {i + 1: c.model_dump(mode="json") for i, c in enumerate(configs)}


def test_sweep_members_get_distinct_labels_by_what_differs():
    configs = _sweep()
    assert differing_keys(configs) == ["sampling.method", "sampling.batch_size", "seed"]
    labels = run_labels(configs)
    assert len(set(labels.values())) == len(configs)  # the old legend showed one name for all
    assert labels[1] == "UGS · B=32 · seed 0"
    assert all("demo digits" not in label for label in labels.values())


def test_seed_groups_are_named_and_sized():
    configs = _sweep()
    groups = group_labels(configs)
    assert groups[1] == groups[2] == "UGS · B=32 (2 runs)"  # seeds 0 and 1 of one grid point
    assert len(set(groups.values())) == 4
    assert not any("group of" in g for g in groups.values())
    assert group_order(groups) == ["UGS · B=32 (2 runs)", "UGS · B=64 (2 runs)", "FLS · B=32 (2 runs)",
                                   "FLS · B=64 (2 runs)"]  # fmt: skip


def test_identical_configs_fall_back_to_names_then_ids():
    config = ExperimentConfig().model_dump(mode="json")
    assert run_labels({1: config, 2: config}, {1: "first", 2: "second"}) == {1: "first", 2: "second"}
    assert run_labels({1: config, 2: config}) == {1: "#1", 2: "#2"}
    assert run_labels({1: config, 2: config}, {1: "same", 2: "same"}) == {1: "same (#1)", 2: "same (#2)"}


def _long(run_ids):
    return pd.concat([pd.DataFrame({"run_id": r, "x": [1.0, 2.0], "value": [r, r + 1.0]}) for r in run_ids])


def _colours(chart) -> dict[str, str]:
    spec = chart.to_dict()
    layers = spec.get("layer", [spec])
    scale = next(layer["encoding"]["color"]["scale"] for layer in layers if "encoding" in layer)
    return dict(zip(scale["domain"], scale["range"]))


def test_one_colour_per_group_in_every_chart():
    configs = _sweep()
    groups = group_labels(configs)
    labels = run_labels(configs)
    domain = group_order(groups)
    every = metric_chart(_long(configs), "step", "loss", labels=labels, groups=groups, colour_domain=domain)
    some = metric_chart(
        _long([3, 4, 7]), "step", "test_acc", labels=labels, groups=groups, colour_domain=domain
    )
    band = metric_chart(
        _long(configs), "step", "loss", band=mean_band(_long(configs), groups), colour_domain=domain
    )
    first, second, third = _colours(every), _colours(some), _colours(band)
    assert first == second == third
    assert len(set(first.values())) == len(domain)  # groups never share a colour
    # Seeds of one group are drawn in their group's colour (one line each).
    data = every.data
    assert data.loc[data["run_id"] == 1, "group"].iloc[0] == data.loc[data["run_id"] == 2, "group"].iloc[0]


def test_runs_of_different_paradigms_are_named_by_their_paradigm():
    """A PSL run beside a FedAvg run read 'name=psl' / 'name=fedavg' (the field's leaf name)."""
    psl = ExperimentConfig(name="a").model_dump(mode="json")
    fedavg = ExperimentConfig(name="b", paradigm={"name": "fedavg", "local_epochs": 2}).model_dump(
        mode="json"
    )
    labels = run_labels({1: psl, 2: fedavg})
    assert labels == {1: "PSL · E=1", 2: "FedAvg · E=2"}
