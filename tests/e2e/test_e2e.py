"""End to end in headless Chromium: a newcomer's first session with the real app and a real worker.

Starts `psl ui` (which starts a background worker) on a free port with a fresh data directory,
launches the digits demo from the form, watches it complete on the monitor, launches a second run
with another sampling method, compares the two, and saves a screenshot of every page under
test-artifacts/.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from storage import Store

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (make test installs it)"
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("psl-home")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PSL_DATABASE_URL"}
    env["PSL_HOME"] = str(home)
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "ui", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=open(home / "ui.log", "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"the dashboard did not come up: {(home / 'ui.log').read_text()[-2000:]}")
        yield base, home
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        worker_pid = home / "worker.pid"
        if worker_pid.exists():
            try:
                os.killpg(int(worker_pid.read_text()), signal.SIGTERM)
            except ProcessLookupError:
                pass
        proc.wait(10)


@pytest.fixture(scope="module")
def page(app_server):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.set_default_timeout(60_000)
        yield pg
        browser.close()


def settle(page) -> None:
    """Wait until Streamlit has finished running the script (the 'running' widget is gone)."""
    page.wait_for_timeout(800)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=60_000)
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator(
        '[data-testid="stException"]'
    ).first.inner_text()


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the select box labelled ``label`` (retrying if a rerun closed the list)."""
    for _ in range(3):
        page.get_by_label(label, exact=True).click()
        item = page.get_by_role("option", name=option, exact=True)
        try:
            item.wait_for(state="visible", timeout=10_000)
        except Exception:
            page.keyboard.press("Escape")
            settle(page)
            continue
        item.click()
        settle(page)
        return
    page.screenshot(path=ARTIFACTS / "failed-choose.png", full_page=True)
    pytest.fail(f"option {option!r} of {label!r} never showed up")


def drawn_charts(page) -> int:
    """Vega charts that painted marks: SVG mark paths, or a canvas with painted pixels."""
    return page.evaluate(
        """() => [...document.querySelectorAll('.vega-embed')].filter(e => {
            const marks = e.querySelectorAll('svg g[class*="mark-"] path, svg g[class*="mark-"] line');
            if (marks.length >= 3) return true;
            const c = e.querySelector('canvas');
            if (!c || !c.width || !c.height) return false;
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let painted = 0;
            for (let i = 3; i < d.length; i += 4) if (d[i] > 0) painted++;
            return painted > 200;
        }).length"""
    )


def wait_for_status(home: Path, run_id: int, status: str, timeout: float = 180) -> None:
    store = Store(f"sqlite:///{home}/psl.db")
    deadline = time.time() + timeout
    while time.time() < deadline:
        if store.get_run(run_id).status == status:
            return
        time.sleep(1)
    record = store.get_run(run_id)
    pytest.fail(f"run #{run_id} is {record.status}, not {status}: {record.error or ''}")


def launch_demo(page, base: str, name: str, method_label: str | None) -> None:
    page.goto(f"{base}/new")
    settle(page)
    choose(page, "Start from a preset", "30-second demo (digits)")
    page.get_by_label("Run name", exact=True).fill(name)
    page.keyboard.press("Tab")
    settle(page)
    if method_label:
        choose(page, "Method", method_label)
    page.get_by_role("button", name="Launch", exact=True).click()
    settle(page)


def test_newcomer_launches_watches_and_compares_two_runs(app_server, page):
    base, home = app_server
    launch_demo(page, base, "demo ugs", None)
    page.screenshot(path=ARTIFACTS / "new_experiment.png", full_page=True)
    assert drawn_charts(page) >= 1  # the partition heatmap preview

    page.get_by_role("button", name="Open run #1 in the Live monitor").click()
    settle(page)
    wait_for_status(home, 1, "completed")
    page.wait_for_timeout(3000)  # the live fragment refreshes every 2 s
    settle(page)
    assert page.get_by_text("completed").count() >= 1
    assert drawn_charts(page) >= 1
    page.screenshot(path=ARTIFACTS / "monitor.png", full_page=True)

    launch_demo(page, base, "demo fls", "FLS - fixed local sampling")
    wait_for_status(home, 2, "completed")
    store = Store(f"sqlite:///{home}/psl.db")
    assert store.get_run(2).config["sampling"]["method"] == "fls"
    assert store.get_run(1).config["sampling"]["method"] == "ugs"

    page.goto(f"{base}/")  # Runs is the default page
    settle(page)
    page.screenshot(path=ARTIFACTS / "runs.png", full_page=True)
    choose(page, "Selected runs", "#1 demo ugs (completed)")
    page.keyboard.press("Escape")
    choose(page, "Selected runs", "#2 demo fls (completed)")
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Compare", exact=True).click()
    settle(page)
    page.wait_for_timeout(1500)
    body = page.locator("section.main, [data-testid='stMain']").first.inner_text()
    assert "demo ugs" in body and "demo fls" in body
    assert drawn_charts(page) >= 1
    page.screenshot(path=ARTIFACTS / "compare.png", full_page=True)
    page.get_by_text("Summary", exact=True).scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "compare_summary.png")


def test_learn_page_draws_its_explainers(app_server, page):
    base, _ = app_server
    page.goto(f"{base}/learn")
    settle(page)
    page.wait_for_timeout(1500)
    assert drawn_charts(page) >= 2
    page.screenshot(path=ARTIFACTS / "learn.png", full_page=True)


def test_helpers_page_runs_solvers_and_draws_gantt_charts(app_server, page):
    base, _ = app_server
    page.goto(f"{base}/helpers")
    settle(page)
    page.get_by_role("button", name="Run solvers", exact=True).click()
    settle(page)
    page.wait_for_timeout(1500)
    main = page.locator("[data-testid='stMain']").first.inner_text()
    assert "Helper schedule (one row per helper)" in main and "Instance + schedules (JSON)" in main
    assert drawn_charts(page) >= 1
    page.screenshot(path=ARTIFACTS / "helpers.png", full_page=True)
    page.locator(".vega-embed").last.scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "helpers_gantt.png")
