"""AppTest of the New-experiment page against a fresh SQLite store (no worker is started)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.ui.form import DEVICES_SECTION, section_key
from app.ui.views.form_fields import full_config
from app.ui.views.presets import preset_config
from app.ui.widgets import PREFILL_CONFIG
from storage import Store

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "new_experiment.py")
FLS_PRESET = "GPSL paper — FLS"
LAZY_KEYS = (section_key("Training"), section_key(DEVICES_SECTION), "ne:sweep_open")


@pytest.fixture
def store(fresh_psl_home, monkeypatch):
    # Launch would start a background worker; here the test is the only process.
    started = []
    monkeypatch.setattr(
        "app.worker.supervisor.ensure_worker", lambda settings, **kw: started.append(1) or True
    )
    return Store(f"sqlite:///{fresh_psl_home}/psl.db")


def _app(*, open_all: bool = True) -> AppTest:
    """The page; with ``open_all`` its lazy sections (Training, Devices & stragglers, the sweep
    builder) start open, so every field is drawn as before they became lazy."""
    at = AppTest.from_file(PAGE, default_timeout=60)
    if open_all:
        for key in LAZY_KEYS:
            at.session_state[key] = True
    return at


def _errors(at: AppTest) -> list[str]:
    """The error texts as a reader sees them (Markdown backslash escapes removed)."""
    return [re.sub(r"\\(.)", r"\1", e.value) for e in at.error]


def test_preset_fills_the_form_and_launch_stores_the_forms_config(store):
    at = _app().run()
    assert not at.exception
    assert at.selectbox(key="ne.data.dataset").value == "digits"  # the demo preset fills a fresh form
    at.selectbox(key="ne:preset").select(FLS_PRESET).run()
    expected = preset_config(FLS_PRESET)
    assert at.selectbox(key="ne.sampling.method").value == "fls"
    assert at.number_input(key="ne.partition.num_clients").value == 16
    assert at.number_input(key="ne.partition.alpha").value == 3.0
    assert at.session_state["ne:last_config"]["data"]["dataset"] == "fashion_mnist"
    assert full_config(at.session_state["ne:last_config"]) == expected

    at.number_input(key="ne.training.epochs").set_value(7).run()
    at.button(key="ne:launch").click().run()
    assert not at.exception and not _errors(at)
    runs = store.list_runs()
    assert len(runs) == 1 and runs[0].status == "queued"
    stored = store.get_run(runs[0].id).config
    assert stored == full_config(at.session_state["ne:last_config"])
    assert stored["training"]["epochs"] == 7 and stored["sampling"]["method"] == "fls"
    assert any(f"#{runs[0].id}" in s.value for s in at.success)


def test_invalid_values_show_what_to_change_and_store_nothing(store):
    at = _app().run()
    at.selectbox(key="ne.sampling.method").select("centralised").run()
    assert any("set “Clients K” to 1" in e for e in _errors(at))
    assert at.button(key="ne:launch").disabled  # AppTest, like a browser, cannot click it
    assert store.list_runs() == []

    bad = preset_config("30-second demo (digits)")
    bad["system"]["clients"] = [{"device": "rpi4b", "fraction": 0.5}, {"device": "vm", "fraction": 0.3}]
    at.session_state[PREFILL_CONFIG] = bad
    at.run()
    assert any("fractions must sum to 1" in e and "0.8" in e for e in _errors(at))
    assert at.button(key="ne:launch").disabled and at.button(key="ne:launch_sweep").disabled
    assert store.list_runs() == []


def test_sweep_builder_queues_grid_times_seeds_in_one_sweep(store):
    at = _app().run()
    at.text_area(key="ne:sweep_grid").input("sampling.method: ugs, fls\nsampling.batch_size: 32, 64").run()
    at.text_input(key="ne:sweep_seeds").input("0-2").run()
    assert any("12 runs" in c.value for c in at.caption)
    at.button(key="ne:launch_sweep").click().run()
    assert not at.exception
    sweeps = store.list_sweeps()
    assert len(sweeps) == 1
    runs = store.list_runs(sweep_id=sweeps[0].id)
    assert len(runs) == 12
    configs = [store.get_run(r.id).config for r in runs]
    assert {(c["sampling"]["method"], c["sampling"]["batch_size"], c["seed"]) for c in configs} == {
        (m, b, s) for m in ("ugs", "fls") for b in (32, 64) for s in (0, 1, 2)
    }


def test_bad_sweep_spec_is_explained(store):
    at = _app().run()
    at.text_area(key="ne:sweep_grid").input("sampling.metod: ugs").run()
    assert any("not a config field" in e for e in _errors(at))
    assert at.button(key="ne:launch_sweep").disabled


def test_rerun_with_edits_shows_a_banner_and_a_new_name(store):
    """Defect 10: 'Re-run with edits' gave no banner and kept the original name."""
    from app.ui.views.form_fields import rerun_config
    from app.ui.widgets import PREFILL_SOURCE

    original = preset_config("30-second demo (digits)")
    at = _app()
    at.session_state[PREFILL_CONFIG] = rerun_config(original, 7)
    at.session_state[PREFILL_SOURCE] = 7
    at.run()
    assert not at.exception
    assert any("Editing a copy of run #7" in i.value for i in at.info)
    assert at.text_input(key="ne.name").value == "demo digits (re-run of #7)"
    assert rerun_config(rerun_config(original, 7), 9)["name"] == "demo digits (re-run of #9)"  # no pile-up


def test_launched_message_goes_away_after_an_edit(store):
    """Defect 10: the 'queued' message stayed after the form was edited."""
    at = _app().run()
    at.button(key="ne:launch").click().run()
    assert any("Queued run #1" in s.value for s in at.success)
    at.number_input(key="ne.training.epochs").set_value(5).run()
    assert not any("Queued run" in s.value for s in at.success)


def test_alpha_caption_only_for_schemes_with_alpha_and_big_batch_warns(store):
    """Defect 11: the α caption showed on schemes without α; B > N was accepted silently."""
    at = _app().run()
    assert any("Partition α is the label-skew" in c.value for c in at.caption)  # the demo is Dirichlet
    at.selectbox(key="ne.partition.scheme").select("iid").run()
    assert not any("Partition α" in c.value for c in at.caption)
    at.number_input(key="ne.sampling.batch_size").set_value(5000).run()
    warnings = [re.sub(r"\\(.)", r"\1", w.value) for w in at.warning]
    assert any("Global batch B" in w and "larger than the 1438 training samples" in w for w in warnings)
    assert not at.button(key="ne:launch").disabled  # a warning does not refuse the launch


def test_only_the_open_preview_is_computed(store):
    """Speed (issue 11): the four previews together cost ~1 s per form change; the tabs are lazy, so a
    rerun computes and draws the open one only — and each tab still shows its own preview."""
    at = _app().run()
    assert any("white cells: no sample of that class" in c.value for c in at.caption)  # Partition
    assert not any(m.label.startswith("Expected step time") for m in at.metric)
    at.session_state["ne:preview_tab"] = "Devices"
    at.run()
    assert not at.exception
    assert any(m.label.startswith("Expected step time") for m in at.metric)
    assert not any("white cells" in c.value for c in at.caption)
    at.session_state["ne:preview_tab"] = "Model split"
    at.run()
    assert any(m.label == "Smashed bytes / sample" for m in at.metric)
    at.session_state["ne:preview_tab"] = "Sampling"
    at.run()
    assert any("method" in df.value.columns for df in at.dataframe)  # the methods' summary table


def _device_tables(at: AppTest) -> list:
    """The client-group and custom-device tables (data editors) the page draws."""
    return [df.value for df in at.dataframe if {"fraction"} <= set(df.value.columns) or "gflops" in df.value]


def test_closed_sections_are_lazy_and_keep_their_values(store):
    """Speed (issue 11): the sections closed by default (Training, Devices & stragglers, the sweep
    builder) were ~0.25 s of the page's browser time though nobody sees them; they are now drawn
    only while open — without losing a value, a table edit or a problem message."""
    at = _app(open_all=False).run()
    assert not at.exception
    shown = {w.key for w in at.number_input}
    assert "ne.training.epochs" not in shown and "ne.partition.num_clients" in shown
    assert not _device_tables(at) and "ne:sweep_grid" not in {t.key for t in at.text_area}
    demo_epochs = preset_config("30-second demo (digits)")["training"]["epochs"]
    assert at.session_state["ne:last_config"]["training"]["epochs"] == demo_epochs  # closed, still there

    at.session_state[section_key("Training")] = True
    at.run()
    at.number_input(key="ne.training.epochs").set_value(9).run()
    at.session_state[section_key("Training")] = False
    at.run()
    at.run()  # a second run with the section closed: Streamlit would drop a plain widget's value here
    assert "ne.training.epochs" not in {w.key for w in at.number_input}
    assert at.session_state["ne:last_config"]["training"]["epochs"] == 9
    at.session_state[section_key("Training")] = True
    at.run()
    assert at.number_input(key="ne.training.epochs").value == 9

    # A device-table edit made while open survives closing and reopening the section.
    at.session_state[section_key(DEVICES_SECTION)] = True
    at.run()
    edited = at.session_state["ne:groups"].copy()
    edited.loc[0, "up_mbps"] = 12.5  # what the editor returns after the user typed it
    at.session_state["ne:groups_edited"] = edited
    at.session_state[section_key(DEVICES_SECTION)] = False
    at.run()
    assert at.session_state["ne:last_config"]["system"]["clients"][0]["up_mbps"] == 12.5
    at.session_state[section_key(DEVICES_SECTION)] = True
    at.run()
    assert _device_tables(at)[0].loc[0, "up_mbps"] == 12.5  # the table shows the edit

    # A problem in a closed section is shown above it, and launching stores the closed values.
    bad = preset_config("30-second demo (digits)")
    bad["system"]["clients"] = [{"device": "rpi4b", "fraction": 0.5}, {"device": "vm", "fraction": 0.3}]
    fresh = _app(open_all=False)
    fresh.session_state[PREFILL_CONFIG] = bad
    fresh.run()
    assert any("fractions must sum to 1" in e for e in _errors(fresh))
    at.button(key="ne:launch").click().run()
    stored = store.get_run(store.list_runs()[0].id).config
    assert stored["training"]["epochs"] == 9 and stored["system"]["clients"][0]["up_mbps"] == 12.5


def test_fields_without_effect_are_not_drawn_and_keep_their_values(store):
    """The shard count matters only for the shards scheme, the LDS knobs only for LDS: the form draws
    a field when a choice makes it matter (a third fewer widgets on a first visit), and a value typed
    before the choice changed comes back with it — and is what the config holds meanwhile."""
    at = _app().run()
    shown = {w.key for w in at.number_input}
    assert "ne.partition.alpha" in shown  # the demo's Dirichlet partition
    assert not {"ne.partition.shards_per_client", "ne.sampling.lds_c", "ne.sampling.lds_delta"} & shown
    at.selectbox(key="ne.partition.scheme").select("shards").run()
    at.number_input(key="ne.partition.shards_per_client").set_value(3).run()
    assert "ne.partition.alpha" not in {w.key for w in at.number_input}
    at.selectbox(key="ne.partition.scheme").select("dirichlet").run()
    at.run()  # a second run with the field undrawn: Streamlit would drop a plain widget's value here
    assert "ne.partition.shards_per_client" not in {w.key for w in at.number_input}
    assert at.session_state["ne:last_config"]["partition"]["shards_per_client"] == 3
    at.selectbox(key="ne.partition.scheme").select("shards").run()
    assert at.number_input(key="ne.partition.shards_per_client").value == 3
    at.selectbox(key="ne.sampling.method").select("lds").run()
    assert {"ne.sampling.lds_c", "ne.sampling.lds_delta"} <= {w.key for w in at.number_input}
    assert not at.exception
