"""Where runs execute: the view behind the Live monitor's section, and the section on the page."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from streamlit.testing.v1 import AppTest

from app.formatting import format_placement
from app.settings import get_settings
from app.ui.views.placement import PLACEMENT_COLUMNS, heartbeat_age, placement_frame
from psl_core.config import ExperimentConfig
from storage import Store

PAGES = Path(__file__).resolve().parents[2] / "pages"
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


def test_format_placement_names_host_backend_and_slot():
    assert (
        format_placement("node-3", "ray", "2/8 node 1a2b3c4d gpu 0") == "node-3 (ray 2/8 node 1a2b3c4d gpu 0)"
    )
    assert format_placement("laptop", "local", None) == "laptop (local)"
    assert format_placement("laptop", None, None) == "laptop"
    assert format_placement(None, "ray", "1/2") == "—"  # never claimed


def test_heartbeat_age_in_seconds_then_minutes():
    assert heartbeat_age(None, NOW) == "-"
    assert heartbeat_age(NOW - timedelta(seconds=4.4), NOW) == "4 s ago"
    assert heartbeat_age(NOW - timedelta(minutes=5), NOW) == "5 min ago"
    assert heartbeat_age(NOW + timedelta(seconds=2), NOW) == "0 s ago"  # another host's clock ahead


def test_placement_frame_one_row_per_run_with_dashes_where_unknown(fresh_psl_home):
    store = Store(get_settings().database_url)
    queued = store.create_run(name="waiting", config={}, seed=0)
    running = store.create_run(name="busy", config={}, seed=0)
    store.claim_run(running, "ray-x-node-7-99", host="node-7", backend="ray", slot="1/4 node 0badc0de")
    frame = placement_frame([store.get_run(queued), store.get_run(running)], now=NOW + timedelta(days=10**4))
    assert list(frame.columns) == PLACEMENT_COLUMNS
    rows = frame.set_index("id").to_dict("index")
    assert rows[queued] | {"name": "waiting"} == {
        "name": "waiting", "status": "queued", "host": "-", "backend": "-", "slot": "-", "attempts": 0, "heartbeat": "-",
    }  # fmt: skip
    assert (rows[running]["host"], rows[running]["backend"], rows[running]["slot"]) == (
        "node-7",
        "ray",
        "1/4 node 0badc0de",
    )
    assert rows[running]["attempts"] == 1 and rows[running]["heartbeat"].endswith("min ago")
    assert placement_frame([]).empty and list(placement_frame([]).columns) == PLACEMENT_COLUMNS


def test_the_live_monitor_shows_where_running_runs_execute(fresh_psl_home):
    store = Store(get_settings().database_url)
    config = ExperimentConfig(name="busy", data={"train_limit": 200}).model_dump(mode="json")
    run = store.create_run(name="busy", config=config, seed=0)
    store.claim_run(run, "w", host="gpu-node-2", backend="ray", slot="3/8 node 1a2b3c4d gpu 1")
    at = AppTest.from_file(str(PAGES / "monitor.py"), default_timeout=60).run()
    assert not at.exception
    where = at.dataframe[0].value
    assert list(where["host"]) == ["gpu-node-2"] and list(where["slot"]) == ["3/8 node 1a2b3c4d gpu 1"]
    captions = [c.value for c in at.caption]
    assert any("Executes on gpu-node-2 (ray 3/8 node 1a2b3c4d gpu 1), attempt 1" in c for c in captions), (
        captions
    )
