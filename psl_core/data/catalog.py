"""The dataset catalogue: what each dataset is and how to get its files."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    description: str
    input_shape: tuple[int, ...]
    num_classes: int
    needs_files: bool
    how_to_get: str


_FASHION_HOW = (
    "On Debian/Ubuntu: `sudo apt install dataset-fashion-mnist` (installs /usr/share/datasets/fashion-mnist). "
    "Otherwise download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
    "t10k-labels-idx1-ubyte.gz from https://github.com/zalandoresearch/fashion-mnist (data/fashion) into "
    "$PSL_DATA_DIR/fashion-mnist, or pass data_dir."
)
_CIFAR_HOW = (
    "Download {url} and extract it into $PSL_DATA_DIR (it creates {folder}/), "
    "or pass data_dir pointing at the {folder} folder."
)

DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(
        "digits", "Digits (8×8)", "UCI's 1,797 handwritten digits (as in scikit-learn), 8×8 grey; fixed stratified 80/20 split.",
        (1, 8, 8), 10, False, "Built in (ships with PSL Studio).",
    ),
    "fashion_mnist": DatasetInfo(
        "fashion_mnist", "Fashion-MNIST", "Zalando's 70,000 28×28 grey clothing images, 10 classes (60k/10k).",
        (1, 28, 28), 10, True, _FASHION_HOW,
    ),
    "mnist1d": DatasetInfo(
        "mnist1d", "MNIST-1D", "Greydanus' 1-D digit signals (length 40), 5,000 samples generated locally (4k/1k).",
        (1, 40), 10, False, "Generated locally by the mnist1d package and cached under $PSL_HOME/cache.",
    ),
    "cifar10": DatasetInfo(
        "cifar10", "CIFAR-10", "60,000 32×32 colour images, 10 classes (50k/10k).", (3, 32, 32), 10, True,
        _CIFAR_HOW.format(url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", folder="cifar-10-batches-py"),
    ),
    "cifar100": DatasetInfo(
        "cifar100", "CIFAR-100", "60,000 32×32 colour images, 100 fine classes (50k/10k).", (3, 32, 32), 100, True,
        _CIFAR_HOW.format(url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", folder="cifar-100-python"),
    ),
    "synthetic": DatasetInfo(
        "synthetic", "Synthetic templates", "10 random 8×8 class templates plus Gaussian noise (2,000/500); for fast tests.",
        (1, 8, 8), 10, False, "Generated in memory.",
    ),
}  # fmt: skip


class DatasetNotFoundError(FileNotFoundError):
    """The files of a dataset were not found; the message lists where we looked and how to get them."""
