"""Checkpoints of the round-based paradigms: plain tensors plus a JSON state, loadable with
``torch.load(weights_only=True)`` (no pickled Python or numpy objects), written atomically."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import torch

PARADIGM_CHECKPOINT_VERSION = 1
KIND = "paradigm"


def save_paradigm_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], state: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    payload = {
        "kind": KIND,
        "version": PARADIGM_CHECKPOINT_VERSION,
        "tensors": {name: t.detach().clone() for name, t in tensors.items()},
        "state": json.dumps(state, allow_nan=True),
    }
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_paradigm_checkpoint(path: str | Path, device) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, state) of a checkpoint written by :func:`save_paradigm_checkpoint`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist; start the run from scratch instead")
    try:
        data = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError:
        data = None  # e.g. a PSL checkpoint of the first format, which holds numpy objects
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise ValueError(f"checkpoint {path} was not written by the round-based engine (paradigm sl/sfl/fl)")
    if data.get("version") != PARADIGM_CHECKPOINT_VERSION:
        raise ValueError(
            f"checkpoint {path} has version {data.get('version')}, expected {PARADIGM_CHECKPOINT_VERSION}"
        )
    return data["tensors"], json.loads(data["state"])
