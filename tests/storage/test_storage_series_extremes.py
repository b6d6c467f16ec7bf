"""read_step_series keeps, per bucket, exactly the first step of the bucket's min and of its max
(checked against an independent pandas computation; NULL values and gaps in the steps included)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from storage import Store


def test_extreme_rows_per_bucket_match_pandas(store_url):
    store = Store(store_url)
    run = store.create_run(name="r", config={}, seed=0)
    rng = np.random.default_rng(4)
    steps = np.sort(rng.choice(np.arange(5, 9000), size=4000, replace=False))  # gaps between steps
    loss = rng.normal(1.0, 0.3, steps.size).round(2)  # rounded: ties inside buckets
    rows = [
        {"step": int(s), "loss": None if i % 17 == 0 else float(v)}
        for i, (s, v) in enumerate(zip(steps, loss))
    ]
    store.add_step_metrics(run, rows)
    max_points = 301
    sample = store.read_step_series(run, ["loss"], max_points=max_points, extremes=["loss"])
    first, last = int(steps[0]), int(steps[-1])
    buckets = (max_points - 1) // 3
    width = -(-(last - first + 1) // buckets)
    frame = pd.DataFrame(rows).dropna()
    frame["bucket"] = (frame["step"] - first) // width
    expected = set(frame.loc[frame.groupby("bucket")["loss"].idxmin(), "step"])  # idxmin: first of ties
    expected |= set(frame.loc[frame.groupby("bucket")["loss"].idxmax(), "step"])
    expected |= {s for s in steps if (s - first) % width == 0} | {last}
    assert set(sample["step"]) == expected
