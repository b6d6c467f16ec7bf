"""Methods: the science of PSL Studio (docs/methods.md, shipped with the package), rendered in the app."""

from __future__ import annotations

import streamlit as st

from app.ui.views.methods import methods_sections
from app.ui.widgets import METHODS_DOC

sections = methods_sections(METHODS_DOC.read_text(encoding="utf-8"))
st.title("Methods")
st.caption("What every schedule, partition and time model in PSL Studio computes (docs/methods.md).")
titles = list(sections)
chosen = st.radio("Section", titles, horizontal=True, label_visibility="collapsed", key="methods:section")
st.markdown(sections[chosen])
