"""Page speed in a real browser: first render of every dashboard page and every interaction.

Fills a PSL_HOME with ``--runs`` stored runs (one sweep among them, a failed run) and one run with a
``--steps``-step series, serves the dashboard the README way (``python -m app ui --no-worker``), and
drives headless Chromium with Playwright. Each number is the time from the navigation (or the
click / key press) until Streamlit reports the script finished AND every chart on the page has drawn.
"first" is the first visit of a page, opened by its URL (a new document: the browser re-runs the app's
JavaScript); "again" is a second such visit; "from the sidebar" opens the page by its sidebar link, as
a user moves between pages (no new document). The very first load of a fresh browser (it downloads and
compiles the app's JavaScript once) is its own row, not counted against any page. The dashboard is
served the README way, so its process is warm before it opens its port (app/ui/serve.py). The load
average is printed beside every row, because on a shared machine the wall times scale with it.

    PYTHONPATH=$PWD .venv/bin/python bench/bench_page_speed.py                  # 1,000 runs, 10^6 steps
    PYTHONPATH=$PWD .venv/bin/python bench/bench_page_speed.py --home /tmp/psl-speed   # reuse the data
    PYTHONPATH=$PWD .venv/bin/python bench/bench_page_speed.py --runs 50 --steps 20000  # a quick look

The data set is kept in ``--home`` (created on first use; re-runs reuse it and skip the filling).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET_S = 1.0
CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu"]
METHODS = ["ugs", "lds", "fls", "fpls"]
BROWSER_START = "Browser start: the app's JavaScript, first load (once per browser; not a page)"
SIDEBAR_PAGES = ["Runs", "New experiment", "Live monitor", "Compare", "Sweeps", "Learn PSL",
                 "Helpers & scheduling", "Split planner", "Methods"]  # fmt: skip

# Resolves with performance.now() once Streamlit's script state goes from anything to "notRunning"
# after this call (installed right before an action, so a quick rerun cannot slip past unseen).
WAIT_SCRIPT_JS = """() => { window.__pslDone = new Promise(resolve => {
  const app = document.querySelector('[data-testid="stApp"]');
  let seen = false;
  const obs = new MutationObserver(() => {
    const s = app.getAttribute('data-test-script-state');
    if (s !== 'notRunning') seen = true;
    else if (seen) { obs.disconnect(); resolve(performance.now()); }
  });
  obs.observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}); return performance.now(); }"""
# True once the page is really drawn: no element is still a loading skeleton (Streamlit loads most
# element types lazily and shows a skeleton meanwhile — right after the script finishes a page can
# still be 70 skeletons), and every Vega chart has an svg or canvas inside.
CHARTS_DRAWN_JS = """() => !document.querySelector('[data-testid="stSkeleton"]') &&
  [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')].every(
    e => e.querySelector('.vega-embed canvas, .vega-embed svg'))"""


# ---------------------------------------------------------------------------------------- data
def populate(home: Path, n_runs: int, n_steps: int) -> dict:
    """Fill ``home`` (once): n_runs runs with epoch metrics, a 24-run sweep, a failed run, 20 runs with
    1,000 steps each and, created last (so the monitor opens on it), one run with ``n_steps`` steps."""
    marker = home / "bench_data.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        if info.get("runs") == n_runs and info.get("steps") == n_steps:
            return info
        raise SystemExit(f"{home} holds another data set ({info}); use a new --home")
    import numpy as np

    from app.runs import submit_sweep
    from psl_core.config import ExperimentConfig
    from storage import Store

    store = Store(f"sqlite:///{home}/psl.db")
    started = time.perf_counter()
    base = ExperimentConfig(name="sweep base", data={"dataset": "digits"}, training={"epochs": 3})
    _, sweep_ids = submit_sweep(
        store,
        base,
        {"sampling.method": ["ugs", "fls", "lds"], "sampling.batch_size": [32, 64]},
        [0, 1, 2, 3],
        name="method x batch",
    )
    ids = list(sweep_ids)
    for i in range(n_runs - len(sweep_ids) - 1):
        config = ExperimentConfig(
            name=f"run-{i}", seed=i % 5, sampling={"method": METHODS[i % 4]}, partition={"num_clients": 8}
        )
        ids.append(
            store.create_run(
                name=config.name, config=config.model_dump(mode="json"), seed=i % 5, tags=[METHODS[i % 4]]
            )
        )
    rng = np.random.default_rng(0)
    for n, run in enumerate(ids):
        store.add_epoch_metrics(
            run,
            [
                {"epoch": e, "step": 23 * e, "test_acc": 0.5 + 0.1 * e + float(rng.normal(0, 0.02))}
                for e in range(1, 4)
            ],
        )
        if n < 44:  # the sweep and 20 more runs have step series
            store.add_step_metrics(
                run,
                [
                    {"step": s, "epoch": (s - 1) // 23 + 1, "loss": 2.0 / np.sqrt(s), "sim_time": 0.05 * s}
                    for s in range(1, 70)
                ],
            )
        store.finish_run(
            run, "failed" if n == 50 else "completed", error="out of memory" if n == 50 else None
        )
    config = ExperimentConfig(name="long series", training={"epochs": 10})
    big = store.create_run(name=config.name, config=config.model_dump(mode="json"), seed=0)
    per_epoch = n_steps // 10
    steps = np.arange(1, n_steps + 1)
    loss = 2.0 / np.sqrt(steps) + rng.normal(0, 0.01, n_steps)
    for start in range(0, n_steps, 100_000):
        chunk = slice(start, start + 100_000)
        store.add_step_metrics(
            big,
            [
                {"step": int(s), "epoch": int((s - 1) // per_epoch + 1), "loss": float(v),
                 "deviation": 0.1, "sim_step_time": 0.05, "sim_time": 0.05 * float(s),
                 "wall_time": 0.001 * float(s)}
                for s, v in zip(steps[chunk], loss[chunk])
            ],
        )  # fmt: skip
    store.add_epoch_metrics(
        big, [{"epoch": e, "step": e * per_epoch, "test_acc": 0.6 + 0.03 * e} for e in range(1, 11)]
    )
    store.finish_run(big, "completed")
    info = {"runs": n_runs, "steps": n_steps, "big": big, "sweep_run": sweep_ids[0], "other": ids[30],
            "fill_s": round(time.perf_counter() - started, 1)}  # fmt: skip
    marker.write_text(json.dumps(info))
    return info


# ---------------------------------------------------------------------------------------- server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, app_root: Path = ROOT) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PSL_DATABASE_URL"}
    env.update(PSL_HOME=str(home), PYTHONPATH=str(app_root))
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "ui", "--no-worker", "--port", str(port)],
        cwd=app_root,
        env=env,
        stdout=open(home / "ui.log", "ab"),  # noqa: SIM115 - the child owns it
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).read() == b"ok":
                return proc, base
        except OSError:
            time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    raise SystemExit(f"the dashboard did not come up; see {home / 'ui.log'}")


def server_pid(port: int) -> int | None:
    """The dashboard server process serving ``port`` (``app.ui.serve``, a child of `psl ui`)."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"app.ui.serve" in cmdline and str(port).encode() in cmdline:  # what `psl ui` starts
                return int(proc.name)
    return None


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a process so far (all its threads); 0 when unknown."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------- browser
class Timer:
    """Times page visits and interactions in one Playwright page; also the server's CPU seconds per
    row, which do not grow with the machine's load (wall seconds do)."""

    def __init__(self, page, base: str) -> None:  # noqa: ANN001
        self.page, self.base = page, base
        self.server = server_pid(int(base.rsplit(":", 1)[1]))
        self.rows: list[tuple[str, float, float, float, str]] = []
        self._cpu = 0.0

    def _finish(self, start: float, label: str, timeout_s: float = 120) -> float:
        page = self.page
        page.wait_for_function("() => window.__pslDone !== undefined")
        done = page.evaluate(
            f"() => Promise.race([window.__pslDone, new Promise(r => setTimeout(() => r(-1), {int(timeout_s * 1000)}))])"
        )
        if done < 0:
            raise TimeoutError(f"{label}: the script did not finish within {timeout_s:.0f} s")
        page.wait_for_function(CHARTS_DRAWN_JS, timeout=timeout_s * 1000)
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        end = page.evaluate("() => performance.now()")
        errors = page.locator('[data-testid="stException"]')
        note = errors.first.inner_text()[:80].replace("\n", " ") if errors.count() else ""
        return (end - start) / 1000.0, note

    def visit(self, label: str, path: str) -> None:
        page = self.page
        page.goto("about:blank")
        self._cpu = cpu_seconds(self.server)
        t0 = time.perf_counter()
        page.goto(self.base + path, wait_until="commit")
        page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=120_000)
        # The first "notRunning" may come before the script started: wait for real content as well.
        page.wait_for_selector('[data-testid="stMain"] h1', timeout=120_000)
        page.wait_for_function(CHARTS_DRAWN_JS, timeout=120_000)
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        self._record(label, time.perf_counter() - t0, self._errors())

    def navigate(self, label: str, title: str) -> None:
        """Open a page the way a user moves around: its link in the sidebar (no new document). Done when
        the page's own heading shows, the script has finished and every chart is drawn (a fast page's
        rerun can be over before an observer sees the script state change)."""
        page = self.page
        before = page.locator('[data-testid="stMain"] h1').first.inner_text()
        self._cpu = cpu_seconds(self.server)
        start = page.evaluate("() => performance.now()")
        page.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()
        page.wait_for_function(
            """(before) => { const h = document.querySelector('[data-testid="stMain"] h1');
              const app = document.querySelector('[data-testid="stApp"]');
              return h && h.innerText !== before && app.getAttribute('data-test-script-state') === 'notRunning'; }""",
            arg=before,
            timeout=120_000,
        )
        page.wait_for_function(CHARTS_DRAWN_JS, timeout=120_000)
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        end = page.evaluate("() => performance.now()")
        self._record(label, (end - start) / 1000.0, self._errors())

    def act(self, label: str, action) -> None:  # noqa: ANN001 - a callable doing the interaction
        self._cpu = cpu_seconds(self.server)
        start = self.page.evaluate(WAIT_SCRIPT_JS)
        action(self.page)
        seconds, note = self._finish(start, label)
        self._record(label, seconds, note or self._errors())

    def _errors(self) -> str:
        errors = self.page.locator('[data-testid="stException"]')
        return errors.first.inner_text()[:80].replace("\n", " ") if errors.count() else ""

    def _record(self, label: str, seconds: float, note: str) -> None:
        load = os.getloadavg()[0]
        cpu = cpu_seconds(self.server) - self._cpu
        self.rows.append((label, seconds, cpu, load, note))
        flag = "ok" if seconds < TARGET_S else "SLOW"
        print(
            f"{label:52s} {seconds:7.2f} s  server CPU {cpu:5.2f} s  load {load:5.2f}  {flag} {note}",
            flush=True,
        )


