"""Streamlit glue every dashboard page shares: the store connection, cross-page selections, the
background worker, and text that must never be read as Markdown.

Pages stay thin: they lay out widgets and call app/ functions; nothing here talks SQL itself.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app.settings import configure_core, get_settings
from storage import Store

# Keys of st.session_state that pages use to hand a selection to another page.
SELECTED_RUN = "psl_selected_run"  # int: the run the monitor page opens
COMPARE_RUNS = "psl_compare_runs"  # list[int]: runs the compare page preselects
PREFILL_CONFIG = (
    "psl_prefill_config"  # dict: a config the new-experiment form starts from (re-run with edits)
)

# The page files; app/ui/dashboard.py registers them by these absolute paths.
PAGES_DIR = Path(__file__).resolve().parents[2] / "pages"
METHODS_DOC = (
    Path(__file__).resolve().parent / "methods.md"
)  # a link to docs/methods.md, shipped with the package


def page_path(page: str) -> str:
    """The registered path of a page given as 'monitor', 'monitor.py' or 'pages/monitor.py'."""
    name = Path(page).name
    return str(PAGES_DIR / (name if name.endswith(".py") else f"{name}.py"))


@st.cache_resource
def get_store() -> Store:
    """One Store per server process (PSL_DATABASE_URL, else the SQLite file under PSL_HOME)."""
    settings = get_settings()
    configure_core(settings)
    return Store(settings.database_url)


def ensure_worker() -> bool:
    """Make sure a worker will train what was just queued (True if one had to be started)."""
    from app.settings import ensure_home
    from app.worker.supervisor import ensure_worker as start_if_needed

    return start_if_needed(ensure_home(get_settings()))


def open_page(page: str, **selection) -> None:
    """Switch to another page of the dashboard, handing it a selection through session state."""
    for key, value in selection.items():
        st.session_state[key] = value
    st.switch_page(page_path(page))
