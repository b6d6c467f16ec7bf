"""Streamlit entry point of PSL Studio (``psl ui`` / ``make run``): wires the pages together."""

from __future__ import annotations

import streamlit as st

from app.ui.widgets import PAGES_DIR

st.set_page_config(page_title="PSL Studio", page_icon=":material/call_split:", layout="wide")

navigation = st.navigation(
    {
        "Experiments": [
            st.Page(
                str(PAGES_DIR / "runs.py"),
                title="Runs",
                icon=":material/list:",
                default=True,
                url_path="runs",
            ),
            st.Page(
                str(PAGES_DIR / "new_experiment.py"),
                title="New experiment",
                icon=":material/science:",
                url_path="new",
            ),
            st.Page(
                str(PAGES_DIR / "monitor.py"),
                title="Live monitor",
                icon=":material/monitoring:",
                url_path="monitor",
            ),
            st.Page(
                str(PAGES_DIR / "compare.py"),
                title="Compare",
                icon=":material/compare_arrows:",
                url_path="compare",
            ),
        ],
        "Learn & plan": [
            st.Page(
                str(PAGES_DIR / "learn.py"), title="Learn PSL", icon=":material/school:", url_path="learn"
            ),
            st.Page(
                str(PAGES_DIR / "helpers.py"),
                title="Helpers & scheduling",
                icon=":material/view_timeline:",
                url_path="helpers",
            ),
            st.Page(
                str(PAGES_DIR / "methods.py"),
                title="Methods",
                icon=":material/menu_book:",
                url_path="methods",
            ),
        ],
    }
)
with st.sidebar:
    st.caption(
        "PSL Studio — parallel split learning experiments. What every method computes: see **Methods**."
    )
navigation.run()
