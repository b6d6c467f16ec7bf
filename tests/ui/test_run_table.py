"""Runs table: rows from real stored runs, accuracy summary and filters."""

from __future__ import annotations

import pandas as pd
import pytest

from app.ui.views.run_table import (
    RunTableError,
    accuracy_by_run,
    all_tags,
    describe_method,
    describe_partition,
    filter_runs,
    runs_frame,
)
from psl_core.config import ExperimentConfig
from storage import Store


@pytest.fixture
def store(tmp_path):
    return Store(f"sqlite:///{tmp_path}/psl.db")


def _add(store, name, tags, **sections):
    config = ExperimentConfig(name=name, **sections).model_dump(mode="json")
    return store.create_run(name=name, config=config, seed=0, tags=tags)


def test_rows_show_settings_and_accuracy(store):
    a = _add(store, "ugs-base", ["baseline"])
    b = _add(
        store,
        "lds-fast",
        ["lds", "stragglers"],
        sampling={"method": "lds", "lds_c": 2.0, "lds_delta": 0.5},
        partition={"scheme": "dirichlet", "alpha": 0.3, "num_clients": 20},
    )
    store.add_epoch_metrics(
        b, [{"epoch": 0, "test_acc": 0.7}, {"epoch": 1, "test_acc": 0.9}, {"epoch": 2, "test_acc": 0.8}]
    )
    records = store.list_runs()
    frame = runs_frame(records, accuracy_by_run(store, records)).set_index("id")
    assert frame.loc[b, "final test acc"] == pytest.approx(0.8)
    assert frame.loc[b, "best test acc"] == pytest.approx(0.9)
    assert pd.isna(frame.loc[a, "best test acc"])
    assert frame.loc[b, "K"] == 20
    # The partition's α and LDS's c, δ are labelled apart.
    assert "α=0.3" in frame.loc[b, "partition"] and "c=2.0 δ=0.5" in frame.loc[b, "method"]
    assert frame.loc[b, "tags"] == "lds, stragglers"


def test_filters_by_status_tag_and_text(store):
    a = _add(store, "ugs-base", ["baseline"])
    b = _add(store, "lds-fast", ["lds", "baseline-2"], sampling={"method": "lds"})
    store.request_cancel(a)  # a queued run that is cancelled becomes 'cancelled'
    frame = runs_frame(store.list_runs())
    status_a = store.get_run(a).status
    assert list(filter_runs(frame, statuses=[status_a])["id"]) == [a]
    assert list(filter_runs(frame, tag="baseline")["id"]) == [a]  # exact tag, not a substring
    assert list(filter_runs(frame, text="LDS")["id"]) == [b]  # case-insensitive over name/method
    assert list(filter_runs(frame, statuses=["completed"])["id"]) == []
    assert set(filter_runs(frame)["id"]) == {a, b}
    assert all_tags(frame) == ["baseline", "baseline-2", "lds"]


def test_accuracy_cache_skips_finished_runs(store):
    run = _add(store, "done", [])
    store.add_epoch_metrics(run, [{"epoch": 0, "test_acc": 0.5}])
    store.finish_run(run, "completed")
    cache: dict = {}
    first = accuracy_by_run(store, store.list_runs(), cache)
    store.add_epoch_metrics(run, [{"epoch": 1, "test_acc": 0.99}])  # would change it if re-read
    second = accuracy_by_run(store, store.list_runs(), cache)
    assert first[run] == second[run] == (0.5, 0.5)


def test_describe_helpers_and_bad_frame():
    assert describe_partition({"scheme": "extended_dirichlet", "classes_per_client": 2, "alpha": 3.0}) == (
        "extended_dirichlet (C=2, α=3.0)"
    )
    assert describe_method({"method": "ugs", "batch_size": 64}) == "UGS B=64"
    with pytest.raises(RunTableError, match="runs_frame"):
        filter_runs(pd.DataFrame({"id": [1]}), text="x")
