"""Server CPU of a page visit with and without Streamlit's source-file watcher, side by side.

Serves the dashboard twice per round (``--server.fileWatcherType auto`` then ``none``, the way `psl ui`
serves it now), waits for the background warm-up to finish, then opens the static Methods page
``--visits`` times in a fresh navigation and clicks its section picker three times (reruns in one
session). Prints the median server CPU seconds per visit / rerun and the ratio none/auto.

    PYTHONPATH=$PWD .venv/bin/python bench/bench_session_overhead.py [--rounds 2] [--visits 6]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_page_speed import BROWSER_ARGS, CHROMIUM, cpu_seconds, free_port  # noqa: E402

ENTRY = ROOT / "app" / "ui" / "dashboard.py"


def serve(home: Path, watcher: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PSL_DATABASE_URL"}
    env.update(PSL_HOME=str(home), PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "streamlit", "run", str(ENTRY), "--server.headless", "true",
           "--server.port", str(port), "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", watcher]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).read() == b"ok":
                return proc, base
        except OSError:
            time.sleep(0.5)
    raise SystemExit("the dashboard did not come up")


def wait_idle(pid: int, quiet_cpu_s: float = 0.1, window_s: float = 2.0, limit_s: float = 180) -> None:
    """Until the server used less than ``quiet_cpu_s`` over a window (the warm-up is done)."""
    deadline = time.time() + limit_s
    while time.time() < deadline:
        before = cpu_seconds(pid)
        time.sleep(window_s)
        if cpu_seconds(pid) - before < quiet_cpu_s:
            return


def measure(page, base: str, pid: int, visits: int) -> tuple[list[float], list[float]]:  # noqa: ANN001
    page.goto(base + "/methods")
    page.wait_for_selector('[data-testid="stMain"] h1')
    wait_idle(pid)
    visit_cpu, rerun_cpu = [], []
    for _ in range(visits):
        page.goto("about:blank")
        time.sleep(0.5)
        before = cpu_seconds(pid)
        page.goto(base + "/methods")
        page.wait_for_selector(
            '[data-testid="stApp"][data-test-script-state="notRunning"] [data-testid="stMain"] h1'
        )
        time.sleep(1.5)
        visit_cpu.append(cpu_seconds(pid) - before)
    for i in range(3):
        before = cpu_seconds(pid)
        page.get_by_role("radio").nth(i + 1).check(force=True)
        time.sleep(1.5)
        rerun_cpu.append(cpu_seconds(pid) - before)
    return visit_cpu, rerun_cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--visits", type=int, default=6)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="psl-session-"))
    results: dict[str, tuple[list[float], list[float]]] = {"auto": ([], []), "none": ([], [])}
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        for _ in range(args.rounds):
            for watcher in ("auto", "none"):
                proc, base = serve(home, watcher)
                try:
                    from bench.bench_page_speed import server_pid

                    pid = server_pid(int(base.rsplit(":", 1)[1]))
                    page = browser.new_page()
                    visits, reruns = measure(page, base, pid, args.visits)
                    page.close()
                finally:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(30)
                results[watcher][0].extend(visits)
                results[watcher][1].extend(reruns)
                print(f"{watcher:5s} visits {[round(v, 2) for v in visits]} reruns {[round(r, 2) for r in reruns]}",
                      flush=True)  # fmt: skip
        browser.close()
    med = {w: (statistics.median(v), statistics.median(r)) for w, (v, r) in results.items()}
    print("\n| server CPU s (median) | watcher auto | watcher none | none / auto |\n|---|---:|---:|---:|")
    for i, label in enumerate(("fresh visit of Methods", "rerun (section click)")):
        print(
            f"| {label} | {med['auto'][i]:.2f} | {med['none'][i]:.2f} | {med['none'][i] / med['auto'][i]:.2f} |"
        )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
