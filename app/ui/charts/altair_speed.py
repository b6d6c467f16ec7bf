"""One schema table for Altair's ``from_dict``, built once per process instead of once per call.

Altair 5/6 turns every string shorthand of an encoding (``y="loss:Q"``, ``tooltip=["run:N"]``) into a
channel object through ``SchemaBase.from_dict``, which builds a table of every Vega-Lite schema class
(JSON-dumping and hashing ~570 schemas) on each call: ~40 ms per shorthand, about half of a preview
chart's build time and 1-1.5 s of CPU per rerun of the New-experiment page. The table depends only on
the class hierarchy, which is fixed once Altair is imported, so it is kept per wrapper-class family.
"""

from __future__ import annotations

from typing import Any

from altair.utils import schemapi

_CONVERTERS: dict[Any, Any] = {}
_original_from_dict = schemapi.SchemaBase.__dict__["from_dict"]


def _from_dict(cls, dct: dict[str, Any], validate: bool = True):  # noqa: ANN001, ANN202 - Altair's signature
    if validate:
        cls.validate(dct)
    family = cls._default_wrapper_classes.__func__  # SchemaBase's or VegaLiteSchema's
    converter = _CONVERTERS.get(family)
    if converter is None:
        converter = _CONVERTERS[family] = schemapi._FromDict(cls._default_wrapper_classes())
    return converter.from_dict(dct, cls)


def install() -> bool:
    """Use the shared table (idempotent). False, changing nothing, when this Altair lacks the
    internals it relies on (a newer Altair may have fixed the cost itself)."""
    if not (hasattr(schemapi, "_FromDict") and isinstance(_original_from_dict, classmethod)):
        return False
    schemapi.SchemaBase.from_dict = classmethod(_from_dict)
    return True
