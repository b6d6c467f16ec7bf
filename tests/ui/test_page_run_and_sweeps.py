"""AppTest of the run page (one URL per run), the sweep view, bundle export/import in the UI, and the
monitor's choices (defects 6, 7, 10)."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.runs import submit_sweep
from app.settings import get_settings
from app.ui.views.monitor import default_run, failure_summary, no_phases_reason
from app.ui.widgets import SELECTED_RUN
from psl_core.config import ExperimentConfig
from storage import Store

PAGES = Path(__file__).resolve().parents[2] / "pages"


@pytest.fixture
def store(fresh_psl_home):
    return Store(get_settings().database_url)


def _plain(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _finished(store, name="r", *, status="completed", error=None, **sections) -> int:
    config = ExperimentConfig(name=name, data={"train_limit": 200}, **sections).model_dump(mode="json")
    run = store.create_run(name=name, config=config, seed=config["seed"], total_steps=6)
    store.add_step_metrics(
        run, [{"step": s, "epoch": (s - 1) // 3 + 1, "loss": 1.0 / s} for s in range(1, 7)]
    )
    store.add_epoch_metrics(
        run, [{"epoch": 1, "step": 3, "test_acc": 0.5}, {"epoch": 2, "step": 6, "test_acc": 0.7}]
    )
    store.add_event(run, "epoch 2 done")
    store.add_checkpoint(run, step=6, epoch=2, path="/ckpt/6.pt")
    store.finish_run(
        run,
        status,
        error=error,
        traceback="Traceback...\nRuntimeError: CUDA out of memory" if error else None,
    )
    return run


def _page(name: str, query: dict | None = None, **state) -> AppTest:
    at = AppTest.from_file(str(PAGES / name), default_timeout=60)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def test_run_page_shows_everything_about_one_run(store):
    run = _finished(store, "the run")
    at = _page("run.py", {"run": str(run)})
    assert not at.exception
    assert _plain(at.title[0].value) == f"Run #{run}: the run"
    summary = at.dataframe[0].value
    assert summary.loc[0, "final test acc"] == pytest.approx(0.7) and summary.loc[0, "steps"] == 6
    assert len(at.get("vega_lite_chart")) == 2  # loss and accuracy (no deviation logged)
    frames = [df.value for df in at.dataframe]
    config = next(f for f in frames if "setting" in f.columns).set_index("setting")
    assert config.loc["data.train_limit", "value"] == "200"
    assert "epoch 2 done" in list(next(f for f in frames if "message" in f.columns)["message"])
    assert list(next(f for f in frames if "file" in f.columns)["file"]) == ["/ckpt/6.pt"]
    assert any(b.label == "Export bundle (.zip)" for b in at.get("download_button"))


def test_run_page_puts_the_failure_reason_first(store):
    """Defect 7: a failed run showed 'failed — step 0' with the reason hidden in a collapsed log."""
    run = _finished(store, "broken", status="failed", error="CUDA out of memory at batch 64")
    for page in ("run.py", "monitor.py"):
        at = _page(page, {"run": str(run)})
        assert not at.exception
        first_error = _plain(at.error[0].value)
        assert "Failed" in first_error and "CUDA out of memory at batch 64" in first_error
    record = store.get_run(run)
    assert failure_summary(record) == "CUDA out of memory at batch 64"


def test_run_page_without_a_run_offers_a_picker(store):
    _finished(store, "a")
    at = _page("run.py", {"run": "999"})
    assert not at.exception
    assert "no run #999" in at.warning[0].value and at.selectbox[0].options


def test_monitor_opens_the_running_run_and_refreshes_only_it():
    """Defect 6: the monitor opened an old finished run instead of the running one."""

    class R:
        def __init__(self, id, status, started=None):  # noqa: A002
            self.id, self.status, self.started_at, self.created_at = id, status, started, id

    records = [R(5, "completed", 5), R(4, "running", 4), R(3, "running", 2), R(2, "failed", 1)]
    assert default_run(records) == 4
    assert default_run([R(5, "completed", 5), R(4, "queued")]) == 4
    assert default_run([R(5, "completed", 5), R(4, "failed", 4)]) == 5


def test_monitor_offers_runs_started_after_it_opened(store):
    """Defect 6: a run started after the page loaded was never offered."""
    first = _finished(store, "old")
    at = _page("monitor.py")
    assert at.selectbox(key="monitor_run").options == [f"#{first} old"]
    config = ExperimentConfig(name="new one").model_dump(mode="json")
    new = store.create_run(name="new one", config=config, seed=0)
    store.claim_next_run("w")
    at.run()
    assert not at.exception
    assert f"#{new} new one" in at.selectbox(key="monitor_run").options
    # A run handed over by another page is opened once, then the choice is the user's.
    at.session_state[SELECTED_RUN] = first
    at.run()
    assert at.selectbox(key="monitor_run").value == first
    assert SELECTED_RUN not in at.session_state


def test_sweep_view_groups_seeds_and_draws_the_grid(store):
    base = ExperimentConfig(name="grid", data={"train_limit": 200})
    sweep, ids = submit_sweep(
        store, base, {"sampling.method": ["ugs", "fls"], "sampling.batch_size": [32, 64]}, [0, 1]
    )
    for i, run in enumerate(ids):
        store.add_epoch_metrics(run, [{"epoch": 1, "step": 3, "test_acc": 0.5 + 0.01 * i}])
        store.finish_run(run, "completed")
    at = _page("sweeps.py", {"sweep": str(sweep)})
    assert not at.exception
    groups = next(df.value for df in at.dataframe if "runs" in df.value.columns)
    assert len(groups) == 4 and set(groups["runs"]) == {2}
    ugs32 = groups[(groups["method"] == "ugs") & (groups["batch_size"] == "32")].iloc[0]
    assert ugs32["final test_acc mean"] == pytest.approx(0.505)  # runs 0 and 1 (seeds 0, 1)
    assert ugs32["final test_acc std"] == pytest.approx(0.00707, abs=1e-4)
    assert len(at.get("vega_lite_chart")) == 1  # the heat map
    assert "FLS" not in _plain(at.success[0].value) and "method = fls" in _plain(
        at.success[0].value
    )  # best: highest acc


def test_bundle_export_then_import_through_the_pages(store):
    """Defect 10: export/import existed only in the CLI."""
    from app.bundles import export_bundle

    run = _finished(store, "to move")
    data = export_bundle(store, run)
    assert "run.json" in zipfile.ZipFile(io.BytesIO(data)).namelist()
    at = _page("runs.py")
    assert not at.get("file_uploader"), "closed, the import section draws no uploader (lazy)"
    assert any(e.label == "Import a run bundle (.zip)" for e in at.expander)
    at = _page("runs.py", runs_import_open=True)  # what opening the section does
    uploader = at.get("file_uploader")
    assert uploader, "the Runs page offers an import"
    # AppTest cannot upload files: call what the page's Import button calls, then check the page shows it.
    from app.bundles import import_bundle

    new = import_bundle(store, data)
    at.run()
    assert new in list(at.dataframe[0].value["id"])
    assert store.read_step_metrics(new)["loss"].tolist() == store.read_step_metrics(run)["loss"].tolist()


def test_an_empty_phase_chart_says_why_in_the_runs_terms():
    """A FedAvg run's monitor said "runs from before the phases were logged have none" — untrue for a
    run of today: round-based paradigms and runs with helpers have no PSL phases by design."""
    assert "FEDAVG runs in rounds" in no_phases_reason({"paradigm": {"name": "fedavg"}})
    assert "makespan" in no_phases_reason(
        {"paradigm": {"name": "psl"}, "system": {"helpers": {"num_helpers": 2}}}
    )
    assert "stored before the phases were logged" in no_phases_reason(
        {"system": {"helpers": {"num_helpers": 0}}}
    )
    assert "stored before" in no_phases_reason(None)
