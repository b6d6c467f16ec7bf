"""A config problem (field path, value, what to change, severity), and pydantic's errors as problems
named by the user's field (``system.clients.0.devce: unknown field; did you mean ...device?``)."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from psl_core.config import ExperimentConfig

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config: where (dotted field path), what to change, and how bad."""

    path: str
    message: str
    value: Any = None
    severity: Severity = "error"

    def text(self) -> str:
        return f"{self.path or '(config)'}: {self.message}"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.is_error]


def warnings_of(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if not p.is_error]


def schema_problems(err: ValidationError) -> list[Problem]:
    """pydantic's errors as Problems (one per location, with the value that was given)."""
    problems = []
    for e in err.errors():
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            message = unknown_field_message(e["loc"])
        path = ".".join(str(p) for p in _field_loc(e["loc"])) or _first_field_named(message)
        value = e.get("input")
        if isinstance(value, (dict, list)):
            value = None  # a whole section is no useful "got ..."
        same = next((p for p in problems if p.path == path and p.value == value), None)
        if same is not None:  # each member of a union (e.g. a fraction or a list) failed: one problem
            problems[problems.index(same)] = Problem(path, f"{same.message}, or: {message}", value)
            continue
        problems.append(Problem(path, message, value))
    return problems


def _field_loc(loc: tuple) -> tuple:
    """pydantic's error location without its union-member tags: for ``fl_clients: float | list[str]``
    it reports ``paradigm.fl_clients.float``; the user's field is ``paradigm.fl_clients``."""
    import typing

    from pydantic import BaseModel

    model: Any = ExperimentConfig
    kept: list = []
    for part in loc:
        if isinstance(part, int):
            kept.append(part)
            continue
        if model is None:
            continue  # below a plain field: a union member's tag, not a field
        kept.append(part)
        field = model.model_fields.get(str(part))
        if field is None:
            model = None
            continue
        candidates = [field.annotation, *typing.get_args(field.annotation)]
        candidates += [a for c in candidates for a in typing.get_args(c)]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
    return tuple(kept)


def _section_model(loc: tuple) -> type | None:
    """The pydantic model that holds the field at ``loc`` (None when the path leaves the config)."""
    import typing

    from pydantic import BaseModel

    model: Any = ExperimentConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue  # a list item: the model is the list's element type, found below
        field = model.model_fields.get(str(part)) if isinstance(model, type) else None
        if field is None:
            return None
        annotation = field.annotation
        candidates = [annotation, *typing.get_args(annotation)]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return None
    return model


def unknown_field_message(loc: tuple) -> str:
    """'unknown field' with the closest valid name at that place, or the valid names."""
    model = _section_model(tuple(loc))
    if model is None:
        return "unknown field"
    names = list(model.model_fields)
    prefix = ".".join(str(p) for p in loc[:-1])
    close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.5)
    if close:
        return f"unknown field; did you mean {prefix + '.' if prefix else ''}{close[0]}?"
    return f"unknown field; the fields here are {', '.join(names)}"


_FIELD_MENTION = re.compile(
    r"\b(?:data|partition|model|sampling|training|system|paradigm)\.[a-z_][\w.]*[a-z_0-9]"
)


def _first_field_named(message: str) -> str:
    """A cross-field rule has no location of its own: blame the first field its message names."""
    found = _FIELD_MENTION.search(message)
    return found.group(0) if found else ""
