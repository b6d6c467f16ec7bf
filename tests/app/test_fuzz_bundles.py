"""Bundle fuzzing (hypothesis, derandomized): malformed and malicious bundles against a real store,
on SQLite and PostgreSQL. Every bundle is either imported WHOLE (a finished run holding exactly the
rows the bundle has) or refused with a BundleError and NOTHING stored; no other exception, no hang."""

from __future__ import annotations

import io
import json
import time
import zipfile

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from app.bundles import BundleError, check_bundle, import_bundle
from storage import FINAL_STATUSES, Store

try:
    from tests.app.bundle_samples import run_json, valid_members, zip_of
    from tests.app.test_bundle_import import row_counts
except ImportError:  # plain `pytest` puts tests/ on sys.path
    from app.bundle_samples import run_json, valid_members, zip_of
    from app.test_bundle_import import row_counts

BUNDLE_EXAMPLES = 40  # per database: 80 bundles per run
HANG_S = 5.0

HOSTILE_CELLS = [
    "", "abc", "1e999", "-1", "2147483648", "-2147483649", "1.5", "nan", "inf", "[", "[1,", "[1, \"x\"]",
    "9" * 400, "\x00", "é", "0x10", "1_000", " 3 ", "True", '"quoted"', "1,2", "\n",
]  # fmt: skip
HOSTILE_JSON_VALUES = [
    None, True, -1, 2**31, 2**64, 1e308, "", "x" * 2000, "queued", "running", "zombie", [], {}, [[[[]]]],
    {"config": {}}, "2024-13-45", "9999-12-31T23:59:59+00:00", "\x00", "\ud800",
]  # fmt: skip
RUN_FIELDS = ["name", "tags", "notes", "config", "seed", "status", "created_at", "finished_at", "error",
              "traceback", "total_steps", "progress", "attempts"]  # fmt: skip
CONFIG_FIELDS = [("seed",), ("training", "lr"), ("partition", "num_clients"), ("sampling", "method"),
                 ("model", "cut"), ("system", "clients"), ("name",), ("data", "dataset")]  # fmt: skip


@st.composite
def csv_mutation(draw, members):
    name = draw(st.sampled_from(["steps.csv", "epochs.csv", "clients.csv"]))
    lines = members[name].decode().splitlines()
    kind = draw(st.sampled_from(["cell", "header", "extra-row", "drop-column", "binary"]))
    if kind == "binary":
        return name, draw(st.binary(max_size=200))
    header = lines[0].split(",")
    if kind == "header":
        header[draw(st.integers(0, len(header) - 1))] = draw(
            st.sampled_from(["run_id", "extra_json", "step", "", "x y", "a" * 100, "per_class_acc_json"])
        )
        lines[0] = ",".join(header)
    elif kind == "drop-column":
        dropped = draw(st.integers(0, len(header) - 1))
        keep = [i for i in range(len(header)) if i != dropped]
        lines = [",".join(line.split(",")[i] for i in keep if i < len(line.split(","))) for line in lines]
    elif kind == "extra-row":
        lines.append(",".join(draw(st.sampled_from(HOSTILE_CELLS)) for _ in header))
    else:
        row = draw(st.integers(1, len(lines) - 1))
        cells = lines[row].split(",")
        cells[draw(st.integers(0, len(cells) - 1))] = draw(st.sampled_from(HOSTILE_CELLS))
        lines[row] = ",".join(cells)
    return name, ("\n".join(lines) + "\n").encode()


@st.composite
def malformed_bundles(draw) -> bytes:
    members = valid_members()
    kind = draw(
        st.sampled_from(
            ["csv", "run-field", "config-field", "events", "drop", "extra-member", "zip-bytes", "truncate",
             "bomb", "not-utf8", "bundle-json", "valid"]
        )
    )  # fmt: skip
    if kind == "csv":
        name, data = draw(csv_mutation(members))
        members[name] = data
    elif kind == "run-field":
        run = run_json()
        run[draw(st.sampled_from(RUN_FIELDS))] = draw(st.sampled_from(HOSTILE_JSON_VALUES))
        members["run.json"] = json.dumps(run).encode("utf-8", "surrogatepass")
    elif kind == "config-field":
        run = run_json()
        node = run["config"]
        path = draw(st.sampled_from(CONFIG_FIELDS))
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = draw(st.sampled_from(HOSTILE_JSON_VALUES))
        members["run.json"] = json.dumps(run).encode("utf-8", "surrogatepass")
    elif kind == "events":
        members["events.json"] = json.dumps(
            draw(st.sampled_from([{}, [1], [{"message": None}], [{"message": "x", "created_at": "tomorrow"}],
                                  [{"message": "x" * 10, "level": "fatal"}], "events", [[{"message": "x"}]]]))
        ).encode()  # fmt: skip
    elif kind == "drop":
        members.pop(draw(st.sampled_from(sorted(members))))
    elif kind == "extra-member":
        members[
            draw(st.sampled_from(["../../etc/cron.d/x", "/abs", "run.json/", "extra.csv", "a" * 300]))
        ] = b"x"
    elif kind == "not-utf8":
        members[draw(st.sampled_from(sorted(members)))] = "café".encode("latin-1")
    elif kind == "bundle-json":
        members["bundle.json"] = json.dumps(draw(st.sampled_from(HOSTILE_JSON_VALUES))).encode(
            "utf-8", "surrogatepass"
        )
    elif kind == "bomb":
        members["steps.csv"] = b"step,loss\n" + b"1,0.5\n" * draw(st.integers(1, 3)) + b" " * (8 * 2**20)
    data = zip_of(members)
    if kind == "zip-bytes":
        raw = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
        data = bytes(raw)
    elif kind == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    return data


def _expected_rows(data: bytes) -> dict[str, int] | None:
    """The rows a bundle that passes the checks must add; None if the checks refuse it."""
    try:
        bundle = check_bundle(data)
    except BundleError:
        return None
    return {
        "runs": 1,
        "step_metrics": len(bundle.steps),
        "epoch_metrics": len(bundle.epochs),
        "client_stats": len(bundle.clients),
        "events": len(bundle.events),
    }


@settings(
    max_examples=BUNDLE_EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(data=malformed_bundles())
def test_a_bundle_is_imported_whole_or_not_at_all(store_url, data):
    store = Store(store_url)
    before = row_counts(store_url)
    expected = _expected_rows(data)
    started = time.perf_counter()
    try:
        run_id = import_bundle(store, data)
    except BundleError as err:
        event("refused")
        assert str(err)
        assert row_counts(store_url) == before  # nothing stored: no partial import
    else:
        event("imported")
        assert expected is not None
        after = row_counts(store_url)
        assert {table: after[table] - before[table] for table in after} == expected
        assert store.get_run(run_id).status in FINAL_STATUSES
        assert store.claim_next_run("fuzz") is None  # never queued
    assert time.perf_counter() - started < HANG_S


def test_the_fuzzer_makes_both_outcomes():
    """The generator is not all-refusals: some mutations (a harmless cell, a status) still import."""
    valid = zip_of(valid_members())
    assert _expected_rows(valid) is not None
    with zipfile.ZipFile(io.BytesIO(valid)) as z:
        assert len(z.namelist()) == 6
