"""The Methods page's content: docs/methods.md split into its numbered sections."""

from __future__ import annotations

import re


def methods_sections(markdown: str) -> dict[str, str]:
    """{'Overview': intro, '§1 Parallel split learning …': body, …} in document order."""
    parts = re.split(r"^## (.+)$", markdown, flags=re.M)
    intro = re.sub(r"^# .+\n", "", parts[0]).strip()
    sections = {"Overview": intro} if intro else {}
    for title, body in zip(parts[1::2], parts[2::2]):
        sections[title.strip()] = body.strip()
    return sections
