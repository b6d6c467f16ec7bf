"""docs/api.md is executable: every Python block in it runs as written (the notebook API stays true)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import psl_core

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_doc_has_examples_and_the_package_exports_what_they_use():
    assert len(BLOCKS) >= 3
    for name in ("ExperimentConfig", "run_experiment", "MemorySink", "Sink", "validate_config", "check"):
        assert name in psl_core.__all__ and getattr(psl_core, name) is not None


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_api_doc_example_runs(index, capsys):
    exec(compile(BLOCKS[index], f"docs/api.md block {index + 1}", "exec"), {})
    out = capsys.readouterr().out
    assert out.strip()
    if "resumed at step" in BLOCKS[index]:
        assert "resumed at step 6" in out
