"""Altair charts of the New-experiment previews (pure functions: frames from app.ui.views.previews in, charts out)."""

from __future__ import annotations

import altair as alt
import pandas as pd

from app.ui.views.previews import downsample_steps

MAX_COLOURED_CLIENTS = 20
SIDE_COLOURS = alt.Scale(domain=["client", "server"], range=["#1f77b4", "#ff7f0e"])


def partition_heatmap(frame: pd.DataFrame) -> alt.Chart:
    """Client × class heatmap of sample counts."""
    return (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=alt.X("class:N", title="class", sort=None),
            y=alt.Y("client:O", title="client"),
            color=alt.Color("count:Q", title="samples", scale=alt.Scale(scheme="blues")),
            tooltip=["client:O", "class:N", "count:Q", alt.Tooltip("client_size:Q", title="client total")],
        )
        .properties(height=alt.Step(16))
    )


def model_split_chart(frame: pd.DataFrame) -> alt.Chart:
    """Forward FLOPs per block, bars coloured by the side (client/server) that runs them."""
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("block:N", sort=None, title="block (in order)"),
            y=alt.Y("flops:Q", title="forward FLOPs / sample"),
            color=alt.Color("side:N", scale=SIDE_COLOURS, title="runs on"),
            tooltip=["index:O", "block:N", "side:N", "flops:Q", "params:Q", "out_bytes:Q", "out_shape:N"],
        )
        .properties(height=260)
    )


def batch_composition_chart(frame: pd.DataFrame, by: str) -> alt.Chart:
    """Stacked bars: samples per step of the first steps, split by ``by`` ('client' or 'class')."""
    if by not in ("client", "class"):
        raise ValueError(f"by must be 'client' or 'class', got {by!r}")
    many = by == "client" and frame["client"].nunique() > MAX_COLOURED_CLIENTS
    colour = alt.Color(f"{by}:N", title=by, legend=None if many else alt.Legend(columns=2, symbolLimit=30))
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("step:O", title="step"),
            y=alt.Y("sum(count):Q", title="samples in the global batch"),
            color=colour,
            tooltip=["step:O", f"{by}:N", "count:Q"],
        )
        .properties(height=260)
    )


def deviation_chart(curves: pd.DataFrame) -> alt.Chart:
    """Batch deviation Σ_c |p̂_t(c) − p(c)| of every step of one epoch, one line per method."""
    data = downsample_steps(curves)
    return (
        alt.Chart(data)
        .mark_line(strokeWidth=1.2)
        .encode(
            x=alt.X("step:Q", title="step of epoch 1"),
            y=alt.Y("deviation:Q", title="batch deviation (L1)"),
            color=alt.Color("method:N", title="method", scale=alt.Scale(scheme="category10")),
            tooltip=["method:N", "step:Q", alt.Tooltip("deviation:Q", format=".3f"), "batch:Q"],
        )
        .properties(height=260)
    )


def step_time_chart(curves: pd.DataFrame) -> alt.Chart:
    """Simulated synchronous step time of every step of one epoch, one line per method."""
    data = downsample_steps(curves.dropna(subset=["step_time_s"]))
    return (
        alt.Chart(data)
        .mark_line(strokeWidth=1.2)
        .encode(
            x=alt.X("step:Q", title="step of epoch 1"),
            y=alt.Y("step_time_s:Q", title="simulated step time (s)"),
            color=alt.Color("method:N", title="method", scale=alt.Scale(scheme="category10")),
            tooltip=["method:N", "step:Q", alt.Tooltip("step_time_s:Q", format=".3f")],
        )
        .properties(height=220)
    )


def device_mix_chart(frame: pd.DataFrame) -> alt.Chart:
    """Expected client time of one step per device group (median client; the slowest as a tick)."""
    base = alt.Chart(frame).encode(y=alt.Y("group:N", title="client group"))
    bars = base.mark_bar().encode(
        x=alt.X("client_step_ms:Q", title="expected client time per step (ms)"),
        tooltip=["group:N", "clients:Q", "stragglers:Q", "client_step_ms:Q", "slowest_client_step_ms:Q"],
    )
    ticks = base.mark_tick(color="red", thickness=2).encode(x="slowest_client_step_ms:Q")
    return (bars + ticks).properties(height=alt.Step(28))
