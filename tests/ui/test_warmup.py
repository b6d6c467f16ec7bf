"""The dashboard's background warm-up fills the caches the first pages use, once per process."""

from __future__ import annotations

import sys

from app.ui import warmup
from app.ui.views.form_problems import validate_form
from app.ui.views.presets import DEMO_PRESET, preset_config
from psl_core import validation


def test_warm_fills_the_demo_checks_and_runs_once(monkeypatch, fresh_psl_home):
    validation._check_json.cache_clear()
    warmup.warm()
    before = validation._check_json.cache_info()
    assert before.currsize >= 1
    validate_form(preset_config(DEMO_PRESET))  # what the New experiment page does first
    after = validation._check_json.cache_info()
    assert after.hits == before.hits + 1 and after.misses == before.misses  # served from the cache
    assert (fresh_psl_home / "psl.db").exists()  # the pages' one Store was opened (and migrated)
    assert "app.bundles" in sys.modules and "storage" in sys.modules  # what the pages import
    started = []
    monkeypatch.setattr(warmup, "_started", type(warmup._started)())
    monkeypatch.setattr(
        warmup.threading,
        "Thread",
        lambda **kw: started.append(kw) or type("T", (), {"start": lambda self: None})(),
    )
    assert warmup.start_warmup() is True and warmup.start_warmup() is False
    assert len(started) == 1


def test_dashboard_is_served_without_a_source_file_watcher():
    """Each new browser session walked every imported module to choose files to watch (0.2 s of CPU
    per page visit with torch loaded); a local tool does not reload on source edits."""
    from app.worker.supervisor import streamlit_command

    cmd = streamlit_command("127.0.0.1", 8501)
    assert cmd[cmd.index("--server.fileWatcherType") + 1] == "none"


def test_the_server_warms_before_it_serves(monkeypatch):
    """`psl ui` starts app.ui.serve, which warms the process BEFORE Streamlit opens its port (a first
    visit no longer pays for the imports, nor races the warm-up thread), and the dashboard's own
    background warm-up then has nothing left to do."""
    from app.ui import serve
    from app.worker.supervisor import streamlit_command

    cmd = streamlit_command("127.0.0.1", 8501)
    assert cmd[1:3] == ["-m", "app.ui.serve"] and cmd[3].endswith("dashboard.py")
    assert cmd[cmd.index("--runner.postScriptGC") + 1] == "false"  # no full GC after every rerun
    calls = []
    monkeypatch.setattr(warmup, "_started", type(warmup._started)())
    monkeypatch.setattr(warmup, "warm", lambda: calls.append("warm"))
    monkeypatch.setattr(serve, "freeze_heap", lambda: calls.append("freeze"))
    served = []
    monkeypatch.setattr("app.logs.configure_logging", lambda *a, **k: None)  # keep this process's logging
    monkeypatch.setattr(serve.sys, "argv", list(serve.sys.argv))  # main() replaces it: restored after
    monkeypatch.setattr("streamlit.web.cli.main", lambda: served.append(list(serve.sys.argv)) or 0)
    assert serve.main(["dashboard.py", "--server.port", "1"]) == 0
    assert calls == ["warm", "freeze"] and served == [
        ["streamlit", "run", "dashboard.py", "--server.port", "1"]
    ]
    assert warmup.start_warmup() is False  # already done


def test_the_warmed_heap_is_frozen_out_of_the_collectors_reach():
    """A full collection walked PyTorch's and the caches' ~450,000 long-lived objects (0.16 s) inside
    whichever page was being drawn; after the warm-up they are frozen (gc.freeze), so collections
    only walk what pages create."""
    import gc

    from app.ui import serve

    before = gc.get_freeze_count()
    try:
        serve.freeze_heap()
        assert gc.get_freeze_count() > max(before, 1000)
    finally:
        gc.unfreeze()
