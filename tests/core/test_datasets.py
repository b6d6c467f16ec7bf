"""Datasets: real digits/Fashion-MNIST, file formats written in tmp_path, mnist1d cache, augmentation."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from psl_core.data import (
    DATASETS,
    DatasetNotFoundError,
    augment_images,
    clear_memory_cache,
    load_dataset,
    sources,
)
from psl_core.data import datasets as datasets_module
from psl_core.data.readers import DataFormatError, read_cifar_pickle, read_idx, write_cifar_pickle, write_idx


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path):
    """No test sees the developer's data folders or writes into a real cache."""
    sources.configure_data_paths(data_dirs=[], cache_dir=tmp_path / "cache")
    yield
    sources.configure_data_paths()


def test_digits_shapes_split_and_normalisation():
    data = load_dataset("digits")
    assert data.x_train.shape == (1438, 1, 8, 8) and data.x_test.shape == (359, 1, 8, 8)
    assert data.input_shape == (1, 8, 8) and data.num_classes == 10
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert abs(data.x_train.mean().item()) < 1e-4 and abs(data.x_train.std().item() - 1) < 1e-3
    # stratified 80/20: every class has ~20% of its samples in the test set
    test_share = data.y_test.bincount(minlength=10) / (
        data.y_test.bincount(minlength=10) + data.y_train.bincount(minlength=10)
    )
    assert ((test_share - 0.2).abs() < 0.02).all()


def test_test_set_does_not_depend_on_the_experiment_seed():
    a, b = load_dataset("digits", seed=0), load_dataset("digits", seed=7)
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.y_test, b.y_test)
    a, b = load_dataset("digits", test_limit=50, seed=0), load_dataset("digits", test_limit=50, seed=7)
    assert torch.equal(a.y_test, b.y_test) and len(a.y_test) == 50


def test_train_limit_is_stratified_seeded_and_deterministic():
    a = load_dataset("digits", train_limit=100, seed=1)
    assert len(a.y_train) == 100
    assert (a.y_train.bincount(minlength=10) - 10).abs().max() <= 1
    assert torch.equal(a.x_train, load_dataset("digits", train_limit=100, seed=1).x_train)
    assert not torch.equal(a.x_train, load_dataset("digits", train_limit=100, seed=2).x_train)


def test_mutating_returned_tensors_cannot_corrupt_the_next_load():
    first = load_dataset("synthetic")
    reference = first.x_train.clone()
    first.x_train.mul_(0).add_(5)
    first.y_train.zero_()
    second = load_dataset("synthetic")
    assert torch.equal(second.x_train, reference)
    assert second.y_train.bincount().tolist() == [200] * 10


def test_synthetic_is_learnable_by_nearest_centroid():
    data = load_dataset("synthetic")
    assert data.x_train.shape == (2000, 1, 8, 8) and data.x_test.shape == (500, 1, 8, 8)
    centroids = torch.stack([data.x_train[data.y_train == c].mean(0) for c in range(10)]).flatten(1)
    predicted = torch.cdist(data.x_test.flatten(1), centroids).argmin(1)
    accuracy = (predicted == data.y_test).float().mean().item()
    assert 0.7 < accuracy < 0.99  # measured 0.83: learnable but not trivial


def test_unknown_dataset_lists_known_names():
    with pytest.raises(ValueError, match=r"'imagenet'.*digits.*fashion_mnist.*cifar100"):
        load_dataset("imagenet")
    assert set(DATASETS) == {"digits", "fashion_mnist", "mnist1d", "cifar10", "cifar100", "synthetic"}


def test_bad_limit_is_rejected():
    with pytest.raises(ValueError, match="train_limit"):
        load_dataset("digits", train_limit=0)


# --------------------------------------------------------------------------- IDX / Fashion-MNIST


