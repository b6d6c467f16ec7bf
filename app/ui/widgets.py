"""Streamlit glue every dashboard page shares: the store connection, cross-page selections and links,
the background worker, charts with figure export, and text that must never be read as Markdown.

Pages stay thin: they lay out widgets and call app/ functions; nothing here talks SQL itself.

User text (run names, tags, notes, error texts, event messages, imported values) goes into Markdown
elements only through :func:`md_text`, which escapes it so that Streamlit shows these exact characters:
an image link in a run name stays text and the browser fetches nothing. Long or multi-line user text
goes through :func:`show_user_text` (a plain-text block).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import streamlit as st

from app.settings import configure_core, get_settings
from app.ui.views.series import FinishedSeries, RunSeries, SeriesCache
from app.ui.views.text import md_text  # noqa: F401 - re-exported: the one escaping helper of every page
from storage import Store

# Keys of st.session_state that pages use to hand a selection to another page.
SELECTED_RUN = "psl_selected_run"  # int: the run the monitor page opens (read once, then dropped)
COMPARE_RUNS = "psl_compare_runs"  # list[int]: runs the compare page preselects
PREFILL_CONFIG = (
    "psl_prefill_config"  # dict: a config the new-experiment form starts from (re-run with edits)
)
PREFILL_SOURCE = "psl_prefill_source"  # int: the run PREFILL_CONFIG was copied from (for the banner)

# The page files; app/ui/dashboard.py registers them by these absolute paths.
PAGES_DIR = Path(__file__).resolve().parents[2] / "pages"
METHODS_DOC = (
    Path(__file__).resolve().parent / "methods.md"
)  # a link to docs/methods.md, shipped with the package
# URL paths of the pages that take a selection in the query string (see dashboard.py).
RUN_PAGE_URL, SWEEP_PAGE_URL, MONITOR_URL = "run", "sweeps", "monitor"
PAGE_URLS = {"new_experiment": "new"}  # page file stems whose URL path differs from the stem


def show_user_text(value: object, *, container=None) -> None:  # noqa: ANN001 - st or a container
    """Long or multi-line user text (a traceback, notes, an error) as a plain-text block."""
    (container or st).code("" if value is None else str(value), language=None, wrap_lines=True)


def page_path(page: str) -> str:
    """The registered path of a page given as 'monitor', 'monitor.py' or 'pages/monitor.py'."""
    name = Path(page).name
    return str(PAGES_DIR / (name if name.endswith(".py") else f"{name}.py"))


def run_url(run_id: int) -> str:
    """The run page of ``run_id`` (relative to the dashboard's root: works behind a path prefix)."""
    return f"{RUN_PAGE_URL}?run={int(run_id)}"


def sweep_url(sweep_id: int) -> str:
    """The sweep view of ``sweep_id``."""
    return f"{SWEEP_PAGE_URL}?sweep={int(sweep_id)}"


def query_int(name: str) -> int | None:
    """An integer query parameter of the page URL (``?run=12``), None if absent or not a number."""
    raw = st.query_params.get(name)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def page_link(page: str, label: str, *, query_params: dict | None = None, icon: str | None = None,
              container=None) -> None:  # noqa: ANN001 - st or a container  # fmt: skip
    """A link to another page of the dashboard (``label`` is Markdown: escape user text with md_text).

    Outside the dashboard's navigation (a page run alone, as tests do) the page is not registered:
    the link is then a plain relative URL."""
    from streamlit.errors import StreamlitAPIException

    target = container or st
    try:
        target.page_link(page_path(page), label=label, icon=icon, query_params=query_params)
    except StreamlitAPIException:
        query = "&".join(f"{k}={v}" for k, v in (query_params or {}).items())
        url = PAGE_URLS.get(Path(page).stem, Path(page).stem)
        target.markdown(f"[{label}]({url}{'?' + query if query else ''})")


def link_to_run(run_id: int, label: str | None = None, *, container=None) -> None:  # noqa: ANN001
    """A link to the run page of ``run_id`` (``label`` is user text: it is escaped here)."""
    text = f"Run page #{int(run_id)}" if label is None else md_text(label)
    page_link(
        "run", text, query_params={"run": int(run_id)}, icon=":material/description:", container=container
    )


@st.cache_resource
def get_store() -> Store:
    """One Store per server process (PSL_DATABASE_URL, else the SQLite file under PSL_HOME)."""
    settings = get_settings()
    configure_core(settings)
    return Store(settings.database_url)


@st.cache_resource
def finished_series() -> FinishedSeries:
    """The server's one store of finished runs' series (read once per process, shared by every page)."""
    return FinishedSeries()


def run_series(store: Store, record, session_cache: SeriesCache) -> tuple[RunSeries, int]:  # noqa: ANN001
    """The held series of a run and the step rows read now: a finished run's comes from the process-wide
    store (read once per server), a live run's from ``session_cache`` (only rows newer than held)."""
    if record.is_finished:
        shared = finished_series()
        before = shared.reads
        series = shared.get(store, record)
        return series, (len(series.steps) if shared.reads > before else 0)
    new_rows = session_cache.update(store, record.id)
    return session_cache.runs[record.id], new_rows


def ensure_worker() -> bool:
    """Make sure a worker will train what was just queued (True if one had to be started)."""
    from app.settings import ensure_home
    from app.worker.supervisor import ensure_worker as start_if_needed

    return start_if_needed(ensure_home(get_settings()))


def open_page(page: str, query_params: dict | None = None, **selection) -> None:
    """Switch to another page of the dashboard, handing it a selection through session state
    (and/or the URL's query string)."""
    for key, value in selection.items():
        st.session_state[key] = value
    st.switch_page(page_path(page), query_params=query_params)


def keep_undrawn(keys) -> None:  # noqa: ANN001 - widget keys
    """Streamlit drops the state of a widget not drawn in a run (a closed lazy section, a field that has
    no effect with the current choices): writing each value back makes it plain session state, kept
    until the widget is drawn again."""
    for key in keys:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def small_table(frame, digits: int) -> None:  # noqa: ANN001 - a pandas DataFrame
    """A few rows of results as a static table, floats to ``digits`` decimals. The interactive data
    grid of ``st.dataframe`` (a canvas grid that measures its columns) cost ~0.1 s of browser time on a
    page's first visit even for four rows; a static table costs almost nothing, and wraps long text
    instead of cutting it."""
    st.table(frame.style.format(precision=int(digits), na_rep="—").hide(axis="index"))


def show_chart(chart, name: str, *, key: str | None = None, width: str = "stretch") -> None:  # noqa: ANN001
    """Draw an Altair chart with an "Export" menu: SVG, PNG (300 dpi) and PDF at single-column paper
    size. The menu is lazy (its buttons are drawn only while it is open: closed, four menus of four
    elements each were a fifth of the monitor's elements) and the files are rendered only when a
    button is pressed (deferred downloads)."""
    from app.runs import safe_file_stem
    from app.ui.charts.figure import figure_pdf, figure_png, figure_svg

    st.altair_chart(chart, width=width)
    stem = safe_file_stem(name)
    key = key or f"export_{stem}"
    menu = st.popover("Export figure", icon=":material/download:", key=f"{key}_menu", on_change="rerun")
    if not menu.open:
        return
    with menu:
        st.caption("Single-column size (3.5 × 2.4 in), paper fonts.")
        formats: list[tuple[str, Callable[[], bytes], str]] = [
            ("SVG", lambda: figure_svg(chart), "image/svg+xml"),
            ("PNG 300 dpi", lambda: figure_png(chart), "image/png"),
            ("PDF", lambda: figure_pdf(chart), "application/pdf"),
        ]
        for label, render, mime in formats:
            extension = label.split()[0].lower()
            st.download_button(label, render, f"{stem}.{extension}", mime, key=f"{key}_{extension}",
                               on_click="ignore")  # fmt: skip


def summary_columns() -> dict:
    """Column formats of a run summary table (compare.summary_table): accuracies to 3 decimals,
    seconds to 1-2, the 'to target' columns as the text summary_display writes."""
    number = st.column_config.NumberColumn
    return {
        "run": st.column_config.TextColumn("run", width="medium"),
        "final test acc": number(
            "final acc", format="%.3f", help="test accuracy at the last evaluated epoch"
        ),
        "best test acc": number("best acc", format="%.3f"),
        "final loss": number("final loss", format="%.3g"),
        "sim time (s)": number("sim s", format="%.2f", help="simulated time of the whole run (s)"),
        "wall time (s)": number("wall s", format="%.1f", help="wall-clock training time (s)"),
        "steps to target": st.column_config.TextColumn("steps to target"),
        "sim s to target": st.column_config.TextColumn("sim s to target"),
        "wall s to target": st.column_config.TextColumn("wall s to target"),
    }
