"""Migrations: the upgrade path from 0001 keeps data, init_db is idempotent, models match migrations."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel

from storage import Store, dispose_engine, get_engine, init_db
from storage.tables import METRIC_TABLES, Run, Sweep

OUR_TABLES = {table.__tablename__ for table in (Run, Sweep, *METRIC_TABLES)}


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request, tmp_path):
    """A database with no tables at all."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        yield url
        dispose_engine(url)
        return
    server = request.getfixturevalue("pg_server")
    url = server.create_database()
    yield url
    dispose_engine(url)
    server.drop_database(url)


def _head() -> str:
    """The newest revision shipped (whatever migrations later issues add)."""
    from alembic.script import ScriptDirectory

    from storage.db import alembic_config

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def test_migrations_form_one_chain_in_the_agreed_order():
    """0003 (ids never reused, 64-bit seeds) comes before 0004 (where runs execute), then 0005 (kept
    chart samples), in one line."""
    from alembic.script import ScriptDirectory

    from storage.db import alembic_config

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    chain = [rev.revision for rev in script.walk_revisions()][::-1]  # oldest first
    assert chain[:5] == ["0001", "0002", "0003", "0004", "0005"]
    assert [script.get_revision(r).down_revision for r in chain[1:5]] == ["0001", "0002", "0003", "0004"]


def _revision(url: str) -> str | None:
    with get_engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def test_upgrade_from_0001_keeps_data_and_adds_columns(empty_url):
    init_db(empty_url, revision="0001")
    assert _revision(empty_url) == "0001"
    now = datetime.now(timezone.utc)
    with get_engine(empty_url).begin() as conn:  # the 0001 schema has no attempts/pinned columns
        conn.execute(
            text(
                "INSERT INTO runs (id, name, tags, notes, config_json, config_hash, seed, status, created_at,"
                " progress, cancel_requested) VALUES (1, 'old run', :tags, '', :config, 'h', 3, 'completed', :now, 1.0, false)"
            ),
            {"now": now, "tags": '["legacy"]', "config": '{"lr":0.1}'},
        )
        conn.execute(text("INSERT INTO step_metrics (run_id, step, loss) VALUES (1, 0, 2.5), (1, 1, 2.0)"))
    dispose_engine(empty_url)  # as if the application were started anew

    store = Store(empty_url)
    assert _revision(empty_url) == _head()
    run = store.get_run(1)
    assert (run.name, run.tags, run.config, run.attempts, run.pinned) == (
        "old run",
        ["legacy"],
        {"lr": 0.1},
        0,
        False,
    )
    assert store.read_step_metrics(1)["loss"].tolist() == [2.5, 2.0]
    store.update_run(1, pinned=True)
    store.requeue_run(1)
    assert store.claim_next_run("w").attempts == 1
    assert store.get_run(1).pinned is True


def test_init_db_twice_is_harmless(empty_url):
    store = Store(empty_url)
    run_id = store.create_run(name="a", config={}, seed=0)
    dispose_engine(empty_url)  # forget the in-process "already migrated" note: really run it again
    init_db(empty_url)
    init_db(empty_url)
    assert _revision(empty_url) == _head()
    assert Store(empty_url).get_run(run_id).name == "a"


def test_models_match_the_migrations(store_url):
    def only_ours(name, type_, parent_names):
        return type_ != "table" or name in OUR_TABLES

    with get_engine(store_url).connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": only_ours})
        assert compare_metadata(context, SQLModel.metadata) == []
