"""What every config section shares: unknown keys refused, floats finite, numbers within 64 bits,
texts printable; and the physical ranges of the device and link fields."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_TEXT = 4096  # longest string field (a path); names are shorter, see ExperimentConfig.name


def check_plain_value(value: Any) -> Any:
    """Every number in a config fits 64 bits and every text is printable UTF-8: what the database,
    numpy and torch can hold (floats are kept finite by ``allow_inf_nan=False``)."""
    if isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
        raise ValueError("must fit in 64 bits (at most 2**63-1 = 9223372036854775807)")
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise ValueError(f"is {len(value):,} characters long; at most {MAX_TEXT} are allowed")
        bad = next((ch for ch in value if ch < " " or ch == "\x7f" or 0xD800 <= ord(ch) <= 0xDFFF), None)
        if bad is not None:
            raise ValueError(f"contains the control character {bad!r}; use printable text")
    return value


class ConfigSection(BaseModel):
    # Unknown keys are refused: a typo in a config must not silently fall back to a default.
    # Floats must be finite: an infinite learning rate or NaN fraction is never what was meant.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        return check_plain_value(value)


# Physical ranges of the device and link fields: far beyond any real device either way, yet finite
# after the unit conversions (x 1e9 FLOP, x 2**20 bytes), so the time model never sees 0 or inf.
LINK_MBPS = {"ge": 1e-6, "le": 1e9}  # 1 bit/s .. 1 Pbit/s
LATENCY_MS = {"ge": 0, "le": 1e7}  # up to ~3 hours per message
GFLOPS = {"ge": 1e-6, "le": 1e9}  # 1 kFLOP/s .. 1 EFLOP/s
MEMORY_MB = {"ge": 1e-3, "le": 1e12}
SKEW = {"gt": 0, "le": 1e4}  # Dirichlet concentrations: beyond 1e4, nothing changes any more
