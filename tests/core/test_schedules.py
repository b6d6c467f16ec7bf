"""FLS / FPLS / UGS / centralised schedules and the CountMatrix type (SPEC section 2)."""

import numpy as np
import pytest
from scipy import stats

from psl_core.sampling import (
    SAMPLING_METHODS,
    ClientSampler,
    CountMatrix,
    ScheduleError,
    epoch_counts,
    fls_counts,
    fpls_counts,
    ugs_counts,
)

SKEWED = np.array([400, 1000, 300, 0, 200, 100])


def test_count_matrix_dense_round_trip_and_summaries():
    dense = np.array([[0, 2, 1], [3, 0, 0], [0, 0, 0], [1, 1, 1]])
    cm = CountMatrix.from_dense(dense)
    assert np.array_equal(cm.to_dense(), dense)
    assert cm.step_totals().tolist() == [3, 3, 0, 3]
    assert cm.client_totals().tolist() == [4, 3, 2]
    assert cm.active_clients().tolist() == [2, 1, 0, 3]
    clients, counts = cm.step_slice(0)
    assert clients.tolist() == [1, 2] and counts.tolist() == [2, 1]
    assert cm.step_slice(2)[0].size == 0
    merged = CountMatrix.from_entries(
        4, 3, [3, 0, 0, 1, 3, 3, 0], [0, 2, 1, 0, 1, 2, 1], [1, 1, 1, 3, 1, 1, 1]
    )
    assert np.array_equal(merged.to_dense(), dense)


def test_to_dense_refuses_huge_matrix():
    cm = CountMatrix(10_000, 10_000, np.zeros(0), np.zeros(0), np.zeros(0))
    with pytest.raises(ValueError, match="step_slice"):
        cm.to_dense()


