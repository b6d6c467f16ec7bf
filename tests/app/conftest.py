"""Fixtures shared by the app tests: a fresh PSL home (SQLite file, no shared checkpoint location)
that is also the current folder; a fresh home on each of the databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PSL_HOME", str(tmp_path))
    monkeypatch.setenv("PSL_DATABASE_URL", f"sqlite:///{tmp_path}/psl.db")
    monkeypatch.delenv("PSL_CHECKPOINT_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def db_home(tmp_path, monkeypatch, store_url):
    """A fresh PSL_HOME whose database is an empty SQLite file or PostgreSQL database (both run)."""
    monkeypatch.setenv("PSL_HOME", str(tmp_path))
    monkeypatch.setenv("PSL_DATABASE_URL", store_url)
    return tmp_path
