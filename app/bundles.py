"""Run bundles: a run's config, metrics and events as one zip (``psl export`` / ``psl import``).

Import treats the bundle as hostile until proven otherwise, in two phases:
1. read and check EVERYTHING: the zip's members (names, count, compression), their sizes counted
   while decompressing (a zip bomb's headers lie; the bytes do not), every JSON and CSV parsed and
   typed column by column, the config through the one validation path — nothing is stored yet;
2. store the run and all its rows in ONE transaction (``Store.import_run``): all or nothing.
An imported run always has a final status (a bundle of a run that was still queued or running is
imported as cancelled), so no worker ever trains over an import.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.bundle_checks import (
    BundleError,
    bounded_int,
    check_int,
    check_text,
    check_time,
    csv_rows,
)
from psl_core.config import ExperimentConfig
from psl_core.validation import check, errors
from storage import EVENT_LEVELS, FINAL_STATUSES, RUN_STATUSES, Store, StoreValueError

BUNDLE_FORMAT = "psl-studio-run"
BUNDLE_VERSION = 1

# Limits of an import; each refusal names the limit it hit.
MAX_BUNDLE_BYTES = 256 * 2**20  # the zip file itself
MAX_MEMBERS = 16  # files in the zip (a bundle has 6)
MAX_UNCOMPRESSED_BYTES = 256 * 2**20  # all members together, counted while decompressing
# A member may unpack to at most this many times the compressed bytes it consumed (metric CSVs
# compress 3-20x; a zip bomb ~1000x), checked as it is read, after its first MiB.
MAX_COMPRESSION_RATIO = 200
MAX_MEMBER_BYTES = {"bundle.json": 4096, "run.json": 4 * 2**20}  # others: the total limit
MAX_EVENTS = 200_000
MEMBERS = ("bundle.json", "run.json", "steps.csv", "epochs.csv", "clients.csv", "events.json")
REQUIRED = ("bundle.json", "run.json")
CHUNK = 2**20


# ---------------------------------------------------------------- export
def export_bundle(store: Store, run_id: int) -> bytes:
    """A zip with run.json (record + config), steps.csv, epochs.csv, clients.csv, events.json."""
    record = store.get_run(run_id)
    run = json.loads(json.dumps(dataclasses.asdict(record), default=str))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("bundle.json", json.dumps({"version": BUNDLE_VERSION, "format": BUNDLE_FORMAT}))
        z.writestr("run.json", json.dumps(run, indent=2))
        z.writestr("steps.csv", store.read_step_metrics(run_id).to_csv(index=False))
        z.writestr("epochs.csv", store.read_epoch_metrics(run_id).to_csv(index=False))
        z.writestr("clients.csv", store.read_client_stats(run_id).to_csv(index=False))
        events = [dataclasses.asdict(e) for e in store.read_events(run_id)]
        z.writestr("events.json", json.dumps(events, indent=2, default=str))
    return buf.getvalue()


# ---------------------------------------------------------------- import
@dataclass
class CheckedBundle:
    """Everything of a bundle, parsed and typed: what ``Store.import_run`` stores in one go."""

    run: dict[str, Any]
    steps: list[dict] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    clients: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)


def import_bundle(store: Store, source: bytes | str | Path) -> int:
    """Create a new, finished run from an exported bundle (bytes or a path); returns its id.

    BundleError (nothing stored) for anything wrong with the bundle."""
    bundle = check_bundle(source)
    try:
        return store.import_run(
            bundle.run, steps=bundle.steps, epochs=bundle.epochs, clients=bundle.clients, events=bundle.events
        )
    except StoreValueError as err:
        raise BundleError(f"bundle refused, nothing imported: {err}") from None


def check_bundle(source: bytes | str | Path) -> CheckedBundle:
    """Read and check a whole bundle without storing anything (phase 1 of :func:`import_bundle`)."""
    texts = _read_members(source)
    meta = _json_member(texts, "bundle.json")
    if (
        not isinstance(meta, dict)
        or meta.get("format") != BUNDLE_FORMAT
        or meta.get("version") != BUNDLE_VERSION
    ):
        raise BundleError(
            f"bundle.json says {str(meta)[:120]}; expected format {BUNDLE_FORMAT!r} version {BUNDLE_VERSION} "
            "(export one with `psl export RUN_ID`)"
        )
    run, events = _check_run(_json_member(texts, "run.json"))
    bundle = CheckedBundle(run=run, events=events)
    bundle.steps = csv_rows(texts.get("steps.csv", ""), "steps.csv")
    bundle.epochs = csv_rows(texts.get("epochs.csv", ""), "epochs.csv")
    bundle.clients = csv_rows(texts.get("clients.csv", ""), "clients.csv")
    bundle.events += _check_events(_json_member(texts, "events.json", default=[]))
    return bundle


def _read_members(source: bytes | str | Path) -> dict[str, str]:
    """The bundle's members as text, refusing anything but the known names and sizes."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            size = path.stat().st_size
        except OSError as err:
            raise BundleError(f"cannot read bundle {path}: {err.strerror or err}") from None
        if size > MAX_BUNDLE_BYTES:
            raise BundleError(
                f"bundle is {size:,} bytes; the limit is {MAX_BUNDLE_BYTES:,} (MAX_BUNDLE_BYTES)"
            )
        handle: Any = path
    else:
        if len(source) > MAX_BUNDLE_BYTES:
            raise BundleError(
                f"bundle is {len(source):,} bytes; the limit is {MAX_BUNDLE_BYTES:,} (MAX_BUNDLE_BYTES)"
            )
        handle = io.BytesIO(source)
    try:
        with zipfile.ZipFile(handle) as z:
            infos = z.infolist()
            _check_listing(infos)
            total = 0
            texts = {}
            for info in infos:
                raw = _read_member(z, info, MAX_UNCOMPRESSED_BYTES - total)
                total += len(raw)
                try:
                    texts[info.filename] = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise BundleError(
                        f"{info.filename} is not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start})"
                    ) from None
    except BundleError:
        raise
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        OSError,
        ValueError,
        NotImplementedError,
        RuntimeError,
    ) as err:
        raise BundleError(
            f"not a PSL Studio run bundle: not a readable zip ({type(err).__name__}: {str(err)[:200]}); "
            "export one with `psl export RUN_ID`"
        ) from None
    missing = [name for name in REQUIRED if name not in texts]
    if missing:
        raise BundleError(f"bundle lacks {missing}; export one with `psl export RUN_ID`")
    return texts


