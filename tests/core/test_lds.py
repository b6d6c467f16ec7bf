"""LDS (SPEC section 2, project definition): shares, knobs c and delta, caps, streaming, state."""

import numpy as np
import pytest

from psl_core.sampling import ClientSampler, LDSSampler, ScheduleError, epoch_counts

SIZES = np.array([300, 900, 150, 450, 200])  # N = 2000


def _clients(sizes):
    offsets = np.r_[0, np.cumsum(sizes)]
    return [np.arange(offsets[k], offsets[k + 1]) for k in range(len(sizes))]


def _epochs(sampler, epochs, seed):
    rng = np.random.default_rng(seed)
    return np.concatenate([sampler.epoch_counts(rng).to_dense() for _ in range(epochs)])


def test_epoch_has_ceil_n_over_b_steps_of_b():
    lds = LDSSampler(SIZES, 64)
    cm = lds.epoch_counts(np.random.default_rng(0))
    assert cm.num_steps == -(-SIZES.sum() // 64)
    assert (cm.step_totals() == 64).all()


def test_c1_delta0_mean_share_matches_data_share():
    batch = 40
    dense = _epochs(LDSSampler(SIZES, batch), 40, seed=1)
    shares = dense / batch
    se = shares.std(axis=0, ddof=1) / np.sqrt(shares.shape[0])
    assert (np.abs(shares.mean(axis=0) - SIZES / SIZES.sum()) < 4 * se).all()


def test_c1_share_variance_matches_uniform_sampling_without_replacement():
    n, batch = int(SIZES.sum()), 40
    lds = LDSSampler(SIZES, batch)
    theta = lds.draw_shares(np.random.default_rng(2), 20_000)
    p = SIZES / n
    hypergeom_share_var = p * (1 - p) * (n - batch) / (batch * (n - 1))
    # relative standard error of a sample variance of 20k draws is about 1-3 %: allow 10 %
    assert np.allclose(theta.var(axis=0), hypergeom_share_var, rtol=0.10)
    assert np.allclose(theta.mean(axis=0), p, atol=4 * np.sqrt(hypergeom_share_var / 20_000))


def test_polya_urn_counts_are_dirichlet_multinomial():
    batch = 40
    lds = LDSSampler(SIZES, batch)
    draws = lds.draw_demand(np.random.default_rng(3), 20_000)
    counts = np.stack([(draws == k).sum(axis=1) for k in range(SIZES.size)], axis=1)
    p, a = SIZES / SIZES.sum(), lds.alpha_total
    dm_var = batch * p * (1 - p) * (batch + a) / (1 + a)
    assert np.allclose(counts.var(axis=0), dm_var, rtol=0.10)
    assert np.allclose(counts.mean(axis=0), batch * p, atol=4 * np.sqrt(dm_var / 20_000))


def test_raising_delta_moves_samples_away_from_slow_clients():
    latency = np.array([1.0, 1.0, 1.0, 1.0, 4.0])  # client 4 is slow
    sizes = np.array([400, 400, 400, 400, 400])
    means, ses = [], []
    for delta in [0.0, 0.5, 1.0, 2.0]:
        lds = LDSSampler(sizes, 40, delta=delta, latency_per_sample=latency)
        assert lds.pi[4] < 0.2 or delta == 0.0
        share = _epochs(lds, 20, seed=4)[:, 4] / 40
        means.append(share.mean())
        ses.append(share.std(ddof=1) / np.sqrt(share.size))
    for i in range(len(means) - 1):
        assert means[i + 1] < means[i] - 2 * np.hypot(ses[i], ses[i + 1])


def test_raising_c_lowers_share_variance():
    variances = [
        (_epochs(LDSSampler(SIZES * 20, 40, c=c), 1, seed=5)[:, 1] / 40).var(ddof=1)
        for c in [0.25, 1, 8, 1000]
    ]
    assert all(a > 1.2 * b for a, b in zip(variances, variances[1:-1]))
    assert variances[-1] < variances[-2]
    # large c: shares deterministic, counts close to multinomial(B, pi)
    p = 900 / 2000
    assert variances[-1] == pytest.approx(p * (1 - p) / 40, rel=0.15)


@pytest.mark.parametrize(
    "sizes, batch, c, delta",
    [
        ([300, 900, 150, 450, 200], 64, 1.0, 0.0),
        ([1, 2, 3, 5, 40, 0, 7], 16, 1.0, 0.0),
        ([1, 2, 3, 5, 40, 0, 7], 16, 0.2, 3.0),
        ([3, 4, 2, 60], 50, 1.0, 2.0),
        ([30, 7, 5], 40, 50.0, 0.0),
    ],
)
def test_caps_hold_and_streaming_uses_every_sample_once_per_pass(sizes, batch, c, delta):
    sizes = np.array(sizes)
    latency = np.linspace(0.1, 2.0, sizes.size)
    lds = LDSSampler(sizes, batch, c=c, delta=delta, latency_per_sample=latency)
    sampler = ClientSampler(_clients(sizes))
    rng = np.random.default_rng(6)
    used = np.zeros(sizes.size, dtype=np.int64)
    streams = [[] for _ in sizes]
    for _ in range(6):
        cm = lds.epoch_counts(rng)
        assert cm.num_steps == -(-sizes.sum() // batch)
        dense = cm.to_dense()
        assert (dense.sum(axis=1) <= batch).all()
        for t in range(cm.num_steps):  # small cases: a loop over steps in the TEST is fine
            room = np.where(sizes > 0, sizes - used % np.maximum(sizes, 1), 0)
            assert (dense[t] <= room).all(), "a step took more than a client had left in its pass"
            used += dense[t]
            # a short step only when no client has room left
            if dense[t].sum() < batch:
                assert (dense[t] == room).all()
        batches = sampler.epoch(cm, rng, streaming=True)
        for k in range(sizes.size):
            streams[k].append(batches.sample_index[batches.client_id == k])
    for k, n in enumerate(sizes):
        stream = np.concatenate(streams[k])
        full = stream[: (stream.size // max(n, 1)) * n].reshape(-1, n) if n else np.zeros((0, 0))
        for one_pass in full:
            assert np.array_equal(np.sort(one_pass), _clients(sizes)[k])
        assert np.unique(stream[full.size :]).size == stream.size - full.size


def test_same_seed_same_counts_and_state_round_trip():
    a, b = LDSSampler(SIZES, 64), LDSSampler(SIZES, 64)
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    for _ in range(2):
        assert np.array_equal(a.epoch_counts(rng_a).to_dense(), b.epoch_counts(rng_b).to_dense())
    state, rng_state = a.state_dict(), rng_a.bit_generator.state
    after = a.epoch_counts(rng_a).to_dense()
    resumed = LDSSampler(SIZES, 64)
    resumed.load_state_dict(state)
    rng_c = np.random.default_rng()
    rng_c.bit_generator.state = rng_state
    assert np.array_equal(resumed.epoch_counts(rng_c).to_dense(), after)


def test_dispatcher_and_tiny_federation():
    lds = LDSSampler([3, 2], 8)
    cm = epoch_counts("lds", [3, 2], 8, np.random.default_rng(0), lds=lds)
    assert cm.num_steps == 1 and cm.to_dense().tolist() == [[3, 2]]
    with pytest.raises(ScheduleError, match="rebuild"):
        epoch_counts("lds", [3, 3], 8, np.random.default_rng(0), lds=lds)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"c": 0.0}, "c must be > 0"),
        ({"delta": -1.0}, "delta must be"),
        ({"latency_per_sample": np.ones(3)}, "latency_per_sample"),
    ],
)
def test_bad_knobs_raise(kwargs, message):
    with pytest.raises(ScheduleError, match=message):
        LDSSampler(SIZES, 32, **kwargs)


def test_caps_hold_on_many_random_small_federations():
    rng = np.random.default_rng(11)
    for _ in range(40):
        k = int(rng.integers(1, 8))
        sizes = rng.integers(0, 30, k)
        sizes[0] += 1
        batch = int(rng.integers(1, 40))
        lds = LDSSampler(
            sizes,
            batch,
            c=float(rng.choice([0.1, 1, 10])),
            delta=float(rng.choice([0, 2])),
            latency_per_sample=rng.random(k),
        )
        used = np.zeros(k, dtype=np.int64)
        for _ in range(3):
            dense = lds.epoch_counts(rng).to_dense()
            for row in dense:
                room = np.where(sizes > 0, sizes - used % np.maximum(sizes, 1), 0)
                assert (row <= room).all()
                assert row.sum() == batch or (row == room).all()
                used += row
            assert np.array_equal(lds.state_dict()["used"], used % np.maximum(sizes, 1))
