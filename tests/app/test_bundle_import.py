"""Importing bundles: everything is checked before anything is stored, one transaction, limits with
clear messages, final statuses only; and exporting never crashes on stored data."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from sqlalchemy import func, select, update
from sqlmodel import Session

import app.bundle_checks as bundle_checks
import app.bundles as bundles
from app.bundles import BundleError, check_bundle, export_bundle, import_bundle
from storage import Store, get_engine
from storage.tables import ClientStat, EpochMetric, Event, Run, StepMetric

try:
    from tests.app.bundle_samples import EVENTS, run_json, valid_bundle, valid_members, zip_of
except ImportError:  # plain `pytest` puts tests/ on sys.path
    from app.bundle_samples import EVENTS, run_json, valid_bundle, valid_members, zip_of

ALL_TABLES = (Run, StepMetric, EpochMetric, ClientStat, Event)


def row_counts(url: str) -> dict[str, int]:
    with Session(get_engine(url)) as session:
        return {
            t.__tablename__: session.execute(select(func.count()).select_from(t)).scalar_one()
            for t in ALL_TABLES
        }


@pytest.fixture
def store(store_url):
    return Store(store_url)


def test_a_valid_bundle_is_imported_whole_and_finished(store):
    run_id = import_bundle(store, valid_bundle())
    record = store.get_run(run_id)
    assert (record.name, record.status, record.tags) == ("imported demo", "completed", ["a", "b"])
    assert record.notes == "from elsewhere (imported)"
    steps = store.read_step_metrics(run_id)
    assert steps["step"].tolist() == [1, 2, 3]
    assert steps["my_metric"].tolist()[0] == 7
    assert store.read_epoch_metrics(run_id)["per_class_acc"].tolist() == [[0.25, 0.75]]
    assert len(store.read_client_stats(run_id)) == 2
    assert [e.message for e in store.read_events(run_id)] == ["go", "careful"]
    assert store.claim_next_run("w") is None


def test_export_import_export_round_trips(store):
    first = import_bundle(store, valid_bundle())
    second = import_bundle(store, export_bundle(store, first))
    for read in (store.read_step_metrics, store.read_epoch_metrics, store.read_client_stats):
        assert read(first).equals(read(second)), read.__name__
    assert store.get_run(second).config == store.get_run(first).config


@pytest.mark.parametrize("status", ["queued", "running"])
def test_a_run_exported_while_active_is_imported_as_cancelled(store, status):
    run_id = import_bundle(store, valid_bundle(**{"run.json": json.dumps(run_json(status=status)).encode()}))
    assert store.get_run(run_id).status == "cancelled"
    assert any(status in e.message for e in store.read_events(run_id))
    assert store.claim_next_run("w") is None


def test_a_gpu_run_imports_on_a_machine_without_cuda(store):
    config = {**run_json()["config"], "training": {**run_json()["config"]["training"], "device": "cuda"}}
    run_id = import_bundle(store, valid_bundle(**{"run.json": json.dumps(run_json(config=config)).encode()}))
    assert store.get_run(run_id).config["training"]["device"] == "cuda"


# ---------------------------------------------------------------- refusals, nothing stored
def _bad(members: dict[str, bytes] | None = None, **replace) -> bytes:
    return zip_of(members) if members is not None else valid_bundle(**replace)


def _members_without(name: str) -> dict[str, bytes]:
    members = valid_members()
    members.pop(name)
    return members


REFUSED = {
    "not-a-zip": (b"hello", "not a PSL Studio run bundle"),
    "no-run-json": (_bad(_members_without("run.json")), "lacks \\['run.json'\\]"),
    "unknown-member": (_bad({**valid_members(), "../evil.sh": b"rm -rf /"}), "unexpected files"),
    "duplicate-member": (zip_of([*valid_members().items(), ("run.json", b"{}")]), "same file twice"),
    "wrong-format": (_bad(**{"bundle.json": b'{"format": "x", "version": 1}'}), "expected format"),
    "bad-config": (
        _bad(**{"run.json": json.dumps(run_json(config={"training": {"lr": -1}})).encode()}),
        "training.lr",
    ),
    "unknown-status": (_bad(**{"run.json": json.dumps(run_json(status="zombie")).encode()}), "status"),
    "text-in-int": (_bad(**{"steps.csv": b"step,loss\n1,0.5\nabc,0.4\n"}), "row 2 column 'step'"),
    "float-step": (_bad(**{"steps.csv": b"step,loss\n1.5,0.5\n"}), "not a whole number"),
    "huge-step": (_bad(**{"steps.csv": b"step,loss\n2147483648,0.5\n"}), "not a whole number"),
    "no-key": (_bad(**{"steps.csv": b"loss\n0.5\n"}), "lacks the column"),
    "empty-key": (_bad(**{"steps.csv": b"step,loss\n,0.5\n"}), "without step"),
    "raw-extra-json": (_bad(**{"steps.csv": b'step,extra_json\n1,"not json"\n'}), "extra_json"),
    "client-extra": (_bad(**{"clients.csv": b"epoch,client,spy\n1,0,1\n"}), "unknown column"),
    "dup-step": (_bad(**{"steps.csv": b"step,loss\n1,0.5\n2,0.4\n1,0.3\n"}), "row 3 repeats step 1"),
    "dup-columns": (_bad(**{"steps.csv": b"step,loss,loss\n1,0.5,0.4\n"}), "duplicate column"),
    "bad-per-class": (_bad(**{"epochs.csv": b'epoch,per_class_acc\n1,"[oops"\n'}), "list of numbers"),
    "latin-1": (_bad(**{"events.json": '[{"message": "café"}]'.encode("latin-1")}), "not UTF-8"),
    "events-not-list": (_bad(**{"events.json": b'{"message": "x"}'}), "list of events"),
    "event-level": (_bad(**{"events.json": b'[{"message": "x", "level": "panic"}]'}), "level"),
    "event-no-message": (_bad(**{"events.json": b'[{"level": "info"}]'}), "message must be text"),
    "huge-int-json": (_bad(**{"events.json": b'[{"message": "x", "id": ' + b"9" * 5000 + b"}]"}), "digits"),
    "deep-json": (_bad(**{"events.json": b"[" * 100_000 + b"]" * 100_000}), "nested too deeply"),
    "bad-date": (_bad(**{"run.json": json.dumps(run_json(created_at="yesterday")).encode()}), "ISO date"),
    "encrypted-flag": (None, "encrypted"),
    "bzip2": (zip_of(valid_members(), zipfile.ZIP_BZIP2), "compression method"),
}


def _encrypted_flag() -> bytes:
    data = bytearray(valid_bundle())
    central = data.rfind(b"PK\x01\x02")  # flip the 'encrypted' bit of the last central-directory entry
    data[central + 8] |= 0x1
    return bytes(data)


REFUSED["encrypted-flag"] = (_encrypted_flag(), "encrypted")


@pytest.mark.parametrize("data, message", REFUSED.values(), ids=REFUSED.keys())
def test_a_bad_bundle_is_refused_with_a_clear_message_and_nothing_stored(store_url, data, message):
    store = Store(store_url)
    before = row_counts(store_url)
    with pytest.raises(BundleError, match=message):
        import_bundle(store, data)
    assert row_counts(store_url) == before


# ---------------------------------------------------------------- limits
def test_a_zip_bomb_stops_at_the_compression_ratio_limit():
    bomb = valid_bundle(**{"steps.csv": b"step\n" + b"0" * (64 * 2**20)})  # 64 MiB of zeros, ~64 KiB zipped
    assert len(bomb) < 200_000
    with pytest.raises(BundleError, match="MAX_COMPRESSION_RATIO"):
        check_bundle(bomb)


def test_a_large_member_stops_at_the_uncompressed_limit(monkeypatch):
    monkeypatch.setattr(bundles, "MAX_UNCOMPRESSED_BYTES", 4 * 2**20)
    rows = b"".join(b"%d,%d\n" % (i, (i * 7919) % 1000) for i in range(1, 600_000))  # ~6 MiB, ~3x
    with pytest.raises(BundleError, match="MAX_UNCOMPRESSED_BYTES"):
        check_bundle(valid_bundle(**{"steps.csv": b"step,batch_size\n" + rows}))


def test_an_exported_run_is_far_below_the_ratio_limit(store):
    steps = [{"step": s, "epoch": 1, "loss": 1.0, "lr": 0.05, "batch_size": 64} for s in range(1, 20_001)]
    run_id = store.import_run({"name": "flat", "config": run_json()["config"], "seed": 0, "status": "completed"},
                              steps=steps)  # fmt: skip
    with zipfile.ZipFile(io.BytesIO(export_bundle(store, run_id))) as z:
        info = z.getinfo("steps.csv")
        assert info.file_size / info.compress_size < bundles.MAX_COMPRESSION_RATIO / 4


def test_a_header_that_understates_the_size_is_not_trusted(monkeypatch):
    monkeypatch.setattr(bundles, "MAX_UNCOMPRESSED_BYTES", 2**20)
    data = bytearray(valid_bundle(**{"steps.csv": b"step\n" + b"1\n" * 2**20}))
    for signature, offset in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):  # file_size fields → 10 bytes
        start = 0
        while (at := data.find(signature, start)) >= 0:
            name_len = int.from_bytes(data[at + (28 if signature == b"PK\x01\x02" else 26) :][:2], "little")
            name_at = at + (46 if signature == b"PK\x01\x02" else 30)
            if bytes(data[name_at : name_at + name_len]) == b"steps.csv":
                data[at + offset : at + offset + 4] = (10).to_bytes(4, "little")
            start = at + 4
    with pytest.raises(BundleError):
        check_bundle(bytes(data))


@pytest.mark.parametrize(
    "limit, value, replace, message",
    [
        ("MAX_MEMBERS", 3, {}, "MAX_MEMBERS"),
        ("MAX_ROWS", 2, {}, "MAX_ROWS"),
        ("MAX_EVENTS", 1, {}, "MAX_EVENTS"),
        ("MAX_BUNDLE_BYTES", 100, {}, "MAX_BUNDLE_BYTES"),
        ("MAX_TEXT", 3, {}, "the limit is 3 \\(MAX_TEXT\\)"),
    ],
)
def test_each_limit_is_named_when_hit(monkeypatch, limit, value, replace, message):
    monkeypatch.setattr(bundle_checks if hasattr(bundle_checks, limit) else bundles, limit, value)
    with pytest.raises(BundleError, match=message):
        check_bundle(valid_bundle(**replace))


def test_a_bundle_file_on_disk_is_read_the_same_way(tmp_path, store):
    path = tmp_path / "b.zip"
    path.write_bytes(valid_bundle())
    assert store.get_run(import_bundle(store, path)).status == "completed"


# ---------------------------------------------------------------- export of odd stored data
def test_export_survives_junk_stored_by_an_old_import(store_url):
    store = Store(store_url)
    run_id = import_bundle(store, valid_bundle())
    with get_engine(store_url).begin() as conn:
        conn.execute(update(StepMetric).values(extra_json="garbage {"))
        conn.execute(update(EpochMetric).values(per_class_acc_json="[1,", extra_json="[]"))
        conn.execute(update(Run).values(tags="{", config_json="null"))
    data = export_bundle(store, run_id)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert json.loads(z.read("run.json"))["config"] == {}
        assert z.read("steps.csv").startswith(b"step,")


def test_the_sample_events_have_what_the_importer_reads():
    assert {"message", "level", "kind", "created_at"} <= set(EVENTS[0])
