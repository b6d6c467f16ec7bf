"""AppTest of the Split planner page, and the view functions it shows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app.ui.charts.planner import methods_chart, pareto_chart
from app.ui.views import planner as pv
from app.ui.views.presets import DEMO_PRESET, MIXED_PRESET, preset_config
from app.ui.widgets import PREFILL_CONFIG
from psl_core.config import parse_config

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "planner.py")


@pytest.fixture(scope="module")
def mixed_report():
    return pv.plan_config(parse_config(preset_config(MIXED_PRESET)), uplink_mbps=100.0)


@pytest.fixture
def page(fresh_psl_home):
    return AppTest.from_file(PAGE, default_timeout=120).run()


def test_page_plans_the_mixed_preset_and_shows_every_part(page):
    assert not page.exception and not page.error
    assert page.selectbox[0].value == MIXED_PRESET  # no form config in this session: the mixed preset
    methods = next(df.value for df in page.dataframe if "× exact" in df.value.columns)
    assert len(methods) == 4 and methods["× exact"].min() == pytest.approx(1.0)
    groups = next(df.value for df in page.dataframe if "uplink (Mbit/s)" in df.value.columns)
    assert len(groups) == 4 and (groups["clients"] * groups["share"]).sum() <= 1 + 1e-9
    assert any("Rule: the least energy" in m.value or "fastest plan" in m.value for m in page.markdown)


def test_apply_hands_the_planned_config_to_the_new_experiment_form(page):
    page.radio[0].set_value("exact")
    next(b for b in page.button if b.label == "Apply to experiment").click().run()
    planned = page.session_state[PREFILL_CONFIG]
    assert planned["system"]["shared_uplink_mbps"] == 100.0
    assert all(g["uplink_share"] and g["cut"] for g in planned["system"]["clients"])
    parse_config(planned)  # a valid config


def test_missed_target_shows_what_would_meet_it(page):
    page.number_input[0].set_value(1.0)  # W
    page.number_input[1].set_value(0.01)  # a target nothing reaches
    next(b for b in page.button if b.label == "Plan").click().run()
    assert any("no plan reaches a step time" in e.value for e in page.error)


def test_per_client_plan_is_shown_not_applied(page):
    page.selectbox[0].set_value(DEMO_PRESET)
    page.checkbox[0].check()
    next(b for b in page.button if b.label == "Plan").click().run()
    assert not page.exception and not page.error
    plan = next(df.value for df in page.dataframe if "uplink (Mbit/s)" in df.value.columns)
    assert len(plan) == 10 and (plan["clients"] == 1).all()  # one row per client of the demo
    assert plan["share"].sum() <= 1.0
    assert not any(b.label == "Apply to experiment" for b in page.button)
    assert any("per-client plan cannot be applied" in i.value for i in page.info)


def test_view_frames_and_charts(mixed_report):
    r = mixed_report
    assert set(r.methods["key"]) == {"exact", "one_cut", "per_device", "alternating"}
    assert r.methods.set_index("key").loc["exact", "proven_optimal"]
    clients = pv.plan_columns(r, r.exact)
    assert len(clients) == 16 and clients["cut"].notna().all()
    # every client of a group has the group's cut and share
    for _, g in r.groups.iterrows():
        members = clients[clients["device"] == g["device"]]
        assert (members["cut"] == g["cut"]).all() and np.allclose(members["share"], g["share"])
    assert r.front is not None and r.front["chosen"].sum() == 1
    long = pv.method_phases_frame(r.methods)
    per_method = long.groupby("method")["seconds"].sum()
    steps = r.methods.set_index("method")["step_time_s"]
    assert np.allclose(per_method.loc[steps.index], steps)
    assert methods_chart(r.methods).to_dict()["mark"]["type"] == "bar"
    layers = pareto_chart(r.front, r.methods).to_dict()["layer"]
    assert len(layers) == 5
    # Symbols at the edge of the range are drawn whole: both axes are padded.
    scales = [layer["encoding"][axis]["scale"] for layer in layers[:2] for axis in ("x", "y")]
    assert all(scale.get("padding", 0) >= 10 for scale in scales)


def test_report_json_has_no_nan(mixed_report):
    import json

    text = json.dumps(pv.report_json(mixed_report), allow_nan=False)
    assert '"methods"' in text


def test_the_page_says_what_a_plan_means_for_the_forms_paradigm(fresh_psl_home):
    """A hybrid SL/FL experiment in the form is planned as PSL's step, and the page says so; a FedAvg
    experiment (no cut) gets a refusal that says what to change, not a PSL plan."""
    from app.ui.form import FORM_CONFIG_KEY

    for paradigm, expected in (("hsfl", "FL mode"), ("fedavg", "no cut or uplink share to plan")):
        at = AppTest.from_file(PAGE, default_timeout=120)
        config = preset_config(MIXED_PRESET)
        config["paradigm"] = {"name": paradigm}
        at.session_state[FORM_CONFIG_KEY] = config
        at.run()
        assert not at.exception
        shown = [c.value for c in at.caption] + [e.value for e in at.error]
        assert any(expected in text for text in shown), shown
