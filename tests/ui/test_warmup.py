"""The dashboard's background warm-up fills the caches the first pages use, once per process."""

from __future__ import annotations

from app.ui import warmup
from app.ui.views.form_fields import validate_form
from app.ui.views.presets import DEMO_PRESET, preset_config
from psl_core import validation


def test_warm_fills_the_demo_checks_and_runs_once(monkeypatch):
    validation._check_json.cache_clear()
    warmup.warm()
    before = validation._check_json.cache_info()
    assert before.currsize >= 1
    validate_form(preset_config(DEMO_PRESET))  # what the New experiment page does first
    after = validation._check_json.cache_info()
    assert after.hits == before.hits + 1 and after.misses == before.misses  # served from the cache
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
