"""User text in Markdown is shown exactly as typed (issue 10's "render every user string as text").

A CommonMark renderer (markdown-it, with tables and strikethrough on, as GitHub-flavoured Markdown
has) turns md_text(s) into one paragraph whose visible text is s (line breaks as spaces): no link,
image, emphasis, code, HTML or heading survives. Streamlit's own extras ($…$ LaTeX, :colour[…] and
:icon: directives) start with characters md_text escapes as well.
"""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from app.ui.views.text import md_text

RENDERER = MarkdownIt("commonmark").enable(["table", "strikethrough"])
HOSTILE = [
    "![pixel](http://127.0.0.1:9/p.png)",
    "<img src=http://127.0.0.1:9/p.png>",
    "[link](javascript:alert(1)) **bold** _it_ `code` ~~gone~~",
    "# heading\n---\n> quote\n1. item",
    "$x^2$ :red[red] :material/home: &amp; &#60;",
    "| a | b |\n|---|---|\n| 1 | 2 |",
    "<https://example.org> www.example.org",
    "back\\slash at the end\\",
]


def _render(text: str) -> str:
    return RENDERER.render(md_text(text, limit=None)).strip()


def _visible(rendered: str) -> str:
    return html.unescape(re.sub(r"</?p>", "", rendered))


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_renders_as_itself(text):
    rendered = _render(text)
    assert re.fullmatch(r"<p>.*</p>", rendered, flags=re.S), rendered  # one plain paragraph
    assert not re.search(r"<(?!/?p>)", rendered.replace("&lt;", "")), rendered  # no other tag
    assert _visible(rendered) == " ".join(text.split("\n")).strip()


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60))
def test_any_text_renders_as_itself(text):
    rendered = _render(text)
    if not text.strip():
        return  # blank text renders as nothing: nothing to show, nothing fetched
    assert not re.search(r"<(img|a|code|em|strong|h\d|script|table|del|blockquote|ol|ul|hr)\b", rendered)
    expected = re.sub(r"[\r\n\u2028\u2029\x0b\x0c\x85]+", " ", text).replace("\t", " ")
    # A paragraph drops its leading/trailing blanks (markdown-it: any Unicode space, e.g. "0\xa0");
    # CommonMark turns NUL into U+FFFD.
    assert _visible(rendered).strip() == expected.replace("\x00", "\ufffd").strip()


def test_long_text_is_cut_and_none_is_empty():
    assert md_text("x" * 400, limit=10) == "x" * 9 + "…"
    assert md_text(None) == ""
