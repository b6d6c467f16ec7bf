"""Checks of the speed options (precision, compile, evaluation), and a fuzz of those fields: any
value either validates or comes back as problems that name the field — never an exception."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from psl_core.config import set_path
from psl_core.validation import check, errors, warnings_of

BASE = {
    "data": {"dataset": "digits"},
    "partition": {"num_clients": 8},
    "training": {"epochs": 2, "device": "cpu"},
}


def with_(**overrides) -> dict:
    data = {k: dict(v) for k, v in BASE.items()}
    for path, value in overrides.items():
        set_path(data, path, value)
    return data


def test_fp16_on_a_cpu_is_a_warning_that_says_to_use_bf16():
    problems = check(with_(**{"training.precision": "fp16"}), deep=False)
    assert errors(problems) == []
    (warning,) = warnings_of(problems)
    assert warning.path == "training.precision" and "bf16" in warning.message


def test_compile_without_a_cpp_compiler_is_refused_with_what_to_do(monkeypatch):
    import psl_core.section_checks as section_checks

    monkeypatch.setattr(section_checks.shutil, "which", lambda name: None)
    (problem,) = errors(check(with_(**{"training.compile": True}), deep=False))
    assert problem.path == "training.compile" and "C++ compiler" in problem.message
    monkeypatch.setattr(section_checks.shutil, "which", lambda name: "/usr/bin/" + name)
    assert errors(check(with_(**{"training.compile": True}), deep=False)) == []


def test_evaluations_that_would_never_happen_before_the_end_are_warned_about():
    epochs = warnings_of(check(with_(**{"training.eval_every": 5}), deep=False))
    assert [p.path for p in epochs] == ["training.eval_every"] and "only the final" in epochs[0].message
    steps = warnings_of(
        check(with_(**{"training.eval_every_unit": "steps", "training.eval_every": 10_000}), deep=True)
    )
    assert [p.path for p in steps] == ["training.eval_every"] and "-step run" in steps[0].message
    fine = check(with_(**{"training.eval_every_unit": "steps", "training.eval_every": 5}), deep=True)
    assert fine == []


@pytest.mark.parametrize(
    "path, value",
    [
        ("training.eval_samples", 5),
        ("training.eval_batch_size", 0),
        ("training.precision", "fp8"),
        ("training.eval_every_unit", "minutes"),
        ("training.compile", "yes please"),
    ],
)
def test_bad_speed_values_name_their_field(path, value):
    problems = errors(check(with_(**{path: value}), deep=False))
    assert [p.path for p in problems] == [path]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (not run on CPU-only machines)")
def test_bf16_on_a_gpu_without_bf16_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    (problem,) = errors(check(with_(**{"training.precision": "bf16", "training.device": "cuda"}), deep=False))
    assert problem.path == "training.precision"


speed_values = st.fixed_dictionaries(
    {},
    optional={
        "eval_every": st.one_of(st.integers(-3, 50), st.floats(allow_nan=True), st.text(max_size=3)),
        "eval_every_unit": st.one_of(st.sampled_from(["epochs", "steps", "hours", ""]), st.integers()),
        "eval_samples": st.one_of(st.none(), st.integers(-5, 5000), st.text(max_size=3)),
        "eval_batch_size": st.one_of(st.none(), st.integers(-2, 5000), st.booleans()),
        "precision": st.one_of(st.sampled_from(["fp32", "bf16", "fp16", "FP16", "int8"]), st.none()),
        "compile": st.one_of(st.booleans(), st.integers(-1, 2), st.text(max_size=3)),
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=speed_values)
def test_fuzzed_speed_fields_validate_or_name_the_field(values):
    config = with_()
    config["training"].update(values)
    problems = check(config, deep=False)
    for problem in errors(problems):
        assert problem.path.startswith("training."), problem
        assert problem.path.split(".")[1] in values or problem.path == "training", problem
