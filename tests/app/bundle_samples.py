"""Building run bundles for the import tests and the bundle fuzzer: a valid one, and zips of any content."""

from __future__ import annotations

import copy
import io
import json
import warnings
import zipfile

from psl_core.config import ExperimentConfig

VALID_CONFIG = ExperimentConfig(name="imported demo").model_dump(mode="json")
STEPS_CSV = "step,epoch,loss,lr,batch_size,my_metric\n1,1,2.5,0.05,64,7\n2,1,2.25,0.05,64,\n3,1,,0.05,64,9\n"
EPOCHS_CSV = 'epoch,step,train_loss,test_acc,per_class_acc\n1,3,2.3,0.5,"[0.25, 0.75]"\n'
CLIENTS_CSV = "epoch,client,samples,steps_active,busy_time,idle_time\n1,0,30,3,1.5,0.5\n1,1,34,3,1.25,0.75\n"


def run_json(**changes) -> dict:
    run = {
        "id": 7,
        "name": "imported demo",
        "tags": ["a", "b"],
        "notes": "from elsewhere",
        "config": copy.deepcopy(VALID_CONFIG),  # callers mutate it
        "seed": 0,
        "status": "completed",
        "created_at": "2024-05-01 10:00:00+00:00",
        "started_at": "2024-05-01 10:00:01+00:00",
        "finished_at": "2024-05-01 10:05:00+00:00",
        "error": None,
        "traceback": None,
        "total_steps": 3,
        "progress": 1.0,
        "attempts": 1,
    }
    run.update(changes)
    return run


EVENTS = [
    {
        "id": 1,
        "run_id": 7,
        "created_at": "2024-05-01 10:00:02+00:00",
        "level": "info",
        "kind": "start",
        "message": "go",
    },
    {"id": 2, "run_id": 7, "created_at": None, "level": "warning", "kind": "info", "message": "careful"},
]


def valid_members() -> dict[str, bytes]:
    return {
        "bundle.json": json.dumps({"format": "psl-studio-run", "version": 1}).encode(),
        "run.json": json.dumps(run_json()).encode(),
        "steps.csv": STEPS_CSV.encode(),
        "epochs.csv": EPOCHS_CSV.encode(),
        "clients.csv": CLIENTS_CSV.encode(),
        "events.json": json.dumps(EVENTS).encode(),
    }


def zip_of(members: dict[str, bytes] | list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    items = members.items() if isinstance(members, dict) else members
    with zipfile.ZipFile(buf, "w", method) as z, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are what some tests want
        for name, data in items:  # a fixed time: the same members always give the same bytes
            z.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data, compress_type=method)
    return buf.getvalue()


def valid_bundle(**replace: bytes) -> bytes:
    return zip_of({**valid_members(), **replace})
