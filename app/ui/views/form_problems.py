"""The New-experiment form's problems: psl_core.validation's checks, grouped by form section and
worded with the labels the form shows ("Global batch B", "Client groups, row 2, fraction")."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.ui.views.form_fields import SECTION_OF_ROOT, all_fields, shown_when
from app.ui.views.text import md_text
from psl_core.config import ExperimentConfig


def section_of(path: str) -> str:
    """The form section that shows a problem of the dotted field ``path`` (whole-config problems: Run)."""
    return SECTION_OF_ROOT.get(path.split(".", 1)[0], "Run")


@dataclass(frozen=True)
class FormProblems:
    """The checks of psl_core.validation for the form: the config if it may launch, problems by section."""

    config: ExperimentConfig | None
    errors: dict[str, list[str]]
    warnings: dict[str, list[str]]


# Labels of the paths the form shows as tables (the scalar fields take their widget's label).
TABLE_LABELS = {
    "system.clients": ("Client groups", {"device": "device", "fraction": "fraction", "up_mbps": "up Mbit/s",
                       "down_mbps": "down Mbit/s", "latency_ms": "latency ms", "cut": "cut"}),
    "system.custom_devices": ("Custom devices", {"gflops": "GFLOP/s"}),
}  # fmt: skip
_PATH_MENTION = re.compile(r"\b(?:data|partition|model|sampling|training|system)\.[a-z_][\w.]*[a-z_0-9]")


def field_label(path: str) -> str | None:
    """The label the form shows for a dotted config path ('Global batch B'; 'Client groups, row 2,
    fraction'), or None for a path the form has no widget for."""
    labels = {spec.path: spec.label for spec in all_fields()}
    if path in labels:
        return labels[path]
    for table, (title, columns) in TABLE_LABELS.items():
        if path == table:
            return title
        if path.startswith(table + "."):
            row, _, column = path[len(table) + 1 :].partition(".")
            where = f"{title}, row {int(row) + 1}" if row.isdigit() else title
            return f"{where}, {columns.get(column, column)}" if column else where
    return None


def in_form_words(message: str) -> str:
    """A check's message with the config paths it mentions replaced by the form's labels."""

    def label(match: re.Match) -> str:
        found = field_label(match.group(0))
        return f"“{found}”" if found else match.group(0)

    return _PATH_MENTION.sub(label, message)


def _config_value(config: Mapping[str, Any], path: str) -> Any:
    node: Any = config
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def where_to_find(path: str, config: Mapping[str, Any]) -> str:
    """For a field the form does not draw with ``config``'s choices (a value typed before the choice
    changed): which choice brings it back, e.g. ' — the field shows when “Scheme” is shards'. Empty
    when the field is drawn."""
    conditions = shown_when(path)
    if not conditions or any(_config_value(config, other) in values for other, values in conditions):
        return ""
    options = [
        f"“{field_label(other) or other}” is {' or '.join(str(v).lower() for v in values)}"
        for other, values in conditions
    ]
    return " — the field shows when " + "; or when ".join(options)


def problem_line(problem, config: Mapping[str, Any] | None = None) -> str:  # noqa: ANN001 - a psl_core.validation.Problem
    """One Markdown bullet for a problem, in the form's words: '**Global batch B**: must be …'; for a
    field the form does not draw with ``config``'s choices, which choice shows it. Everything from the
    config (paths, values, messages quoting them) is escaped as plain text."""
    label = field_label(problem.path)
    where = (
        f"**{md_text(label)}** ({md_text(problem.path)})"
        if label
        else f"**{md_text(problem.path or 'config')}**"
    )
    got = (
        ""
        if problem.value is None or isinstance(problem.value, (dict, list))
        else f" (got {problem.value!r})"
    )
    hint = where_to_find(problem.path, config) if config is not None and problem.path else ""
    return f"- {where}: {md_text(in_form_words(problem.message) + got + hint, limit=600)}"


def validate_form(config: Mapping[str, Any]) -> FormProblems:
    """Run the one validation path (the same checks as the CLI and the worker) on the form's config."""
    from psl_core.validation import check_cached

    errors: dict[str, list[str]] = {}
    warnings: dict[str, list[str]] = {}
    problems = check_cached(dict(config))
    for problem in problems:
        target = errors if problem.is_error else warnings
        target.setdefault(section_of(problem.path), []).append(problem_line(problem, config))
    parsed = None if errors else ExperimentConfig.model_validate(dict(config))
    return FormProblems(parsed, errors, warnings)
