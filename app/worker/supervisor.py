"""Starting and stopping PSL Studio's own processes: the dashboard's Streamlit server and workers.

Children are always started from the INSTALLED package: the interpreter runs with its working folder
set to the folder that holds the ``app`` package, so ``-m app`` / ``-m streamlit`` can never pick up
a user's own ``app/`` from the folder they happen to be in. ``psl ui`` owns its children: on SIGINT,
SIGTERM or SIGHUP it stops them (each in its own process group) before it exits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import app
from app.logs import get_logger
from app.settings import Settings

PACKAGE_ROOT = Path(app.__file__).resolve().parent.parent  # the folder that holds app/, psl_core/ ...
DASHBOARD_ENTRY = Path(app.__file__).resolve().parent / "ui" / "dashboard.py"
STOP_GRACE_S = 15.0  # a worker finishes its current step and re-queues its run within this
MAX_RESTARTS, RESTART_WINDOW_S = 5, 60.0  # a worker that keeps dying is left down (and logged), not respawned

log = get_logger("supervisor")


def worker_command(*, exit_when_idle: bool = False, extra: tuple[str, ...] = ()) -> list[str]:
    cmd = [sys.executable, "-m", "app", "worker", *extra]
    return cmd + (["--exit-when-idle"] if exit_when_idle else [])


def streamlit_command(address: str, port: int) -> list[str]:
    # app.ui.serve warms the process (imports, caches) before it opens the port, then runs Streamlit.
    return [
        sys.executable, "-m", "app.ui.serve", str(DASHBOARD_ENTRY),
        "--server.headless", "true",
        "--server.address", address,
        "--server.port", str(port),
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer",  # no "Deploy" button: this is a local tool
        # No reload-on-edit: every new browser session would otherwise walk sys.modules (torch's
        # thousands) to pick files to watch: 0.56 -> 0.34 s of server CPU per page visit.
        "--server.fileWatcherType", "none",
        # No full garbage collection after every script run: with PyTorch loaded gc.collect(2) took
        # 0.17 s of CPU per page visit and per interaction; Python's own collector still runs.
        "--runner.postScriptGC", "false",
    ]  # fmt: skip


def child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ, **settings.as_env())
    # The package root goes first on the path too, ahead of anything a user's PYTHONPATH holds.
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def spawn(cmd: list[str], settings: Settings, *, log_file: Path | None = None) -> subprocess.Popen:
    """Start ``cmd`` from the package root in a process group of its own."""
    out = None
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        out = open(log_file, "ab")  # noqa: SIM115 - handed to the child, closed below
    try:
        return subprocess.Popen(
            cmd,
            cwd=PACKAGE_ROOT,
            env=child_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        if out is not None:
            out.close()


def stop_process_group(proc: subprocess.Popen, grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM the child's whole process group, then SIGKILL whatever is left after ``grace_s``."""
    if proc.poll() is not None:
        _kill_group(proc.pid, signal.SIGKILL)  # a finished leader may leave children behind
        return
    _kill_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        log.warning("process %s did not stop in %.0f s; killing it", proc.pid, grace_s)
    _kill_group(proc.pid, signal.SIGKILL)
    proc.wait(timeout=5)


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# ---------------------------------------------------------------- the shared background worker
def worker_pid_file(settings: Settings) -> Path:
    return settings.home / "worker.pid"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError, OverflowError):
        return False
    try:  # a recycled pid belongs to another program: a worker's command line names it
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        return b"worker" in cmdline
    except OSError:
        return True  # no /proc (not Linux): trust kill(0)


def worker_alive(settings: Settings) -> bool:
    try:
        return _pid_alive(int(worker_pid_file(settings).read_text().strip()))
    except (OSError, ValueError):
        return False


def ensure_worker(settings: Settings, *, exit_when_idle: bool = True) -> bool:
    """Start a background worker for this home unless one is alive; True if one was started.

    Used by the dashboard's Launch button when it runs without ``psl ui`` owning a worker: the worker
    it starts leaves by itself once the queue is empty, so nothing outlives its use."""
    if worker_alive(settings):
        return False
    proc = spawn(
        worker_command(exit_when_idle=exit_when_idle), settings, log_file=settings.logs_dir / "worker.out"
    )
    worker_pid_file(settings).write_text(str(proc.pid))
    return True


# ---------------------------------------------------------------- psl ui
@dataclass
class DashboardProcesses:
    """``psl ui``: the Streamlit server and (unless another is alive) a worker, stopped together."""

    settings: Settings
    address: str
    port: int
    start_worker: bool = True
    server: subprocess.Popen | None = None
    worker: subprocess.Popen | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> int:
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        }
        try:
            if self.start_worker:
                self._start_worker()
            self.server = spawn(streamlit_command(self.address, self.port), self.settings)
            log.info("dashboard on http://%s:%s (pid %s)", self.address, self.port, self.server.pid)
            restarts: list[float] = []
            while not self.stop.is_set() and self.server.poll() is None:
                if self.worker is not None and self.worker.poll() is not None:
                    restarts = [t for t in restarts if time.monotonic() - t < RESTART_WINDOW_S]
                    if len(restarts) >= MAX_RESTARTS:
                        log.error(
                            "the worker exited %s times in %.0f s (last status %s); not restarting it — see %s",
                            len(restarts), RESTART_WINDOW_S, self.worker.returncode, self.settings.logs_dir,
                        )  # fmt: skip
                        self.worker = None
                    else:
                        log.warning("the worker exited with %s; starting another", self.worker.returncode)
                        restarts.append(time.monotonic())
                        self._start_worker()
                self.stop.wait(0.5)
        finally:
            self.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        code = self.server.returncode if self.server is not None else 1
        return 0 if self.stop.is_set() else (code or 0)

    def _on_signal(self, signum, _frame) -> None:
        log.info("signal %s: stopping the dashboard and its worker", signal.Signals(signum).name)
        self.stop.set()

    def _start_worker(self) -> None:
        self.worker = None
        if worker_alive(self.settings):
            log.info("a worker for %s is already running; not starting another", self.settings.home)
            return
        self.worker = spawn(worker_command(), self.settings, log_file=self.settings.logs_dir / "worker.out")
        worker_pid_file(self.settings).write_text(str(self.worker.pid))

    def shutdown(self) -> None:
        for proc in (self.server, self.worker):
            if proc is not None:
                stop_process_group(proc)
        if self.worker is not None:
            try:
                if worker_pid_file(self.settings).read_text().strip() == str(self.worker.pid):
                    worker_pid_file(self.settings).unlink()
            except OSError:
                pass
