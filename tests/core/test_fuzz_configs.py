"""Config fuzzing (hypothesis, derandomized): 1,000+ configs per run through the one check path.

Three properties, each over generated input:
1. structured configs — mostly sensible ones (the generator of test_validation.py) with 0-3 fields
   poisoned by hostile values (huge/negative ints, NaN/inf, long or control-character texts, wrong
   types, nested junk): ``check`` never raises and never takes 5 s; an accepted config is one the
   store accepts too (plain, finite, 64-bit JSON); a refused one gives a ConfigError;
2. config FILES — those configs as YAML/JSON text, then mangled (aliases, deep brackets, bad bytes,
   long digit runs, truncation): reading + validating raises nothing but ConfigError, quickly;
3. accepted configs at the edges of every range (64-bit seeds, tiny and huge floats, one-sample
   batches ...) train, checkpoint and resume: nothing a check could have known fails in the worker.
"""

from __future__ import annotations

import json
import math
import time

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from psl_core.config import ConfigError, ExperimentConfig
from psl_core.config_io import read_config_dict
from psl_core.engine import MemorySink, TrainingDivergedError, run_experiment
from psl_core.validation import Problem, check, errors, validate_config

try:
    from tests.core.config_fields import leaf_fields, set_leaf
    from tests.core.test_validation import config_dicts
except ImportError:  # plain `pytest` puts tests/ on sys.path
    from core.config_fields import leaf_fields, set_leaf
    from core.test_validation import config_dicts

HANG_S = 5.0
FUZZ = settings(
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
STRUCTURED_EXAMPLES = 1000
TEXT_EXAMPLES = 300
EDGE_EXAMPLES = 24

HOSTILE_INTS = [0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**30, 10**400]
HOSTILE_FLOATS = [math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, -0.0, 1e-300]
HOSTILE_TEXTS = [
    "",
    " ",
    "x" * 5000,
    "../../x",
    "a\x00b",
    "\u202e\u2066evil",
    "é" * 300,
    "[",
    "*alias",
    "1e999",
]
HOSTILE_OTHER = [None, True, False, [], {}, [1, 2], {"a": {"b": [1]}}, [[[[[]]]]]]


def hostile_values():
    junk = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=8,
    )
    return st.one_of(
        st.sampled_from(HOSTILE_INTS),
        st.sampled_from(HOSTILE_FLOATS),
        st.sampled_from(HOSTILE_TEXTS),
        st.sampled_from(HOSTILE_OTHER),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        junk,
    )


@st.composite
def hostile_configs(draw):
    data = draw(config_dicts())
    for _ in range(draw(st.integers(0, 3))):
        path, _kind = draw(st.sampled_from(leaf_fields()))
        set_leaf(data, path, draw(hostile_values()))
    if draw(st.integers(0, 19)) == 0:  # a whole section of the wrong shape, or an unknown key
        section = draw(
            st.sampled_from(["data", "partition", "model", "sampling", "training", "system", "typo"])
        )
        data[section] = draw(hostile_values())
    return data


@pytest.fixture(scope="module", autouse=True)
def datasets_loaded_once():
    """Load (generate, for mnist1d) each data set the generators use once, outside the timing: a
    first load is a one-off cost of the process, not of the config being checked."""
    from psl_core.data import load_dataset

    for name in ("digits", "synthetic", "mnist1d"):
        load_dataset(name)


