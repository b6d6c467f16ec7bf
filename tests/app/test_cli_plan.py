"""``psl plan``: the four methods on the config's device mix, JSON for scripts, the plan written back
into a config that trains with the planned time model, and clear refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from app.cli import app
from app.ui.views.presets import DEMO_PRESET, PRESETS, preset_config
from psl_core.config import parse_config
from psl_core.devices import epoch_timing
from psl_core.engine.setup import build_client_system_for, device_catalog
from psl_core.models import profile_arch
from psl_core.planner import expected_samples_per_step

runner = CliRunner()

MIX = {
    "name": "mix",
    "data": {"dataset": "digits"},
    "partition": {"num_clients": 8},
    "model": {"arch": "cnn", "cut": 1},
    "sampling": {"method": "fls", "batch_size": 64},
    "system": {
        "server_device": "vm",
        "clients": [
            {"device": "rpi4b", "fraction": 0.5},
            {"device": "jetson_gpu", "fraction": 0.25},
            {"device": "rpi3bplus", "fraction": 0.25},
        ],
    },
}


def write(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


def invoke(*args):
    return runner.invoke(app, list(args))


def test_plan_prints_four_methods_and_the_exact_plan_per_group(home):
    result = invoke("plan", str(write(home / "mix.yaml", MIX)), "--uplink-mbps", "20")
    assert result.exit_code == 0, result.output
    for title in ("exact", "one cut for all", "per-device best cut", "alternating"):
        assert title in result.output
    assert "shared uplink 20 Mbit/s" in result.output
    assert "group 0 (rpi4b)" in result.output and "energy front" in result.output


def test_plan_json_is_machine_readable_and_consistent(home):
    result = invoke("plan", str(write(home / "mix.yaml", MIX)), "--uplink-mbps", "20", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    methods = {m["key"]: m for m in data["methods"]}
    assert set(methods) == {"exact", "one_cut", "per_device", "alternating"}
    assert methods["exact"]["vs_exact"] == 1.0 and methods["exact"]["proven_optimal"]
    assert all(m["step_time_s"] >= methods["exact"]["step_time_s"] * (1 - 1e-12) for m in methods.values())
    shares = [g["share"] for g in data["groups"]]
    clients = [g["clients"] for g in data["groups"]]
    assert sum(s * n for s, n in zip(shares, clients, strict=True)) <= 1 + 1e-9
    assert data["front"] and sum(p["chosen"] for p in data["front"]) == 1


def test_written_plan_trains_with_the_planned_step_time(home):
    """The config written by --write holds the plan; its time model (FLS: every client sends the same
    b each step) gives exactly the exact plan's step time."""
    out = home / "planned.yaml"
    result = invoke(
        "plan", str(write(home / "mix.yaml", MIX)), "--uplink-mbps", "20", "--write", str(out), "--json"
    )
    assert result.exit_code == 0, result.output
    planned = parse_config(yaml.safe_load(out.read_text()))
    assert planned.system.shared_uplink_mbps == 20.0
    assert all(g.uplink_share is not None and g.cut is not None for g in planned.system.clients)
    exact = next(m for m in json.loads(result.output)["methods"] if m["key"] == "exact")
    profile = profile_arch("cnn", (1, 8, 8), 10)
    system, _, _ = build_client_system_for(planned, profile, None, device_catalog(planned))
    k = planned.partition.num_clients
    b = expected_samples_per_step("fls", np.ones(k), 64)
    timing = epoch_timing(np.zeros(k, dtype=int), np.arange(k), b.astype(int), 1, system)
    if hasattr(timing, "sync_phase"):  # the phase time model (forward, server, backward, sync)
        assert timing.step_time[0] == pytest.approx(exact["step_time_s"], rel=1e-9)
    # the up links are the planned shares of W
    assert system.up_bps.max() <= 20e6 and np.all(system.up_bps > 0)


