"""The planner's step time is the time model's: same inputs, same number.

The planner evaluates plans with its own vectorised copy of the phase formula (it needs the terms
apart to optimise the shares); this test pins it to ``psl_core.devices.timing.epoch_timing`` on one
step where every client sends its planned samples over its share of the shared uplink.
"""

from __future__ import annotations

import numpy as np
import pytest

from psl_core.devices import build_client_system, epoch_timing, load_catalog
from psl_core.devices.timing import EpochTiming
from psl_core.models import cut_summary, cut_table, profile_arch
from psl_core.planner import CutCosts, build_instance, evaluate, plan_exact, step_energy

phase_model = pytest.mark.skipif(
    "sync_phase" not in EpochTiming.__dataclass_fields__,
    reason="the time model's phase structure (forward, server, backward, sync) is not on this branch yet",
)

CATALOG = load_catalog()
PROFILE = profile_arch("resnet8", (3, 32, 32), 10)
CUTS = cut_table(PROFILE)
DEVICES = ["rpi4b", "jetson_gpu", "jetson_cpu", "rpi3bplus", "laptop_m1"]


def _one_step(inst, device_ids, samples, cut_index, shares):
    """The time model's step time for the plan: one step, client k sends samples[k]."""
    summaries = [cut_summary(PROFILE, int(inst.cuts.cut[c])) for c in cut_index]
    up = None if shares is None else np.asarray(shares) * inst.uplink_bps / 1e6
    system = build_client_system(device_ids, summaries, CATALOG["vm"], catalog=CATALOG, up_mbps=up)
    k = len(device_ids)
    return epoch_timing(np.zeros(k, dtype=int), np.arange(k), np.asarray(samples), 1, system)


@phase_model
@pytest.mark.parametrize("seed", range(8))
def test_planner_step_time_equals_the_time_model(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 7))
    device_ids = [DEVICES[i] for i in rng.integers(0, len(DEVICES), k)]
    samples = rng.integers(1, 12, k).astype(float)
    shared = bool(rng.uniform() < 0.7)
    inst = build_instance(
        CutCosts.from_summaries(CUTS, profile=PROFILE),
        device_ids,
        samples,
        catalog=CATALOG,
        server_device=CATALOG["vm"],
        uplink_mbps=float(rng.uniform(5, 500)) if shared else None,
        class_of=list(range(k)),  # one class per client: per-client cuts and shares
    )
    cut_index = rng.integers(0, inst.cuts.num_cuts, k)
    shares = rng.dirichlet(np.ones(k)) if shared else None
    timing = _one_step(inst, device_ids, samples, cut_index, shares)
    phases = evaluate(inst, cut_index, shares)
    assert phases.step[0] == pytest.approx(timing.step_time[0], rel=1e-12)
    assert phases.forward_upload[0] == pytest.approx(timing.fwd_phase[0], rel=1e-12)
    assert phases.server[0] == pytest.approx(timing.server_time[0], rel=1e-12)
    assert phases.download_backward[0] == pytest.approx(timing.bwd_phase[0], rel=1e-12)
    assert phases.sync[0] == pytest.approx(timing.sync_phase[0], rel=1e-12)


@phase_model
def test_exact_plan_applied_to_the_time_model_gives_the_planned_step():
    device_ids = ["rpi4b", "rpi4b", "jetson_gpu", "jetson_cpu"]
    samples = [8.0, 8.0, 16.0, 4.0]
    inst = build_instance(
        CutCosts.from_summaries(CUTS, profile=PROFILE),
        device_ids,
        samples,
        catalog=CATALOG,
        server_device=CATALOG["vm"],
        uplink_mbps=40.0,
        class_of=list(range(4)),
    )
    plan = plan_exact(inst)
    timing = _one_step(inst, device_ids, samples, plan.cut_index, plan.shares)
    assert timing.step_time[0] == pytest.approx(plan.step_time_s, rel=1e-12)


def test_energy_counts_every_member_and_every_byte():
    """Energy of a one-class plan by hand: busy power x compute + radio power x airtime."""
    inst = build_instance(
        CutCosts.from_summaries(CUTS, profile=PROFILE),
        ["rpi4b", "rpi4b"],
        [3.0, 5.0],
        catalog=CATALOG,
        server_device=CATALOG["vm"],
        uplink_mbps=10.0,
        class_of=[0, 0],
    )
    cut = cut_summary(PROFILE, 2)
    index = int(np.flatnonzero(inst.cuts.cut == 2)[0])
    share = 0.3
    dev = CATALOG["rpi4b"]
    compute = 3 * 8 * cut.client_flops_per_sample / dev.train_flops_per_s
    up = (8 * cut.bytes_up_per_sample + 2 * cut.client_param_bytes) * 8 / (share * 10e6)
    down = (8 * cut.bytes_down_per_sample + 2 * cut.client_param_bytes) * 8 / dev.down_bps
    expected = dev.busy_watts * compute + dev.radio_watts * (up + down)
    assert step_energy(inst, [index], [share])[0] == pytest.approx(expected, rel=1e-12)