def _check_listing(infos: list[zipfile.ZipInfo]) -> None:
    if len(infos) > MAX_MEMBERS:
        raise BundleError(f"bundle has {len(infos)} files; the limit is {MAX_MEMBERS} (MAX_MEMBERS)")
    names = [info.filename for info in infos]
    unknown = [name for name in names if name not in MEMBERS]
    if unknown:
        raise BundleError(f"bundle holds unexpected files {unknown[:5]}; a bundle has only {list(MEMBERS)}")
    if len(set(names)) != len(names):
        raise BundleError("bundle holds the same file twice")
    for info in infos:
        if info.flag_bits & 0x1:
            raise BundleError(f"{info.filename} is encrypted; bundles are plain zips")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise BundleError(f"{info.filename} uses compression method {info.compress_type}; use deflate")


def _read_member(z: zipfile.ZipFile, info: zipfile.ZipInfo, room: int) -> bytes:
    """The member's bytes, counted as they are decompressed (the header's size is not trusted)."""
    own = MAX_MEMBER_BYTES.get(info.filename)
    limit, name = (
        (own, "MAX_MEMBER_BYTES") if own is not None and own < room else (room, "MAX_UNCOMPRESSED_BYTES")
    )
    total = own if name == "MAX_MEMBER_BYTES" else MAX_UNCOMPRESSED_BYTES
    if info.file_size > limit:  # an honest header lets us refuse before reading
        raise BundleError(
            f"{info.filename} unpacks to {info.file_size:,} bytes; the limit is {total:,} ({name})"
        )
    parts, size = [], 0
    with z.open(info) as member:
        while chunk := member.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise BundleError(f"{info.filename} unpacks to more than {total:,} bytes, the limit ({name})")
            # compressed bytes consumed so far (zipfile keeps the count; absent → no ratio check)
            consumed = info.compress_size - getattr(member, "_compress_left", info.compress_size)
            if size > CHUNK and size > MAX_COMPRESSION_RATIO * max(consumed, 1):
                raise BundleError(
                    f"{info.filename} unpacks to over {MAX_COMPRESSION_RATIO}x its compressed size "
                    f"(a zip bomb?); the limit is MAX_COMPRESSION_RATIO = {MAX_COMPRESSION_RATIO}"
                )
            parts.append(chunk)
    return b"".join(parts)


