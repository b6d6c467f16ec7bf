"""The ``paradigm`` config section: defaults that keep old configs as they were, clear refusals, fuzz."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from psl_core.config import ConfigError, ExperimentConfig, canonical_json, parse_config
from psl_core.devices import custom_device

pytestmark = pytest.mark.usefixtures("one_torch_thread")

OLD_CONFIG = {  # a config written before the paradigm section existed
    "name": "old",
    "seed": 3,
    "partition": {"num_clients": 16, "scheme": "extended_dirichlet", "alpha": 3.0},
    "system": {"custom_devices": [{"id": "mine", "gflops": 2.0}], "clients": [{"device": "mine"}]},
}


def test_an_old_config_loads_as_psl_and_keeps_its_hash():
    cfg = parse_config(OLD_CONFIG)
    assert cfg.paradigm.name == "psl"
    dump = cfg.model_dump(mode="json")
    # the hash is the one the store computed before the section (and the power fields) existed
    del dump["paradigm"]
    for device in dump["system"]["custom_devices"]:
        del device["busy_watts"], device["radio_watts"]
    del dump["system"]["shared_uplink_mbps"]  # the split planner's fields, unset here
    for group in dump["system"]["clients"]:
        del group["uplink_share"]
    assert cfg.config_hash() == hashlib.sha256(canonical_json(dump).encode()).hexdigest()
    # a non-default paradigm is a different experiment: a different hash
    other = parse_config({**OLD_CONFIG, "paradigm": {"name": "sflv1"}})
    assert other.config_hash() != cfg.config_hash()


@pytest.mark.parametrize(
    "data, field, hint",
    [
        ({"paradigm": {"name": "fl"}}, "paradigm.name", "psl"),
        ({"paradigm": {"local_epochs": 0}}, "paradigm.local_epochs", "greater than or equal to 1"),
        ({"paradigm": {"local_batch": 0}}, "paradigm.local_batch", "greater than or equal to 1"),
        ({"paradigm": {"client_fraction": 0}}, "paradigm.client_fraction", "greater than 0"),
        ({"paradigm": {"client_fraction": 1.5}}, "paradigm.client_fraction", "less than or equal to 1"),
        ({"paradigm": {"fl_clients": 1.5}}, "paradigm.fl_clients", "[0, 1]"),
        ({"paradigm": {"fl_clients": ["", "rpi4b"]}}, "paradigm.fl_clients", "device ids"),
        ({"paradigm": {"name": "sl", "client_fraction": 0.5}}, "client_fraction", "averaging paradigm"),
        ({"paradigm": {"name": "sflv1"}, "model": {"cut2": 3}}, "model.cut2", "U-shaped"),
        (
            {"paradigm": {"name": "fedavg"}, "model": {"cut2": 3}, "system": {"helpers": {"num_helpers": 2}}},
            "model.cut2",
            "psl",
        ),
        ({"paradigm": {"epochs": 2}}, "paradigm.epochs", "Extra inputs"),
    ],
)
def test_bad_paradigm_fields_are_refused_with_the_field_named(data, field, hint):
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert field in str(err.value) and hint in str(err.value)


def test_helpers_only_serve_psl():
    with pytest.raises(ConfigError, match="num_helpers to 0"):
        parse_config(
            {
                "paradigm": {"name": "sflv2"},
                "model": {"cut2": None},
                "system": {"helpers": {"num_helpers": 1}},
            }
        )


PARADIGM_VALUES = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(
            st.sampled_from(["psl", "sl", "sflv1", "sflv2", "fedavg", "hsfl"]), st.text(max_size=6)
        ),
        "local_epochs": st.one_of(st.integers(-3, 2000), st.floats(allow_nan=True), st.text(max_size=3)),
        "local_batch": st.one_of(st.none(), st.integers(-3, 10**6), st.booleans()),
        "client_fraction": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-1, 2)),
        "fl_clients": st.one_of(
            st.floats(allow_nan=True), st.lists(st.text(max_size=8), max_size=3), st.integers(-2, 3)
        ),
        "bogus": st.integers(),
    },
)


@settings(max_examples=300, deadline=None)
@given(PARADIGM_VALUES)
def test_any_paradigm_section_either_validates_or_names_its_field(section):
    try:
        cfg = parse_config({"paradigm": section})
    except ConfigError as err:
        assert "paradigm" in str(err)
        return
    p = cfg.paradigm
    assert p.local_epochs >= 1 and 0 < p.client_fraction <= 1
    assert p.local_batch is None or p.local_batch >= 1
    assert isinstance(p.fl_clients, list) or 0 <= p.fl_clients <= 1
    assert parse_config(cfg.model_dump(mode="json")) == cfg  # a dump reads back as the same config


def test_every_device_has_power_figures_and_says_where_they_come_from():
    from psl_core.devices import load_catalog

    for device in load_catalog().values():
        assert device.busy_watts > device.radio_watts > 0
        assert device.power_source
    assert "ASSUMED" in load_catalog()["vm"].power_source
    assert "Pi Dramble" in load_catalog()["rpi4b"].power_source
    mine = custom_device("x", "x", gflops=1, up_mbps=1, down_mbps=1)
    assert "ASSUMED" in mine.power_source
    given = custom_device("x", "x", gflops=1, up_mbps=1, down_mbps=1, busy_watts=3, radio_watts=1)
    assert (given.busy_watts, given.radio_watts, given.power_source) == (3, 1, "user-defined")
    with pytest.raises(ValueError, match="busy_watts must be > 0"):
        custom_device("x", "x", gflops=1, up_mbps=1, down_mbps=1, busy_watts=0)
    assert ExperimentConfig().paradigm.name == "psl"
