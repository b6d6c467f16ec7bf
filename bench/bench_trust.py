"""Hostile input, before and after: the same attacks on an older tree and on this one, side by side.

Each case runs in a fresh child process (PYTHONPATH = the tree under test) with a time limit and an
address-space limit, and reports the operation's own time (imports excluded), the child's peak RSS
and how it ended. The older tree is extracted with ``git archive`` (nothing in the repository changes).

  zip bomb      a ~2 MiB bundle whose steps.csv unpacks to 1 GiB, imported into an empty store; and
                the same cut to 200 MiB (under the size limit: the ratio check stops it)
  alias bomb    a 342-byte YAML "billion laughs" config, read and validated (psl config check), and
                the same YAML read by plain yaml.safe_load and checked by check_cached (the
                dashboard form's memoised check, which serialises the dict to JSON first)
  20k events    a bundle with 20,000 events imported (one transaction each before, one in all after)

Usage: python bench/bench_trust.py [--before 12d0656] [--limit-s 120] [--mem-gib 6]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from psl_core.config import ExperimentConfig

REPO = Path(__file__).resolve().parents[1]

ALIAS_BOMB = "".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n',
        *(f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8)),
    ]
)

IMPORT = """
import sys, time
from storage import Store
from app.bundles import import_bundle
from psl_core.validation import check
check({}, deep=False)  # warm-up: the lazy imports (torch) are not the import's cost
store = Store(sys.argv[2])
data = open(sys.argv[1], "rb").read()
print("ready", flush=True)
started = time.perf_counter()
try:
    run_id = import_bundle(store, data)
    outcome = f"imported as run {run_id}"
except Exception as err:
    outcome = f"{type(err).__name__}: {str(err)[:90]}"
print(f"RESULT {time.perf_counter() - started:.3f} {outcome}", flush=True)
"""

DASHBOARD_CHECK = """
import sys, time, yaml
from psl_core.validation import check_cached
data = yaml.safe_load(open(sys.argv[1]))  # any YAML reader, e.g. a pasted or uploaded config
print("ready", flush=True)
started = time.perf_counter()
problems = check_cached(data)
print(f"RESULT {time.perf_counter() - started:.3f} {len(problems)} problems: {problems[0].message[:80]}", flush=True)
"""

CONFIG_CHECK = """
import sys, time
from psl_core.config_io import read_config_dict
from psl_core.validation import validate_config
print("ready", flush=True)
started = time.perf_counter()
try:
    validate_config(read_config_dict(sys.argv[1]))
    outcome = "accepted"
except Exception as err:
    outcome = f"{type(err).__name__}: {str(err).splitlines()[-1][:90]}"
