"""``psl plan --json`` checked from the outside: the step time it reports is recomputed per client from
the printed plan (cut and share of every client) with the time model's formula written out here, the
shares fit the uplink, and the per-client plan (``--per-client``) equals an enumeration of every
per-client cut combination with the best shares for each (found here by a ternary search over the
forward-phase deadline and a bisection for the sync deadline, not by the planner's solver)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from app.cli import app
from psl_core.devices import load_catalog
from psl_core.models import cut_table, profile_arch

runner = CliRunner()
CATALOG = load_catalog()
PROFILE = profile_arch("cnn", (1, 8, 8), 10)  # digits
CUT_COSTS = {s.cut: s for s in cut_table(PROFILE)}

MIX = {
    "name": "mix",
    "data": {"dataset": "digits"},
    "partition": {"num_clients": 4},
    "model": {"arch": "cnn", "cut": 1},
    "sampling": {"method": "fpls", "batch_size": 40},
    "system": {
        "server_device": "vm",
        "clients": [
            {"device": "rpi4b", "fraction": 0.5},
            {"device": "jetson_gpu", "fraction": 0.25},
            {"device": "rpi3bplus", "fraction": 0.25},
        ],
    },
}


def plan_json(home, *extra) -> dict:
    path = home / "mix.yaml"
    path.write_text(yaml.safe_dump(MIX))
    result = runner.invoke(app, ["plan", str(path), "--json", "--no-front", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def step_time(clients, cuts, shares, uplink_bps) -> float:
    """Methods §4 for one step, per client (b: its samples; x W its uplink rate, or the device's own)."""
    fwd_up, server, down_bwd, sync = [], 0.0, [], []
    for client, cut, share in zip(clients, cuts, shares, strict=True):
        dev, b, c = CATALOG[client["device"]], client["samples_per_step"], CUT_COSTS[cut]
        up = dev.up_bps if uplink_bps is None else share * uplink_bps
        forward = b * c.client_flops_per_sample / dev.train_flops_per_s
        fwd_up.append(forward + b * c.bytes_up_per_sample * 8 / up + dev.latency_s)
        down_bwd.append(b * c.bytes_down_per_sample * 8 / dev.down_bps + dev.latency_s + 2 * forward)
        p = c.client_param_bytes * 8
        sync.append(p / up + p / dev.down_bps + 2 * dev.latency_s if p > 0 else 0.0)
        server += 3 * b * c.server_flops_per_sample / CATALOG["vm"].train_flops_per_s
    return max(fwd_up) + server + max(down_bwd) + max(sync)


def best_shares_times(clients, cut_combos, uplink_bps) -> np.ndarray:
    """The shortest step of each per-client cut combination (rows) over shares summing to at most 1.

    Independent of the planner's solver: only the forward+upload deadline tau_A and the sync deadline
    tau_Y depend on the shares; a client needs max(alpha / (tau_A - a), pi / (tau_Y - y)) of the uplink.
    tau_A + smallest feasible tau_Y is convex in tau_A: ternary search over tau_A, bisection for tau_Y.
    """
    rows = []
    for cuts in cut_combos:
        per = []
        for client, cut in zip(clients, cuts, strict=True):
            dev, b, c = CATALOG[client["device"]], client["samples_per_step"], CUT_COSTS[cut]
            forward = b * c.client_flops_per_sample / dev.train_flops_per_s
            p = c.client_param_bytes * 8
            per.append(
                (
                    forward + dev.latency_s,  # a
                    b * c.bytes_up_per_sample * 8 / uplink_bps,  # alpha
                    (p / dev.down_bps + 2 * dev.latency_s) if p > 0 else 0.0,  # y
                    p / uplink_bps,  # pi
                    b * c.bytes_down_per_sample * 8 / dev.down_bps + dev.latency_s + 2 * forward,
                    3 * b * c.server_flops_per_sample / CATALOG["vm"].train_flops_per_s,
                )
            )
        rows.append(per)
    a, alpha, y, pi, down_bwd, server = np.moveaxis(np.array(rows), -1, 0)  # each (M, K)

    def used(tau_a, tau_y):
        with np.errstate(divide="ignore", invalid="ignore"):
            need_a = np.where(tau_a[:, None] > a, alpha / (tau_a[:, None] - a), np.inf)
            need_y = np.where(pi > 0, np.where(tau_y[:, None] > y, pi / (tau_y[:, None] - y), np.inf), 0.0)
        return np.maximum(need_a, need_y).sum(axis=1)

    def smallest_tau_y(tau_a):
        lo = y.max(axis=1)
        hi = lo + pi.sum(axis=1) * 64 + 1.0
        reachable = used(tau_a, hi) <= 1
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            ok = used(tau_a, mid) <= 1
            lo, hi = np.where(ok, lo, mid), np.where(ok, mid, hi)
        at_floor = used(tau_a, y.max(axis=1)) <= 1
        return np.where(at_floor, y.max(axis=1), np.where(reachable, hi, np.inf))

    lo = a.max(axis=1)
    hi = lo + alpha.sum(axis=1) * 64 + 1.0
    for _ in range(150):
        m1, m2 = lo + (hi - lo) / 3, hi - (hi - lo) / 3
        f1, f2 = m1 + smallest_tau_y(m1), m2 + smallest_tau_y(m2)
        left = np.isfinite(f1) & (f1 <= f2)
        lo, hi = np.where(left, lo, m1), np.where(left, m2, hi)
    share_part = hi + smallest_tau_y(hi)
    return share_part + server.sum(axis=1) + down_bwd.max(axis=1)


def test_reported_step_time_is_the_time_model_of_the_printed_plan(home):
    data = plan_json(home, "--uplink-mbps", "20")
    clients = data["clients"]
    assert len(clients) == 4 and not data["per_client"]
    shares = np.array([c["share"] for c in clients])
    assert sum(shares.tolist()) <= 1.0 and shares.sum() <= 1.0 and np.all(shares > 0)  # no tolerance
    exact = next(m for m in data["methods"] if m["key"] == "exact")
    recomputed = step_time(clients, [c["cut"] for c in clients], shares, 20e6)
    assert recomputed == pytest.approx(exact["step_time_s"], rel=1e-9)
    # Every client of a group got its group's cut and share.
    for g in {c["group"] for c in clients}:
        members = [c for c in clients if c["group"] == g]
        assert len({(c["cut"], c["share"]) for c in members}) == 1


def test_own_uplinks_step_time_recomputed(home):
    data = plan_json(home)  # no shared uplink in the config: every device on its own uplink
    clients = data["clients"]
    assert data["uplink_mbps"] is None and all(c["share"] is None for c in clients)
    exact = next(m for m in data["methods"] if m["key"] == "exact")
    cuts = [c["cut"] for c in clients]
    assert step_time(clients, cuts, [None] * 4, None) == pytest.approx(exact["step_time_s"], rel=1e-9)
    # and it is the best combination of cuts within a group (the config's decision space)
    groups = sorted({c["group"] for c in clients})
    best = min(
        step_time(
            clients, [dict(zip(groups, combo, strict=True))[c["group"]] for c in clients], [None] * 4, None
        )
        for combo in itertools.product(CUT_COSTS, repeat=len(groups))
    )
    assert exact["step_time_s"] == pytest.approx(best, rel=1e-9)


def test_per_client_plan_matches_an_enumeration_of_per_client_cuts(home):
    per_client = plan_json(home, "--uplink-mbps", "20", "--per-client")
    grouped = plan_json(home, "--uplink-mbps", "20")
    assert per_client["per_client"]
    clients = per_client["clients"]
    exact = next(m for m in per_client["methods"] if m["key"] == "exact")
    assert exact["proven_optimal"]
    shares = np.array([c["share"] for c in clients])
    assert sum(shares.tolist()) <= 1.0 and shares.sum() <= 1.0
    recomputed = step_time(clients, [c["cut"] for c in clients], shares, 20e6)
    assert recomputed == pytest.approx(exact["step_time_s"], rel=1e-9)
    combos = list(itertools.product(CUT_COSTS, repeat=len(clients)))
    brute = best_shares_times(clients, combos, 20e6).min()
    assert exact["step_time_s"] == pytest.approx(brute, rel=1e-9)
    # Per-client decisions include the per-group ones: never slower.
    grouped_exact = next(m for m in grouped["methods"] if m["key"] == "exact")
    assert exact["step_time_s"] <= grouped_exact["step_time_s"] * (1 + 1e-12)


def test_per_client_plan_cannot_be_written_into_a_config(home):
    path = home / "mix.yaml"
    path.write_text(yaml.safe_dump(MIX))
    result = runner.invoke(
        app, ["plan", str(path), "--uplink-mbps", "20", "--per-client", "--write", str(home / "out.yaml")]
    )
    assert result.exit_code != 0
    assert "per-client plan cannot be written" in result.output and "device group" in result.output
    assert not (home / "out.yaml").exists()
