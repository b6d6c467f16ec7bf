"""Per-source loaders: each returns the raw arrays of one dataset (uint8 images or float signals).

File search order for file-based datasets: ``data_dir`` (and its conventional sub-folder), then
``$PSL_DATA_DIR/<sub-folder>`` and ``$PSL_DATA_DIR``, then a system folder where one exists
(Debian's dataset-fashion-mnist package).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from psl_core.data.catalog import DATASETS, DatasetNotFoundError
from psl_core.data.readers import decode_names, read_cifar_pickle, read_idx

# The digits train/test split uses a fixed seed: the test set must be the same for every experiment
# seed, or accuracies of different seeds would not be comparable.
DIGITS_SPLIT_SEED = 1797
SYNTHETIC_SEED = 2024

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
FASHION_MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
SYSTEM_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


@dataclass
class RawSplits:
    """Arrays as stored on disk (uint8 images or float signals), read-only, plus train channel stats."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    std: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass
class DataPaths:
    """Where dataset files are searched besides a config's ``data.data_dir``, and where generated
    datasets are cached. psl_core never reads the environment: the application (or a notebook)
    sets these with :func:`configure_data_paths`; by default nothing extra is searched and
    generated data is kept in memory only."""

    data_dirs: list[Path] = field(default_factory=list)
    cache_dir: Path | None = None


DATA_PATHS = DataPaths()


def configure_data_paths(data_dirs=(), cache_dir: str | Path | None = None) -> None:
    """Extra dataset folders (searched after ``data.data_dir``) and the cache folder (or None)."""
    DATA_PATHS.data_dirs = [Path(d).expanduser() for d in data_dirs]
    DATA_PATHS.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else None


def _candidate_dirs(data_dir: str | None, subfolder: str, system_dir: Path | None = None) -> list[Path]:
    dirs: list[Path] = []
    if data_dir:
        dirs += [Path(data_dir), Path(data_dir) / subfolder]
    for extra in DATA_PATHS.data_dirs:
        dirs += [extra / subfolder, extra]
    if system_dir is not None:
        dirs.append(system_dir)
    return list(dict.fromkeys(dirs))  # unique, order kept


def _not_found(name: str, looked: list[Path], wanted: list[str]) -> DatasetNotFoundError:
    where = (
        "\n".join(f"  - {d}" for d in looked) or "  (nowhere: no data.data_dir given and PSL_DATA_DIR unset)"
    )
    return DatasetNotFoundError(
        f"Dataset {name!r} not found. Looked for {', '.join(wanted)} in:\n{where}\n"
        f"How to get it: {DATASETS[name].how_to_get}"
    )