def _json_member(texts: dict[str, str], name: str, default: Any = None) -> Any:
    if name not in texts:
        return default
    try:
        return json.loads(texts[name], parse_int=bounded_int)
    except BundleError as err:
        raise BundleError(f"{name}: {err}") from None
    except RecursionError:
        raise BundleError(f"{name} is nested too deeply") from None
    except ValueError as err:
        raise BundleError(f"{name} is not valid JSON: {str(err)[:200]}") from None


def _check_run(run: Any) -> tuple[dict, list[dict]]:
    """run.json → the fields of ``Store.import_run`` (and a note event when the status changes)."""
    if not isinstance(run, dict):
        raise BundleError("run.json must hold an object with the run's fields")
    config = run.get("config")
    if not isinstance(config, dict):
        raise BundleError("run.json has no config object")
    problems = [
        p
        for p in errors(check(config, deep=False))
        # the exporting machine had CUDA and this one may not: a finished run is not trained again
        if p.path != "training.device"
    ]
    if problems:
        raise BundleError(
            "the bundle's config is invalid:\n" + "\n".join(f"- {p.text()}" for p in problems[:20])
        )
    checked = ExperimentConfig.model_validate(config)
    status = run.get("status")
    if status not in RUN_STATUSES:
        raise BundleError(f"run.json status {str(status)[:40]!r} is not one of {list(RUN_STATUSES)}")
    notes = []
    if status not in FINAL_STATUSES:
        notes.append(
            {
                "message": f"imported from a bundle exported while the run was {status}; it stops here",
                "level": "warning",
            }
        )
        status = "cancelled"
    tags = run.get("tags") or []
    if (
        not isinstance(tags, list)
        or len(tags) > 100
        or not all(isinstance(t, str) and len(t) <= 200 for t in tags)
    ):
        raise BundleError("run.json tags must be a list of at most 100 texts of at most 200 characters")
    name = check_text(run.get("name"), "run.json name", limit=200) or checked.name
    if not name.strip():
        name = checked.name
    progress = run.get("progress")
    if progress is not None and not (isinstance(progress, (int, float)) and 0 <= progress <= 1):
        raise BundleError(f"run.json progress must be a number from 0 to 1, got {str(progress)[:40]}")
    fields = {
        "name": name,
        "config": checked.model_dump(mode="json"),
        "seed": checked.seed,
        "status": status,
        "tags": tags,
        "notes": ((check_text(run.get("notes"), "run.json notes") or "") + " (imported)").strip(),
        "created_at": check_time(run.get("created_at"), "run.json created_at"),
        "started_at": check_time(run.get("started_at"), "run.json started_at"),
        "finished_at": check_time(run.get("finished_at"), "run.json finished_at"),
        "error": check_text(run.get("error"), "run.json error"),
        "traceback": check_text(run.get("traceback"), "run.json traceback"),
        "total_steps": check_int(run.get("total_steps"), "run.json total_steps"),
        "progress": float(progress) if progress is not None else None,
        "current_step": check_int(run.get("current_step"), "run.json current_step"),
        "current_epoch": check_int(run.get("current_epoch"), "run.json current_epoch"),
        "attempts": check_int(run.get("attempts"), "run.json attempts") or 0,
    }
    return fields, notes


def _check_events(events: Any) -> list[dict]:
    if not isinstance(events, list):
        raise BundleError("events.json must hold a list of events")
    if len(events) > MAX_EVENTS:
        raise BundleError(f"events.json has {len(events):,} events; the limit is {MAX_EVENTS:,} (MAX_EVENTS)")
    checked = []
    for i, event in enumerate(events):
        where = f"events.json event {i}"
        if not isinstance(event, dict):
            raise BundleError(f"{where} must be an object with a message")
        level = event.get("level") or "info"
        if level not in EVENT_LEVELS:
            raise BundleError(f"{where} level {str(level)[:40]!r} is not one of {list(EVENT_LEVELS)}")
        checked.append(
            {
                "message": check_text(event.get("message"), f"{where} message", optional=False),
                "level": level,
                "kind": check_text(event.get("kind"), f"{where} kind", limit=64) or "info",
                "created_at": check_time(event.get("created_at"), f"{where} created_at"),
            }
        )
    return checked
