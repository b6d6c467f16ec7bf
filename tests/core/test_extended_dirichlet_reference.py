"""extended_dirichlet against an independent re-implementation of the GPSL experiments' splitter.

The reference (written here from its description, not imported): every client picks C distinct classes
with probability ∝ exp(−times already picked · num_classes); for each class, the shares over ALL
clients are p ~ Dir(α·q + 1e-10) with q = 1 for the clients that picked it (α for every member, never
divided by the number of members), and every sample of the class goes to a client drawn from p.
"""

from __future__ import annotations

import numpy as np
import pytest

from psl_core.data import partition_labels

CIFAR_LIKE = np.repeat(np.arange(10), 5000)  # 10 classes × 5,000 training samples, like CIFAR-10


def reference_split(labels: np.ndarray, num_clients: int, classes: int, alpha: float, seed: int):
    """Client sizes and classes held per client, the way the reference splitter draws them."""
    rng = np.random.default_rng(10_000 + seed)
    num_classes = np.unique(labels).size
    picked = np.zeros((num_clients, num_classes))
    for client in range(num_clients):
        probs = np.exp(-picked.sum(axis=0) * num_classes)
        choice = rng.choice(num_classes, size=classes, replace=False, p=probs / probs.sum())
        picked[client, choice] += 1
    counts = np.zeros((num_clients, num_classes), dtype=np.int64)
    for c in range(num_classes):
        shares = rng.dirichlet(picked[:, c] * alpha + 1e-10)
        owners = rng.choice(num_clients, size=int((labels == c).sum()), p=shares / shares.sum())
        counts[:, c] = np.bincount(owners, minlength=num_clients)
    return counts


def size_stats(counts: np.ndarray) -> tuple[float, float, float]:
    sizes = counts.sum(axis=1)
    classes_held = (counts > 0).sum(axis=1)
    return sizes.std() / sizes.mean(), sizes.max() / sizes.mean(), classes_held.mean()


def mean_stats(make, seeds) -> np.ndarray:
    return np.mean([size_stats(make(seed)) for seed in seeds], axis=0)


@pytest.mark.parametrize(("classes", "alpha"), [(2, 3.0), (5, 3.0), (2, 0.5)])
def test_client_sizes_and_classes_match_the_reference(classes, alpha):
    seeds = range(6)
    ours = mean_stats(
        lambda s: (
            partition_labels(
                CIFAR_LIKE, 128, "extended_dirichlet", seed=s, classes_per_client=classes, alpha=alpha
            ).counts
        ),
        seeds,
    )
    ref = mean_stats(lambda s: reference_split(CIFAR_LIKE, 128, classes, alpha, s), seeds)
    cv, largest, held = ours
    # Means over 6 seeds; the seed-to-seed sd of the CV is ≈ 0.03 at α = 3, so 0.08 is > 5 sd of the mean.
    assert cv == pytest.approx(ref[0], abs=0.08 if alpha >= 1 else 0.2)
    assert largest == pytest.approx(ref[1], rel=0.2)
    # We deal each class by its cumulative proportions, the reference draws every sample from p: with a
    # tiny share the reference more often gives a member 0 samples (P = (1-p)^n vs our floor(n·p) = 0),
    # which shows at small α only.
    assert held == pytest.approx(ref[2], abs=0.05 if alpha >= 1 else 0.1)


def test_severe_setting_has_the_published_spread():
    """K = 128, C = 2, α = 3 on CIFAR-10-like labels: CV near 0.4, largest client about 2× the mean."""
    stats = mean_stats(
        lambda s: (
            partition_labels(
                CIFAR_LIKE, 128, "extended_dirichlet", seed=s, classes_per_client=2, alpha=3.0
            ).counts
        ),
        range(6),
    )
    cv, largest, held = stats
    assert 0.3 < cv < 0.5
    assert 1.6 < largest < 2.8
    assert held == pytest.approx(2.0, abs=0.02)


def test_alpha_is_per_member_not_divided():
    """Doubling the members of a class must not make its shares more skewed (α is per member)."""
    labels = np.repeat(np.arange(2), 20_000)
    few = partition_labels(labels, 8, "extended_dirichlet", seed=1, classes_per_client=1, alpha=50.0)
    many = partition_labels(labels, 64, "extended_dirichlet", seed=1, classes_per_client=1, alpha=50.0)
    # With Dir(50, ..., 50) over m members each share is ≈ 1/m with CV ≈ 1/sqrt(50) ≈ 0.14, whatever m.
    for part in (few, many):
        sizes = part.sizes
        assert sizes.std() / sizes.mean() < 0.25
