"""bench/reproduce_cifar.py end to end on a tiny fake CIFAR-10 written in the real pickle format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from torch import nn

from psl_core.data.readers import write_cifar_pickle
from psl_core.engine import build_experiment
from tests.bench_scripts import load_bench_script

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def reproduce():
    return load_bench_script("reproduce_cifar")


@pytest.fixture(scope="module")
def fake_cifar(tmp_path_factory) -> Path:
    """cifar-10-batches-py with 5 training batches of 2 images and a test batch of 10 (uint8, labels)."""
    folder = tmp_path_factory.mktemp("data") / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        labels = [(2 * i + j) % 10 for j in range(2)]
        data = rng.integers(0, 256, (2, 3072), dtype=np.uint8)
        write_cifar_pickle(folder / f"data_batch_{i}", {"data": data, "labels": labels, "batch_label": b"x"})
    write_cifar_pickle(
        folder / "test_batch",
        {"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8), "labels": list(range(10))},
    )
    names = [
        n.encode() for n in ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    ]
    write_cifar_pickle(folder / "batches.meta", {"label_names": names})
    return folder.parent


def test_config_is_the_papers_setting(reproduce, fake_cifar):
    args = reproduce.parse_args(["--data-dir", str(fake_cifar), "--device", "cpu"])
    cfg = reproduce.paper_config("severe", "fpls", 128, 1, args)
    assert (cfg.training.epochs, cfg.training.lr, cfg.training.momentum, cfg.training.weight_decay) == (
        100,
        0.01,
        0,
        0,
    )
    assert (cfg.sampling.batch_size, cfg.partition.classes_per_client, cfg.partition.alpha) == (128, 2, 3.0)
    assert cfg.data.augment and cfg.data.crop_padding == 1
    assert args.seeds == [1, 2, 3, 4, 5] and args.ks == [16, 32, 64, 128]
    assert [cell[1] for cell in reproduce.grid(args)].count("centralised") == 5
    cfg = reproduce.paper_config("iid", "ugs", 2, 1, args)
    setup = build_experiment(cfg)
    model = setup.model
    assert model.block_names[setup.cut] == "layer2.0"  # the cut is right before layer2
    client_norms = {
        type(m) for b in model.blocks[: setup.cut] for m in b.modules() if "Norm" in type(m).__name__
    }
    server_norms = {
        type(m) for b in model.blocks[setup.cut :] for m in b.modules() if "Norm" in type(m).__name__
    }
    assert client_norms == {nn.GroupNorm}
    assert all(
        m.num_groups == 32
        for b in model.blocks[: setup.cut]
        for m in b.modules()
        if isinstance(m, nn.GroupNorm)
    )
    assert server_norms and all(issubclass(t, nn.BatchNorm2d) for t in server_norms)


def test_runs_end_to_end_and_resumes(reproduce, fake_cifar, tmp_path, capsys):
    argv = [
        "--data-dir", str(fake_cifar), "--device", "cpu", "--epochs", "1", "--seeds", "1", "--ks", "2",
        "--settings", "severe", "--methods", "fls", "--out", str(tmp_path),
    ]  # fmt: skip
    results = reproduce.main(argv)
    assert [(r["method"], r["K"]) for r in results] == [("fls", 2)]
    for r in results:
        assert len(r["test_acc"]) == 1 and 0.0 <= r["test_acc"][0] <= 1.0
        assert r["steps_per_epoch"] >= 1
    assert len(list(tmp_path.glob("*.json"))) == 1
    assert "| severe | fls | 2 |" in capsys.readouterr().out
    saved = json.loads((tmp_path / "severe-fls-K2-seed1.json").read_text())
    saved["test_acc"] = [0.5]
    (tmp_path / "severe-fls-K2-seed1.json").write_text(json.dumps(saved))
    again = reproduce.main(argv)  # finished runs are read back, not trained again
    assert again[0]["test_acc"] == [0.5]
