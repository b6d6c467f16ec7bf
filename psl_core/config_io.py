"""Reading and writing experiment configs as YAML/JSON files, with messages that say what to fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from psl_core.config import ConfigError, ExperimentConfig, parse_config, set_path


def parse_override(text: str) -> tuple[str, Any]:
    """``key.path=value`` → (path, value); the value is read as YAML so 3, 0.5, true, [1,2] work."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value (e.g. sampling.method=lds), got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set {text!r} has no key before '='")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def read_config_dict(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(
            f"config file {path} does not exist (write one with `psl config example > {path.name}`)"
        )
    if path.suffix.lower() not in (".yaml", ".yml", ".json"):
        raise ConfigError(f"config file {path} must end in .yaml, .yml or .json")
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"config file {path} is not valid {path.suffix[1:].upper()}: {err}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections, not a {type(data).__name__}")
    return data


def apply_override_strings(data: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Apply ``--set key=value`` strings to a config dict (in place; returned for chaining)."""
    for item in overrides or []:
        key, value = parse_override(item)
        set_path(data, key, value)
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
