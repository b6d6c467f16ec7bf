"""Reading and writing experiment configs as YAML/JSON files, with messages that say what to fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from psl_core.config import ConfigError, ExperimentConfig, parse_config, set_path

# Budgets for reading untrusted config text: a config is a few kB; these refuse hostile input
# (alias bombs, deep nesting, giant files) in milliseconds instead of hanging or exhausting memory.
MAX_CONFIG_BYTES = 1 << 20  # 1 MiB
MAX_DEPTH = 32  # nesting of mappings/lists (a config needs 4)
MAX_NODES = 100_000  # values after expanding YAML aliases
MAX_ALIASES = 100  # YAML aliases (*name) in one document
# Integer literals longer than this are refused before int() parses them (Python's own limit is
# 4300 digits, with an error that blames nothing); shorter ones reach the schema's 64-bit check.
MAX_INT_DIGITS = 66


class _BudgetLoader(yaml.SafeLoader):
    """PyYAML's safe loader with limits on nesting, node count, aliases and integer length."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0
        self._aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise ConfigError(f"uses more than {MAX_ALIASES} YAML aliases (*name); write the values out")
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise ConfigError(f"has more than {MAX_NODES:,} values; a config needs a few dozen")
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise ConfigError(f"is nested deeper than {MAX_DEPTH} levels; a config needs 4")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node):
        digits = sum(ch.isalnum() for ch in str(node.value))
        if digits > MAX_INT_DIGITS:
            raise ConfigError(
                f"has an integer with {digits} digits (line {node.start_mark.line + 1}); "
                "numbers in a config are 64-bit (at most 2**63-1)"
            )
        return super().construct_yaml_int(node)


_BudgetLoader.add_constructor("tag:yaml.org,2002:int", _BudgetLoader.construct_yaml_int)


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ConfigError(
            f"has an integer with {len(text.lstrip('-'))} digits; numbers in a config are 64-bit (at most 2**63-1)"
        )
    return int(text)


def check_structure(data: Any, source: str = "config") -> None:
    """Refuse data nested deeper than MAX_DEPTH or with more than MAX_NODES values once YAML
    aliases are expanded (the validator walks the expanded form; an alias bomb would never end)."""
    budget = MAX_NODES
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        budget -= 1
        if budget < 0:
            raise ConfigError(
                f"{source} expands to more than {MAX_NODES:,} values (YAML aliases?); a config needs a few dozen"
            )
        if depth > MAX_DEPTH:
            raise ConfigError(f"{source} is nested deeper than {MAX_DEPTH} levels; a config needs 4")
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend((item, depth + 1) for item in value)


def load_yaml_text(text: str, source: str = "config") -> Any:
    """Parse YAML within the budgets above; ConfigError (naming ``source``) for anything wrong."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{source} is larger than {MAX_CONFIG_BYTES // 1024} KiB; a config needs a few kB")
    loader = None
    try:
        loader = _BudgetLoader(text)  # the reader checks the characters here already
        data = loader.get_single_data()
    except ConfigError as err:
        raise ConfigError(f"{source} {err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{source} is not valid YAML: {err}") from None
    except (ValueError, TypeError, OverflowError, RecursionError) as err:
        # e.g. a timestamp with month 13, or a merge key on a non-mapping
        raise ConfigError(f"{source} holds a value YAML cannot read: {type(err).__name__}: {err}") from None
    finally:
        if loader is not None:
            loader.dispose()
    check_structure(data, source)
    return data


def load_json_text(text: str, source: str = "config") -> Any:
    """Parse JSON within the same budgets as YAML; ConfigError for anything wrong."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{source} is larger than {MAX_CONFIG_BYTES // 1024} KiB; a config needs a few kB")
    try:
        data = json.loads(text, parse_int=_json_int)
    except ConfigError as err:
        raise ConfigError(f"{source} {err}") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{source} is not valid JSON: {err}") from None
    except RecursionError:
        raise ConfigError(f"{source} is nested deeper than {MAX_DEPTH} levels; a config needs 4") from None
    except (ValueError, OverflowError) as err:
        raise ConfigError(f"{source} holds a value JSON cannot read: {err}") from None
    check_structure(data, source)
    return data


