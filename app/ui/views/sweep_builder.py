"""Sweep specs typed in the New-experiment page: ``path: v1, v2`` lines and a seed list."""

from __future__ import annotations

import math
from typing import Any

from app.ui.views.form_fields import model_field

MAX_SEEDS = 100


class SweepSpecError(ValueError):
    """A sweep spec that cannot be read; the message says which line and what to write instead."""


def _value(text: str) -> Any:
    """'3' → 3, '0.5' → 0.5, 'true' → True, 'none' → None, anything else stays a string."""
    lowered = text.lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_grid(text: str) -> dict[str, list[Any]]:
    """``sampling.method: ugs, fls`` per line → {"sampling.method": ["ugs", "fls"]}; blank lines and
    '#' comments are skipped; every path must be a config field."""
    grid: dict[str, list[Any]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if ":" not in line:
            raise SweepSpecError(f"line {number} {raw!r}: write 'field.path: value1, value2'")
        path, values = (part.strip() for part in line.split(":", 1))
        try:
            model_field(path)
        except (KeyError, AttributeError):
            raise SweepSpecError(
                f"line {number}: {path!r} is not a config field; use a dotted path such as sampling.method"
            ) from None
        items = [_value(v.strip()) for v in values.split(",") if v.strip()]
        if not items:
            raise SweepSpecError(f"line {number}: give at least one value after '{path}:'")
        if path in grid:
            raise SweepSpecError(f"line {number}: {path!r} appears twice; put all its values on one line")
        grid[path] = items
    return grid


def parse_seeds(text: str) -> list[int]:
    """'0, 1, 2' or '0-4' (inclusive range) or a mix → sorted distinct seeds ≥ 0."""
    seeds: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            lo, hi = (int(x) for x in part.split("-", 1)) if "-" in part[1:] else (int(part), int(part))
        except ValueError:
            raise SweepSpecError(f"seed {part!r} is not an integer; write e.g. '0, 1, 2' or '0-4'") from None
        if hi < lo:
            raise SweepSpecError(f"seed range {part!r} runs backwards; write {hi}-{lo}")
        seeds.update(range(lo, hi + 1))
    if not seeds:
        raise SweepSpecError("give at least one seed, e.g. '0' or '0-2'")
    if min(seeds) < 0:
        raise SweepSpecError("seeds must be >= 0")
    if len(seeds) > MAX_SEEDS:
        raise SweepSpecError(f"{len(seeds)} seeds is more than {MAX_SEEDS}; use fewer")
    return sorted(seeds)


def count_runs(grid: dict[str, list[Any]], seeds: list[int]) -> int:
    """Runs a sweep creates: the product of the value counts times the number of seeds."""
    return math.prod(len(v) for v in grid.values()) * len(seeds)
