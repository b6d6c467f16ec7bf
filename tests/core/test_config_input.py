"""Hostile config files: every one ends in a ConfigError that says what is wrong, quickly."""

from __future__ import annotations

import re
import time

import pytest

from psl_core.config import ConfigError, parse_config
from psl_core.config_io import (
    MAX_ALIASES,
    apply_override_strings,
    load_yaml_text,
    parse_override,
    read_config_dict,
)
from psl_core.validation import check, validate_config

try:
    from tests.core.config_fields import leaf_fields, set_leaf
except ImportError:  # plain `pytest` puts tests/ on sys.path
    from core.config_fields import leaf_fields, set_leaf

HANG_S = 5.0  # the fuzz criterion; the measured times are in bench/bench_trust.py (well under 1 s)


def _alias_bomb(levels: int = 9, width: int = 9) -> str:
    lines = ["a0: &a0 [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


HOSTILE = {
    "alias-bomb": (_alias_bomb().encode(), "expands to more than"),
    "alias-count": (
        ("x: &x 1\nl: [" + ", ".join(["*x"] * (MAX_ALIASES + 1)) + "]\n").encode(),
        "YAML aliases",
    ),
    "latin-1": ("name: café\n".encode("latin-1"), r"not UTF-8 text \(byte 0xe9 at offset 9\)"),
    "utf-16": ("name: x\n".encode("utf-16"), "not UTF-8"),
    "deep-flow": (("a: " + "[" * 5000 + "]" * 5000 + "\n").encode(), "nested deeper than 32"),
    "deep-block": ("".join(" " * i + "k:\n" for i in range(200)).encode(), "nested deeper than 32"),
    "huge-int": (("seed: " + "1" * 5000 + "\n").encode(), "integer with 5000 digits"),
    "hex-int": (("seed: 0x" + "f" * 40 + "\n").encode(), "seed: Input should be less than or equal"),
    "long-hex-int": (("seed: 0x" + "f" * 5000 + "\n").encode(), "integer with 500[0-9] digits"),
    "inf-lr": (b"training:\n  lr: .inf\n", r"training\.lr: Input should be a finite number"),
    "nan-lr": (b"training:\n  lr: .nan\n", r"training\.lr: Input should be a finite number"),
    "exp-overflow": (b"training:\n  lr: 1e400\n", r"training\.lr: Input should be a finite number"),
    "seed-2^63": (b"seed: 9223372036854775808\n", "seed: Input should be less than or equal to"),
    "int64-field": (
        b"training:\n  eval_every: 9223372036854775808\n",
        r"training\.eval_every: must fit in 64 bits",
    ),
    "negative-int64": (b"model:\n  cut: -9223372036854775809\n", r"model\.cut: must fit in 64 bits"),
    "bad-date": (b"name: 2001-13-45\n", "YAML cannot read"),
    "nul-name": (b'name: "a\\0b"\n', "name: contains the control character"),
    "not-a-mapping": (b"- 1\n- 2\n", "must hold a mapping"),
    "python-tag": (b"name: !!python/object/apply:os.system ['echo hi']\n", "not valid YAML"),
    "too-big": (b"name: x\n" + b"#" * (1 << 20), "larger than 1024 KiB"),
}


@pytest.mark.parametrize("content, message", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_yaml_gives_a_clear_config_error_fast(tmp_path, content, message):
    path = tmp_path / "hostile.yaml"
    path.write_bytes(content)
    started = time.perf_counter()
    with pytest.raises(ConfigError) as caught:
        validate_config(read_config_dict(path), deep=False)
    assert time.perf_counter() - started < HANG_S
    assert re.search(message, str(caught.value)), str(caught.value)


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"seed": ' + "9" * 5000 + "}", "integer with 5000 digits"),
        ('{"a": ' + "[" * 5000 + "]" * 5000 + "}", "nested deeper than 32"),
        ('{"training": {"lr": Infinity}}', "finite number"),
        ('{"training": {"lr": NaN}}', "finite number"),
        ("[1, 2]", "must hold a mapping"),
        ('{"name": "x"', "not valid JSON"),
    ],
)
def test_hostile_json_gives_a_clear_config_error(tmp_path, content, message):
    path = tmp_path / "hostile.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        validate_config(read_config_dict(path), deep=False)


def test_a_fifo_or_folder_is_not_read_forever(tmp_path):
    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    with pytest.raises(ConfigError, match="not a regular file"):
        read_config_dict(folder)


def test_yaml_anchors_within_budget_still_work():
    text = "base: &base {lr: 0.1, epochs: 2}\ntraining:\n  <<: *base\n  optimizer: adam\n"
    data = load_yaml_text(text)
    data.pop("base")
    assert parse_config(data).training.lr == 0.1


@pytest.mark.parametrize(
    "override, message",
    [
        ("seed=" + "7" * 5000, "integer with 5000 digits"),
        ("training.lr=.inf", "finite number"),
        ("name=" + "x" * 300, "at most 200 characters"),
        ("name=a\udcffb", "unicode string|control character"),
        ("a." * 40 + "b=1", "dotted field path"),
        ("training..lr=1", "dotted field path"),
        ("data.dataset=" + "[" * 100 + "]" * 100, "nested deeper"),
    ],
)
def test_set_overrides_are_bounded_too(override, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(apply_override_strings({}, [override]), deep=False)


def test_a_set_value_that_is_not_yaml_stays_text():
    assert parse_override("name=a: b: c") == ("name", "a: b: c")


def test_checks_on_raw_dicts_never_raise_on_huge_python_ints():
    problems = check({"seed": 10**5000, "partition": {"num_clients": -(10**5000)}}, deep=False)
    assert {p.path for p in problems} == {"seed", "partition.num_clients"}
    with pytest.raises(ConfigError, match="digits"):
        validate_config({"seed": 10**5000}, deep=False)


def test_every_number_in_the_schema_is_bounded():
    """Each int field refuses 2**63 and each float field refuses inf, named by its path."""
    fields = [(path, kind == "integer") for path, kind in leaf_fields() if kind in ("integer", "number")]
    assert len(fields) >= 40
    for path, is_int in fields:
        dotted = ".".join(str(p) for p in path)
        for bad in [2**63, -(2**63) - 1] if is_int else [float("inf"), float("nan")]:
            problems = check(set_leaf({}, path, bad), deep=False)
            assert any(p.path == dotted for p in problems), (dotted, bad, problems)


def test_an_alias_bomb_dict_is_refused_by_the_dashboards_cached_check_too():
    """A dict built from YAML elsewhere (not through our loader) shares its lists: walking or
    serialising it expands 9**9 leaves. The check refuses it from its structure alone."""
    from psl_core.validation import check_cached

    level = ["lol"] * 9
    for _ in range(8):
        level = [level] * 9
    started = time.perf_counter()
    problems = check_cached({"system": {"clients": level}})
    assert time.perf_counter() - started < HANG_S
    assert len(problems) == 1 and "expands to more than" in problems[0].message