def choose(page, label: str, option: str) -> None:  # noqa: ANN001
    page.get_by_label(label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()


def add_to_multiselect(page, label: str, option: str) -> None:  # noqa: ANN001
    """Type an option's whole text into a multiselect and pick it (the list filters fuzzily and is
    virtualised, so a short prefix may leave the wanted option off screen)."""
    box = page.get_by_label(label, exact=True)
    box.click()
    box.fill(option)
    page.get_by_role("option", name=option, exact=True).first.click()


def press_slider(page, label: str, key: str = "ArrowRight") -> None:  # noqa: ANN001
    page.get_by_role("slider", name=label).first.focus()
    page.keyboard.press(key)


def run_suite(base: str, info: dict) -> list:
    from playwright.sync_api import sync_playwright

    from storage import Store

    big, sweep_run, other = info["big"], info["sweep_run"], info["other"]
    store = Store(f"sqlite:///{info['home']}/psl.db")
    picker = {
        r: f"#{r} {store.get_run(r).name}" for r in (big, sweep_run, other)
    }  # the Compare picker's text
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(120_000)
        timer = Timer(page, base)
        # A fresh browser downloads and compiles the app's JavaScript once: its own row, not a page's.
        timer.visit(BROWSER_START, "/methods")
        for attempt in ("first", "again"):
            timer.visit(f"Runs ({attempt})", "/")  # the default page
        for attempt in ("first", "again"):
            timer.visit(f"New experiment ({attempt})", "/new")
        timer.act(
            "New experiment: preset change", lambda pg: choose(pg, "Start from a preset", "GPSL paper — FLS")
        )
        timer.act("New experiment: scheme change", lambda pg: choose(pg, "Scheme", "Shards (FedAvg)"))
        for attempt in ("first", "again"):
            timer.visit(f"Live monitor, 10^6-step run ({attempt})", f"/monitor?run={big}")
        timer.act("Live monitor: smoothing slider", lambda pg: press_slider(pg, "Smoothing (EMA weight)"))
        timer.act("Live monitor: timeline on", lambda pg: pg.get_by_text("Show client timeline").click())
        for attempt in ("first", "again"):
            timer.visit(f"Compare ({attempt})", "/compare")
        timer.act("Compare: add the 10^6-step run", lambda pg: add_to_multiselect(pg, "Runs", picker[big]))
        timer.act("Compare: add a second run", lambda pg: add_to_multiselect(pg, "Runs", picker[other]))
        timer.act("Compare: add a sweep run", lambda pg: add_to_multiselect(pg, "Runs", picker[sweep_run]))
        for attempt in ("first", "again"):
            timer.visit(f"Learn PSL ({attempt})", "/learn")
        timer.act(
            "Learn PSL: step slider", lambda pg: press_slider(pg, "Step t (walk through the first batches)")
        )
        timer.visit("Helpers & scheduling (first)", "/helpers")
        timer.visit("Methods (first)", "/methods")
        for extra, path in (("Run page, 10^6-step run", f"/run?run={big}"), ("Sweeps", "/sweeps")):
            try:
                timer.visit(f"{extra} (first)", path)
            except Exception as err:  # noqa: BLE001 - pages that do not exist in older versions
                print(f"{extra}: not measured ({type(err).__name__})")
        for title in SIDEBAR_PAGES:
            try:
                timer.navigate(f"{title} (from the sidebar)", title)
            except Exception as err:  # noqa: BLE001 - older versions lack some pages
                print(f"{title} from the sidebar: not measured ({type(err).__name__})")
        browser.close()
    return timer.rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--home", type=Path, default=None, help="data folder (kept; reused when it exists)")
    parser.add_argument(
        "--app-root", type=Path, default=ROOT, help="serve the dashboard of another checkout (before/after)"
    )
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="psl-page-speed-"))
    home.mkdir(parents=True, exist_ok=True)
    info = populate(home, args.runs, args.steps) | {"home": str(home)}
    print(
        f"data: {info['runs']} runs, one {info['steps']:,}-step series in {home} (filled in {info['fill_s']} s)"
    )
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs")
    proc, base = start_server(home, args.app_root.resolve())
    print(f"serving {args.app_root.resolve()}")
    try:
        rows = run_suite(base, info)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    print(
        f"\n| page / interaction | wall s | server CPU s | load avg (1 min) | < {TARGET_S:.0f} s |\n"
        "|---|---:|---:|---:|---|"
    )
    for label, seconds, cpu, load, note in rows:
        ok = "n/a" if label == BROWSER_START else ("yes" if seconds < TARGET_S else "no")
        print(f"| {label} | {seconds:.2f} | {cpu:.2f} | {load:.2f} | {ok}{' ' + note if note else ''} |")


if __name__ == "__main__":
    main()
