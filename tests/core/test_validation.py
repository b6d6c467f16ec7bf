"""psl_core.validation: one check for every entry point, and what it accepts really trains.

The property test is the contract of the house issue: a config that ``check`` accepts builds and
trains a step without a configuration error (a reason knowable before the run).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from psl_core.config import ConfigError, ExperimentConfig
from psl_core.devices import load_catalog
from psl_core.engine import MemorySink, run_experiment
from psl_core.validation import Problem, check, errors, validate_config, warnings_of

DEMO = {
    "data": {"dataset": "digits"},
    "partition": {"num_clients": 8},
    "training": {"epochs": 1, "device": "cpu"},
}


def _with(**overrides) -> dict:
    from psl_core.config import set_path

    data = {k: dict(v) for k, v in DEMO.items()}
    for path, value in overrides.items():
        set_path(data, path.replace("__", "."), value)
    return data


def paths(problems: list[Problem]) -> list[str]:
    return [p.path for p in problems]


def test_the_demo_config_has_no_problem():
    assert check(_with()) == []


@pytest.mark.parametrize(
    "overrides, path, text",
    [
        ({"model.cut": 99}, "model.cut", "99"),
        ({"model.cut": "nonexistent_block"}, "model.cut", "nonexistent_block"),
        ({"system.clients": [{"device": "toaster", "fraction": 1.0}]}, "system.clients.0.device", "toaster"),
        ({"system.server_device": "mainframe"}, "system.server_device", "mainframe"),
        ({"partition.num_clients": 5000}, "partition.num_clients", "1438 training samples"),
        ({"data.train_limit": 40, "partition.num_clients": 41}, "partition.num_clients", "data.train_limit"),
        (
            {"partition.scheme": "pathological", "partition.classes_per_client": 11},
            "partition.classes_per_client",
            "",
        ),
        ({"data.dataset": "cifar10", "data.data_dir": "/nonexistent"}, "data.data_dir", "not found"),
        ({"sampling.method": "magic"}, "sampling.method", "magic"),
        ({"model.arch": "cnn", "model.cut": 1, "model.cut2": 1}, "model.cut", "cut2"),
        ({"model.arch": "resnet8", "model.norm_groups": 32}, "model.norm_groups", "does not divide 16"),
    ],
)
def test_each_problem_names_its_field(overrides, path, text):
    problems = errors(check(_with(**overrides)))
    assert path in paths(problems), problems
    assert text in " ".join(p.message for p in problems) or text in str([p.value for p in problems])


def test_norm_groups_without_group_norm_is_a_warning():
    problems = check(
        _with(**{"model.client_norm": "batch", "model.server_norm": "batch", "model.norm_groups": 4})
    )
    assert [p.path for p in problems] == ["model.norm_groups"] and not errors(problems)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_an_error_that_suggests_auto():
    problems = errors(check(_with(**{"training.device": "cuda"})))
    assert paths(problems) == ["training.device"] and "'auto'" in problems[0].message


def test_warnings_are_kept_apart_and_do_not_refuse():
    big_batch = _with(**{"sampling.batch_size": 5000})
    config, warnings = validate_config(big_batch)
    assert isinstance(config, ExperimentConfig)
    assert paths(warnings) == ["sampling.batch_size"] and all(w.severity == "warning" for w in warnings)
    fls = _with(**{"partition.num_clients": 200, "sampling.method": "fls", "sampling.batch_size": 32})
    fls_warnings = warnings_of(check(fls))
    assert "sampling.method" in paths(fls_warnings) and "global batch is 200" in fls_warnings[0].message


def test_validate_config_raises_one_line_per_error():
    with pytest.raises(ConfigError) as info:
        validate_config(_with(**{"model.cut": 99, "system.server_device": "x"}))
    lines = str(info.value).splitlines()
    assert lines[0] == "invalid experiment config:"
    assert any(line.startswith("- model.cut:") for line in lines)
    assert any(line.startswith("- system.server_device:") for line in lines)


def test_non_mapping_input_is_a_problem_not_a_crash():
    assert errors(check(["not", "a", "mapping"]))[0].path == ""


# ---------------------------------------------------------------- the contract, property-checked
DEVICES = sorted(load_catalog())
SCHEMES = ["iid", "dirichlet", "extended_dirichlet", "shards", "pathological", "quantity_skew"]
NORMS = ["group", "batch", "layer", "none"]


def _mostly(good, bad, good_weight: int = 9):
    """``good`` in good_weight of good_weight + 1 draws: many configs pass and train, some do not."""
    return st.integers(0, good_weight).flatmap(lambda i: good if i else bad)


def _maybe(strategy, none_weight: int = 1):
    """None in none_weight of none_weight + 1 draws."""
    return _mostly(st.none(), strategy, none_weight)


@st.composite
def model_sections(draw):
    from psl_core.models import block_names_for

    arch = draw(st.sampled_from(["mlp", "cnn", "resnet8"]))
    last = len(block_names_for(arch)) - 1
    cut = draw(_mostly(st.integers(1, max(1, last - 1)), st.integers(-1, last + 2)))
    cut2 = draw(
        _maybe(_mostly(st.integers(min(cut + 1, last), last), st.integers(0, last + 2)), none_weight=3)
    )
    return {
        "arch": arch,
        "cut": cut,
        "cut2": cut2,
        "client_norm": draw(st.sampled_from(NORMS)),
        "server_norm": draw(st.sampled_from(NORMS)),
        "norm_groups": draw(_maybe(st.sampled_from([1, 3, 8, 32]), none_weight=3)),
    }


@st.composite
def config_dicts(draw):
    method = draw(_mostly(st.sampled_from(["fls", "fpls", "ugs", "lds"]), st.just("centralised"), 6))
    groups = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "device": _mostly(st.sampled_from(DEVICES), st.just("toaster"), 30),
                    "cut": _maybe(st.integers(0, 8), none_weight=4),
                }
            ),
            min_size=1,
            max_size=3,
        )
    )
    model = draw(model_sections())
    u_shaped = model["cut2"] is not None
    return {
        "seed": draw(st.integers(0, 5)),
        "data": {
            "dataset": draw(st.sampled_from(["digits", "synthetic", "mnist1d"])),
            "train_limit": draw(_maybe(st.integers(10, 300))),
            "test_limit": draw(_maybe(st.integers(10, 100))),
        },
        "partition": {
            "scheme": draw(st.sampled_from(SCHEMES)),
            "num_clients": 1 if method == "centralised" else draw(st.integers(1, 40)),
            "alpha": draw(st.floats(0.05, 5.0)),
            "classes_per_client": draw(st.integers(1, 11)),
            "shards_per_client": draw(st.integers(1, 6)),
            "min_partition_size": draw(_mostly(st.just(0), st.integers(1, 30), 3)),
            "quantity_distribution": draw(st.sampled_from(["dirichlet", "lognormal"])),
            "beta": draw(st.floats(0.1, 5.0)),
            "sigma": draw(st.floats(0.1, 2.5)),
        },
        "model": model,
        "sampling": {
            "method": method,
            "batch_size": draw(st.integers(1, 400)),
            "lds_c": draw(st.floats(0.1, 10.0)),
            "lds_delta": draw(st.floats(0.0, 3.0)),
        },
        "training": {"epochs": 1, "device": "cpu", "optimizer": draw(st.sampled_from(["sgd", "adam"]))},
        "system": {
            "clients": [{**g, "fraction": 1 / len(groups)} for g in groups],
            "server_device": draw(_mostly(st.sampled_from(DEVICES), st.just("mainframe"), 30)),
            "helpers": {
                "num_helpers": draw(_mostly(st.just(0), st.integers(1, 3), 1 if u_shaped else 15)),
                "solver": draw(st.sampled_from(["baseline", "greedy", "decomposition", "local_search"])),
            },
        },
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(config_dicts())
def test_every_config_check_accepts_trains_a_step(data):
    problems = check(data)
    if errors(problems):
        return
    config = ExperimentConfig.model_validate(data)
    sink = MemorySink(stop_after_step=1)
    run_experiment(config, sink, flush_every=1)
    assert sink.steps and sink.steps[0]["step"] == 1
