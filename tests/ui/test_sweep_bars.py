"""The sweep page's bar chart names its y axis once (the error-bar layer used to add ", low")."""

from __future__ import annotations

import json

import pandas as pd
import vl_convert as vlc

from app.ui.charts.sweep import sweep_bars


def test_sweep_bars_y_axis_title_is_the_metric_alone():
    frame = pd.DataFrame({"x": ["fls", "ugs"], "mean": [0.97, 0.98], "std": [0.01, None], "runs": [2, 1]})
    chart = sweep_bars(frame, "sampling.method", "final test accuracy", ["fls", "ugs"], percent=True)
    svg = vlc.vegalite_to_svg(json.dumps(chart.to_dict()))
    assert "final test accuracy" in svg
    assert "final test accuracy, low" not in svg and ", low" not in svg
