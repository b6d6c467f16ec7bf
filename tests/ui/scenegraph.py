"""Render an Altair chart the way a browser would (vl-convert runs Vega), and list its drawn marks."""

from __future__ import annotations

import vl_convert as vlc

from app.ui.charts.figure import VEGA_LITE_VERSION


def drawn_items(chart, marktype: str) -> list[dict]:  # noqa: ANN001 - any Altair top-level chart
    """Every drawn item (with its fill, opacity, x, y...) of the marks of ``marktype`` in the chart."""
    graph = vlc.vegalite_to_scenegraph(chart.to_dict(), vl_version=VEGA_LITE_VERSION)
    found: list[dict] = []

    def walk(node) -> None:  # noqa: ANN001
        if isinstance(node, dict):
            if node.get("marktype") == marktype and node.get("role") == "mark":
                found.extend(node.get("items", []))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(graph)
    return found
