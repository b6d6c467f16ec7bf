"""The leaves of the experiment config's schema (path, kind), for tests that poke every field."""

from __future__ import annotations

from functools import lru_cache

from psl_core.config import ExperimentConfig


@lru_cache(maxsize=1)
def leaf_fields() -> tuple[tuple[tuple, str], ...]:
    """(path, kind) of every leaf field; kind is 'integer', 'number', 'string', 'boolean' or
    'other'; a list of sections contributes its item's fields under index 0."""
    schema = ExperimentConfig.model_json_schema()
    found = []

    def ref_of(node):
        return node.get("$ref") or next((a["$ref"] for a in node.get("anyOf", []) if "$ref" in a), None)

    def walk(node, prefix):
        ref = ref_of(node)
        if ref:
            node = schema["$defs"][ref.split("/")[-1]]
        for name, prop in node.get("properties", {}).items():
            types = {prop.get("type")} | {a.get("type") for a in prop.get("anyOf", [])}
            if ref_of(prop):
                walk(prop, (*prefix, name))
            elif "array" in types and ref_of(prop.get("items", {})):
                walk(prop["items"], (*prefix, name, 0))
            else:
                kind = next((k for k in ("integer", "number", "string", "boolean") if k in types), "other")
                found.append(((*prefix, name), kind))

    walk(schema, ())
    return tuple(found)


def set_leaf(data: dict, path, value) -> dict:
    """``data`` with ``value`` at ``path`` (an int in the path = index 0 of a list of sections)."""
    node = data
    for key, nxt in zip(path, path[1:]):
        if isinstance(key, int):
            continue
        if isinstance(nxt, int):
            items = node.get(key) if isinstance(node.get(key), list) and node.get(key) else [{}]
            if not isinstance(items[0], dict):
                items[0] = {}
            node[key] = items
            node = items[0]
        else:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
    node[path[-1]] = value
    return data