def decode_config_bytes(raw: bytes, source: str = "config") -> str:
    """UTF-8 text of a config file (a BOM is allowed); ConfigError naming the first bad byte."""
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{source} is larger than {MAX_CONFIG_BYTES // 1024} KiB; a config needs a few kB")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{source} is not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); "
            "save it as UTF-8"
        ) from None


def parse_override(text: str) -> tuple[str, Any]:
    """``key.path=value`` → (path, value); the value is read as YAML so 3, 0.5, true, [1,2] work."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value (e.g. sampling.method=lds), got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set {text!r} has no key before '='")
    if key.count(".") >= MAX_DEPTH or any(not part.strip() for part in key.split(".")):
        raise ConfigError(f"--set key {key[:80]!r} is not a dotted field path like training.lr")
    try:
        value = load_yaml_text(raw, f"--set {key}") if raw.strip() else ""
    except ConfigError as err:
        if "not valid YAML" not in str(err):
            raise
        value = raw  # plain text that is not YAML, e.g. a name with a colon
    return key, value


def read_config_dict(path: str | Path) -> dict[str, Any]:
    """A config file's mapping, read within the budgets above; ConfigError says what is wrong."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(
            f"config file {path} does not exist (write one with `psl config example > {path.name}`)"
        )
    if path.suffix.lower() not in (".yaml", ".yml", ".json"):
        raise ConfigError(f"config file {path} must end in .yaml, .yml or .json")
    if not path.is_file():
        raise ConfigError(f"config file {path} is not a regular file")
    source = f"config file {path}"
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)  # never trust st_size (a FIFO, /proc file)
    except OSError as err:
        raise ConfigError(f"cannot read {source}: {err.strerror or err}") from None
    text = decode_config_bytes(raw, source)
    data = load_json_text(text, source) if path.suffix.lower() == ".json" else load_yaml_text(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must hold a mapping of sections, not a {type(data).__name__}")
    return data


def apply_override_strings(data: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Apply ``--set key=value`` strings to a config dict (in place; returned for chaining)."""
    for item in overrides or []:
        key, value = parse_override(item)
        set_path(data, key, value)
    check_structure(data, "config with --set overrides")
    return data


def load_config_file(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Load a config file and validate its schema, applying ``--set key=value`` overrides first.

    (The full checks, incl. data and devices, are psl_core.validation.validate_config.)"""
    return parse_config(apply_override_strings(read_config_dict(path), overrides))


def config_to_yaml(config: ExperimentConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def documented_example() -> str:
    """The default config as YAML with every field's help text as a comment above it."""
    lines = [
        "# PSL Studio experiment config. Every field is optional; shown are the defaults.",
        "# Run it with: psl run this.yaml   (override with --set section.field=value)",
    ]
    _document(ExperimentConfig(), lines, indent=0)
    return "\n".join(lines) + "\n"


def _document(model: BaseModel, lines: list[str], indent: int) -> None:
    pad = "  " * indent
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if field.description:
            lines.append(f"{pad}# {field.description}")
        if isinstance(value, BaseModel):
            lines.append(f"{pad}{name}:")
            _document(value, lines, indent + 1)
        elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
            lines.append(f"{pad}{name}:")
            for item in value:
                dumped = yaml.safe_dump([item.model_dump(mode="json")], sort_keys=False).rstrip().splitlines()
                lines.extend(f"{pad}  {line}" for line in dumped)
        else:
            dumped = yaml.safe_dump({name: value}, sort_keys=False, default_flow_style=True).strip()
            lines.append(f"{pad}{dumped.strip('{}')}")
