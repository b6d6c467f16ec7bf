"""AppTest of the Helpers & scheduling page: generate, run, compare, export, validation messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "helpers.py")


@pytest.fixture
def page(fresh_psl_home):
    return AppTest.from_file(PAGE, default_timeout=60).run()


def _button(at, label):
    return next(b for b in at.button if b.label == label)


def test_default_scenario_offers_heuristics_not_exact(page):
    assert not page.exception
    assert any("K = 20, H = 10" in c.value for c in page.caption)
    assert any("Exact (CP-SAT) not offered" in c.value for c in page.caption)
    assert "exact" not in page.multiselect[0].options


def test_small_scenario_runs_exact_and_exports(page):
    page.number_input[0].set_value(4)  # clients
    page.number_input[1].set_value(2)  # helpers
    _button(page, "Generate scenario").click().run()
    page.multiselect[0].set_value(["baseline", "decomposition", "exact"])
    page.slider[2].set_value(2)
    _button(page, "Run solvers").click().run()
    assert not page.exception and not page.error
    table = next(df.value for df in page.dataframe if "makespan_s" in df.value.columns)
    assert set(table["method"]) == {"baseline", "decomposition", "exact"}
    assert table.set_index("method").loc["exact", "makespan_s"] <= table["makespan_s"].min() + 1e-9
    assert any("52.3 %" in info.value for info in page.info)
    downloads = page.get("download_button")
    assert len(downloads) == 3


def test_running_without_solvers_says_what_to_do(page):
    page.multiselect[0].set_value([])
    _button(page, "Run solvers").click().run()
    assert any("choose at least one solver" in e.value for e in page.error)
    assert not any("makespan_s" in df.value.columns for df in page.dataframe)
