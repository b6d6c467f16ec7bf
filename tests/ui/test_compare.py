"""Compare helpers: alignment on x, EMA, seed bands, config diff, summary and CSV."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from app.ui.views.compare import (
    CompareError,
    align_series,
    config_diff,
    mean_band,
    seed_groups,
    smooth,
    summary_table,
    time_to_target,
    to_csv_bytes,
)


def _steps(n_epochs=2, per_epoch=5, loss=1.0, dt=0.5):
    steps = np.arange(1, n_epochs * per_epoch + 1)
    return pd.DataFrame(
        {
            "step": steps,
            "epoch": (steps - 1) // per_epoch + 1,  # 1-based, as the engine logs
            "loss": loss / steps,
            "sim_time": steps * dt,
            "wall_time": steps * 0.1,
        }
    )


def _epochs(accs, per_epoch=5, dt=0.5):
    steps = per_epoch * np.arange(1, len(accs) + 1)
    return pd.DataFrame(
        {
            "epoch": range(1, len(accs) + 1),
            "step": steps,
            "test_acc": accs,
            "sim_time": steps * dt,
            "wall_time": steps * 0.1,
        }
    )


def test_align_on_every_axis():
    long = align_series({1: _steps()}, {1: _epochs([0.5, 0.7])}, "epoch", "loss")
    # Fractional epoch: step 5 of 5 ends epoch 1 at x = 1.0, the last step at x = 2.0.
    assert long["x"].iloc[4] == pytest.approx(1.0) and long["x"].iloc[-1] == pytest.approx(2.0)
    acc = align_series({1: _steps()}, {1: _epochs([0.5, 0.7])}, "epoch", "test_acc")
    assert list(acc["x"]) == [1.0, 2.0]
    sim = align_series({1: _steps()}, {}, "sim_time", "loss")
    assert list(sim["x"][:2]) == [0.5, 1.0]
    with pytest.raises(CompareError, match="x axis"):
        align_series({}, {}, "time", "loss")


def test_ema_matches_debiased_formula():
    long = pd.DataFrame({"run_id": 1, "x": [1.0, 2.0, 3.0], "value": [1.0, 0.0, 0.0]})
    out = smooth(long, 0.5)["value"].to_numpy()
    # Debiased EMA: weights 0.5^k normalised; at t=1 (1*0.5 + 0*1)/(1.5).
    assert out == pytest.approx([1.0, 0.5 / 1.5, 0.25 / 1.75])
    assert smooth(long, 0.0) is long


def test_seed_groups_and_band():
    base = {"name": "a", "seed": 0, "sampling": {"method": "ugs"}}
    configs = {1: base, 2: {**base, "seed": 1, "name": "b"}, 3: {**base, "sampling": {"method": "lds"}}}
    groups = seed_groups(configs)
    assert groups[1] == groups[2] != groups[3]
    long = pd.concat(
        [
            pd.DataFrame({"run_id": 1, "x": [1.0, 2.0, 3.0], "value": [1.0, 2.0, 3.0]}),
            pd.DataFrame({"run_id": 2, "x": [1.0, 2.0, 3.0], "value": [3.0, 4.0, 5.0]}),
            pd.DataFrame({"run_id": 3, "x": [1.0, 2.0], "value": [0.0, 0.0]}),
        ]
    )
    band = mean_band(long, groups)
    pair = band[band["group"] == groups[1]]
    assert list(pair["mean"]) == [2.0, 3.0, 4.0]
    assert pair["std"].to_numpy() == pytest.approx(np.full(3, np.sqrt(2.0)))  # sample std of {a, a+2}
    assert (band[band["group"] == groups[3]]["std"] == 0).all()


def test_config_diff_differences_only():
    a = {
        "seed": 0,
        "sampling": {"method": "ugs", "batch_size": 64},
        "system": {"clients": [{"device": "rpi4b"}]},
    }
    b = {
        "seed": 1,
        "sampling": {"method": "ugs", "batch_size": 64},
        "system": {"clients": [{"device": "rpi3b"}]},
    }
    full = config_diff({"#1": a, "#2": b})
    assert "sampling.batch_size" in full.index
    diff = config_diff({"#1": a, "#2": b}, differences_only=True)
    assert set(diff.index) == {"seed", "system.clients"}
    assert diff.loc["seed", "#2"] == "1"


def test_time_to_target_and_summary_csv():
    epochs = _epochs([0.5, 0.8, 0.95])
    assert time_to_target(_steps(3), epochs, 0.8) == {
        "steps to target": 10.0,
        "sim s to target": 5.0,
        "wall s to target": pytest.approx(1.0),
    }
    assert time_to_target(_steps(3), epochs, 0.99)["steps to target"] is None
    summary = summary_table({7: "#7 run"}, {7: _steps(3)}, {7: epochs}, 0.9)
    row = summary.iloc[0]
    assert row["final test acc"] == 0.95 and row["best test acc"] == 0.95 and row["steps to target"] == 15
    back = pd.read_csv(io.BytesIO(to_csv_bytes(summary)))
    assert list(back.columns) == list(summary.columns) and back.loc[0, "steps"] == 15


def test_epoch_axis_is_not_off_by_one():
    """Defect 2: a 3-epoch run was drawn 1→4 with the epoch-1 accuracy at x = 2."""
    steps, epochs = _steps(n_epochs=3, per_epoch=4), _epochs([0.5, 0.6, 0.7], per_epoch=4)
    for hint in (None, {1: 4}):
        loss = align_series({1: steps}, {1: epochs}, "epoch", "loss", steps_per_epoch=hint)
        acc = align_series({1: steps}, {1: epochs}, "epoch", "test_acc", steps_per_epoch=hint)
        assert loss["x"].min() == pytest.approx(0.25) and loss["x"].max() == pytest.approx(3.0)
        assert list(acc["x"]) == [1.0, 2.0, 3.0]
        # The last step of epoch 1 and the epoch-1 accuracy share x = 1.
        assert loss["x"].iloc[3] == pytest.approx(acc["x"].iloc[0])
    # First epoch still running, no epoch row yet: steps stay within [0, 1].
    running = _steps(n_epochs=1, per_epoch=4).iloc[:3]
    x = align_series({1: running}, {}, "epoch", "loss")["x"]
    assert x.min() > 0 and x.max() <= 1.0
    # A sampled series (rows missing) still lands exactly with T from the epoch rows.
    sampled = steps.iloc[[0, 5, 11]]
    x = align_series({1: sampled}, {1: epochs}, "epoch", "loss")["x"]
    assert list(x) == pytest.approx([0.25, 1.5, 3.0])


def test_config_diff_equal_none_values_are_not_differences():
    """Defect 1: keys that are None in every run were listed as differences (and exported)."""
    a = {"seed": 0, "data": {"data_dir": None, "train_limit": None}, "model": {"cut2": None}}
    b = {"seed": 1, "data": {"data_dir": None, "train_limit": None}, "model": {"cut2": None}}
    diff = config_diff({"#1": a, "#2": b}, differences_only=True)
    assert list(diff.index) == ["seed"]
    csv = pd.read_csv(io.BytesIO(to_csv_bytes(diff, index=True)))
    assert list(csv["setting"]) == ["seed"]
    full = config_diff({"#1": a, "#2": b})
    assert full.loc["data.data_dir", "#1"] == "none"
    # None against a value, and a key one run lacks, are differences.
    c = {"seed": 0, "data": {"data_dir": "/x", "train_limit": None}}
    diff = config_diff({"#1": a, "#3": c}, differences_only=True)
    assert set(diff.index) == {"data.data_dir", "model.cut2"}
    assert diff.loc["model.cut2", "#3"] == "(absent)"


def test_summary_display_says_not_reached():
    """Defect 11: 'None' was shown for a target never reached."""
    from app.ui.views.compare import summary_display

    summary = summary_table(
        {7: "a", 8: "b"},
        {7: _steps(3), 8: _steps(3)},
        {7: _epochs([0.5, 0.8, 0.95]), 8: _epochs([0.1, 0.2, 0.3])},
        0.9,
    )
    shown = summary_display(summary)
    assert list(shown["steps to target"]) == ["15", "not reached"]
    assert (
        "None"
        not in shown[["steps to target", "sim s to target", "wall s to target"]]
        .astype(str)
        .to_numpy()
        .ravel()
        .tolist()
    )


def test_summary_display_leaves_out_measurements_no_run_made():
    """The run page showed 'MB per client: None, J per client: None' for a run that logs no traffic."""
    from app.ui.views.compare import summary_display

    epochs = _epochs([0.5, 0.8])
    summary = summary_table({7: "a"}, {7: _steps(2)}, {7: epochs}, 0.9)
    shown = summary_display(summary)
    assert "MB per client" in summary and not {"MB per client", "J per client"} & set(shown.columns)
    measured = epochs.assign(bytes_per_client=[1e6, 2e6])
    shown = summary_display(
        summary_table({7: "a", 8: "b"}, {7: _steps(2), 8: _steps(2)}, {7: measured, 8: epochs}, 0.9)
    )
    assert list(shown["MB per client"].fillna(-1)) == [2.0, -1] and "J per client" not in shown
