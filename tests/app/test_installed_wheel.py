"""README's commands work from an installed wheel, run from a folder outside the repository.

The wheel is built from this checkout and installed into a fresh virtual environment whose only
link to the development environment is a path to its dependencies (torch, streamlit, ...), so every
``app``/``psl_core``/``storage``/``pages`` module and data file comes from the wheel.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
import yaml

from tests.app.test_processes import free_port, healthy, port_is_free, wait_for

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(bin folder of a venv with the wheel installed, its site-packages)."""
    root = tmp_path_factory.mktemp("wheel")
    dist = root / "dist"
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(REPO),
        ],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # Dependencies only: a plain path entry does not run the development venv's .pth files, so its
    # editable install of this repository stays invisible.
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next(dist.glob("psl_studio-*.whl"))
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--no-deps",
            "-q",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        # Without PYTHONPATH: a repository on it shows its psl_studio.egg-info (left by the wheel build),
        # and pip would skip the install as "already installed".
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert install.returncode == 0, install.stderr
    return venv / "bin", site


def test_readme_commands_work_from_the_installed_wheel(installed, tmp_path):
    bin_dir, site = installed
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PSL_DATABASE_URL")}
    env["PSL_HOME"] = str(tmp_path / "home")

    def psl(*args: str) -> str:
        done = subprocess.run(
            [str(bin_dir / "psl"), *args], cwd=work, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, f"psl {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    where = subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "import app, psl_core, storage, pages; print(app.__file__, pages.__file__)",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(site) in where and str(REPO) not in where
    assert (site / "app" / "ui" / "methods.md").read_text().startswith("# PSL Studio — the methods")

    assert psl("--version").startswith("psl-studio ")
    (work / "my.yaml").write_text(psl("config", "example"))
    quick = [
        "--set",
        "training.epochs=1",
        "--set",
        "training.max_steps_per_epoch=3",
        "--set",
        "training.device=cpu",
    ]
    data = yaml.safe_load(psl("config", "check", "my.yaml", *quick))
    assert data["training"]["epochs"] == 1
    (work / "quick.yaml").write_text(yaml.safe_dump(data))
    assert "SamplingConfig" in json.loads(psl("schema"))["$defs"]
    assert "final test accuracy" in psl("run", "quick.yaml", "--set", "sampling.method=lds", "--out", "out")
    assert (work / "out" / "steps.csv").is_file()
    assert "queued run #1" in psl("submit", "quick.yaml", "--tag", "T")
    assert "queued sweep #1" in psl(
        "sweep", "quick.yaml", "--grid", "sampling.method=[ugs,fls]", "--seeds", "0,1"
    )
    psl("worker", "--exit-when-idle")
    runs = json.loads(psl("runs", "--json"))
    assert len(runs) == 5 and {r["status"] for r in runs} == {"completed"}
    assert "status completed" in psl("show", "1")
    psl("export", "1", "--out", "b.zip")
    assert "imported as run #6" in psl("import", "b.zip")
    assert len(json.loads(psl("results", "1"))) == 1
    assert "cancel requested" in psl("cancel", "1")
    assert "best cut per device" in psl("advise", "quick.yaml")

    port = free_port()
    ui = subprocess.Popen(
        [str(bin_dir / "psl"), "ui", "--port", str(port), "--no-worker"],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: healthy(port), 90, "the installed dashboard")
    finally:
        ui.send_signal(signal.SIGTERM)
        ui.wait(timeout=40)
    time.sleep(0.5)
    assert port_is_free(port)