@pytest.mark.parametrize("name", [DEMO_PRESET, *[p for p in PRESETS if p.startswith("GPSL paper")]])
def test_plan_works_on_the_demo_and_paper_presets(home, name):
    cfg = write(home / "preset.yaml", preset_config(name))
    result = invoke("plan", str(cfg), "--uplink-mbps", "50", "--no-front")
    assert result.exit_code == 0, result.output
    assert "exact (branch and bound" in result.output


def test_plan_refuses_bad_inputs_with_what_to_change(home):
    cfg = write(home / "mix.yaml", MIX)
    bad = invoke("plan", str(cfg), "--uplink-mbps", "-5")
    assert bad.exit_code == 2 and "--uplink-mbps must be a positive" in bad.output
    u_shaped = write(home / "u.yaml", {**MIX, "model": {"arch": "cnn", "cut": 1, "cut2": 2}})
    refused = invoke("plan", str(u_shaped))
    assert refused.exit_code == 2 and "model.cut2" in refused.output
    target = invoke("plan", str(cfg), "--uplink-mbps", "1", "--target-s", "0.0001", "--no-front")
    assert target.exit_code == 2 and "no plan reaches a step time" in target.output


def test_caps_bound_a_devices_uplink_rate(home):
    cfg = write(home / "mix.yaml", MIX)
    result = invoke(
        "plan", str(cfg), "--uplink-mbps", "20", "--cap", "jetson_gpu=0.5", "--no-front", "--json"
    )
    assert result.exit_code == 0, result.output
    groups = {g["device"]: g for g in json.loads(result.output)["groups"]}
    assert groups["jetson_gpu"]["uplink_mbps"] <= 0.5 + 1e-9
    bad = invoke("plan", str(cfg), "--uplink-mbps", "20", "--cap", "toaster=1")
    assert bad.exit_code == 2 and "toaster" in bad.output
    malformed = invoke("plan", str(cfg), "--cap", "jetson_gpu")
    assert malformed.exit_code == 2 and "--cap expects device=Mbit/s" in malformed.output


def test_advise_uses_the_planners_per_device_cuts(home):
    cfg = write(home / "mix.yaml", MIX)
    result = invoke("advise", str(cfg), "--json")
    assert result.exit_code == 0, result.output
    best = json.loads(result.output)["best_cut"]
    assert set(best) == {"rpi4b", "jetson_gpu", "rpi3bplus"}


@pytest.mark.parametrize("paradigm", ["sl", "sflv2", "hsfl"])
def test_plan_says_what_it_means_for_the_configs_paradigm(home, paradigm):
    """The planner models PSL's synchronous step; it planned a SplitFed, SL or hybrid config as if it
    were PSL without saying so. It now says what the plan means for the paradigm."""
    cfg = write(home / f"{paradigm}.yaml", {**MIX, "paradigm": {"name": paradigm}})
    result = invoke("plan", str(cfg), "--uplink-mbps", "20", "--no-front", "--json")
    assert result.exit_code == 0, result.output
    notes = " ".join(json.loads(result.stdout)["notes"])  # stderr holds the config's own warnings
    expected = {"sl": "one client at a time", "sflv2": "SplitFed", "hsfl": "FL mode"}[paradigm]
    assert expected in notes
    psl = json.loads(invoke("plan", str(write(home / "psl.yaml", MIX)), "--uplink-mbps", "20", "--no-front",
                            "--json").output)  # fmt: skip
    assert not any("paradigm" in n.lower() or "SplitFed" in n for n in psl["notes"])


def test_plan_refuses_fedavg_which_has_no_cut(home):
    cfg = write(home / "fedavg.yaml", {**MIX, "paradigm": {"name": "fedavg"}})
    refused = invoke("plan", str(cfg), "--uplink-mbps", "20")
    assert refused.exit_code == 2 and "no cut or uplink share to plan" in refused.output
    assert "paradigm.name" in refused.output
