"""Two processes opening a brand-new SQLite database at once (the slots of a `psl worker
--concurrency 2` on a fresh home) both get a migrated store. Before: 6-10 of 30 pairs failed with
"database is locked" or "duplicate column name: host" (alembic read the revision before locking)."""

from __future__ import annotations

import multiprocessing as mp


def _open_store(url: str, results) -> None:  # noqa: ANN001 - a multiprocessing queue
    try:
        from storage import Store

        store = Store(url)
        results.put(("ok", len(store.list_runs())))
    except Exception as err:  # noqa: BLE001 - reported to the test
        results.put(("error", f"{type(err).__name__}: {err}"))


def test_two_processes_opening_a_new_database_at_once_both_succeed(tmp_path):
    ctx = mp.get_context("fork")
    failures = []
    for i in range(12):
        url = f"sqlite:///{tmp_path / f'fresh{i}.db'}"
        results = ctx.SimpleQueue()
        procs = [ctx.Process(target=_open_store, args=(url, results)) for _ in range(2)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(60)
        outcomes = [results.get() for _ in procs]
        failures += [o for o in outcomes if o[0] != "ok"]
    assert failures == []