def _storable(config: ExperimentConfig) -> None:
    """What the store does with an accepted config: strict JSON (no NaN/inf), 64-bit integers."""
    text = json.dumps(config.model_dump(mode="json"), sort_keys=True, allow_nan=False)

    def walk(value):
        if isinstance(value, bool) or value is None or isinstance(value, str):
            return
        if isinstance(value, int):
            assert -(2**63) <= value < 2**63
        elif isinstance(value, float):
            assert math.isfinite(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        else:
            for item in value:
                walk(item)

    walk(json.loads(text))


@settings(FUZZ, max_examples=STRUCTURED_EXAMPLES)
@given(hostile_configs())
def test_structured_configs_are_checked_without_a_traceback_or_a_hang(data):
    started = time.perf_counter()
    problems = check(data)
    assert all(isinstance(p, Problem) and isinstance(p.text(), str) for p in problems)
    event("refused" if errors(problems) else "accepted")
    if errors(problems):
        with pytest.raises(ConfigError) as caught:
            validate_config(data)
        assert str(caught.value).startswith("invalid experiment config:")
    else:
        config, _ = validate_config(data)
        _storable(config)
    assert time.perf_counter() - started < HANG_S


MANGLERS = ["none", "alias-bomb", "deep", "bad-byte", "digits", "truncate", "tab-indent", "bom", "dup-key"]


def _mangle(text: str, how: str, at: int) -> bytes:
    at = at % (len(text) + 1)
    if how == "alias-bomb":
        levels = "".join(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]\n" for i in range(1, 9))
        return ("l0: &l0 [1,2,3,4,5,6,7,8,9]\n" + levels + text).encode()
    if how == "deep":
        return (text[:at] + "[" * 3000 + "]" * 3000 + text[at:]).encode()
    if how == "bad-byte":
        return text[:at].encode() + b"\xff\xfe" + text[at:].encode()
    if how == "digits":
        return (text[:at] + "9" * 6000 + text[at:]).encode()
    if how == "truncate":
        return text[:at].encode()
    if how == "tab-indent":
        return text.replace("  ", "\t").encode()
    if how == "bom":
        return b"\xef\xbb\xbf" + text.encode()
    if how == "dup-key":
        return (text + "\n" + text).encode()
    return text.encode()


@settings(FUZZ, max_examples=TEXT_EXAMPLES)
@given(
    hostile_configs(),
    st.sampled_from(["yaml", "json"]),
    st.sampled_from(MANGLERS),
    st.integers(0, 10_000),
)
def test_config_files_are_read_without_a_traceback_or_a_hang(tmp_path_factory, data, fmt, how, at):
    try:
        text = json.dumps(data) if fmt == "json" else __import__("yaml").safe_dump(data)
    except (ValueError, OverflowError):  # e.g. an int beyond Python's str() limit cannot be written
        return
    path = tmp_path_factory.mktemp("cfg") / f"config.{fmt}"
    path.write_bytes(_mangle(text, how, at))
    started = time.perf_counter()
    try:
        validate_config(read_config_dict(path), deep=False)
        event("accepted")
    except ConfigError as err:
        event("refused")
        assert str(err)
    assert time.perf_counter() - started < HANG_S


# ---------------------------------------------------------------- accepted edge configs train
@st.composite
def edge_configs(draw):
    """Small, fast configs whose values sit at the edges of what the schema allows."""
    pick = draw
    method = pick(st.sampled_from(["fls", "fpls", "ugs", "lds"]))
    return {
        "seed": pick(st.sampled_from([0, 1, 2**32, 2**63 - 1])),
        "data": {
            "dataset": pick(st.sampled_from(["digits", "synthetic"])),
            "train_limit": pick(st.sampled_from([10, 64, 200])),
            "test_limit": pick(st.sampled_from([10, 50])),
            "augment": pick(st.booleans()),
        },
        "partition": {
            "scheme": pick(st.sampled_from(["iid", "dirichlet", "quantity_skew"])),
            "num_clients": pick(st.sampled_from([1, 2, 5, 10])),
            "alpha": pick(st.sampled_from([1e-3, 0.5, 1e4])),
            "beta": pick(st.sampled_from([1e-3, 1.0, 1e4])),
            "sigma": pick(st.sampled_from([1e-3, 1.0, 10.0])),
            "quantity_distribution": pick(st.sampled_from(["dirichlet", "lognormal"])),
        },
        "model": {"arch": pick(st.sampled_from(["mlp", "cnn"])), "cut": 1},
        "sampling": {
            "method": method,
            "batch_size": pick(st.sampled_from([1, 7, 64, 10_000_000])),
            "lds_c": pick(st.sampled_from([1e-3, 1.0, 1e3])),
            "lds_delta": pick(st.sampled_from([0.0, 1.0, 100.0])),
        },
        "training": {
            "epochs": 1,
            "device": "cpu",
            "optimizer": pick(st.sampled_from(["sgd", "adam"])),
            "lr": pick(st.sampled_from([5e-324, 1e-300, 0.05, 1e3])),
            "momentum": pick(st.sampled_from([0.0, 0.999999])),
            "weight_decay": pick(st.sampled_from([0.0, 5e-324, 1e3])),
            "lr_schedule": pick(st.sampled_from(["constant", "step", "cosine"])),
            "lr_step_epochs": pick(st.sampled_from([1, 2**63 - 1])),
            "lr_gamma": pick(st.sampled_from([5e-324, 1.0])),
            "eval_every": pick(st.sampled_from([1, 2**63 - 1])),
            "max_steps_per_epoch": pick(st.sampled_from([1, 3, 2**63 - 1])),
            "checkpoint_every_steps": pick(st.sampled_from([1, 2**63 - 1])),
        },
        "system": {
            "clients": [
                {
                    "device": "edge",
                    "fraction": 1.0,
                    "up_mbps": pick(st.sampled_from([None, 1e-6, 1e9])),
                    "latency_ms": pick(st.sampled_from([None, 0.0, 1e7])),
                }
            ],
            "custom_devices": [
                {
                    "id": "edge",
                    "gflops": pick(st.sampled_from([1e-6, 1.0, 1e9])),
                    "memory_mb": pick(st.sampled_from([1e-3, 1e12])),
                    "down_mbps": pick(st.sampled_from([1e-6, 1e9])),
                }
            ],
            "stragglers": {
                "persistent_fraction": pick(st.sampled_from([0.0, 1.0])),
                "persistent_factor": pick(st.sampled_from([1.0, 1e4])),
                "transient_prob": pick(st.sampled_from([0.0, 1.0])),
                "transient_dist": pick(st.sampled_from(["lognormal", "pareto"])),
                "transient_scale": pick(st.sampled_from([1e-2, 1.0, 100.0])),
            },
        },
    }


@settings(FUZZ, max_examples=EDGE_EXAMPLES)
@given(edge_configs())
def test_accepted_edge_configs_train_checkpoint_and_resume(tmp_path_factory, data):
    if errors(check(data)):
        event("refused")
        return
    event("accepted and trained")
    config, _ = validate_config(data)
    folder = tmp_path_factory.mktemp("ckpt")
    first = MemorySink(stop_after_step=1)
    try:
        run_experiment(config, first, checkpoint_dir=folder, flush_every=1)
    except TrainingDivergedError:
        return  # a loss that blows up cannot be known before training
    assert first.steps and first.steps[0]["step"] == 1
    if first.checkpoints:
        second = MemorySink(stop_after_step=2)
        try:
            run_experiment(config, second, checkpoint_dir=folder, resume_from=first.checkpoints[-1][0])
        except TrainingDivergedError:
            return
