"""AppTest runs of the Runs, Live monitor and Compare pages against a fresh real SQLite store."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app.settings import get_settings
from app.ui.widgets import COMPARE_RUNS, PREFILL_CONFIG, PREFILL_SOURCE, SELECTED_RUN
from psl_core.config import ExperimentConfig
from storage import Store

PAGES = Path(__file__).resolve().parents[2] / "pages"


@pytest.fixture
def store(fresh_psl_home):
    return Store(get_settings().database_url)


def _run(store, name, tags=(), seed=0, **sections):
    config = ExperimentConfig(name=name, seed=seed, data={"train_limit": 200}, **sections).model_dump(
        mode="json"
    )
    run = store.create_run(name=name, config=config, seed=seed, tags=list(tags))
    store.add_step_metrics(
        run,
        [
            {
                "step": s,
                "epoch": (s - 1) // 5 + 1,
                "loss": 2.0 / s,
                "sim_time": 0.1 * s,
                "wall_time": 0.01 * s,
            }
            for s in range(1, 11)
        ],
    )
    store.add_epoch_metrics(
        run, [{"epoch": 1, "step": 5, "test_acc": 0.6}, {"epoch": 2, "step": 10, "test_acc": 0.8}]
    )
    return run


def _page(name, **state):
    at = AppTest.from_file(str(PAGES / name), default_timeout=60)
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def _shown_ids(at):
    return list(at.dataframe[0].value["id"])


def test_runs_filters(store):
    a = _run(store, "ugs-base", ["baseline"])
    b = _run(store, "lds-fast", ["lds"], sampling={"method": "lds"})
    at = _page("runs.py")
    assert not at.exception
    assert set(_shown_ids(at)) == {a, b}
    at.selectbox(key="runs_tag").set_value("lds").run()
    assert _shown_ids(at) == [b]
    at.selectbox(key="runs_tag").set_value("(any)").run()
    at.text_input(key="runs_text").set_value("ugs-b").run()
    assert _shown_ids(at) == [a]
    at.text_input(key="runs_text").set_value("").run()
    at.multiselect(key="runs_status").set_value(["running"]).run()
    assert _shown_ids(at) == []


def test_delete_asks_confirmation_first(store):
    a = _run(store, "keep-me")
    b = _run(store, "delete-me")
    at = _page("runs.py")
    at.multiselect(key="runs_selected").set_value([b]).run()
    next(x for x in at.button if x.label == "Delete…").click().run()
    assert {r.id for r in store.list_runs()} == {a, b}  # nothing deleted yet
    assert "cannot be undone" in at.warning[0].value
    at.button(key="runs_delete_no").click().run()
    assert {r.id for r in store.list_runs()} == {a, b} and not at.warning
    at.multiselect(key="runs_selected").set_value([b]).run()
    next(x for x in at.button if x.label == "Delete…").click().run()
    at.button(key="runs_delete_yes").click().run()
    assert [r.id for r in store.list_runs()] == [a]
    assert _shown_ids(at) == [a]


def test_rerun_sets_prefill_config(store):
    run = _run(store, "to-edit", sampling={"method": "fpls"})
    at = _page("runs.py")
    at.multiselect(key="runs_selected").set_value([run]).run()
    next(x for x in at.button if x.label == "Re-run with edits").click().run()
    prefill = at.session_state[PREFILL_CONFIG]
    assert prefill == {**store.get_run(run).config, "name": f"to-edit (re-run of #{run})"}
    assert at.session_state[PREFILL_SOURCE] == run
    # AppTest has no st.navigation, so the switch itself can only report the page as unknown here.
    assert all("new_experiment.py" in e.message for e in at.exception)


def test_monitor_shows_selected_run_and_reads_incrementally(store):
    a = _run(store, "first")
    b = _run(store, "second")
    store.finish_run(a, "completed")
    store.claim_next_run("w1")  # a is finished: b becomes the running run
    store.add_event(b, "epoch 1 done")
    at = _page("monitor.py", **{SELECTED_RUN: a})
    assert not at.exception
    assert at.selectbox(key="monitor_run").value == a
    assert any("10 steps held · 10 new rows read" in c.value for c in at.caption)
    at.selectbox(key="monitor_metric").set_value("test_acc").run()
    at.selectbox(key="monitor_run").set_value(b).run()
    assert at.selectbox(key="monitor_metric").value == "test_acc"  # selection kept across runs
    store.add_step_metrics(b, [{"step": 11, "epoch": 3, "loss": 0.1}])
    at.run()
    assert not at.exception
    assert any("11 steps held · 1 new rows read" in c.value for c in at.caption)
    assert any(e.label == "Event log (1)" for e in at.expander)  # events are read even while it is closed
    at.session_state[f"monitor_events_open_{b}"] = True  # the log's table is drawn while it is open
    at.run()
    assert "epoch 1 done" in list(at.dataframe[-1].value["message"])
    # These rows carry no step phases: the monitor says so instead of drawing an empty chart.
    assert any("No step phases logged yet" in c.value for c in at.caption)


def test_monitor_draws_the_step_phases(store):
    run = _run(store, "phased")
    phases = {
        "sim_fwd_phase": 0.2,
        "sim_server": 0.05,
        "sim_head_phase": 0.0,
        "sim_bwd_phase": 0.3,
        "sim_sync": 0.01,
    }
    store.add_step_metrics(run, [{"step": s, "epoch": 2, "loss": 0.5, **phases} for s in range(11, 15)])
    store.finish_run(run, "completed")
    at = _page("monitor.py", **{SELECTED_RUN: run})
    assert not at.exception
    assert not any("No step phases logged yet" in c.value for c in at.caption)
    assert any("Where the simulated step time goes" in m.value for m in at.markdown)
    charts = at.get("vega_lite_chart")
    # loss, test accuracy and the stacked phases (these rows log no deviation or step time)
    assert len(charts) == 3


def test_compare_both_runs_diff_only_and_exports(store):
    a = _run(store, "ugs", sampling={"method": "ugs"})
    b = _run(store, "lds", sampling={"method": "lds", "lds_delta": 0.5})
    at = _page("compare.py", **{COMPARE_RUNS: [a, b]})
    assert not at.exception
    summary = at.dataframe[0].value
    assert list(summary["run_id"]) == [a, b]
    assert list(summary["final test acc"]) == [0.8, 0.8]
    diff = at.dataframe[1].value
    assert "sampling.method" in diff.index and "sampling.batch_size" not in diff.index
    assert list(diff.loc["sampling.method"]) == ["ugs", "lds"]
    at.toggle(key="compare_diff_only").set_value(False).run()
    assert "sampling.batch_size" in at.dataframe[1].value.index
    at.number_input(key="compare_target").set_value(0.7).run()
    assert list(at.dataframe[0].value["steps to target"]) == ["10", "10"]


def test_compare_export_contents(store):
    from app.ui.views.compare import align_series, config_diff, summary_table, to_csv_bytes

    a = _run(store, "one")
    steps = {a: store.read_step_metrics(a)}
    epochs = {a: store.read_epoch_metrics(a)}
    series = pd.read_csv(io.BytesIO(to_csv_bytes(align_series(steps, epochs, "step", "loss"))))
    assert list(series.columns) == ["run_id", "x", "value"] and len(series) == 10
    assert series["value"].iloc[0] == pytest.approx(2.0)
    summary = pd.read_csv(io.BytesIO(to_csv_bytes(summary_table({a: "#1"}, steps, epochs, 0.75))))
    assert summary.loc[0, "steps to target"] == 10
    diff = pd.read_csv(io.BytesIO(to_csv_bytes(config_diff({"#1": store.get_run(a).config}), index=True)))
    assert "sampling.method" in set(diff["setting"])


def test_compare_opens_the_runs_named_in_its_url(store):
    """README documents ``compare?runs=3,4``; the page itself writes ``?runs=3&runs=4``: both work."""
    from app.ui.views.compare import parse_run_ids

    assert parse_run_ids(["3,4"]) == parse_run_ids(["3", "4"]) == [3, 4]
    assert parse_run_ids(["4, x,4", "", "-1"]) == [4]
    a = _run(store, "ugs", sampling={"method": "ugs"})
    b = _run(store, "lds", sampling={"method": "lds", "lds_delta": 0.5})
    at = AppTest.from_file(str(PAGES / "compare.py"), default_timeout=60)
    at.query_params["runs"] = f"{a},{b}"
    at.run()
    assert not at.exception
    assert list(at.dataframe[0].value["run_id"]) == [a, b]


def test_monitor_event_log_is_drawn_only_while_open(store):
    """Speed (issue 11): the log's table is drawn only while the log is open; a failed run opens it."""
    ok, bad = _run(store, "fine"), _run(store, "broken")
    for run, status in ((ok, "completed"), (bad, "failed")):
        store.add_event(run, f"event of #{run}")
        store.finish_run(run, status, error="boom" if status == "failed" else None)

    def log_tables(at):
        return [df.value for df in at.dataframe if list(df.value.columns) == ["time", "level", "message"]]

    at = _page("monitor.py", **{SELECTED_RUN: ok})
    assert not at.exception and not log_tables(at)
    at.session_state[f"monitor_events_open_{ok}"] = True
    at.run()
    [table] = log_tables(at)
    assert f"event of #{ok}" in set(table["message"])
    at.selectbox(key="monitor_run").set_value(bad).run()
    [table] = log_tables(at)  # a failed run's log opens by itself
    assert f"event of #{bad}" in set(table["message"])


