"""Hypothesis fuzz of the two input surfaces this issue changed: the phase time model and LDS's
latency-averse preferences."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from psl_core.devices import ClientSystem, epoch_timing
from psl_core.sampling import lds_preferences

positive = st.floats(1e-3, 1e3, allow_nan=False, allow_infinity=False)


@st.composite
def systems_and_counts(draw):
    k = draw(st.integers(1, 6))
    steps = draw(st.integers(1, 5))
    arr = lambda lo, hi: np.array(draw(st.lists(st.floats(lo, hi), min_size=k, max_size=k)))  # noqa: E731
    head = arr(0, 1e6) if draw(st.booleans()) else np.zeros(k)
    ret = arr(1, 1e4) if head.any() else np.zeros(k)
    system = ClientSystem(
        speed_flops=arr(1e6, 1e12),
        up_bps=arr(1e3, 1e10),
        down_bps=arr(1e3, 1e10),
        latency_s=arr(0, 0.5),
        client_flops_per_sample=arr(0, 1e8) + head,
        server_flops_per_sample=arr(0, 1e8),
        bytes_up_per_sample=arr(0, 1e6) + ret,
        bytes_down_per_sample=arr(0, 1e6) + ret,
        server_speed_flops=draw(st.floats(1e6, 1e13)),
        device_ids=tuple(str(i) for i in range(k)),
        head_flops_per_sample=head,
        return_bytes_per_sample=ret,
        client_param_bytes=arr(0, 1e7),
    )
    dense = np.array(draw(st.lists(st.integers(0, 50), min_size=k * steps, max_size=k * steps))).reshape(
        steps, k
    )
    step, client = np.nonzero(dense >= 0)
    slow = np.array(draw(st.lists(st.floats(1, 20), min_size=step.size, max_size=step.size)))
    return system, step, client, dense[step, client], steps, slow


@settings(max_examples=150, deadline=None)
@given(systems_and_counts())
def test_phases_are_consistent(case):
    system, step, client, count, steps, slow = case
    t = epoch_timing(step, client, count, steps, system, slow)
    total = t.fwd_phase + t.server_time + t.head_phase + t.bwd_phase + t.sync_phase
    np.testing.assert_allclose(t.step_time, total, rtol=1e-12)
    for arr in (t.fwd_phase, t.head_phase, t.bwd_phase, t.sync_phase, t.server_time, t.client_time):
        assert (arr >= 0).all()
    # No client is busier at a step than the step lasts; an empty step costs nothing.
    assert (t.client_time <= t.step_time[step] * (1 + 1e-12)).all()
    empty = np.bincount(step, weights=count, minlength=steps) == 0
    assert (t.step_time[empty] == 0).all()
    np.testing.assert_allclose(sum(t.entry_phases.values()), t.client_time, rtol=1e-12)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 1000), min_size=1, max_size=12).filter(lambda s: sum(s) > 0),
    st.floats(0, 6),
    st.data(),
)
def test_preferences_are_a_distribution_that_shifts_away_from_slow_clients(sizes, delta, data):
    sizes = np.array(sizes)
    latency = np.array(data.draw(st.lists(positive, min_size=sizes.size, max_size=sizes.size)))
    pi = lds_preferences(sizes, delta=delta, latency_per_sample=latency)
    assert np.isfinite(pi).all() and (pi >= 0).all() and abs(pi.sum() - 1) < 1e-9
    assert (pi[sizes == 0] == 0).all() and (pi[sizes > 0] > 0).all()
    more = lds_preferences(sizes, delta=delta + 1, latency_per_sample=latency)
    slowest = np.flatnonzero((sizes > 0) & (latency == latency[sizes > 0].max()))
    assert more[slowest].sum() <= pi[slowest].sum() + 1e-12
