"""Previews without training: partition heatmap, model split, schedule, device mix, and their charts."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import pytest

from app.ui.charts import preview as charts
from app.ui.views import previews
from app.ui.views.presets import DEMO_PRESET, preset_config
from psl_core.config import apply_overrides, parse_config
from psl_core.data import partition_labels
from psl_core.models import profile_arch

DIGITS_SHAPE = (1, 8, 8)
CLASSES = [str(i) for i in range(10)]


@pytest.fixture(scope="module")
def labels():
    # 1,000 labels, 100 per class, shuffled: stands in for a data set (previews only need labels).
    return np.random.default_rng(0).permutation(np.repeat(np.arange(10), 100))


def _config(**overrides):
    return apply_overrides(parse_config(preset_config(DEMO_PRESET)), overrides)


def _partition(labels, config):
    p = config.partition
    return partition_labels(
        labels, p.num_clients, p.scheme, num_classes=10, seed=config.seed, **p.scheme_params()
    )


def test_heatmap_frame_holds_every_count_and_subsets_many_clients_with_a_note():
    counts = np.arange(6 * 10).reshape(6, 10)
    frame, note = previews.partition_heatmap_frame(counts, CLASSES)
    assert note is None and len(frame) == 60 and frame["count"].sum() == counts.sum()
    assert frame.loc[(frame.client == 2) & (frame["class"] == "3"), "count"].item() == counts[2, 3]
    many = np.ones((500, 10), dtype=int)
    frame, note = previews.partition_heatmap_frame(many, CLASSES, max_clients=40)
    assert frame["client"].nunique() == 40 and "40 of 500" in note
    assert (
        frame["client"].min() == 0 and frame["client"].max() == 499
    )  # spread over the ids, not the first 40
    with pytest.raises(ValueError, match="one per class"):
        previews.partition_heatmap_frame(counts, CLASSES[:3])
    assert isinstance(charts.partition_heatmap(frame), alt.Chart)


def test_model_split_sides_follow_the_cut_and_the_overview_adds_up():
    profile = profile_arch("cnn", DIGITS_SHAPE, 10)
    frame = previews.model_split_frame(profile, 2)
    assert list(frame["side"]) == ["client", "client", "server", "server"]
    u_shaped = previews.model_split_frame(profile, 1, 3)
    assert list(u_shaped["side"]) == ["client", "server", "server", "client"]
    config = _config(**{"model.cut": 2})
    overview = previews.cut_overview(profile, config)
    client = frame[frame.side == "client"]
    assert overview["client_flops_per_sample"] == pytest.approx(client["flops"].sum())
    assert overview["smashed_bytes_per_sample"] == frame.loc[1, "out_bytes"]
    b = overview["per_client_batch"]
    assert b == round(64 / 10)
    params_bytes = 4 * client["params"].sum()
    assert overview["client_memory_bytes"] == 3 * params_bytes + b * client["out_bytes"].sum()
    assert isinstance(charts.model_split_chart(frame), alt.Chart)


def test_group_cuts_give_each_group_its_own_cut():
    profile = profile_arch("cnn", DIGITS_SHAPE, 10)
    config = _config(
        **{
            "system.clients": [
                {"device": "rpi4b", "fraction": 0.5, "cut": "conv2"},
                {"device": "vm", "fraction": 0.5},
            ]
        }
    )
    frame = previews.group_cuts_frame(profile, config)
    assert list(frame["cut"]) == [2, 1] and list(frame["cut_after"]) == ["conv2", "conv1"]
    assert frame.loc[0, "client_flops_per_sample"] > frame.loc[1, "client_flops_per_sample"]
    assert frame["fits"].all()


def test_schedule_preview_ugs_uses_every_sample_once_in_near_equal_batches(labels):
    config = _config()
    part = _partition(labels, config)
    sched = previews.schedule_preview(labels, part.client_indices, CLASSES, config)
    curve = sched.curves[sched.curves.method == "ugs"]
    assert list(sched.summary["method"]) == ["ugs"]  # the chosen method is UGS: no second curve
    assert curve["batch"].sum() == 1000 and curve["batch"].max() - curve["batch"].min() <= 1
    assert len(curve) == int(np.ceil(1000 / 64))
    first = sched.by_client.groupby("step")["count"].sum()
    assert len(first) == previews.PREVIEW_STEPS and (first == curve["batch"].iloc[:12].to_numpy()).all()
    assert (sched.by_class.groupby("step")["count"].sum().to_numpy() == first.to_numpy()).all()
    assert curve["step_time_s"].isna().all()  # no system given, no times invented


def test_fls_on_a_severe_partition_deviates_more_than_ugs(labels):
    # Seeded; FLS on 2-class clients gives late batches from few clients: its mean L1 deviation is far
    # above UGS's (≈ 0.6 vs ≈ 0.3 for B = 64 of 1,000), so a 0.1 margin cannot flip by chance.
    config = _config(**{"sampling.method": "fls", "partition.scheme": "extended_dirichlet",
                        "partition.classes_per_client": 2, "partition.alpha": 3.0})  # fmt: skip
    part = _partition(labels, config)
    sched = previews.schedule_preview(labels, part.client_indices, CLASSES, config)
    mean = sched.summary.set_index("method")["mean_deviation"]
    assert list(mean.index) == ["fls", "ugs"]
    assert mean["fls"] > mean["ugs"] + 0.1
    assert isinstance(charts.deviation_chart(sched.curves), alt.Chart)
    assert isinstance(charts.batch_composition_chart(sched.by_client, "client"), alt.Chart)


def test_device_mix_and_step_times_see_persistent_stragglers(labels):
    config = _config(
        **{
            "partition.num_clients": 20,
            "sampling.method": "lds",
            "sampling.lds_delta": 1.0,
            "system.stragglers.persistent_fraction": 0.2,
            "system.stragglers.persistent_factor": 10.0,
            "system.clients": [
                {"device": "rpi4b", "fraction": 0.5},
                {"device": "jetson_gpu", "fraction": 0.5},
            ],
        }
    )
    profile = profile_arch("cnn", DIGITS_SHAPE, 10)
    system, group_of = previews.client_system(profile, config)
    slow = previews.persistent_slowdown(config)
    assert (slow > 1).sum() == 4 and np.bincount(group_of).tolist() == [10, 10]
    mix = previews.device_mix_frame(config, system, group_of)
    assert mix["clients"].sum() == 20 and mix["stragglers"].sum() == 4
    rpi = mix.set_index("device").loc["rpi4b"]
    gpu = mix.set_index("device").loc["jetson_gpu"]
    assert rpi["compute_ms_per_sample"] > gpu["compute_ms_per_sample"]  # 1.2 vs 95 GFLOP/s
    part = _partition(labels, config)
    sched = previews.schedule_preview(
        labels, part.client_indices, CLASSES, config, system=system, slowdown=slow
    )
    assert sched.curves["step_time_s"].gt(0).all()
    assert isinstance(charts.device_mix_chart(mix), alt.LayerChart)
    assert isinstance(charts.step_time_chart(sched.curves), alt.Chart)


def test_downsample_keeps_short_curves_and_bins_long_ones():
    long = pd.DataFrame({"method": "ugs", "step": np.arange(10_000), "deviation": np.linspace(0, 1, 10_000),
                         "batch": 64, "step_time_s": 1.0})  # fmt: skip
    small = previews.downsample_steps(long, max_points=1000)
    assert len(small) == 1000 and small["step"].iloc[0] == 0 and small["step"].is_monotonic_increasing
    assert small["deviation"].mean() == pytest.approx(0.5, abs=1e-9)  # equal bins keep the mean
    assert len(previews.downsample_steps(long.iloc[:50])) == 50