def stratified_subset(labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Sorted indices of ``limit`` samples keeping class proportions (largest-remainder rounding).

    Within each class the kept samples are a uniformly random subset drawn with ``seed``.
    """
    labels = np.asarray(labels)
    n = len(labels)
    if limit >= n:
        return np.arange(n, dtype=np.int64)
    classes, inverse, class_sizes = np.unique(labels, return_inverse=True, return_counts=True)
    exact = limit * class_sizes / n
    quota = np.floor(exact).astype(np.int64)
    leftover = limit - int(quota.sum())
    quota[np.argsort(-(exact - quota), kind="stable")[:leftover]] += 1
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(n), inverse))  # grouped by class, random order inside a class
    class_start = np.concatenate([[0], np.cumsum(class_sizes)[:-1]])
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - class_start[inverse[order]]
    return np.flatnonzero(rank < quota[inverse]).astype(np.int64)


def load_digits() -> RawSplits:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.float32)[:, None, :, :]  # (1797, 1, 8, 8), values 0..16
    y = bunch.target.astype(np.int64)
    test_mask = np.zeros(len(y), dtype=bool)
    test_mask[stratified_subset(y, round(0.2 * len(y)), DIGITS_SPLIT_SEED)] = True
    names = [str(c) for c in bunch.target_names]
    return RawSplits(x[~test_mask], y[~test_mask], x[test_mask], y[test_mask], names)


def find_fashion_files(data_dir: str | None) -> tuple[Path, dict[str, Path]]:
    looked = _candidate_dirs(data_dir, "fashion-mnist", SYSTEM_FASHION_MNIST_DIR)
    for directory in looked:
        found = {}
        for key, stem in FASHION_MNIST_FILES.items():
            for candidate in (directory / f"{stem}.gz", directory / stem):
                if candidate.is_file():
                    found[key] = candidate
                    break
        if len(found) == len(FASHION_MNIST_FILES):
            return directory, found
    raise _not_found("fashion_mnist", looked, [f"{stem}.gz" for stem in FASHION_MNIST_FILES.values()])


def load_fashion(files: dict[str, Path]) -> RawSplits:
    arrays = {key: read_idx(path) for key, path in files.items()}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DatasetNotFoundError(
                f"Fashion-MNIST {split} files disagree: images {x.shape} ({files[f'x_{split}']}), "
                f"labels {y.shape} ({files[f'y_{split}']}); expected (N, 28, 28) images and N labels"
            )
    return RawSplits(
        arrays["x_train"][:, None], arrays["y_train"].astype(np.int64),
        arrays["x_test"][:, None], arrays["y_test"].astype(np.int64), list(FASHION_MNIST_CLASSES),
    )  # fmt: skip


def find_cifar_dir(name: str, data_dir: str | None) -> Path:
    folder, files = {
        "cifar10": (
            "cifar-10-batches-py",
            [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"],
        ),
        "cifar100": ("cifar-100-python", ["train", "test", "meta"]),
    }[name]
    looked = _candidate_dirs(data_dir, folder)
    for directory in looked:
        if all((directory / f).is_file() for f in files):
            return directory
    raise _not_found(name, looked, files)


def _cifar_images(batch: dict, path: Path) -> np.ndarray:
    data = np.asarray(batch["data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DatasetNotFoundError(f"{path}: 'data' has shape {data.shape}, expected (N, 3072)")
    return data.reshape(-1, 3, 32, 32)  # rows are R-plane, G-plane, B-plane, each 32x32 row-major


def load_cifar(name: str, directory: Path) -> RawSplits:
    if name == "cifar10":
        batches = [read_cifar_pickle(directory / f"data_batch_{i}") for i in range(1, 6)]
        test = read_cifar_pickle(directory / "test_batch")
        meta, label_key, names_key = read_cifar_pickle(directory / "batches.meta"), "labels", "label_names"
        paths = [directory / f"data_batch_{i}" for i in range(1, 6)]
    else:
        batches = [read_cifar_pickle(directory / "train")]
        test = read_cifar_pickle(directory / "test")
        meta, label_key, names_key = read_cifar_pickle(directory / "meta"), "fine_labels", "fine_label_names"
        paths = [directory / "train"]
    x_train = np.concatenate([_cifar_images(b, p) for b, p in zip(batches, paths)])
    y_train = np.concatenate([np.asarray(b[label_key], dtype=np.int64) for b in batches])
    x_test = _cifar_images(test, directory / "test")
    y_test = np.asarray(test[label_key], dtype=np.int64)
    return RawSplits(x_train, y_train, x_test, y_test, decode_names(meta[names_key]))


def mnist1d_generation_args() -> dict:
    """The mnist1d package's default generation arguments (the published dataset), minus the URL."""
    from mnist1d.data import get_dataset_args

    args = get_dataset_args(as_dict=True)
    args.pop("url", None)
    return args


def mnist1d_cache_path(args: dict) -> Path | None:
    """Cache file for one set of generation args: <cache dir>/mnist1d-<hash of args>.npz (None: no cache)."""
    if DATA_PATHS.cache_dir is None:
        return None
    # The package version is part of the key: another generator version may give other data.
    keyed = {**args, "mnist1d_version": importlib.metadata.version("mnist1d")}
    digest = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:16]
    return DATA_PATHS.cache_dir / f"mnist1d-{digest}.npz"


def load_mnist1d(args: dict) -> RawSplits:
    path = mnist1d_cache_path(args)
    if path is not None and path.is_file():
        with np.load(path) as stored:
            x, y, x_test, y_test = (stored[k] for k in ("x", "y", "x_test", "y_test"))
    else:
        from mnist1d.data import make_dataset
        from mnist1d.utils import ObjectView

        # make_dataset seeds the GLOBAL numpy/random generators; restore them so loading data never
        # changes the random stream of the caller.
        np_state, py_state = np.random.get_state(), random.getstate()
        try:
            generated = make_dataset(ObjectView(dict(args)))
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)
        x, y = generated["x"].astype(np.float32), generated["y"].astype(np.int64)
        x_test, y_test = generated["x_test"].astype(np.float32), generated["y_test"].astype(np.int64)
        if path is not None:
            _write_cache(path, x=x, y=y, x_test=x_test, y_test=y_test, args=json.dumps(args, sort_keys=True))
    return RawSplits(x[:, None, :], y, x_test[:, None, :], y_test, [str(d) for d in range(10)])


def _write_cache(path: Path, **arrays) -> None:
    """Atomic write (a concurrent reader never sees half a file); a cache that cannot be written is skipped."""
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


def load_synthetic() -> RawSplits:
    rng = np.random.default_rng(SYNTHETIC_SEED)
    templates = rng.normal(size=(10, 1, 8, 8))
    noise_std = 3.0  # pairwise template separation ~1.9 noise std: learnable, not trivial

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.permutation(np.arange(n) % 10).astype(np.int64)
        x = templates[y] + noise_std * rng.normal(size=(n, 1, 8, 8))
        return x.astype(np.float32), y

    x_train, y_train = draw(2000)
    x_test, y_test = draw(500)
    return RawSplits(x_train, y_train, x_test, y_test, [f"class {c}" for c in range(10)])
