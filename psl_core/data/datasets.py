"""Datasets: one `load_dataset` for every source, returning normalised float32 tensors.

Raw arrays are read once per process and kept read-only in memory; each `load_dataset` call builds
fresh tensors from them, so a caller that mutates its tensors cannot corrupt the next caller's data.
Normalisation uses the per-channel mean/std of the FULL training split (not of a `train_limit`
subset), so runs with different limits see identically scaled inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from psl_core.data import sources
from psl_core.data.catalog import DATASETS, DatasetInfo, DatasetNotFoundError
from psl_core.data.sources import configure_data_paths, stratified_subset
from psl_core.data.transforms import channel_stats, normalise

__all__ = [
    "DATASETS",
    "Dataset",
    "DatasetInfo",
    "DatasetLabels",
    "DatasetNotFoundError",
    "clear_memory_cache",
    "load_dataset",
    "load_labels",
    "configure_data_paths",
    "stratified_subset",
]

TEST_SUBSET_SEED = 12345


@dataclass
class Dataset:
    """A train/test pair of normalised tensors plus what a UI needs to describe them."""

    name: str
    x_train: torch.Tensor  # float32, (N, *input_shape), normalised with train-split channel stats
    y_train: torch.Tensor  # int64, (N,)
    x_test: torch.Tensor
    y_test: torch.Tensor
    class_names: list[str]
    input_shape: tuple[int, ...]  # (C, H, W) for images, (C, L) for 1-D signals
    channel_mean: tuple[float, ...] = ()  # statistics used to normalise (to un-normalise for display)
    channel_std: tuple[float, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True)
class DatasetLabels:
    """The training labels of a dataset and its shape: what partitions, previews and config checks
    need, without a normalised copy of the images (seconds and hundreds of MB for Fashion-MNIST)."""

    name: str
    y_train: np.ndarray  # int64, (N,): the same samples as load_dataset(...).y_train
    test_size: int
    class_names: list[str]
    input_shape: tuple[int, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


_RAW_CACHE: dict[tuple[str, str], sources.RawSplits] = {}


def clear_memory_cache() -> None:
    """Forget raw arrays loaded in this process (the on-disk mnist1d cache is kept)."""
    _RAW_CACHE.clear()


def _raw_splits(name: str, data_dir: str | None) -> sources.RawSplits:
    if name == "fashion_mnist":
        directory, files = sources.find_fashion_files(data_dir)
        key = (name, str(directory.resolve()))
        loader = lambda: sources.load_fashion(files)  # noqa: E731
    elif name in ("cifar10", "cifar100"):
        directory = sources.find_cifar_dir(name, data_dir)
        key = (name, str(directory.resolve()))
        loader = lambda: sources.load_cifar(name, directory)  # noqa: E731
    elif name == "mnist1d":
        args = sources.mnist1d_generation_args()
        key = (name, str(sources.mnist1d_cache_path(args)))
        loader = lambda: sources.load_mnist1d(args)  # noqa: E731
    else:
        key = (name, "")
        loader = {"digits": sources.load_digits, "synthetic": sources.load_synthetic}[name]
    if key not in _RAW_CACHE:
        raw = loader()
        for array in (raw.x_train, raw.y_train, raw.x_test, raw.y_test):
            array.flags.writeable = False  # the cache is shared: make accidental writes fail loudly
        _RAW_CACHE[key] = raw
    return _RAW_CACHE[key]


def _normalisation_stats(raw: sources.RawSplits) -> tuple[np.ndarray, np.ndarray]:
    """The training split's per-channel mean and std, computed on first use: about 1 s for
    Fashion-MNIST, which the label-only path (previews, config checks) never needs."""
    if raw.mean.size == 0:
        raw.mean, raw.std = channel_stats(raw.x_train)
    return raw.mean, raw.std


# --------------------------------------------------------------------------- public entry points


def _check_limit(name: str, value: int | None) -> None:
    if value is not None and (
        not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1
    ):
        raise ValueError(f"{name} must be a positive integer or None (use all samples), got {value!r}")


def _subsets(name: str, data_dir: str | None, train_limit: int | None, test_limit: int | None, seed: int):
    """The raw splits of ``name`` and the indices of the training / test subsets to keep (the same
    for ``load_labels`` and ``load_dataset``, so previews and training see the same samples)."""
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    _check_limit("train_limit", train_limit)
    _check_limit("test_limit", test_limit)
    raw = _raw_splits(name, data_dir)
    train_idx = stratified_subset(raw.y_train, train_limit, seed) if train_limit else slice(None)
    test_idx = stratified_subset(raw.y_test, test_limit, TEST_SUBSET_SEED) if test_limit else slice(None)
    return raw, train_idx, test_idx


def load_labels(
    name: str,
    *,
    data_dir: str | None = None,
    train_limit: int | None = None,
    test_limit: int | None = None,
    seed: int = 0,
) -> DatasetLabels:
    """The labels and shape of what ``load_dataset`` with the same arguments returns (same subsets,
    same errors), without normalising any image."""
    raw, train_idx, test_idx = _subsets(name, data_dir, train_limit, test_limit, seed)
    return DatasetLabels(
        name=name,
        y_train=raw.y_train[train_idx].astype(np.int64, copy=True),
        test_size=len(raw.y_test[test_idx]),
        class_names=list(raw.class_names),
        input_shape=tuple(int(d) for d in raw.x_train.shape[1:]),
    )


def load_dataset(
    name: str,
    *,
    data_dir: str | None = None,
    train_limit: int | None = None,
    test_limit: int | None = None,
    seed: int = 0,
) -> Dataset:
    """Load dataset ``name`` (a key of DATASETS) as normalised float32 tensors.

    ``train_limit`` keeps a class-stratified random subset of the training split drawn with ``seed``;
    ``test_limit`` does the same for the test split with a FIXED seed, so every experiment seed is
    evaluated on the same test samples. Raises DatasetNotFoundError when files are missing and
    ValueError for an unknown name or a bad limit.
    """
    raw, train_idx, test_idx = _subsets(name, data_dir, train_limit, test_limit, seed)
    mean, std = _normalisation_stats(raw)
    return Dataset(
        name=name,
        x_train=normalise(raw.x_train[train_idx], mean, std),
        y_train=torch.from_numpy(raw.y_train[train_idx].astype(np.int64, copy=True)),
        x_test=normalise(raw.x_test[test_idx], mean, std),
        y_test=torch.from_numpy(raw.y_test[test_idx].astype(np.int64, copy=True)),
        class_names=list(raw.class_names),
        input_shape=tuple(int(d) for d in raw.x_train.shape[1:]),
        channel_mean=tuple(float(m) for m in mean),
        channel_std=tuple(float(s) for s in std),
    )
