"""Client-size spread of the extended-Dirichlet partition next to the GPSL reference splitter.

    python bench/bench_partition_spread.py [--seeds 6]

CIFAR-10-sized labels (10 classes × 5,000), K ∈ {16, 64, 128}, severe (C = 2) and mild (C = 5), α = 3.
The reference is the independent re-implementation of the GPSL experiments' splitter that the tests
use (tests/core/test_extended_dirichlet_reference.py). Prints the mean over seeds of the client-size
coefficient of variation, the largest client over the mean, and the classes a client holds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from psl_core.data import partition_labels  # noqa: E402
from tests.core.test_extended_dirichlet_reference import CIFAR_LIKE, mean_stats, reference_split  # noqa: E402


def ours_split(num_clients: int, classes: int, seed: int):
    """Per-client class counts of the project's extended-Dirichlet partition (α = 3)."""
    return partition_labels(
        CIFAR_LIKE, num_clients, "extended_dirichlet", seed=seed, classes_per_client=classes, alpha=3.0
    ).counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=6)
    args = ap.parse_args()
    seeds = range(args.seeds)
    print(
        "| setting | K | CV (ours) | CV (reference) | largest/mean (ours) | (reference) | classes held (ours) | (reference) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, c in (("severe", 2), ("mild", 5)):
        for k in (16, 64, 128):
            ours = mean_stats(lambda s, k=k, c=c: ours_split(k, c, s), seeds)
            ref = mean_stats(lambda s, k=k, c=c: reference_split(CIFAR_LIKE, k, c, 3.0, s), seeds)
            print(
                f"| {name} (C = {c}) | {k} | {ours[0]:.3f} | {ref[0]:.3f} | {ours[1]:.2f} | {ref[1]:.2f} | "
                f"{ours[2]:.2f} | {ref[2]:.2f} |"
            )


if __name__ == "__main__":
    main()
