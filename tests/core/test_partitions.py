"""Partition schemes: invariants over random parameters (hypothesis) and scheme-specific statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from psl_core.data import PARTITION_SCHEMES, Partition, PartitionError, partition_labels

SCHEMES = ["iid", "dirichlet", "extended_dirichlet", "shards", "pathological", "quantity_skew"]
BALANCED = np.arange(5000) % 10  # 10 classes x 500 samples


def assert_valid(part: Partition, labels: np.ndarray, num_clients: int, num_classes: int) -> None:
    assert len(part.client_indices) == num_clients
    assert all(idx.dtype == np.int64 for idx in part.client_indices)
    merged = np.concatenate(part.client_indices)
    assert len(merged) == len(labels), "a sample was assigned twice or not at all"
    assert np.array_equal(np.sort(merged), np.arange(len(labels)))
    assert part.counts.shape == (num_clients, num_classes) and part.counts.dtype == np.int64
    for k, idx in enumerate(part.client_indices):
        assert np.array_equal(part.counts[k], np.bincount(labels[idx], minlength=num_classes))
    assert np.array_equal(part.sizes, [len(idx) for idx in part.client_indices])


@st.composite
def cases(draw, scheme: str):
    num_classes = draw(st.integers(1, 8))
    num_clients = draw(st.integers(1, 12))
    extra = draw(st.integers(0, 150))
    data_seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(data_seed)
    # Every class gets >= num_clients samples so pathological can always give each holder a share.
    labels = rng.permutation(
        np.concatenate([np.repeat(np.arange(num_classes), num_clients), rng.integers(0, num_classes, extra)])
    )
    n = len(labels)
    if scheme == "dirichlet":
        params = {"alpha": draw(st.floats(0.05, 20.0))}
    elif scheme == "extended_dirichlet":
        params = {
            "classes_per_client": draw(st.integers(1, num_classes)),
            "alpha": draw(st.floats(0.1, 10.0)),
        }
    elif scheme == "shards":
        params = {"shards_per_client": draw(st.integers(1, max(1, min(4, n // num_clients))))}
    elif scheme == "pathological":
        params = {"classes_per_client": draw(st.integers(math.ceil(num_classes / num_clients), num_classes))}
    elif scheme == "quantity_skew":
        params = {
            "distribution": draw(st.sampled_from(["dirichlet", "lognormal"])),
            "beta": draw(st.floats(0.05, 10.0)),
            "sigma": draw(st.floats(0.0, 3.0)),
        }
    else:
        params = {}
    return labels, num_clients, num_classes, params, draw(st.integers(0, 2**31))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_scheme_is_disjoint_complete_consistent_and_deterministic(scheme):
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(cases(scheme))
    def check(case):
        labels, num_clients, num_classes, params, seed = case
        part = partition_labels(labels, num_clients, scheme, num_classes=num_classes, seed=seed, **params)
        assert_valid(part, labels, num_clients, num_classes)
        again = partition_labels(labels, num_clients, scheme, num_classes=num_classes, seed=seed, **params)
        assert all(np.array_equal(a, b) for a, b in zip(part.client_indices, again.client_indices))
        assert part.scheme == scheme and set(part.params) == set(PARTITION_SCHEMES[scheme].params)

    check()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_another_seed_gives_another_partition(scheme):
    first = partition_labels(BALANCED, 10, scheme, seed=1)
    second = partition_labels(BALANCED, 10, scheme, seed=2)
    assert not all(np.array_equal(a, b) for a, b in zip(first.client_indices, second.client_indices))


def test_iid_sizes_differ_by_at_most_one():
    part = partition_labels(np.arange(1003) % 7, 10, "iid", seed=3)
    assert part.sizes.max() - part.sizes.min() <= 1


def test_pathological_gives_exactly_n_classes_per_client_and_covers_all_classes():
    for n in (1, 2, 3, 10):
        part = partition_labels(BALANCED, 20, "pathological", seed=4, classes_per_client=n)
        assert ((part.counts > 0).sum(axis=1) == n).all()
        assert (part.counts.sum(axis=0) == 500).all()
        held = np.array(
            [
                set(np.flatnonzero(row)) == set(c)
                for row, c in zip(part.counts, part.details["client_classes"])
            ]
        )
        assert held.all()


def _label_skew(part: Partition, labels: np.ndarray) -> float:
    """Mean over non-empty clients of the L1 distance between client and global label histograms."""
    global_dist = np.bincount(labels) / len(labels)
    occupied = part.sizes > 0
    client_dist = part.counts[occupied] / part.sizes[occupied, None]
    return float(np.abs(client_dist - global_dist).sum(axis=1).mean())


def test_dirichlet_small_alpha_is_more_skewed_than_large_alpha():
    # Measured over seeds 0-4 (K=10, 10 balanced classes): alpha=0.1 -> 1.29..1.45, alpha=100 -> 0.065..0.079.
    for seed in range(3):
        skewed = _label_skew(partition_labels(BALANCED, 10, "dirichlet", seed=seed, alpha=0.1), BALANCED)
        near_iid = _label_skew(partition_labels(BALANCED, 10, "dirichlet", seed=seed, alpha=100.0), BALANCED)
        assert skewed > 1.0 > 0.2 > near_iid


def test_dirichlet_min_partition_size_is_honoured():
    part = partition_labels(BALANCED, 50, "dirichlet", seed=0, alpha=0.5, min_partition_size=20)
    assert part.sizes.min() >= 20


@pytest.mark.timeout(20)  # hang guard, not a speed test: the redraw loop must be bounded
def test_dirichlet_tiny_alpha_many_clients_fails_fast_with_advice():
    labels = np.arange(10000) % 10
    with pytest.raises(PartitionError, match=r"raise alpha.*num_clients.*min_partition_size"):
        partition_labels(labels, 1000, "dirichlet", seed=0, alpha=0.01, min_partition_size=1)
    part = partition_labels(labels, 1000, "dirichlet", seed=0, alpha=0.01)  # no minimum: returns
    assert_valid(part, labels, 1000, 10)


def test_extended_dirichlet_clients_only_hold_their_picked_classes():
    part = partition_labels(BALANCED, 20, "extended_dirichlet", seed=5, classes_per_client=2, alpha=3.0)
    picks = part.details["client_classes"]
    assert part.details["extra_classes"] == {}
    assert all(len(set(p)) == 2 for p in picks)
    for row, picked in zip(part.counts, picks):
        assert set(np.flatnonzero(row)) <= set(picked)
    # exp(-times*C) spreads picks evenly: 20 clients x 2 picks over 10 classes = 4 picks per class.
    assert np.array_equal(np.bincount(np.ravel(picks), minlength=10), np.full(10, 4))


def test_extended_dirichlet_assigns_classes_nobody_picked():
    part = partition_labels(BALANCED, 3, "extended_dirichlet", seed=6, classes_per_client=2)
    assert_valid(part, BALANCED, 3, 10)
    extra = part.details["extra_classes"]
    assert sum(len(v) for v in extra.values()) == 4  # 10 classes - 3 clients x 2 picks
    for k, row in enumerate(part.counts):
        assert set(np.flatnonzero(row)) <= set(part.details["client_classes"][k]) | set(extra.get(k, []))


def test_shards_give_few_classes_and_equal_sizes():
    part = partition_labels(BALANCED, 50, "shards", seed=7, shards_per_client=2)
    assert (part.sizes == 100).all()
    assert ((part.counts > 0).sum(axis=1) <= 2).all()  # each 50-sample shard is a single class here


@pytest.mark.parametrize("distribution", ["dirichlet", "lognormal"])
def test_quantity_skew_varies_sizes_but_keeps_labels_iid(distribution):
    part = partition_labels(BALANCED, 10, "quantity_skew", seed=8, distribution=distribution)
    assert part.sizes.std() / part.sizes.mean() > 0.3
    # Pearson chi-square of the (K, C) table against the global label mix; under IID dealing it is
    # ~chi2 with (K-1)(C-1)=81 df (mean 81, sd 12.7): 150 is > 5 sd above the mean.
    expected = part.sizes[:, None] * np.bincount(BALANCED) / len(BALANCED)
    chi2 = float(((part.counts - expected) ** 2 / expected).sum())
    assert chi2 < 150
    skewed = partition_labels(BALANCED, 10, "dirichlet", seed=8, alpha=0.1)
    expected_skewed = skewed.sizes[:, None] * 0.1
    occupied = skewed.sizes > 0
    assert float(((skewed.counts - expected_skewed)[occupied] ** 2 / expected_skewed[occupied]).sum()) > 1000


def test_quantity_skew_gives_every_client_a_sample_when_n_equals_k():
    part = partition_labels(np.arange(30) % 3, 30, "quantity_skew", seed=9, beta=0.05)
    assert (part.sizes == 1).all()


@pytest.mark.parametrize(
    ("scheme", "kwargs", "pattern"),
    [
        ("dirichlet", {"alpha": 0.0}, r"alpha=0\.0.*> 0"),
        ("dirichlet", {"alpha": -1}, r"alpha=-1"),
        ("extended_dirichlet", {"classes_per_client": 11}, r"classes_per_client=11.*1\.\.10"),
        ("pathological", {"classes_per_client": 0}, r"classes_per_client=0.*>= 1"),
        ("iid", {"alpha": 1.0}, r"unknown parameter.*alpha"),
        ("dirichlet", {"alfa": 1.0}, r"alfa.*allowed: alpha, min_partition_size, max_redraws"),
        ("quantity_skew", {"distribution": "zipf"}, r"distribution='zipf'.*'dirichlet' or 'lognormal'"),
        ("shards", {"shards_per_client": 600}, r"shards_per_client=600"),
        ("nonsense", {}, r"unknown partition scheme 'nonsense'.*iid"),
    ],
)
def test_bad_parameters_raise_partition_error_naming_them(scheme, kwargs, pattern):
    with pytest.raises(PartitionError, match=pattern):
        partition_labels(BALANCED, 10, scheme, **kwargs)


def test_more_clients_than_samples_is_rejected():
    with pytest.raises(PartitionError, match=r"num_clients=11.*N=10"):
        partition_labels(np.arange(10) % 2, 11, "iid")
    assert issubclass(PartitionError, ValueError)


def test_pathological_with_too_few_clients_for_all_classes_is_rejected():
    with pytest.raises(PartitionError, match="some class would have no holder"):
        partition_labels(BALANCED, 3, "pathological", classes_per_client=2)


def test_catalogue_lists_every_scheme_with_spec_defaults():
    assert list(PARTITION_SCHEMES) == SCHEMES
    assert PARTITION_SCHEMES["dirichlet"].params["alpha"][0] == 0.5
    assert PARTITION_SCHEMES["dirichlet"].params["max_redraws"][0] == 50
    assert PARTITION_SCHEMES["extended_dirichlet"].params["alpha"][0] == 3.0
    assert PARTITION_SCHEMES["quantity_skew"].params["distribution"][0] == "dirichlet"
    assert all(info.title and info.description for info in PARTITION_SCHEMES.values())
