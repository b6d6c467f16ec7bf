"""Pure functions behind the Learn page: schedules on a toy federation, split-point costs, stragglers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import hypergeom

from app.ui.views import learn, learn_split
from psl_core.devices import StragglerModel, StragglerSpec, epoch_timing
from psl_core.models import cut_table, profile_arch


@pytest.fixture(scope="module")
def federation():
    return learn.toy_federation(8, 0.1, seed=0)


@pytest.fixture(scope="module")
def walks(federation):
    return learn.walk_all(federation, 32, seed=0)


def test_toy_federation_is_a_complete_non_iid_partition(federation):
    sizes = federation.client_sizes
    assert sizes.sum() == federation.labels.size == 1438
    assert sizes.min() >= learn.MIN_CLIENT_SAMPLES
    # α = 0.1 concentrates classes: some client's label mix is far (L1 > 1) from p(c).
    mix = federation.partition.counts / sizes[:, None]
    assert np.abs(mix - federation.label_distribution).sum(axis=1).max() > 1.0


def test_every_sample_is_used_once_by_fls_fpls_ugs(federation, walks):
    for method in ("fls", "fpls", "ugs"):
        walk = walks[method]
        assert np.array_equal(np.sort(walk.batch_labels), np.sort(federation.labels)), method
    assert walks["ugs"].num_steps == -(-1438 // 32)
    b = max(1, round(32 / 8))
    assert walks["fls"].num_steps == int(np.max(-(-federation.client_sizes // b)))
    assert (walks["lds"].counts.step_totals() == 32).all()


def test_deviation_matches_the_label_histogram_of_each_batch(federation, walks):
    walk = walks["fpls"]
    p = federation.label_distribution
    for t in (0, walk.num_steps - 1):
        lo, hi = walk.step_offsets[t], walk.step_offsets[t + 1]
        p_hat = np.bincount(walk.batch_labels[lo:hi], minlength=10) / (hi - lo)
        assert walk.deviation[t] == pytest.approx(np.abs(p_hat - p).sum())


def test_ugs_deviation_matches_uniform_sampling_and_beats_fls(federation, walks):
    # Exact E[dev] of a uniform batch of B = 32 without replacement: hypergeometric per class.
    n, batch, p = federation.labels.size, 32, federation.label_distribution
    class_sizes = np.bincount(federation.labels)
    x = np.arange(batch + 1)
    expected = sum(
        (hypergeom.pmf(x, n, int(k), batch) * np.abs(x / batch - pc)).sum() for k, pc in zip(class_sizes, p)
    )
    means = [learn.walk_schedule(federation, "ugs", batch, seed=s).deviation for s in range(5)]
    pooled = np.concatenate(means)
    # 225 steps; the per-step std is about 0.15, so the standard error is about 0.01: 4 SE tolerance.
    assert pooled.mean() == pytest.approx(expected, abs=0.04)
    assert walks["fls"].mean_deviation > expected + 0.3  # FLS's late batches come from few clients


def test_composition_frames_add_up_to_the_count_matrix(walks):
    by_client = learn.composition_frame(walks, "client", 5)
    ugs = by_client[by_client["method"] == "UGS"]
    dense = walks["ugs"].counts.to_dense()[:5]
    for row in ugs.itertuples():
        assert dense[row.step, row.client] == row.count
    assert ugs["count"].sum() == dense.sum()
    by_class = learn.composition_frame(walks, "class", 5)
    totals = by_class.groupby(["method", "step"])["count"].sum()
    assert (totals.loc["FPLS"].to_numpy() == walks["fpls"].counts.step_totals()[:5]).all()
    with pytest.raises(learn.LearnInputError, match="'class' or 'client'"):
        learn.composition_frame(walks, "device", 5)


def test_step_class_shares_are_a_distribution_or_empty(federation, walks):
    shares = learn.step_class_shares(walks, 3, federation.label_distribution)
    assert shares.groupby("method")["batch share"].sum().to_numpy() == pytest.approx(np.ones(4))
    past_end = learn.step_class_shares(walks, 10_000, federation.label_distribution)
    assert past_end["batch share"].sum() == 0


def test_unknown_method_is_refused(federation):
    with pytest.raises(learn.LearnInputError, match="choose one of"):
        learn.walk_schedule(federation, "fedavg", 32)


@pytest.fixture(scope="module")
def straggler_runs(federation):
    devices = learn.assign_devices(["rpi4b", "jetson_gpu"], 8)
    system = learn.straggler_system(devices, "resnet8", "layer1.0")
    spec = StragglerSpec(persistent_fraction=0.25, persistent_factor=10.0, transient_prob=0.1)
    runs = {
        "UGS": learn.straggler_epoch(federation, system, spec, "ugs", 32, seed=0),
        "LDS": learn.straggler_epoch(federation, system, spec, "lds", 32, seed=0, lds_delta=2.0),
    }
    return system, runs, StragglerModel(8, spec, 0).persistent > 1


def test_assign_devices_round_robin_and_empty_mix():
    assert learn.assign_devices(["a", "b"], 5) == ["a", "b", "a", "b", "a"]
    with pytest.raises(learn.LearnInputError, match="at least one device"):
        learn.assign_devices([], 3)


def test_step_timeline_phases_add_up_to_the_time_model(straggler_runs):
    system, runs, _ = straggler_runs
    run = runs["UGS"]
    counts, timing = run.walk.counts, run.timing
    timeline = learn.step_timeline(run, system, 4)
    lo, hi = np.searchsorted(counts.step, [4, 5])
    busy = timeline[~timeline["phase"].isin(["waiting", "server"])].assign(d=lambda f: f.end - f.start)
    per_client = busy.groupby("client")["d"].sum()
    expected = timing.client_time[lo:hi]
    assert per_client.loc[counts.client[lo:hi]].to_numpy() == pytest.approx(expected)
    # Every client's row (busy + waiting) spans the whole step; the barriers are the phase ends.
    span = timeline[timeline["client"] >= 0].assign(d=lambda f: f.end - f.start).groupby("client")["d"].sum()
    assert span.to_numpy() == pytest.approx(np.full(system.num_clients, timing.step_time[4]))
    server = timeline[timeline["phase"] == "server"].iloc[0]
    assert server["start"] == pytest.approx(timing.fwd_phase[4])
    assert server["end"] - server["start"] == pytest.approx(timing.server_time[4])
    sync_end = timeline[timeline["phase"] == "sync"]["end"].max()
    assert sync_end == pytest.approx(timing.step_time[4])
    with pytest.raises(learn.LearnInputError, match="step must be in"):
        learn.step_timeline(run, system, counts.num_steps)


def test_lds_with_delta_moves_samples_away_from_stragglers(straggler_runs, federation):
    system, runs, slow = straggler_runs
    summary = learn.straggler_summary(runs, slow).set_index("schedule")
    ugs_share = summary.loc["UGS", "share of samples from persistent stragglers"]
    # UGS uses each sample once: its share is exactly the stragglers' share of the data.
    assert ugs_share == pytest.approx(federation.client_sizes[slow].sum() / federation.client_sizes.sum())
    assert summary.loc["LDS", "share of samples from persistent stragglers"] < ugs_share / 2
    assert summary.loc["LDS", "mean step time (s)"] < summary.loc["UGS", "mean step time (s)"]
    # Same schedule, recomputed: the summary's epoch time is the time model's sum.
    counts = runs["UGS"].walk.counts
    timing = epoch_timing(
        counts.step, counts.client, counts.count, counts.num_steps, system, runs["UGS"].slowdown
    )
    assert summary.loc["UGS", "epoch time (s)"] == pytest.approx(timing.step_time.sum())


# --------------------------------------------------------------------------- split point


def test_cut_cost_frame_follows_the_profile():
    frame = learn_split.cut_cost_frame("resnet8", 32)
    profile = profile_arch("resnet8", (1, 8, 8), 10)
    cuts = cut_table(profile)
    assert list(frame["after block"]) == [c.cut_name for c in cuts]
    assert (np.diff(frame["client FLOPs share (%)"]) >= 0).all()
    assert (np.diff(frame["client memory (KiB)"]) > 0).all()
    assert list(frame["smashed bytes / sample"]) == [c.smashed_bytes_per_sample for c in cuts]
    with pytest.raises(learn_split.SplitInputError, match="batch size"):
        learn_split.cut_cost_frame("resnet8", 0)


def test_input_match_is_one_for_a_copy_and_nan_for_flat():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(3, 1, 8, 8))
    acts = np.concatenate([rng.normal(size=(3, 2, 8, 8)), images], axis=1)
    assert learn_split.input_match(images, acts) == pytest.approx(np.ones(3))
    noise = learn_split.input_match(images, rng.normal(size=(3, 2, 8, 8)))
    assert (noise < 0.8).all()
    assert np.isnan(learn_split.input_match(images, rng.normal(size=(3, 64)))).all()


def test_top_channels_and_mosaic():
    acts = np.zeros((2, 3, 4, 4))
    acts[:, 2] = np.arange(16).reshape(4, 4)
    assert learn_split.top_channels(acts, 1).tolist() == [2]
    mosaic = learn_split.activation_mosaic(np.ones((2, 1, 8, 8)), acts, np.array([2, 0]), tile=16)
    assert mosaic.shape == (2 * 16 + 4, 3 * 16 + 8)
    assert mosaic.min() >= 0 and mosaic.max() <= 1
    assert mosaic[0, 16 + 4] == 0 and mosaic[15, 16 + 4 + 15] == 1  # channel 2 scaled to [0, 1]


def test_deeper_cuts_leak_less_and_model_is_seeded():
    model = learn_split.train_digits_model("resnet8", steps=3)
    again = learn_split.train_digits_model("resnet8", steps=3)
    images, labels = learn_split.digits_samples(4)
    assert len(set(labels.tolist())) == 4
    assert np.array_equal(
        learn_split.cut_activations(model, images, 2), learn_split.cut_activations(again, images, 2)
    )
    leakage = learn_split.leakage_by_cut(model, images)["best-channel |correlation| with input"].to_numpy()
    assert leakage[0] > leakage[3] + 0.2  # stem (8×8) vs layer3.0 (2×2)
    assert np.isnan(leakage[-1])  # after the pool the layout is gone
    with pytest.raises(learn_split.SplitInputError, match="supports"):
        learn_split.train_digits_model("mlp")
    with pytest.raises(learn_split.SplitInputError, match="cut must be in"):
        learn_split.cut_activations(model, images, 0)


def test_cut_activations_shape_matches_profile():
    model = learn_split.train_digits_model("cnn", steps=1)
    images, _ = learn_split.digits_samples(2)
    acts = learn_split.cut_activations(model, images, 1)
    assert acts.shape[1:] == profile_arch("cnn", (1, 8, 8), 10).blocks[0].out_shape
    assert isinstance(images, torch.Tensor)
