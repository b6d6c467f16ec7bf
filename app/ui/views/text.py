"""User text in Markdown: run names, tags, notes, error texts and event messages shown as exactly
their characters. Streamlit renders Markdown (links, images, HTML-like text, LaTeX, its own
``:colour[...]`` and ``:icon:`` directives) in titles, captions, alerts, labels and toasts, so a
run named ``![x](http://host/p.png)`` would make the browser fetch that URL. Pages reach this through
``app.ui.widgets.md_text``; pure view code (which must not import Streamlit) imports it from here.
"""

from __future__ import annotations

import re

# Every ASCII punctuation character may be backslash-escaped in CommonMark; escaping all of them turns
# off links, images, emphasis, code, HTML, tables, LaTeX ($) and Streamlit's directives.
_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x0b\x0c\x85]+")


def md_text(value: object, *, limit: int | None = 300) -> str:
    """``value`` as Markdown that displays exactly its characters, on one line (line breaks become
    spaces; longer than ``limit`` characters: cut with an ellipsis)."""
    # One line; tabs as spaces and no leading blanks (four leading spaces make a code block).
    text = _LINE_BREAKS.sub(" ", "" if value is None else str(value)).replace("\t", " ").lstrip(" ")
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)
