"""What the dashboard shows about the paradigms: form fields, presets, Compare, run table, Learn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app.ui.views.compare import X_AXES, summary_table, with_x
from app.ui.views.form_fields import (
    SECTIONS,
    config_from_state,
    custom_frame,
    field_relevant,
    form_state_from_config,
    full_config,
    groups_frame,
    parse_fl_clients,
    widget_key,
)
from app.ui.views.learn_paradigms import PARADIGM_ORDER, roles_table, toy_costs
from app.ui.views.presets import SWEEP_PRESETS, preset_config, sweep_preset
from app.ui.views.run_table import describe_method
from app.ui.views.sweep_builder import count_runs, parse_grid, parse_seeds
from psl_core.config import parse_config
from psl_core.models import profile_arch
from psl_core.paradigms import PARADIGMS
from psl_core.sweep import sweep_configs

PAGES = Path(__file__).resolve().parents[2] / "pages"


@pytest.mark.parametrize("fl_clients", [0.25, ["rpi4b", "jetson_gpu"]])
def test_the_paradigm_section_round_trips_through_the_form(fl_clients):
    config = preset_config("30-second demo (digits)")
    config["paradigm"] = {
        "name": "hsfl",
        "local_epochs": 2,
        "local_batch": 12,
        "client_fraction": 0.5,
        "fl_clients": fl_clients,
    }
    config["system"]["custom_devices"] = [
        {"id": "phone", "name": "", "gflops": 5.0, "up_mbps": 20.0, "down_mbps": 40.0, "latency_ms": 8.0,
         "memory_mb": 4096.0, "busy_watts": 3.5, "radio_watts": None},
    ]  # fmt: skip
    state = form_state_from_config(config)
    assert state[widget_key("paradigm.fl_clients")] in ("0.25", "rpi4b, jetson_gpu")
    back = config_from_state(state, groups_frame(config), custom_frame(config))
    assert full_config(back) == full_config(config)
    assert [s.path for s in SECTIONS["Paradigm"]][0] == "paradigm.name"


def test_fl_clients_text_is_read_as_a_fraction_or_device_ids():
    assert parse_fl_clients(" 0.5 ") == 0.5
    assert parse_fl_clients("rpi4b,jetson_gpu") == ["rpi4b", "jetson_gpu"]
    assert parse_fl_clients("rpi4b,,x") == "rpi4b,,x"  # kept as typed: validation names it
    with pytest.raises(ValueError):
        parse_config({"paradigm": {"fl_clients": parse_fl_clients("rpi4b,,x")}})


def test_paradigm_fields_are_enabled_only_where_they_act():
    state = {widget_key("paradigm.name"): "psl"}
    assert not field_relevant("paradigm.local_epochs", state) and field_relevant("sampling.method", state)
    state[widget_key("paradigm.name")] = "sl"
    assert field_relevant("paradigm.local_epochs", state)
    assert not field_relevant("paradigm.client_fraction", state) and not field_relevant(
        "sampling.method", state
    )
    state[widget_key("paradigm.name")] = "hsfl"
    assert field_relevant("paradigm.fl_clients", state) and field_relevant("paradigm.client_fraction", state)


def test_the_sweep_preset_compares_psl_with_sfl_fl_and_sl_on_severe_non_iid():
    [name] = [n for n in SWEEP_PRESETS if "SFL" in n and "severe" in n]
    config, grid_text, seeds_text = sweep_preset(name)
    grid, seeds = parse_grid(grid_text), parse_seeds(seeds_text)
    assert grid == {"paradigm.name": ["psl", "sflv1", "sflv2", "fedavg", "sl"]} and seeds == [0, 1, 2]
    base = parse_config(config)
    assert (base.partition.classes_per_client, base.partition.alpha, base.sampling.method) == (2, 3.0, "ugs")
    runs = sweep_configs(base, grid, seeds)
    assert count_runs(grid, seeds) == len(runs) == 15
    assert {r.paradigm.name for r in runs} == {"psl", "sflv1", "sflv2", "fedavg", "sl"}


def test_compare_puts_rounds_on_the_epoch_axis_and_sums_traffic_and_energy():
    assert "round" in X_AXES
    epochs = pd.DataFrame(
        {"epoch": [1, 2], "step": [10, 20], "test_acc": [0.5, 0.7], "sim_time": [3.0, 6.0],
         "wall_time": [1.0, 2.0], "bytes_per_client": [2e6, 4e6], "energy_per_client_j": [1.5, 3.0]}
    )  # fmt: skip
    assert (
        with_x(epochs, "round", "epochs").tolist() == with_x(epochs, "epoch", "epochs").tolist() == [1.0, 2.0]
    )
    steps = pd.DataFrame({"step": [10, 20], "epoch": [1, 2], "loss": [1.0, 0.5], "sim_time": [3.0, 6.0],
                          "wall_time": [1.0, 2.0]})  # fmt: skip
    old_run = epochs.drop(columns=["bytes_per_client", "energy_per_client_j"])
    table = summary_table({1: "new", 2: "old"}, {1: steps, 2: steps}, {1: epochs, 2: old_run}, 0.6)
    new, old = table.set_index("run").loc["new"], table.set_index("run").loc["old"]
    assert new["MB per client"] == pytest.approx(4.0) and new["J per client"] == pytest.approx(3.0)
    assert pd.isna(old["MB per client"]) and pd.isna(old["J per client"])


def test_the_run_table_names_the_paradigm():
    assert describe_method({"method": "ugs", "batch_size": 64}, {"name": "psl"}) == "UGS B=64"
    text = describe_method({"method": "ugs", "batch_size": 64}, {"name": "fedavg", "local_epochs": 2,
                                                                    "client_fraction": 0.25})  # fmt: skip
    assert text == "FEDAVG E=2 b=B/K C=0.25"


def test_learn_tables_cover_six_paradigms_and_costs_follow_their_structure():
    roles = roles_table()
    assert list(roles["paradigm"]) == [PARADIGMS[n].title for n in PARADIGM_ORDER]
    costs = toy_costs(8, ["rpi4b", "jetson_gpu"], "resnet8", 2, 16).set_index("paradigm")
    title = {n: PARADIGMS[n].short for n in PARADIGM_ORDER}
    time = costs["simulated time (s)"]
    assert time[title["sl"]] > 2 * time[title["sflv1"]]  # one client at a time
    assert time[title["sflv1"]] == pytest.approx(time[title["sflv2"]])
    model_mb = profile_arch("resnet8", (3, 32, 32), 10).total_param_bytes / 1e6
    assert costs.loc[title["fedavg"], "MB per client"] == pytest.approx(2 * model_mb)
    mb = costs["MB per client"]
    assert mb[title["fedavg"]] < mb[title["hsfl"]] < mb[title["sflv1"]]  # half the clients in FL mode
    assert (costs["J per client"] > 0).all() and np.isfinite(costs.to_numpy(float)).all()


def test_learn_page_explains_the_chosen_paradigm(fresh_psl_home):
    at = AppTest.from_file(str(PAGES / "learn.py"), default_timeout=90)
    at.session_state["learn_tab"] = "PSL, SL, SplitFed, FedAvg, hybrid"  # lazy tabs: open this one
    at.run()
    assert not at.exception
    at.radio(key="pd_name").set_value("sflv2").run()
    assert any("ONE server part" in m.value for m in at.markdown)
    frames = [t.value for t in at.table if "J per client" in t.value.columns]
    assert len(frames) == 1 and len(frames[0]) == 6


def test_new_experiment_sweep_preset_fills_grid_and_seeds(fresh_psl_home):
    at = AppTest.from_file(str(PAGES / "new_experiment.py"), default_timeout=90)
    at.session_state["ne:sweep_open"] = True  # the sweep builder is lazy: drawn only while open
    at.run()
    [name] = list(SWEEP_PRESETS)
    at.selectbox(key="ne:sweep_preset").select(name).run()
    assert not at.exception
    assert at.text_area(key="ne:sweep_grid").value == "paradigm.name: psl, sflv1, sflv2, fedavg, sl"
    assert at.text_input(key="ne:sweep_seeds").value == "0, 1, 2"
    assert at.number_input(key="ne.partition.classes_per_client").value == 2
    assert any("15 runs" in c.value for c in at.caption)


@pytest.mark.parametrize("name", ["sl", "sflv2", "fedavg", "hsfl"])
def test_the_monitor_timeline_replays_rounds_as_the_engine_ran_them(name):
    from app.ui.views.timeline import RoundTimeline, timeline_of
    from psl_core.config import ExperimentConfig, apply_overrides
    from psl_core.engine import MemorySink, run_experiment

    cfg = apply_overrides(
        ExperimentConfig(),
        {"data.dataset": "digits", "data.train_limit": 200, "data.test_limit": 40, "partition.num_clients": 5,
         "model.arch": "mlp", "paradigm.name": name, "paradigm.local_batch": 16, "training.epochs": 2,
         "system.clients": [{"device": "rpi4b", "fraction": 0.6}, {"device": "jetson_gpu", "fraction": 0.4}]},
    )  # fmt: skip
    sink = MemorySink()
    run_experiment(cfg, sink)
    timeline = timeline_of(cfg.model_dump(mode="json"))
    assert isinstance(timeline, RoundTimeline) and timeline.total_steps == len(sink.steps)
    window = timeline.window(1, timeline.total_steps)
    per_step = window.groupby("step")["step_time"].first().to_numpy()
    assert per_step == pytest.approx([s["sim_step_time"] for s in sink.steps])
    # each client's busy time over a round adds up to what the engine reported for that round
    busy = window.groupby(["epoch", "client"])["busy"].sum()
    for stat in sink.client_stats:
        assert busy[(stat["epoch"] - 1, stat["client"])] == pytest.approx(stat["busy_time"])
    assert (window["idle"] >= 0).all()


def test_a_user_picks_a_paradigm_in_the_form_and_launch_stores_it(fresh_psl_home, monkeypatch):
    from storage import Store

    monkeypatch.setattr("app.worker.supervisor.ensure_worker", lambda settings, **kw: True)  # no worker
    at = AppTest.from_file(str(PAGES / "new_experiment.py"), default_timeout=90).run()
    assert at.selectbox(key="ne.paradigm.name").value == "psl"
    shown = {w.key for w in [*at.text_input, *at.selectbox, *at.number_input]}
    assert "ne.paradigm.fl_clients" not in shown and "ne.sampling.method" in shown  # hsfl's field, not PSL's
    at.selectbox(key="ne.paradigm.name").select("hsfl").run()
    shown = {w.key for w in [*at.text_input, *at.selectbox, *at.number_input]}
    assert "ne.sampling.method" not in shown  # PSL's schedules do not apply to rounds
    assert {"ne.paradigm.fl_clients", "ne.paradigm.local_epochs", "ne.paradigm.client_fraction"} <= shown
    at.number_input(key="ne.paradigm.local_epochs").set_value(2).run()
    at.text_input(key="ne.paradigm.fl_clients").set_value("0.25").run()
    at.button(key="ne:launch").click().run()
    assert not at.exception and not at.error
    store = Store(f"sqlite:///{fresh_psl_home}/psl.db")
    [run] = store.list_runs()
    paradigm = store.get_run(run.id).config["paradigm"]
    assert paradigm["name"] == "hsfl" and paradigm["local_epochs"] == 2 and paradigm["fl_clients"] == 0.25
