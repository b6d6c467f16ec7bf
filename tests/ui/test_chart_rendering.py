"""Charts as a browser draws them (Vega run by vl-convert): what must be visible is visible."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from app.ui.charts import learn as charts_learn
from app.ui.charts.figure import PNG_DPI, figure_pdf, figure_png, figure_svg
from app.ui.charts.metrics import metric_chart
from app.ui.charts.preview import ZERO_CELL, partition_heatmap
from app.ui.views import learn

try:
    from tests.ui.scenegraph import drawn_items
except ImportError:  # plain `pytest` from tests/
    from ui.scenegraph import drawn_items


def test_learn_composition_highlights_the_selected_step():
    """Defect 5: every bar was faded, the selected step was never highlighted."""
    federation = learn.toy_federation(6, 0.3, seed=0)
    frame = learn.composition_frame(learn.walk_all(federation, 32), "class", 10)
    bars = drawn_items(charts_learn.composition_chart(frame, "class", selected_step=3), "rect")
    opacities = np.array([bar.get("opacity", 1.0) for bar in bars])
    selected_rows = (frame["step"] == 3).sum()
    assert (opacities == 1.0).sum() == selected_rows > 0
    assert (opacities < 1.0).sum() == len(frame) - selected_rows


def test_partition_heatmap_zero_is_not_a_low_count():
    """Defect 11: empty cells were coloured like low counts."""
    frame = pd.DataFrame(
        {
            "client": [0, 0, 1, 1],
            "class": ["a", "b", "a", "b"],
            "count": [0, 1, 50, 100],
            "client_size": [1, 1, 150, 150],
        }
    )
    cells = {(c["x"], c["y"]): c["fill"] for c in drawn_items(partition_heatmap(frame), "rect")}
    zero, one = cells[(0, 0)], cells[(min(x for x, _ in cells if x > 0), 0)]
    assert zero == ZERO_CELL
    rgb = [int(v) for v in re.findall(r"\d+", one)]
    assert min(rgb) < 200  # a count of 1 is a visible blue, far from white


def test_one_point_series_draws_a_point():
    """Defect 6: a one-point chart showed an empty frame (a line needs two points)."""
    one = pd.DataFrame({"run_id": [1], "x": [1.0], "value": [0.42]})
    assert len(drawn_items(metric_chart(one, "epoch", "test_acc"), "symbol")) == 1
    long = pd.DataFrame({"run_id": 1, "x": np.arange(500.0), "value": np.linspace(1, 0, 500)})
    assert drawn_items(metric_chart(long, "step", "loss"), "symbol") == []  # long series: lines only


@pytest.fixture(scope="module")
def chart():
    long = pd.DataFrame({"run_id": 1, "x": np.arange(1.0, 31.0), "value": np.linspace(0.3, 0.9, 30)})
    return metric_chart(long, "epoch", "test_acc", labels={1: "UGS · B=64"})


def test_figure_export_is_publication_sized(chart):
    svg = figure_svg(chart).decode()
    width, height = (
        float(v) for v in re.search(r'<svg[^>]*width="([\d.]+)" height="([\d.]+)"', svg).groups()
    )
    assert (width, height) == pytest.approx((336, 230), abs=1)  # 3.5 × 2.4 in at 96 px/in
    assert "test accuracy (%)" in svg and "epoch" in svg  # axis titles with units
    assert "Arial" in svg  # the one font family
    png = figure_png(chart)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    png_width = int.from_bytes(png[16:20], "big")
    assert png_width == pytest.approx(3.5 * PNG_DPI, abs=4)
    assert figure_pdf(chart)[:5] == b"%PDF-"


def test_charts_shown_together_share_one_x_range():
    """Monitor: test accuracy (logged at steps 10, 20, 30) started its axis at step 10 beside a loss
    chart starting at 0, so points at the same step sat at different places; mid-epoch the loss
    also runs further (step 35) than the last accuracy point."""
    from app.ui.charts.metrics import shared_x_max

    loss = pd.DataFrame({"run_id": 1, "x": np.arange(1.0, 36.0), "value": np.linspace(2, 0.1, 35)})
    acc = pd.DataFrame({"run_id": 1, "x": [10.0, 20.0, 30.0], "value": [0.8, 0.85, 0.9]})
    x_max = shared_x_max(loss, acc, acc.iloc[:0])
    assert x_max == 35.0 and shared_x_max(acc.iloc[:0]) is None
    loss_points = drawn_items(metric_chart(loss, "step", "loss", x_max=x_max), "symbol")
    acc_points = drawn_items(metric_chart(acc, "step", "test_acc", x_max=x_max), "symbol")
    loss_x = {step: point["x"] for step, point in zip(range(1, 36), loss_points)}
    assert [p["x"] for p in acc_points] == pytest.approx([loss_x[10], loss_x[20], loss_x[30]], abs=0.5)
    # Each chart on its own range: the accuracy's last point sits where the loss has step 35.
    alone = drawn_items(metric_chart(acc, "step", "test_acc"), "symbol")
    assert alone[-1]["x"] == pytest.approx(loss_x[35], abs=0.5)
    assert alone[-1]["x"] != pytest.approx(loss_x[30], abs=0.5)


def test_last_point_is_drawn_inside_the_plot():
    """The dot of the last epoch sat on the plot's right edge, cut in half."""
    acc = pd.DataFrame({"run_id": 1, "x": [1.0, 2.0, 3.0], "value": [0.8, 0.85, 0.9]})
    chart = metric_chart(acc, "epoch", "test_acc").properties(width=300)
    xs = [point["x"] for point in drawn_items(chart, "symbol")]
    assert 0 < xs[0] and xs[-1] < 300 - 3  # a 3-px radius fits on both sides
    # The axis starts at 0 and ends at the last epoch (no empty stretch up to a rounder number).
    assert xs[-1] > 300 - 12 and xs[0] == pytest.approx((300 - 12) / 3 + 6, abs=1)


def _axis_labels(chart) -> list[str]:  # noqa: ANN001
    import vl_convert as vlc

    from app.ui.charts.figure import VEGA_LITE_VERSION

    graph = vlc.vegalite_to_scenegraph(chart.to_dict(), vl_version=VEGA_LITE_VERSION)
    labels: list[str] = []

    def walk(node) -> None:  # noqa: ANN001
        if isinstance(node, dict):
            if node.get("role") == "axis-label":
                labels.extend(str(item.get("text")) for item in node.get("items", []))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(graph)
    return labels


def test_step_and_epoch_ticks_read_as_numbers():
    """A 10-epoch run labelled its last tick '1e+1' and a 10^6-step run '1e+5', '2e+5', …"""
    epochs = pd.DataFrame({"run_id": 1, "x": np.arange(1.0, 11.0), "value": np.linspace(0.6, 0.9, 10)})
    labels = _axis_labels(metric_chart(epochs, "epoch", "test_acc"))
    assert "10" in labels and not any("e+" in label for label in labels)
    steps = pd.DataFrame({"run_id": 1, "x": np.linspace(1, 1e6, 200), "value": np.linspace(2, 0.1, 200)})
    labels = _axis_labels(metric_chart(steps, "step", "loss"))
    assert "1M" in labels and not any("e+" in label for label in labels)