print(f"RESULT {time.perf_counter() - started:.3f} {outcome}", flush=True)
"""


def _bundle(members: dict[str, bytes | Path]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, data in members.items():
            if isinstance(data, Path):  # stream a big member from a generator file
                with open(data, "rb") as src, z.open(name, "w", force_zip64=True) as dst:
                    while chunk := src.read(2**20):
                        dst.write(chunk)
            else:
                z.writestr(name, data)
    return buf.getvalue()


def _base_members(events: list[dict]) -> dict[str, bytes]:
    run = {"name": "bench", "config": ExperimentConfig(name="bench").model_dump(mode="json"), "seed": 0,
           "status": "completed", "tags": [], "notes": ""}  # fmt: skip
    return {
        "bundle.json": json.dumps({"format": "psl-studio-run", "version": 1}).encode(),
        "run.json": json.dumps(run).encode(),
        "steps.csv": b"step,loss\n1,0.5\n",
        "epochs.csv": b"",
        "clients.csv": b"",
        "events.json": json.dumps(events).encode(),
    }


def make_inputs(folder: Path) -> dict[str, tuple[str, list[str]]]:
    """case -> (child script, argv) with the input files written under ``folder``."""
    zeros = folder / "zeros.csv"
    with open(zeros, "wb") as f:  # "step" then 1 GiB of '0' digits: one absurd number per line
        f.write(b"step\n")
        block = (b"0" * 1023 + b"\n") * 1024
        for _ in range(1024):
            f.write(block)
    bomb = folder / "bomb.zip"
    bomb.write_bytes(_bundle({**_base_members([]), "steps.csv": zeros}))
    with open(zeros, "r+b") as f:  # the same, cut to 200 MiB: under the size limit, honest headers
        f.truncate(200 * 2**20)
    small_bomb = folder / "small-bomb.zip"
    small_bomb.write_bytes(_bundle({**_base_members([]), "steps.csv": zeros}))
    zeros.unlink()
    events = folder / "events.zip"
    events.write_bytes(
        _bundle(
            _base_members([{"message": f"event {i}", "level": "info", "kind": "info"} for i in range(20_000)])
        )
    )
    alias = folder / "bomb.yaml"
    alias.write_text(ALIAS_BOMB)
    return {
        f"zip bomb ({bomb.stat().st_size / 2**20:.1f} MiB zip, 1 GiB inside)": (IMPORT, [str(bomb)]),
        f"zip bomb under the size limit ({small_bomb.stat().st_size / 2**10:.0f} KiB zip, 200 MiB inside)": (
            IMPORT,
            [str(small_bomb)],
        ),
        f"alias bomb ({len(ALIAS_BOMB)} B YAML), psl config check": (CONFIG_CHECK, [str(alias)]),
        "the same bomb as a dict, the form's check_cached": (DASHBOARD_CHECK, [str(alias)]),
        "20k events import": (IMPORT, [str(events)]),
    }


def run_case(tree: Path, script: str, argv: list[str], home: Path, limit_s: float, mem_bytes: int) -> dict:
    home.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{home / 'psl.db'}"

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))

    env = dict(os.environ, PYTHONPATH=str(tree), PSL_HOME=str(home), PSL_DATABASE_URL=url)
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *argv, url],
        cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=limits, text=True,
    )  # fmt: skip
    assert proc.stdout.readline().strip() == "ready", "child failed to start"
    started = time.perf_counter()
    os.set_blocking(proc.stdout.fileno(), False)
    output, status, usage = "", None, None
    while status is None:
        pid, wait_status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            status = wait_status
            break
        if time.perf_counter() - started > limit_s:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            output += f"\nRESULT {limit_s:.0f}+ killed at the time limit"
            break
        time.sleep(0.05)
    output += proc.stdout.read() or ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    line = next((x for x in output.splitlines() if x.startswith("RESULT")), None)
    if line is None:
        tail = output.strip().splitlines()[-1:] or ["(no output)"]
        seconds, outcome = f"{time.perf_counter() - started:.1f}", f"crashed: {tail[0][:90]}"
    else:
        _, seconds, outcome = line.split(" ", 2)
    return {"seconds": seconds, "peak_mib": usage.ru_maxrss / 1024, "outcome": outcome}


def count_events(home: Path) -> int:
    import sqlite3

    try:
        with sqlite3.connect(home / "psl.db") as conn:
            return conn.execute("SELECT count(*) FROM events").fetchone()[0]
    except sqlite3.Error:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", default="12d0656", help="git revision of the 'before' tree")
    parser.add_argument("--limit-s", type=float, default=120.0, help="time limit per case")
    parser.add_argument("--mem-gib", type=float, default=6.0, help="address-space limit per case")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-trust-") as tmp:
        root = Path(tmp)
        before = root / "before"
        before.mkdir()
        archive = subprocess.run(["git", "archive", args.before], cwd=REPO, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive.stdout, check=True)
        cases = make_inputs(root)
        rows = []
        for case, (script, argv) in cases.items():
            for label, tree in (("before", before), ("after", REPO)):
                home = root / f"home-{label}-{len(rows)}"
                result = run_case(tree, script, argv, home, args.limit_s, int(args.mem_gib * 2**30))
                if case.startswith("20k") and "killed" in result["outcome"]:
                    done = count_events(home)
                    result["outcome"] += f" after {done:,} of 20,000 events"
                rows.append((case, label, result))
                print(f"{case:<40} {label:<7} {result['seconds']:>9} s {result['peak_mib']:>9.0f} MiB  {result['outcome']}",
                      flush=True)  # fmt: skip
    print("\n| case | tree | time (s) | peak RSS (MiB) | outcome |\n|---|---|---|---|---|")
    for case, label, r in rows:
        print(f"| {case} | {label} | {r['seconds']} | {r['peak_mib']:.0f} | {r['outcome']} |")


if __name__ == "__main__":
    main()
