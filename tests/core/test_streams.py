"""ClientSampler (counts -> sample indices) and batch deviation."""

import numpy as np
import pytest

from psl_core.sampling import (
    ClientSampler,
    CountMatrix,
    LDSSampler,
    ScheduleError,
    batch_deviation,
    fls_counts,
    label_distribution,
    ugs_counts,
)


def _partition(sizes, seed=0):
    perm = np.random.default_rng(seed).permutation(int(np.sum(sizes)))
    return np.split(perm, np.cumsum(sizes)[:-1])


def test_non_streaming_uses_own_samples_without_replacement_grouped_by_client():
    sizes = [5, 0, 13, 7]
    parts = _partition(sizes)
    sampler = ClientSampler(parts)
    rng = np.random.default_rng(1)
    cm = ugs_counts(sizes, 4, rng)
    first = sampler.epoch(cm, rng)
    owner = np.empty(25, dtype=np.int64)
    for k, p in enumerate(parts):
        owner[p] = k
    assert np.array_equal(owner[first.sample_index], first.client_id)
    assert np.array_equal(np.sort(first.sample_index), np.arange(25))
    for t in range(cm.num_steps):
        idx, cli = first.step(t)
        assert np.all(np.diff(cli) >= 0)  # rows of one step grouped by client, ascending
        clients, counts = cm.step_slice(t)
        assert np.array_equal(np.bincount(cli, minlength=4)[clients], counts)
    second = sampler.epoch(cm, rng)
    assert not np.array_equal(first.sample_index, second.sample_index)  # fresh local permutations


def test_non_streaming_refuses_more_than_a_client_holds():
    sampler = ClientSampler(_partition([3, 2]))
    with pytest.raises(ScheduleError, match="streaming=True"):
        sampler.epoch(CountMatrix.from_dense(np.array([[4, 0]])), np.random.default_rng())


def test_streaming_continues_passes_and_state_round_trip():
    sizes = np.array([7, 3, 11])
    parts = _partition(sizes, seed=2)
    lds = LDSSampler(sizes, 5)
    rng = np.random.default_rng(3)
    sampler = ClientSampler(parts)
    counts = [lds.epoch_counts(rng) for _ in range(4)]
    out = [sampler.epoch(counts[0], rng, streaming=True)]
    state, rng_state = sampler.state_dict(), rng.bit_generator.state
    out += [sampler.epoch(cm, rng, streaming=True) for cm in counts[1:]]
    for k in range(3):
        stream = np.concatenate([b.sample_index[b.client_id == k] for b in out])
        passes = stream[: stream.size // sizes[k] * sizes[k]].reshape(-1, sizes[k])
        assert all(np.array_equal(np.sort(p), np.sort(parts[k])) for p in passes)
    resumed = ClientSampler(parts)
    resumed.load_state_dict(state)
    rng2 = np.random.default_rng()
    rng2.bit_generator.state = rng_state
    again = [resumed.epoch(cm, rng2, streaming=True) for cm in counts[1:]]
    assert all(np.array_equal(a.sample_index, b.sample_index) for a, b in zip(again, out[1:]))


def test_batch_deviation_hand_computed():
    labels = np.array([0, 0, 1, 1, 1, 2])
    p = label_distribution(labels, 3)
    assert np.allclose(p, [1 / 3, 1 / 2, 1 / 6])
    # step 0 = [0, 0] -> p_hat (1, 0, 0): |1-1/3| + 1/2 + 1/6 = 4/3 ; step 1 = [1, 2, 0, 1] -> (1/4, 1/2, 1/4)
    dev = batch_deviation(np.array([0, 0, 1, 2, 0, 1]), np.array([0, 2, 6]), p)
    assert np.allclose(dev, [4 / 3, 1 / 12 + 0 + 1 / 12])
    with pytest.raises(ValueError, match="step_offsets"):
        batch_deviation(labels, np.array([0, 3]), p)


def test_ugs_has_lower_deviation_than_fls_on_severe_non_iid():
    # 10 clients, 2 classes each, unequal sizes: FLS batches lose the small clients' classes late.
    rng = np.random.default_rng(4)
    sizes = np.array([50, 80, 120, 200, 300, 60, 90, 150, 250, 400])
    labels_by_client = [rng.choice([2 * (k % 5), 2 * (k % 5) + 1], n) for k, n in enumerate(sizes)]
    labels = np.concatenate(labels_by_client)
    offsets = np.r_[0, np.cumsum(sizes)]
    sampler = ClientSampler([np.arange(offsets[k], offsets[k + 1]) for k in range(sizes.size)])
    p = label_distribution(labels, 10)
    means = {}
    for name, cm in [("ugs", ugs_counts(sizes, 64, rng)), ("fls", fls_counts(sizes, 64))]:
        b = sampler.epoch(cm, rng)
        means[name] = batch_deviation(labels[b.sample_index], b.step_offsets, p).mean()
    assert means["ugs"] < 0.6 * means["fls"]
