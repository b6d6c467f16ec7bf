"""Shared pytest fixtures. Database fixtures: an empty migrated SQLite file or PostgreSQL database."""

from __future__ import annotations

import shutil

import pytest

try:
    from tests.postgres import PostgresServer
except ImportError:  # plain `pytest` puts tests/ (not the repository root) on sys.path
    from postgres import PostgresServer


@pytest.fixture(scope="session")
def pg_server():
    """A PostgreSQL server for the session, with a migrated database ``shared_url`` (or skip)."""
    from storage.db import init_db

    try:
        server = PostgresServer.start()
    except (RuntimeError, OSError) as exc:
        pytest.skip(f"PostgreSQL tests skipped: {exc}")
    server.shared_url = init_db(server.create_database())
    yield server
    from storage.db import dispose_engine

    dispose_engine(server.shared_url)
    server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """A migrated SQLite file that tests copy (migrating each file anew costs more than a copy)."""
    from storage.db import dispose_engine, init_db

    path = tmp_path_factory.mktemp("template") / "psl.db"
    url = init_db(f"sqlite:///{path}")
    dispose_engine(url)  # closes the last connection, which folds the WAL back into the file
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path):
    """URL of an empty, migrated database: a fresh SQLite file, or the emptied PostgreSQL database."""
    from storage.db import dispose_engine

    if request.param == "sqlite":
        path = tmp_path / "psl.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
        yield url
        dispose_engine(url)
        return
    from sqlalchemy import text

    from storage.db import get_engine

    server = request.getfixturevalue("pg_server")
    with get_engine(server.shared_url).begin() as conn:
        conn.execute(
            text(
                "TRUNCATE runs, sweeps, step_metrics, epoch_metrics, client_stats, events, checkpoints, step_samples RESTART IDENTITY CASCADE"
            )
        )
    yield server.shared_url


@pytest.fixture
def fresh_psl_home(tmp_path, monkeypatch):
    """An empty PSL_HOME with its own SQLite store, and Streamlit caches cleared (for page tests)."""
    import streamlit as st

    monkeypatch.setenv("PSL_HOME", str(tmp_path))
    monkeypatch.setenv("PSL_DATABASE_URL", f"sqlite:///{tmp_path}/psl.db")
    st.cache_resource.clear()
    st.cache_data.clear()
    yield tmp_path
    st.cache_resource.clear()


@pytest.fixture
def one_torch_thread():
    """Torch trains with one intra-op thread during the test (restored after): what a Ray task with
    num_cpus=1 does, and what keeps a loaded 2-core machine from being oversubscribed."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
