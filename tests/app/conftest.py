"""Fixtures shared by the CLI tests: a fresh PSL home (SQLite file, no shared checkpoint location)
that is also the current folder."""

from __future__ import annotations

import pytest


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PSL_HOME", str(tmp_path))
    monkeypatch.setenv("PSL_DATABASE_URL", f"sqlite:///{tmp_path}/psl.db")
    monkeypatch.delenv("PSL_CHECKPOINT_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path
