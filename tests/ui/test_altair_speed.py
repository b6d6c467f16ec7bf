"""Altair's schema table is built once per process, and charts come out exactly as before."""

from __future__ import annotations

import altair as alt
import pandas as pd
import pytest
from altair.utils import schemapi

from app.ui.charts import altair_speed, metrics, preview


def _charts() -> list[dict]:
    long = pd.DataFrame({"run_id": [1, 1, 2, 2], "x": [1.0, 2.0, 1.0, 2.0], "value": [0.1, 0.2, 0.3, 0.4]})
    heat = pd.DataFrame({"client": [0, 0, 1, 1], "class": ["a", "b", "a", "b"], "count": [0, 1, 5, 9],
                         "client_size": [1, 1, 14, 14]})  # fmt: skip
    return [
        metrics.metric_chart(long, "epoch", "test_acc", labels={1: "UGS", 2: "FLS"}).to_dict(),
        preview.partition_heatmap(heat).to_dict(),
        alt.Chart(long).mark_point().encode(x="x:Q", y="value:Q", tooltip=["run_id:N", "x:Q"]).to_dict(),
    ]


@pytest.fixture
def unpatched(monkeypatch):
    monkeypatch.setattr(schemapi.SchemaBase, "from_dict", altair_speed._original_from_dict)
    yield
    # monkeypatch restores the shared-table version installed by app.ui.charts


def test_same_specs_with_and_without_the_shared_table(unpatched):
    before = _charts()
    assert altair_speed.install()
    assert _charts() == before


def test_shorthands_no_longer_rebuild_the_table(monkeypatch):
    assert altair_speed.install()
    _charts()  # the table exists now
    built = []
    original_init = schemapi._FromDict.__init__
    monkeypatch.setattr(schemapi._FromDict, "__init__",
                        lambda self, classes: built.append(1) or original_init(self, classes))  # fmt: skip
    _charts()
    assert built == []
    # Unpatched, every shorthand builds the table again (what cost ~40 ms each).
    monkeypatch.setattr(schemapi.SchemaBase, "from_dict", altair_speed._original_from_dict)
    alt.Chart(pd.DataFrame({"x": [1]})).mark_point().encode(x="x:Q", y="x:Q")
    assert len(built) == 2
