"""Streamlit entry point of PSL Studio (``psl ui`` / ``make run``): wires the pages together."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

PAGES_DIR = Path(__file__).resolve().parent.parent / "pages"

st.set_page_config(page_title="PSL Studio", page_icon="🔀", layout="wide")

navigation = st.navigation(
    {
        "Experiments": [
            st.Page(str(PAGES_DIR / "runs.py"), title="Runs", icon="📋", default=True, url_path="runs"),
            st.Page(str(PAGES_DIR / "new_experiment.py"), title="New experiment", icon="🧪", url_path="new"),
            st.Page(str(PAGES_DIR / "monitor.py"), title="Live monitor", icon="📈", url_path="monitor"),
            st.Page(str(PAGES_DIR / "compare.py"), title="Compare", icon="⚖️", url_path="compare"),
        ],
        "Learn & plan": [
            st.Page(str(PAGES_DIR / "learn.py"), title="Learn PSL", icon="🎓", url_path="learn"),
            st.Page(
                str(PAGES_DIR / "helpers.py"), title="Helpers & scheduling", icon="🗓️", url_path="helpers"
            ),
        ],
    }
)
with st.sidebar:
    st.caption("PSL Studio — parallel split learning experiments. Methods as in the project spec (SPEC.md).")
navigation.run()
