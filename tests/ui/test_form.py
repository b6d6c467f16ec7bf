"""The New-experiment form's pure parts: field specs, state ⇄ config, validation, presets, sweep specs."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from app.ui.views.form_fields import (
    NO_CUT2,
    SECTIONS,
    all_fields,
    config_from_state,
    custom_frame,
    field_help,
    field_relevant,
    form_state_from_config,
    full_config,
    groups_frame,
    groups_from_frame,
    merged_with_defaults,
    parse_cut_text,
    widget_key,
)
from app.ui.views.form_problems import validate_form
from app.ui.views.presets import DEMO_PRESET, PRESETS, preset_config
from app.ui.views.sweep_builder import SweepSpecError, count_runs, parse_grid, parse_seeds
from psl_core.config import ExperimentConfig, parse_config


def _leaf_paths(model=ExperimentConfig, prefix="") -> set[str]:
    paths = set()
    for name, info in model.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and hasattr(ann, "model_fields"):
            paths |= _leaf_paths(ann, f"{prefix}{name}.")
        else:
            paths.add(prefix + name)
    return paths


def test_every_scalar_knob_has_a_widget_and_help_is_the_field_description():
    shown = {spec.path for spec in all_fields()}
    # the two lists (client groups, custom devices) are edited as tables, not scalar widgets; the helper
    # lists (per-link bandwidths, mixed helper devices, a bandwidth range) are set in the config text
    assert _leaf_paths() - shown == {
        "system.clients",
        "system.custom_devices",
        "system.helpers.link_mbps",
        "system.helpers.helper_devices",
        "system.helpers.link_mbps_range",
    }
    assert (
        field_help("sampling.lds_c")
        == ExperimentConfig.model_fields["sampling"].annotation.model_fields["lds_c"].description
    )
    assert "Partition α" in field_help("partition.alpha")
    assert [s.options for s in SECTIONS["Sampling"] if s.path == "sampling.method"][0] == (
        "fls", "fpls", "ugs", "lds", "centralised",
    )  # fmt: skip


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_validate_and_round_trip_through_the_form(name):
    config = preset_config(name)
    state = form_state_from_config(config)
    back = config_from_state(state, groups_frame(config), custom_frame(config))
    assert full_config(back) == config
    checked = validate_form(back)
    assert checked.errors == {} and checked.config is not None


def test_paper_presets_follow_the_gpsl_setting():
    for method in ("ugs", "fls", "fpls"):
        [name] = [n for n in PRESETS if n.startswith("GPSL") and PRESETS[n]["sampling"]["method"] == method]
        c = parse_config(preset_config(name))
        assert (c.data.dataset, c.model.arch, c.model.cut, c.partition.num_clients) == (
            "fashion_mnist",
            "cnn",
            1,
            16,
        )
        assert (c.partition.scheme, c.partition.classes_per_client, c.partition.alpha) == (
            "extended_dirichlet",
            2,
            3,
        )
        assert c.sampling.batch_size == 128
    demo = parse_config(preset_config(DEMO_PRESET))
    assert demo.data.dataset == "digits" and demo.training.epochs <= 5 and demo.training.device == "cpu"


def test_round_trip_keeps_custom_devices_per_group_cuts_and_a_u_shaped_cut():
    config = preset_config(DEMO_PRESET)
    config["model"]["cut2"] = "fc"  # a name: the form shows it as its index
    config["system"]["custom_devices"] = [
        {"id": "phone", "name": "", "gflops": 5.0, "up_mbps": 20.0, "down_mbps": 40.0, "latency_ms": 8.0,
         "memory_mb": 2048.0}
    ]  # fmt: skip
    config["system"]["clients"] = [
        {
            "device": "phone",
            "fraction": 0.25,
            "up_mbps": 5.0,
            "down_mbps": None,
            "latency_ms": None,
            "cut": "conv2",
        },
        {
            "device": "rpi4b",
            "fraction": 0.75,
            "up_mbps": None,
            "down_mbps": None,
            "latency_ms": 3.0,
            "cut": 1,
        },
    ]
    config = full_config(config)
    back = config_from_state(form_state_from_config(config), groups_frame(config), custom_frame(config))
    assert full_config(back) == {**config, "model": {**config["model"], "cut2": 3}}
    assert validate_form(back).errors == {}
    assert form_state_from_config(preset_config(DEMO_PRESET))[widget_key("model.cut2")] == NO_CUT2


def test_table_cells_blank_means_default_and_blank_rows_are_dropped():
    df = pd.DataFrame(
        [
            {"device": "rpi4b", "fraction": 1.0, "up_mbps": np.nan, "down_mbps": 30.0, "latency_ms": None, "cut": ""},
            {"device": None, "fraction": np.nan, "up_mbps": np.nan, "down_mbps": np.nan, "latency_ms": np.nan,
             "cut": None},
        ]
    )  # fmt: skip
    assert groups_from_frame(df) == [
        {
            "device": "rpi4b",
            "fraction": 1.0,
            "up_mbps": None,
            "down_mbps": 30.0,
            "latency_ms": None,
            "uplink_share": None,
            "cut": None,
        }
    ]
    assert (
        parse_cut_text(" 2 ") == 2 and parse_cut_text("conv1") == "conv1" and parse_cut_text(np.nan) is None
    )


def _plain(lines: list[str]) -> list[str]:
    """The lines as a reader sees them (Markdown backslash escapes removed)."""
    return [re.sub(r"\\(.)", r"\1", line) for line in lines]


def test_validation_puts_each_problem_in_its_section_with_what_to_change():
    config = preset_config(DEMO_PRESET)
    config["partition"]["alpha"] = -1.0
    checked = validate_form(config)
    assert checked.config is None
    assert any(
        "**Partition α (label skew)** (partition.alpha)" in line and "greater than 0" in line
        for line in _plain(checked.errors["Partition (non-IID)"])
    )

    config = preset_config(DEMO_PRESET)
    config["sampling"]["method"] = (
        "centralised"  # a cross-field error: filed under the section it names first
    )
    assert any("set “Clients K” to 1" in line for line in _plain(validate_form(config).errors["Sampling"]))

    config = preset_config(DEMO_PRESET)
    config["system"]["clients"][0]["device"] = "toaster"
    config["model"]["cut"] = 9
    checked = validate_form(config)
    assert checked.config is None
    lines = _plain(checked.errors["Devices & stragglers"] + checked.errors["Model & split"])
    assert any("Client groups, row 1, device" in line and "unknown device 'toaster'" in line and "rpi4b" in line
               for line in lines)  # fmt: skip
    assert any("valid indices are 1..3" in line for line in lines)


def test_problems_use_the_forms_labels_and_suggest_the_closest_field():
    """Defect 11: validation messages used internal wording (dotted paths, no suggestion)."""
    config = preset_config(DEMO_PRESET)
    config["sampling"]["batchsize"] = 64
    lines = _plain(validate_form(config).errors["Sampling"])
    assert lines == ["- **sampling.batchsize**: unknown field; did you mean “Global batch B”? (got 64)"]
    config = preset_config(DEMO_PRESET)
    config["partition"]["num_clients"] = 5000
    lines = _plain(validate_form(config).errors["Partition (non-IID)"])
    assert any(
        line.startswith("- **Clients K** (partition.num_clients)") and "lower “Clients K”" in line
        for line in lines
    )


def test_problem_lines_never_carry_markdown_from_the_config():
    """Issue 10: a value from the config is shown as text, never as a link or an image."""
    config = preset_config(DEMO_PRESET)
    config["system"]["clients"][0]["device"] = "![x](http://127.0.0.1:9/p.png)"
    line = next(iter(validate_form(config).errors["Devices & stragglers"]))
    assert "![x](" not in line and "\\!\\[x\\]\\(" in line


def test_the_form_shows_warnings_without_refusing_the_config():
    config = preset_config(DEMO_PRESET)
    config["sampling"]["batch_size"] = 5000
    checked = validate_form(config)
    assert checked.config is not None and checked.errors == {}
    assert any(
        "larger than the 1438 training samples" in line for line in _plain(checked.warnings["Sampling"])
    )


def test_an_invalid_prefill_still_fills_every_field():
    merged = merged_with_defaults({"partition": {"num_clients": 0}, "sampling": {"method": "lds"}})
    assert merged["partition"]["num_clients"] == 0 and merged["partition"]["scheme"] == "iid"
    assert merged["sampling"]["lds_c"] == 1.0
    state = form_state_from_config(merged)
    assert field_relevant("sampling.lds_delta", state) and not field_relevant(
        "sampling.per_client_batch", state
    )
    assert state[widget_key("data.data_dir")] == ""


def test_sweep_grid_and_seeds_parse_and_count():
    grid = parse_grid("# methods\nsampling.method: ugs, fls\n\nsampling.lds_c: 1, 2.5\ndata.augment: true")
    assert grid == {"sampling.method": ["ugs", "fls"], "sampling.lds_c": [1, 2.5], "data.augment": [True]}
    seeds = parse_seeds("0-2, 5, 1")
    assert seeds == [0, 1, 2, 5]
    assert count_runs(grid, seeds) == 2 * 2 * 1 * 4
    assert parse_grid("") == {} and count_runs({}, [0]) == 1
    for bad, says in [("sampling.method ugs", "field.path: value1"), ("sampling.nope: 1", "not a config field"),
                      ("seed:", "at least one value")]:  # fmt: skip
        with pytest.raises(SweepSpecError, match=says):
            parse_grid(bad)
    with pytest.raises(SweepSpecError, match="not an integer"):
        parse_seeds("a")
    with pytest.raises(SweepSpecError, match="backwards"):
        parse_seeds("3-1")


def test_a_problem_in_a_field_the_form_does_not_draw_says_which_choice_shows_it():
    """Fields without effect are not drawn; a bad value typed before the choice changed still blocks
    the launch, so its message says where the field is (else the user could not find it)."""
    config = preset_config("30-second demo (digits)")  # Dirichlet partition, UGS
    config["partition"]["shards_per_client"] = 0
    config["sampling"]["lds_c"] = -1.0
    config["model"]["norm_groups"] = -3  # drawn: the demo's client normalisation is GroupNorm
    errors = validate_form(config).errors
    [shards] = errors["Partition (non-IID)"]
    assert "Shards per client" in shards and "the field shows when “Scheme” is shards" in shards
    assert "the field shows when “Method” is lds" in errors["Sampling"][0]
    assert "the field shows" not in errors["Model & split"][0]
    config["partition"]["scheme"] = "shards"  # now drawn: no hint
    assert "the field shows" not in validate_form(config).errors["Partition (non-IID)"][0]
