"""One look for every chart, and publication export.

Every chart of the dashboard uses one font family and one type scale (an Altair theme, enabled when
this package is imported). ``figure_svg`` / ``figure_png`` / ``figure_pdf`` render a chart without a
browser (vl-convert) at a journal's single-column size with paper-sized text: 3.5 in × 2.4 in, text
8-9 pt, PNG at 300 dpi.
"""

from __future__ import annotations

import copy
from typing import Any

import altair as alt

# Arial where the viewer has it, its metric twin Liberation Sans on Linux, then generic sans.
FONT = "Arial, Liberation Sans, Helvetica, DejaVu Sans, sans-serif"
PX_PER_IN = 96  # Vega's px are CSS px: 96 per inch, 1 px = 0.75 pt
PNG_DPI = 300
PAPER_WIDTH_IN, PAPER_HEIGHT_IN = 3.5, 2.4  # one column of a two-column paper
VEGA_LITE_VERSION = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
# A categorical palette readable in print and by most colour-blind readers (Tableau 10).
PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
           "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]  # fmt: skip


def type_scale(label_px: float, title_px: float) -> dict[str, Any]:
    """Vega-Lite config: the one font, axis/legend/header text sizes, plain (not bold) axis titles."""
    text = {"labelFont": FONT, "titleFont": FONT, "labelFontSize": label_px, "titleFontSize": title_px}
    return {
        "font": FONT,
        "axis": {**text, "titleFontWeight": "normal"},
        "legend": {**text, "titleFontWeight": "normal", "labelLimit": 260},
        "header": {**text, "titleFontWeight": "normal"},
        "title": {"font": FONT, "fontSize": title_px, "fontWeight": "normal"},
        "range": {"category": PALETTE},
    }


SCREEN_CONFIG = type_scale(label_px=12, title_px=13)
PAPER_CONFIG = type_scale(label_px=11, title_px=12)  # 8.25 / 9 pt


@alt.theme.register("psl", enable=True)
def psl_theme() -> alt.theme.ThemeConfig:
    """The dashboard's theme: the one font and type scale (Streamlit's theme keeps its colours)."""
    return alt.theme.ThemeConfig({"config": SCREEN_CONFIG})


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = (
            _deep_merge(out[key], value)
            if isinstance(out.get(key), dict) and isinstance(value, dict)
            else value
        )
    return out


def paper_spec(chart: alt.TopLevelMixin, *, width_in: float = PAPER_WIDTH_IN,
               height_in: float = PAPER_HEIGHT_IN) -> dict[str, Any]:  # fmt: skip
    """The chart's Vega-Lite spec at paper size: a single or layered chart is fitted to width × height
    (axes and legend included); a faceted or concatenated one keeps its panel sizes. Paper type scale."""
    spec = copy.deepcopy(chart.to_dict())
    if not any(key in spec for key in ("facet", "hconcat", "vconcat", "concat", "repeat")):
        spec["width"] = round(width_in * PX_PER_IN)
        spec["height"] = round(height_in * PX_PER_IN)
        spec["autosize"] = {"type": "fit", "contains": "padding"}
    spec["config"] = _deep_merge(spec.get("config", {}), PAPER_CONFIG)
    spec["background"] = "white"
    return spec


def figure_svg(chart: alt.TopLevelMixin, **size: float) -> bytes:
    """The chart as an SVG file at paper size (text stays text, editable in a vector editor)."""
    import vl_convert as vlc

    return vlc.vegalite_to_svg(paper_spec(chart, **size), vl_version=VEGA_LITE_VERSION).encode("utf-8")


def figure_png(chart: alt.TopLevelMixin, dpi: int = PNG_DPI, **size: float) -> bytes:
    """The chart as a PNG at paper size and ``dpi`` dots per inch."""
    import vl_convert as vlc

    return vlc.vegalite_to_png(paper_spec(chart, **size), scale=dpi / PX_PER_IN, vl_version=VEGA_LITE_VERSION)


def figure_pdf(chart: alt.TopLevelMixin, **size: float) -> bytes:
    """The chart as a one-page vector PDF at paper size."""
    import vl_convert as vlc

    return vlc.vegalite_to_pdf(paper_spec(chart, **size), vl_version=VEGA_LITE_VERSION)