def _chart_rows(chart) -> pd.DataFrame:  # noqa: ANN001 - an AppTest vega_lite_chart element
    import pyarrow as pa

    frames = [pa.ipc.open_stream(d.data.data).read_pandas() for d in chart.proto.datasets]
    return pd.concat(frames) if frames else pd.DataFrame()


def test_monitor_draws_half_width_charts_of_a_long_run_with_bounded_points(store):
    """The monitor's four charts sit two to a row (~340 px each): a long run is drawn with at most
    HALF_WIDTH_POINTS points per chart, the loss spike and the last step kept."""
    from app.ui.charts.metrics import HALF_WIDTH_POINTS

    run = _run(store, "long")
    n = 20_000
    store.add_step_metrics(
        run,
        [{"step": s, "epoch": 1 + s // 5000, "loss": 40.0 if s == 12_345 else 1.0, "deviation": 0.1,
          "sim_step_time": 0.05} for s in range(11, n + 1)],
    )  # fmt: skip
    store.finish_run(run, "completed")
    at = _page("monitor.py", **{SELECTED_RUN: run})
    assert not at.exception
    charts = at.get("vega_lite_chart")
    assert len(charts) == 4
    loss = _chart_rows(charts[0])
    assert 100 < len(loss) <= HALF_WIDTH_POINTS
    assert loss["value"].max() == 40.0 and loss["x"].max() == n  # the spike and the last step
    for chart in charts[2:]:  # deviation and step time
        assert len(_chart_rows(chart)) <= HALF_WIDTH_POINTS
    # Rows written through the Store, not by a worker: no current step on the record. The bar said
    # "step 0" beside 20,000 stored steps; it now names the newest step held.
    [bar] = at.get("progress")
    assert "completed — step 20000 " in bar.proto.text


def test_a_charts_export_menu_draws_its_buttons_only_while_open(store):
    """Speed (issue 11): four closed export menus of four elements each were a fifth of the monitor's
    elements. Closed, a menu draws nothing inside; opened, its SVG / PNG / PDF buttons."""
    run = _run(store, "exported")
    at = _page("monitor.py", **{SELECTED_RUN: run})
    assert not at.exception and len(at.get("vega_lite_chart")) >= 2
    assert not at.get("download_button")
    at = _page("monitor.py", **{SELECTED_RUN: run, "monitor_export_0_menu": True})  # what a click does
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["SVG", "PNG 300 dpi", "PDF"]
