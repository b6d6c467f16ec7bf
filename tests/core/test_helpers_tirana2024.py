"""Scenario tirana2024 against an independent, loop-by-loop re-implementation of the authors'
create_scenario (INFOCOM 2024 code), and the facts the docs state about it."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from psl_core.devices.measured import load_layer_costs
from psl_core.helpers import HelperInputError, generate_instance
from psl_core.helpers.tirana2024 import AUTHORS_KB_TO_MBIT, tirana2024_instance

SHEETS = {"d1": "rpi4b", "d2": "rpi3bplus", "jetson-cpu": "jetson_cpu", "jetson-gpu": "jetson_gpu",
          "VM": "vm", "laptop": "laptop_m1"}  # fmt: skip


def authors_scenario(model, point_a, point_b, K, H, scenario, max_slot, seed=42):
    """Written the way their utils.create_scenario reads (per-element loops, same draw order)."""
    c = load_layer_costs(model, "cifar10")

    def rows(sheet):
        i = c.device_row(SHEETS[sheet])
        return [[c.forward_ms[i, r], c.backward_ms[i, r], c.update_ms[i, r]] for r in range(c.num_layers)]

    def sums(data, lo, hi):
        f = b = 0.0
        for i in range(lo, hi):
            f += data[i][0]
            b += data[i][1] + data[i][2]
        return f, b

    vm_f, vm_b = sums(rows("VM"), point_a, point_b)
    lp_f, lp_b = sums(rows("laptop"), point_a, point_b)
    dev = {}
    for s in ("d1", "d2", "jetson-cpu", "jetson-gpu"):
        data = rows(s)
        ff, bf = sums(data, 0, point_a)
        fl, bl = sums(data, point_b, len(data))
        dev[s] = {"ff": ff, "bf": bf, "fl": fl, "bl": bl}
    d1, d2, jc, jg = dev["d1"], dev["d2"], dev["jetson-cpu"], dev["jetson-gpu"]
    max_fwd_first, min_fwd_first = (
        int(max(d1["ff"], d2["ff"], jc["ff"], jg["ff"])),
        int(min(d1["ff"], d2["ff"], jc["ff"], jg["ff"])),
    )
    max_fwd_last, min_fwd_last = (
        int(max(d1["fl"], d2["fl"], jc["ff"], jg["fl"])),
        int(min(d1["fl"], d2["fl"], jc["ff"], jg["fl"])),
    )
    max_back_first, min_back_first = (
        int(max(d1["bf"], d2["bf"], jc["bf"], jg["bf"])),
        int(min(d1["bf"], d2["bf"], jc["bf"], jg["bf"])),
    )
    max_back_last, min_back_last = (
        int(max(d1["bl"], d2["bl"], jc["bf"], jg["bl"])),
        int(min(d1["bl"], d2["bl"], jc["bf"], jg["bl"])),
    )
    max_proc_fwd, min_proc_fwd = int(max(vm_f, lp_f)), int(min(vm_f, lp_f))
    max_proc_back, min_proc_back = int(max(vm_b, lp_b)), int(min(vm_b, lp_b))
    to_cn, to_do = c.activation_kb[point_a - 1], c.activation_kb[point_b - 1]
    store = 0.0
    for i in range(point_a, point_b):
        store += c.activation_kb[i] + c.weights_kb[i]
    store /= 1024

    def my_net(data, bw):
        return ((data * 0.0008) / bw) * 1000

    random.seed(seed)
    network = np.zeros((K, H))
    total = K * H
    n = [int(total * 30 / 100), int(total * 42 / 100), int(total * 12 / 100), int(total * 28 / 100)]
    n[2] += K * H - sum(n)
    completed = []
    for cls, (lo, hi) in enumerate(((1, 4), (5, 10), (11, 15), (16, 20))):
        for _ in range(n[cls]):
            while True:
                line = int(random.randint(0, total - 1))
                if line not in completed:
                    break
            completed.append(line)
            network[line // H, line % H] = random.randint(lo, hi)
    machine = [random.randint(0, 1) for _ in range(H)]
    owner = [random.randint(0, 1) for _ in range(K)]
    rel, relb, ploc, plocb = np.zeros((K, H)), np.zeros((K, H)), np.zeros(K), np.zeros(K)
    tb, tbg, proc, procb = np.zeros((K, H)), np.zeros((K, H)), np.zeros((K, H)), np.zeros((K, H))
    if scenario == 2:
        r_, rb_, pl_, plb_ = np.zeros(K), np.zeros(K), np.zeros(K), np.zeros(K)
        for j in range(K):
            r_[j] = random.randint(min_fwd_first, max_fwd_first)
            rb_[j] = random.randint(min_back_last, max_back_last)
            pl_[j] = random.randint(min_fwd_last, max_fwd_last)
            plb_[j] = random.randint(min_back_first, max_back_first)
        r_.sort(), rb_.sort(), pl_.sort(), plb_.sort()
        for j in range(K):
            owner[j] = int(random.randint(0, K - 1))
        pf_, pb_ = np.zeros(H), np.zeros(H)
        for i in range(H):
            pf_[i] = random.randint(min_proc_fwd, max_proc_fwd)
            pb_[i] = random.randint(min_proc_back, max_proc_back)
        pf_.sort(), pb_.sort()
        for i in range(H):
            machine[i] = int(random.randint(0, H - 1))
    for j in range(K):
        for i in range(H):
            bw = int(network[j, i])
            rel[j, i], tb[j, i] = my_net(to_cn, bw), my_net(to_do, bw)
            relb[j, i], tbg[j, i] = my_net(to_do, bw), my_net(to_cn, bw)
            if scenario == 1:
                d = (d1, d2)[owner[j]]
                rel[j, i] += d["ff"]
                relb[j, i] += d["bl"]
                if i == 0:
                    ploc[j], plocb[j] = d["fl"], d["bf"]
                proc[j, i], procb[j, i] = ((vm_f, vm_b), (lp_f, lp_b))[machine[i]]
            else:
                rel[j, i] += r_[owner[j]]
                relb[j, i] += rb_[owner[j]]
                if i == 0:
                    ploc[j] = pl_[owner[j]]
                    plocb[j] = plocb[owner[j]]  # as the authors wrote it
                proc[j, i], procb[j, i] = pf_[machine[i]], pb_[machine[i]]
    demand = math.ceil(store)
    values = [
        int(np.rint(x)) for x in (*rel.ravel(), *relb.ravel(), *ploc, *plocb, *tb.ravel(), *tbg.ravel())
    ]
    mx = max(values)

    def slot(x, least=0):
        return max(np.ceil(x * max_slot / mx), least)

    out = {}
    vec = np.vectorize(slot)
    rel, tb, relb, tbg = vec(rel), vec(tb), vec(relb), vec(tbg)
    ploc, plocb = vec(ploc), vec(plocb)
    proc, procb = vec(proc, 1), vec(procb, 1)
    step = mx / max_slot
    out["release"] = rel * step
    out["p_fwd"], out["p_bwd"] = proc * step, procb * step
    out["gap"] = (ploc[:, None] + tb + relb) * step
    out["tail"] = (tbg + plocb[:, None]) * step
    out["mem_demand"], out["mem_capacity"] = np.full(K, demand), np.full(H, demand * K)
    return out


@pytest.mark.parametrize(
    "model, cuts, k, h, het",
    [("resnet101", (3, 33), 20, 5, "low"), ("resnet101", (3, 33), 30, 10, "high"),
     ("vgg19", (3, 24), 20, 10, "high"), ("vgg19", (3, 24), 50, 5, "low")],
)  # fmt: skip
def test_generator_matches_the_authors_code_number_for_number(model, cuts, k, h, het):
    ours = tirana2024_instance(k, h, het, model=model, cuts=cuts)
    theirs = authors_scenario(model, *cuts, k, h, 1 if het == "low" else 2, 100)
    for name, value in theirs.items():
        np.testing.assert_allclose(getattr(ours, name), value, rtol=1e-12, err_msg=name)


def test_documented_facts_of_the_authors_generator():
    inst = tirana2024_instance(30, 10, "high", model="vgg19")
    bw = inst.meta["bandwidth"]
    assert inst.meta["kb_to_mbit"] == AUTHORS_KB_TO_MBIT == 0.0008
    # link classes: 30 % <= 4, 42 % in 5-10, 28 % in 16-20, and the 11-15 class gets the remainder (none)
    assert [np.sum((bw >= lo) & (bw <= hi)) for lo, hi in ((1, 4), (5, 10), (11, 15), (16, 20))] == [
        90,
        126,
        0,
        84,
    ]
    # memory never binds: every helper holds all K clients
    assert np.all(inst.mem_capacity == inst.mem_demand.sum())
    # whole slots, kept exactly
    units = inst.release / inst.meta["slot_ms"]
    assert np.allclose(units, np.round(units))


def test_high_heterogeneity_draws_are_comonotone():
    # Without transfers (a vanishing KB factor), release = part-1 forward and gap = part-3 forward +
    # backward: a client slower than another in one is never faster in the other.
    inst = tirana2024_instance(40, 3, "high", model="resnet101", kb_to_mbit=1e-12, slots=None)
    r, g = inst.release[:, 0], inst.gap[:, 0]
    assert not np.any((r[:, None] < r[None, :]) & (g[:, None] > g[None, :]))
    assert np.all(inst.tail < 1e-5)  # as written: part-1 backward is 0 in scenario 2 (transfers ~ 0)


def test_correct_factor_and_unslotted_times_are_flags():
    true_factor = 8 * 1024 / 1e6
    fixed = tirana2024_instance(10, 2, "low", model="resnet101", kb_to_mbit=true_factor, slots=None)
    as_written = tirana2024_instance(10, 2, "low", model="resnet101", slots=None)
    assert "slot_ms" not in as_written.meta
    act = load_layer_costs("resnet101", "cifar10").activation_kb[2]  # cut 3: activations of row 2
    extra = act * (true_factor - AUTHORS_KB_TO_MBIT) / as_written.meta["bandwidth"] * 1000
    np.testing.assert_allclose(fixed.release - as_written.release, extra, rtol=1e-9)
    with pytest.raises(HelperInputError, match="kb_to_mbit"):
        tirana2024_instance(3, 1, kb_to_mbit=0)
    with pytest.raises(HelperInputError, match="scenario must be one of"):
        generate_instance("paper", "low", 3, 1)
