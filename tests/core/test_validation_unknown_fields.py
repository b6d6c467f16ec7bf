"""Unknown config keys are refused with the closest valid field named (CLI, form and import alike)."""

from __future__ import annotations

import pytest

from psl_core.validation import check


@pytest.mark.parametrize(
    ("config", "path", "says"),
    [
        ({"sampling": {"batchsize": 64}}, "sampling.batchsize", "did you mean sampling.batch_size?"),
        ({"trainig": {"epochs": 2}}, "trainig", "did you mean training?"),
        ({"system": {"clients": [{"device": "rpi4b", "fraction": 1.0, "fracton": 1}]}},
         "system.clients.0.fracton", "did you mean system.clients.0.fraction?"),
        ({"sampling": {"zzzz": 1}}, "sampling.zzzz", "the fields here are method, batch_size"),
    ],
)  # fmt: skip
def test_unknown_key_names_the_closest_field(config, path, says):
    problems = check(config, deep=False)
    assert [p.path for p in problems] == [path]
    assert says in problems[0].message and problems[0].is_error
