"""Real processes: ``psl ui`` owns its children, and nothing runs code from the user's folder.

``psl ui`` is started from a folder that holds its own ``app/`` package (a decoy that would exit at
import): the dashboard and its worker must still be PSL Studio's, the run must train, and SIGTERM /
SIGINT must leave no child behind and the port free.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from storage import Store

PSL = Path(sys.executable).parent / "psl"
pytestmark = pytest.mark.skipif(not PSL.exists(), reason="the psl console script is not installed here")

DEMO = {
    "name": "decoy demo",
    "data": {"dataset": "digits"},
    "partition": {"num_clients": 4},
    "training": {"epochs": 1, "max_steps_per_epoch": 5, "device": "cpu"},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def pids_with_arg(text: str) -> list[int]:
    """Processes whose command line contains ``text`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = (
        Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        if Path(f"/proc/{pid}").exists()
        else "X"
    )
    return state != "Z"


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture
def decoy_folder(tmp_path) -> Path:
    folder = tmp_path / "user-project"
    (folder / "app").mkdir(parents=True)
    for name in ("__init__.py", "__main__.py"):
        (folder / "app" / name).write_text("raise SystemExit('the decoy app package was imported')\n")
    (folder / "demo.yaml").write_text(yaml.safe_dump(DEMO))
    return folder


def start_ui(folder: Path, home: Path, port: int, *extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "PSL_DATABASE_URL"}
    env["PSL_HOME"] = str(home)
    return subprocess.Popen(
        [str(PSL), "ui", "--port", str(port), *extra],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_and_check(proc: subprocess.Popen, sig: int, port: int, children: list[int]) -> None:
    proc.send_signal(sig)
    try:
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError("psl ui did not exit after the signal") from None
    wait_for(lambda: not any(alive(pid) for pid in children), 10, "the children to exit")
    assert port_is_free(port), "the port is still served after psl ui exited"
    assert not pids_with_arg(f"--server.port\0{port}\0"), "a Streamlit server outlived psl ui"


def test_psl_ui_in_a_folder_with_a_decoy_app_trains_and_sigterm_stops_everything(decoy_folder, tmp_path):
    home, port = tmp_path / "home", free_port()
    proc = start_ui(decoy_folder, home, port)
    try:
        wait_for(lambda: healthy(port), 90, "the dashboard to answer /_stcore/health")
        env = {k: v for k, v in os.environ.items() if k != "PSL_DATABASE_URL"}
        env["PSL_HOME"] = str(home)
        submitted = subprocess.run(
            [str(PSL), "submit", "demo.yaml"], cwd=decoy_folder, env=env, capture_output=True, text=True
        )
        assert submitted.returncode == 0, submitted.stderr
        store = Store(f"sqlite:///{home / 'psl.db'}")
        wait_for(lambda: store.get_run(1).status in ("completed", "failed"), 120, "the demo run to finish")
        assert store.get_run(1).status == "completed", store.get_run(1).error
        worker_pid = int((home / "worker.pid").read_text())
        servers = pids_with_arg(f"--server.port\0{port}\0")
        assert servers and alive(worker_pid)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        print(proc.stdout.read().decode(errors="replace") if proc.stdout else "")
        raise
    stop_and_check(proc, signal.SIGTERM, port, [worker_pid, *servers])
    assert not (home / "worker.pid").exists()


def test_sigint_stops_the_dashboard_and_its_worker(decoy_folder, tmp_path):
    home, port = tmp_path / "home", free_port()
    proc = start_ui(decoy_folder, home, port)
    try:
        wait_for(lambda: healthy(port) and (home / "worker.pid").exists(), 90, "the dashboard and its worker")
        worker_pid = int((home / "worker.pid").read_text())
        servers = pids_with_arg(f"--server.port\0{port}\0")
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    stop_and_check(proc, signal.SIGINT, port, [worker_pid, *servers])
