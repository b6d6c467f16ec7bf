"""Warm the dashboard's server process once: ``psl ui`` does it before the port opens
(app/ui/serve.py); a server started another way (``streamlit run``) does it in the background when it
serves its first page.

The first visit of a page that needs the engine, a dataset or the figure renderer would otherwise pay
for those imports and loads (seconds on a cold process): every module the pages import, the Store,
torch, the model profiles, the digits data and the checks of every preset, the engine's planner
(client timeline), the Learn page's toy federation, and vl-convert's JavaScript engine (figure
export). Everything here only fills process-wide caches; a failure is logged and changes nothing else.
"""

from __future__ import annotations

import threading

from app.logs import get_logger

log = get_logger("ui.warmup")
_started = threading.Event()


def mark_started() -> None:
    """Say the warm-up is done or under way in this process (``app.ui.serve`` warms before serving)."""
    _started.set()


def start_warmup() -> bool:
    """Start the warm-up thread unless it already ran in this process (True if started now)."""
    if _started.is_set():
        return False
    _started.set()
    threading.Thread(target=warm, name="psl-ui-warmup", daemon=True).start()
    return True


def warm() -> None:
    """Fill the caches the pages use first (in order of how soon a newcomer needs them)."""
    steps = [_views, _store, _demo_checks, _engine, _learn, _figures, _preset_checks]
    for step in steps:
        try:
            step()
        except Exception:  # noqa: BLE001 - a warm-up must never break the dashboard
            log.warning("dashboard warm-up step %s failed", step.__name__, exc_info=True)


def _views() -> None:
    """Every module the pages import (read from their import statements), and every view and chart
    module: pandas, Altair, the storage layer, the forms, the engine's public parts."""
    import ast
    import importlib
    from pathlib import Path

    from app.ui.widgets import PAGES_DIR

    modules: set[str] = set()
    for page in sorted(PAGES_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(page.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module)
            elif isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
    for room in ("views", "charts"):
        modules.update(f"app.ui.{room}.{m.stem}" for m in (Path(__file__).parent / room).glob("*.py"))
    for name in sorted(modules - {"__future__"}):
        importlib.import_module(name)


def _store() -> None:
    """The process's one Store (a cached resource the pages share): connected, migrated, queried."""
    from app.ui.widgets import get_store

    get_store().list_runs(limit=1)


def _demo_checks() -> None:
    from app.ui.views.form_problems import validate_form
    from app.ui.views.presets import DEMO_PRESET, preset_config

    validate_form(preset_config(DEMO_PRESET))  # torch, digits, model profile, the checks' cache


def _preset_checks() -> None:
    """Every preset's checks: picking one is what a newcomer does next (Fashion-MNIST's labels are
    read by the first Fashion-MNIST preset, ~0.5 s)."""
    from app.ui.views.form_problems import validate_form
    from app.ui.views.presets import PRESETS, preset_config

    for name in PRESETS:
        validate_form(preset_config(name))


def _engine() -> None:
    import psl_core.engine  # noqa: F401 - the client timeline replays the engine's planner


def _learn() -> None:
    from app.ui.views import learn, learn_split

    learn.toy_federation(8, 0.3, 0)
    learn_split.shown_leakage("resnet8")  # trains the small model the split explainer shows


def _figures() -> None:
    import vl_convert

    vl_convert.vegalite_to_svg(
        {"mark": "point", "data": {"values": [{"x": 1}]}, "encoding": {"x": {"field": "x"}}}
    )
