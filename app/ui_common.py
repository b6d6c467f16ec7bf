"""Small pieces every dashboard page shares: the store connection and cross-page selections.

Pages stay thin: they lay out widgets and call app/ functions; nothing here talks SQL itself.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from storage import Store

# Keys of st.session_state that pages use to hand a selection to another page.
SELECTED_RUN = "psl_selected_run"  # int: the run the monitor page opens
COMPARE_RUNS = "psl_compare_runs"  # list[int]: runs the compare page preselects
PREFILL_CONFIG = (
    "psl_prefill_config"  # dict: a config the new-experiment form starts from (re-run with edits)
)


# The page files; app/dashboard.py registers them by these absolute paths.
PAGES_DIR = Path(__file__).resolve().parent.parent / "pages"


def page_path(page: str) -> str:
    """The registered path of a page given as 'monitor', 'monitor.py' or 'pages/monitor.py'."""
    name = Path(page).name
    return str(PAGES_DIR / (name if name.endswith(".py") else f"{name}.py"))


@st.cache_resource
def get_store() -> Store:
    """One Store per server process (PSL_DATABASE_URL, else the SQLite file under PSL_HOME)."""
    return Store()


def open_page(page: str, **selection) -> None:
    """Switch to another page of the dashboard, handing it a selection through session state."""
    for key, value in selection.items():
        st.session_state[key] = value
    st.switch_page(page_path(page))
