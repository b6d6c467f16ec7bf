"""AppTest of the Learn PSL page: the three explainers render and react to their widgets."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "learn.py")


@pytest.fixture
def page(fresh_psl_home):
    return AppTest.from_file(PAGE, default_timeout=60).run()


def open_tab(at, label: str):
    """The tabs are lazy: only the open explainer is computed, so a test opens the one it checks."""
    at.session_state["learn_tab"] = label
    return at.run()


def _frame(at, first_column: str):
    return next(t.value for t in at.table if t.value.columns[0] == first_column)


def test_sampling_tab_compares_the_four_methods(page):
    assert not page.exception
    summary = _frame(page, "method")
    assert list(summary["method"]) == ["FLS", "FPLS", "UGS", "LDS"]
    assert summary.set_index("method").loc["UGS", "steps per epoch"] == 45  # ceil(1438 / 32)
    page.select_slider(key="s_b").set_value(64).run()
    assert _frame(page, "method").set_index("method").loc["UGS", "steps per epoch"] == 23
    # The step slider cannot walk past the longest epoch shown.
    assert page.slider(key="s_step").max == 29
    assert any("project definition" in c.value for c in page.caption)


def test_split_tab_explains_flat_activations_and_costs(page):
    open_tab(page, "What the split point changes")
    costs = _frame(page, "cut")
    assert list(costs["after block"]) == ["stem", "layer1.0", "layer2.0", "layer3.0", "pool"]
    images = page.get("image")
    assert len(images) == 1 and "16 channels at the cut (8×8 each)" in images[0].proto.imgs[0].caption
    page.select_slider(key="p_cut").set_value("pool").run()
    assert any("flat vector of 64 numbers" in info.value for info in page.info)
    page.selectbox[0].set_value("mlp").run()
    assert any("no pixel layout" in info.value for info in page.info)
    assert list(_frame(page, "cut")["after block"]) == ["fc1", "fc2"]


def test_stragglers_tab_reacts_to_delta_and_devices(page):
    open_tab(page, "How stragglers stretch a step")
    summary = _frame(page, "schedule").set_index("schedule")
    assert list(summary.index) == ["UGS", "LDS (δ = 1)"]
    ugs_share = summary.loc["UGS", "share of samples from persistent stragglers"]
    page.slider(key="t_delta").set_value(3.0).run()
    summary = _frame(page, "schedule").set_index("schedule")
    assert summary.loc["LDS (δ = 3)", "share of samples from persistent stragglers"] < ugs_share
    page.multiselect(key="t_dev").set_value([]).run()
    assert any("at least one client device" in w.value for w in page.warning)
    assert not page.exception


def test_every_device_has_its_own_label_and_stays_chosen(page):
    """Defect 4: two devices shared one label, the multiselect swapped them and Jetson GPU could not be
    picked, so identical visible settings gave different numbers."""
    open_tab(page, "How stragglers stretch a step")
    picker = page.multiselect(key="t_dev")
    assert len(set(picker.options)) == len(picker.options) == 6
    picker.set_value(["jetson_gpu"]).run()
    first = _frame(page, "schedule")
    page.run()
    assert page.multiselect(key="t_dev").value == ["jetson_gpu"]
    assert _frame(page, "schedule").equals(first)
    picker = page.multiselect(key="t_dev").set_value(["jetson_cpu"]).run()
    assert not _frame(page, "schedule").equals(first)  # CPU and GPU Jetsons are different devices


def test_only_the_open_explainer_is_computed(page):
    """Speed (issue 11): the four explainers drawn together cost ~1 s of browser time per visit; the
    tabs are lazy, so a visit computes and sends the open one only."""
    shown = {t.value.columns[0] for t in page.table}
    assert "method" in shown and "cut" not in shown and "schedule" not in shown
    open_tab(page, "What the split point changes")
    shown = {t.value.columns[0] for t in page.table}
    assert "cut" in shown and "method" not in shown


def test_small_tables_show_fixed_decimals_and_no_index(page):
    """The Learn tables are static tables (a data grid cost ~0.1 s of browser time for four rows):
    floats to three decimals, integers as they are, no index column; the numbers travel unrounded."""
    import pyarrow as pa

    [table] = [t for t in page.table if t.value.columns[0] == "method"]
    assert not page.dataframe, "no interactive grid on the first explainer"
    assert table.value.set_index("method").loc["UGS", "steps per epoch"] == 45
    shown = pa.ipc.open_stream(table.proto.arrow_data.styler.display_values).read_pandas()
    assert list(shown.columns) == list(table.value.columns)
    ugs = shown.set_index("method").loc["UGS"]
    assert ugs["steps per epoch"] == "45" and len(ugs["mean deviation"].split(".")[1]) == 3
    assert table.proto.arrow_data.styler.uuid and "index" not in shown.columns