def _write_raw_idx(path, array: np.ndarray) -> None:
    """Hand-built IDX (independent of write_idx): magic 0x0000 08 ndim, big-endian uint32 dims."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def test_idx_reader_parses_hand_written_files_and_round_trips(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    _write_raw_idx(tmp_path / "img.gz", images)
    assert np.array_equal(read_idx(tmp_path / "img.gz"), images)
    floats = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
    write_idx(tmp_path / "floats.idx", floats)  # uncompressed, multi-byte big-endian type
    assert np.array_equal(read_idx(tmp_path / "floats.idx"), floats)
    (tmp_path / "bad.gz").write_bytes(gzip.compress(struct.pack(">BBBBI", 0, 0, 8, 1, 10) + b"abc"))
    with pytest.raises(DataFormatError, match="10 data bytes"):
        read_idx(tmp_path / "bad.gz")


def test_fashion_mnist_from_tiny_idx_files(tmp_path):
    rng = np.random.default_rng(2)
    for prefix, n in (("train", 30), ("t10k", 10)):
        _write_raw_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_raw_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    data = load_dataset("fashion_mnist", data_dir=str(tmp_path))
    assert data.x_train.shape == (30, 1, 28, 28) and data.x_test.shape == (10, 1, 28, 28)
    assert data.y_test.tolist() == list(range(10)) and data.class_names[-1] == "Ankle boot"


def test_fashion_mnist_from_debian_package():
    if not sources.SYSTEM_FASHION_MNIST_DIR.is_dir():
        pytest.skip(f"{sources.SYSTEM_FASHION_MNIST_DIR} absent (apt install dataset-fashion-mnist)")
    data = load_dataset("fashion_mnist", train_limit=2000, test_limit=500)
    assert data.x_train.shape == (2000, 1, 28, 28) and data.input_shape == (1, 28, 28)
    assert data.y_train.bincount().tolist() == [200] * 10 and data.y_test.bincount().tolist() == [50] * 10
    raw = datasets_module._RAW_CACHE[("fashion_mnist", str(sources.SYSTEM_FASHION_MNIST_DIR.resolve()))]
    assert raw.x_train.shape == (60000, 1, 28, 28) and raw.x_test.shape == (10000, 1, 28, 28)
    assert np.array_equal(np.bincount(raw.y_train), np.full(10, 6000))
    assert 0.2 < raw.mean[0] / 255 < 0.4  # Fashion-MNIST's published pixel mean is 0.286


def test_missing_files_say_where_we_looked_and_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "SYSTEM_FASHION_MNIST_DIR", tmp_path / "no-system-dir")
    sources.configure_data_paths(data_dirs=[tmp_path / "data"])
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("fashion_mnist", data_dir=str(tmp_path / "mine"))
    message = str(info.value)
    assert str(tmp_path / "mine") in message and str(tmp_path / "data" / "fashion-mnist") in message
    assert "no-system-dir" in message and "apt install dataset-fashion-mnist" in message
    with pytest.raises(FileNotFoundError, match=r"(?s)cifar-10-batches-py.*cifar-10-python\.tar\.gz"):
        load_dataset("cifar10")


# --------------------------------------------------------------------------- CIFAR pickles


def _cifar_batch(rng, n, label_key):
    return {
        "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        label_key: rng.integers(0, 10, n).tolist(),
    }


def test_cifar10_from_tiny_pickles(tmp_path, monkeypatch):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(3)
    batches = [_cifar_batch(rng, 4, "labels") for _ in range(5)]
    for i, batch in enumerate(batches, start=1):
        write_cifar_pickle(folder / f"data_batch_{i}", {**batch, "batch_label": b"training batch"})
    write_cifar_pickle(folder / "test_batch", _cifar_batch(rng, 6, "labels"))
    names = [
        b"airplane",
        b"automobile",
        b"bird",
        b"cat",
        b"deer",
        b"dog",
        b"frog",
        b"horse",
        b"ship",
        b"truck",
    ]
    write_cifar_pickle(folder / "batches.meta", {"label_names": names, "num_vis": 3072})
    sources.configure_data_paths(data_dirs=[tmp_path])  # found as <data dir>/cifar-10-batches-py
    data = load_dataset("cifar10")
    assert data.x_train.shape == (20, 3, 32, 32) and data.x_test.shape == (6, 3, 32, 32)
    assert data.class_names[1] == "automobile" and data.input_shape == (3, 32, 32)
    assert data.y_train.tolist() == sum((b["labels"] for b in batches), [])
    # channel-planar layout: un-normalising sample 0 gives back its R, G, B planes
    restored = (
        data.x_train[0] * torch.tensor(data.channel_std)[:, None, None]
        + torch.tensor(data.channel_mean)[:, None, None]
    )
    assert torch.allclose(
        restored, torch.from_numpy(batches[0]["data"][0].reshape(3, 32, 32)).float(), atol=1e-3
    )
    assert abs(data.x_train[:, 2].mean().item()) < 1e-5 and abs(data.x_train[:, 2].std().item() - 1) < 0.05


def test_cifar100_from_tiny_pickles(tmp_path):
    rng = np.random.default_rng(4)
    for split, n in (("train", 12), ("test", 5)):
        content = {
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            "fine_labels": rng.integers(0, 100, n).tolist(),
        }
        write_cifar_pickle(tmp_path / split, {**content, "coarse_labels": [0] * n})
    write_cifar_pickle(
        tmp_path / "meta",
        {"fine_label_names": [f"c{i}".encode() for i in range(100)], "coarse_label_names": []},
    )
    data = load_dataset("cifar100", data_dir=str(tmp_path))
    assert data.num_classes == 100 and data.x_train.shape == (12, 3, 32, 32) and data.class_names[7] == "c7"


def test_cifar_reader_refuses_pickles_that_would_run_code(tmp_path):
    (tmp_path / "evil").write_bytes(pickle.dumps({b"data": print}, protocol=2))
    with pytest.raises(DataFormatError, match="refusing"):
        read_cifar_pickle(tmp_path / "evil")


# --------------------------------------------------------------------------- mnist1d


def test_mnist1d_is_generated_once_then_read_from_the_disk_cache(monkeypatch):
    # 1,000 samples instead of the default 5,000: same code path, a fifth of the generation time.
    small_args = {**sources.mnist1d_generation_args(), "num_samples": 1000}
    monkeypatch.setattr(sources, "mnist1d_generation_args", lambda: dict(small_args))
    clear_memory_cache()
    numpy_state = np.random.get_state()[1].copy()
    first = load_dataset("mnist1d")
    assert np.array_equal(np.random.get_state()[1], numpy_state), (
        "generation leaked into the global numpy RNG"
    )
    assert (
        first.x_train.shape == (800, 1, 40)
        and first.x_test.shape == (200, 1, 40)
        and first.input_shape == (1, 40)
    )
    cache_file = sources.mnist1d_cache_path(small_args)
    assert cache_file.is_file() and cache_file.parent == sources.DATA_PATHS.cache_dir

    import mnist1d.data

    def refuse(*args, **kwargs):
        raise AssertionError("mnist1d was regenerated instead of read from the cache")

    monkeypatch.setattr(mnist1d.data, "make_dataset", refuse)
    clear_memory_cache()
    second = load_dataset("mnist1d")
    assert torch.equal(first.x_train, second.x_train) and torch.equal(first.y_test, second.y_test)


# --------------------------------------------------------------------------- augmentation


def test_augmentation_is_reproducible_shape_preserving_and_changes_images():
    x = load_dataset("synthetic", train_limit=64).x_train
    before = x.clone()
    out = augment_images(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and torch.equal(x, before)  # input untouched
    assert torch.equal(out, augment_images(x, torch.Generator().manual_seed(0)))
    changed = (out != x).flatten(1).any(1)
    assert changed.float().mean() > 0.5


def test_crop_and_flip_produce_shifted_or_mirrored_copies():
    x = torch.randn(16, 2, 6, 6)
    flipped = augment_images(x, torch.Generator().manual_seed(1), crop_padding=0)
    is_same = (flipped == x).flatten(1).all(1)
    is_mirror = (flipped == x.flip(-1)).flatten(1).all(1)
    assert (is_same | is_mirror).all() and is_same.any() and is_mirror.any()
    cropped = augment_images(x, torch.Generator().manual_seed(2), crop_padding=2, flip=False)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(16):
        windows = [padded[i, :, dy : dy + 6, dx : dx + 6] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(cropped[i], w) for w in windows)


def test_one_dimensional_signals_are_shifted_only():
    x = torch.randn(32, 1, 40)
    out = augment_images(x, torch.Generator().manual_seed(3), crop_padding=3)
    padded = torch.nn.functional.pad(x, (3, 3))
    for i in range(32):
        assert any(torch.equal(out[i], padded[i, :, s : s + 40]) for s in range(7))
    assert not torch.equal(out, x)