@pytest.mark.parametrize("make", [lambda s, b: fls_counts(s, b), fpls_counts])
def test_fixed_schedules_drop_depleted_clients(make):
    cm = make(SKEWED, 50)
    dense = cm.to_dense()
    per_client = dense[0]  # the first step holds every non-empty client's b_k
    expected_steps = max(-(-n // b) for n, b in zip(SKEWED, per_client) if n > 0)
    assert cm.num_steps == expected_steps
    assert np.array_equal(dense.sum(axis=0), SKEWED)
    assert not dense[:, SKEWED == 0].any()
    for k in np.flatnonzero(SKEWED):
        col = dense[:, k]
        active = np.flatnonzero(col)
        # A client is active on a prefix of steps, full b_k until its last (possibly partial) batch.
        assert np.array_equal(active, np.arange(active.size))
        assert (col[active[:-1]] == per_client[k]).all() and col[active[-1]] <= per_client[k]


def test_fls_and_fpls_per_client_batch_rules():
    # K counts every client, the empty one too: round(50 / 6) = 8
    assert set(fls_counts(SKEWED, 50).to_dense()[0][SKEWED > 0]) == {8}
    assert fpls_counts(SKEWED, 50).to_dense()[0].tolist() == [10, 25, 8, 0, 5, 2]
    vanilla = fls_counts([7, 3], 128, per_client_batch=4)
    assert vanilla.to_dense().tolist() == [[4, 3], [3, 0]]
    assert fls_counts([5] * 300, 128).to_dense()[0].tolist() == [1] * 300  # max(1, round(B/K))


def test_ugs_structure_and_every_sample_once():
    rng = np.random.default_rng(1)
    n, batch = int(SKEWED.sum()), 64
    cm = ugs_counts(SKEWED, batch, rng)
    assert cm.num_steps == -(-n // batch)
    sizes = cm.step_totals()
    assert sizes.max() - sizes.min() <= 1 and sizes.sum() == n
    assert np.array_equal(cm.client_totals(), SKEWED)
    offsets = np.r_[0, np.cumsum(SKEWED)]
    sampler = ClientSampler([np.arange(offsets[k], offsets[k + 1]) for k in range(SKEWED.size)])
    batches = sampler.epoch(cm, rng)
    assert np.array_equal(np.sort(batches.sample_index), np.arange(n))
    assert np.array_equal(np.diff(batches.step_offsets), sizes)


def _hypergeom_chi2_pvalue(counts_of_client, pooled, owned, batch):
    """Chi-square goodness of fit of per-step counts against Hypergeom(pooled, owned, batch)."""
    support = np.arange(batch + 1)
    pmf = stats.hypergeom(pooled, owned, batch).pmf(support)
    observed = np.bincount(counts_of_client, minlength=batch + 1).astype(float)
    expected = pmf * counts_of_client.size
    # Merge the sparse tails so that every bin expects at least 5 observations.
    edges, acc = [], 0.0
    for i, e in enumerate(expected):
        acc += e
        if acc >= 5:
            edges.append(i + 1)
            acc = 0.0
    edges[-1] = batch + 1
    bins = np.split(np.arange(batch + 1), edges[:-1])
    obs = np.array([observed[b].sum() for b in bins])
    exp = np.array([expected[b].sum() for b in bins])
    return stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue


def _steps_counts(make, epochs, rng):
    # Client k holds only class k (severe non-IID), so client counts ARE class counts.
    out = []
    for _ in range(epochs):
        cm = make(rng)
        out.append(cm.to_dense()[:, 0])
    return np.concatenate(out)


def test_ugs_batches_follow_the_hypergeometric_law_and_fixed_schedules_do_not():
    rng = np.random.default_rng(2024)
    n, batch = int(SKEWED.sum()), 50  # 2000 / 50: every chunk has exactly B samples
    ugs = _steps_counts(lambda r: ugs_counts(SKEWED, batch, r), 60, rng)
    assert _hypergeom_chi2_pvalue(ugs, n, SKEWED[0], batch) > 0.01
    # mean and variance against the hypergeometric ones, tolerance 4 standard errors
    law = stats.hypergeom(n, SKEWED[0], batch)
    assert abs(ugs.mean() - law.mean()) < 4 * law.std() / np.sqrt(ugs.size)
    for make in (lambda r: fpls_counts(SKEWED, batch), lambda r: fls_counts(SKEWED, batch)):
        fixed = _steps_counts(make, 1, rng)
        fixed = np.resize(fixed, ugs.size)
        assert _hypergeom_chi2_pvalue(fixed, n, SKEWED[0], batch) < 1e-6


def test_centralised_needs_one_client_and_is_uniform():
    rng = np.random.default_rng(3)
    cm = epoch_counts("centralised", [1000], 64, rng)
    assert cm.num_steps == 16 and cm.total == 1000
    with pytest.raises(ScheduleError, match="merge the clients"):
        epoch_counts("centralised", [500, 500], 64, rng)


def test_dispatcher_matches_direct_calls_and_is_deterministic():
    a = epoch_counts("ugs", SKEWED, 32, np.random.default_rng(7))
    b = ugs_counts(SKEWED, 32, np.random.default_rng(7))
    assert np.array_equal(a.to_dense(), b.to_dense())
    c = ugs_counts(SKEWED, 32, np.random.default_rng(8))
    assert not np.array_equal(a.to_dense(), c.to_dense())
    assert set(SAMPLING_METHODS) == {"fls", "fpls", "ugs", "lds", "centralised"}
    assert SAMPLING_METHODS["lds"].project_definition and not SAMPLING_METHODS["ugs"].project_definition


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: ugs_counts([3, 4], 0, np.random.default_rng()), "batch_size"),
        (lambda: fls_counts([0, 0], 4), "every client is empty"),
        (lambda: fpls_counts([3, -1], 4), "negative"),
        (lambda: fls_counts([3, 1], 4, per_client_batch=0), "per_client_batch"),
        (lambda: epoch_counts("random", [3], 4, np.random.default_rng()), "choose one of"),
        (lambda: epoch_counts("lds", [3], 4, np.random.default_rng()), "LDSSampler"),
    ],
)
def test_bad_input_says_what_to_change(call, message):
    with pytest.raises(ScheduleError, match=message):
        call()
