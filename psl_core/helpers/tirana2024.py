"""Scenario ``tirana2024``: the authors' instance generator, as their published code writes it.

Facts taken from the INFOCOM 2024 code (tag ``Latest-algo2``, the code behind the paper), re-implemented
here, quirks included, so that our numbers can be put beside theirs like for like:

- Part times: per device, sums of the measured per-layer rows (forward; backward + update) of part 1
  [0, a), part 2 [a, b) and part 3 [b, end). Low heterogeneity (scenario 1): each client is an RPi 4B
  or an RPi 3B+, each helper the VM or the laptop, uniformly. High heterogeneity (scenario 2): K
  values of each client quantity are drawn uniformly as integers between the (truncated) minimum and
  maximum over the four client devices, *sorted*, and each client takes the values at one random
  index — so a client slow in one part is slow in all (comonotone draws); helpers likewise.
- Quirks kept as written (and documented, not fixed): the part-3 ranges use the Jetson CPU's *part-1*
  times in place of its part-3 times; in scenario 2 the part-1 backward of every client is 0 (the code
  copies from the array it is filling); the link-class counts take 30 %, 42 % and 28 % of the K·H
  links, so the 11–15 Mbit/s class only gets the rounding remainder.
- Links: each (client, helper) link gets a class — ≤ 4, 5–10, 11–15, 16–20 Mbit/s — and an integer
  bandwidth uniform in the class; a transfer of s KB over bw Mbit/s takes s · ``kb_to_mbit`` / bw
  seconds. The authors' factor is 0.0008, which makes every transfer about 10× too short (1 KB =
  0.008192 Mbit); it is kept as the explicit flag ``kb_to_mbit`` (default: the authors' value).
- Memory: each client needs ceil(part-2 activations + weights, in MB); every helper holds K × that,
  so memory never binds.
- Time slots: the authors' scripts turn every time into whole slots, ceil(x · slots / max), where max
  is the largest client-side time or transfer (helper times at least one slot). With ``slots=100``
  (their scripts' setting) the instance keeps these whole-slot times, expressed in ms
  (``meta['slot_ms']``), so exact models need no rounding; ``slots=None`` keeps unrounded ms.
- Randomness: Python's ``random`` generator seeded with ``seed`` and drawn in the authors' order;
  their scripts always use seed 42.
"""

from __future__ import annotations

import math
import random

import numpy as np

from psl_core.devices.measured import load_layer_costs
from psl_core.helpers.instance import HelperInputError, HelperInstance
from psl_core.helpers.scenarios import DEFAULT_CUTS, check_cuts

AUTHORS_KB_TO_MBIT = 0.0008  # the authors' factor (10.24x too small)
TRUE_KB_TO_MBIT = 8 * 1024 / 1e6
AUTHORS_SEED = 42
AUTHORS_SLOTS = 100
LINK_CLASSES = ((1, 4, 30), (5, 10, 42), (11, 15, 12), (16, 20, 28))  # Mbit/s range, % of links
CLIENT_SHEETS = ("rpi4b", "rpi3bplus", "jetson_cpu", "jetson_gpu")  # the authors' d1, d2, jetson-cpu, -gpu
HELPER_SHEETS = ("vm", "laptop_m1")


def _parts(model: str, cuts: tuple[int, int]) -> dict[str, dict[str, float]]:
    """Per device: fwd/bwd(+update) sums of part 1 ('first'), part 2 ('mid') and part 3 ('last')."""
    costs = load_layer_costs(model, "cifar10")
    a, b = cuts
    out = {}
    for dev in CLIENT_SHEETS + HELPER_SHEETS:
        i = costs.device_row(dev)
        f, bw = costs.forward_ms[i], costs.backward_ms[i] + costs.update_ms[i]
        out[dev] = {
            "fwd_first": float(f[:a].sum()), "back_first": float(bw[:a].sum()),
            "fwd_mid": float(f[a:b].sum()), "back_mid": float(bw[a:b].sum()),
            "fwd_last": float(f[b:].sum()), "back_last": float(bw[b:].sum()),
        }  # fmt: skip
    return out


def _links(rng: random.Random, k: int, h: int) -> np.ndarray:
    """Link bandwidths (Mbit/s) drawn class by class exactly as the authors' loop does."""
    total = k * h
    counts = [int(total * pct / 100) for _, _, pct in LINK_CLASSES]
    counts[2] += total - sum(counts)  # as written: the shares sum to 112 %, so class 2 shrinks
    bw = np.zeros((k, h))
    used: set[int] = set()
    for (lo, hi, _), n in zip(LINK_CLASSES, counts):
        for _ in range(n):
            while True:
                line = rng.randint(0, total - 1)
                if line not in used:
                    break
            used.add(line)
            bw[line // h, line % h] = rng.randint(lo, hi)
    return bw


def tirana2024_instance(
    num_clients: int,
    num_helpers: int,
    heterogeneity: str = "high",
    model: str = "vgg19",
    cuts: tuple[int, int] | None = None,
    seed: int = AUTHORS_SEED,
    kb_to_mbit: float = AUTHORS_KB_TO_MBIT,
    slots: int | None = AUTHORS_SLOTS,
) -> HelperInstance:
    """The authors' scenario 1 ('low') or 2 ('high') for ``model`` on CIFAR-10 (module docstring)."""
    k, h = int(num_clients), int(num_helpers)
    if k < 1 or h < 1:
        raise HelperInputError(
            f"need num_clients >= 1 and num_helpers >= 1, got {num_clients}, {num_helpers}"
        )
    if heterogeneity not in ("low", "high"):
        raise HelperInputError(f"heterogeneity must be 'low' or 'high', got {heterogeneity!r}")
    if not kb_to_mbit > 0:
        raise HelperInputError(
            f"kb_to_mbit must be > 0 (authors: {AUTHORS_KB_TO_MBIT}, true: {TRUE_KB_TO_MBIT})"
        )
    if slots is not None and int(slots) < 1:
        raise HelperInputError(f"slots must be a positive number of slots or None, got {slots}")
    cuts = check_cuts(model, "cifar10", tuple(cuts or DEFAULT_CUTS[model]))
    parts = _parts(model, cuts)
    costs = load_layer_costs(model, "cifar10")
    act_cut1, act_cut2 = float(costs.activation_kb[cuts[0] - 1]), float(costs.activation_kb[cuts[1] - 1])
    rng = random.Random(int(seed))
    bw = _links(rng, k, h)
    helper_dev = [rng.randint(0, 1) for _ in range(h)]
    client_dev = [rng.randint(0, 1) for _ in range(k)]
    d = [parts[s] for s in CLIENT_SHEETS]
    hv, hl = parts["vm"], parts["laptop_m1"]
    if heterogeneity == "low":
        first_f = np.array([d[c]["fwd_first"] for c in client_dev])
        last_b = np.array([d[c]["back_last"] for c in client_dev])
        last_f = np.array([d[c]["fwd_last"] for c in client_dev])
        first_b = np.array([d[c]["back_first"] for c in client_dev])
        h_f = np.array([(hv, hl)[m]["fwd_mid"] for m in helper_dev])
        h_b = np.array([(hv, hl)[m]["back_mid"] for m in helper_dev])
        clients = tuple(CLIENT_SHEETS[c] for c in client_dev)
        helpers = tuple(HELPER_SHEETS[m] for m in helper_dev)
    else:
        jc = d[2]

        def span(values):
            return int(min(values)), int(max(values))

        ranges = [
            span([x["fwd_first"] for x in d]),
            span([d[0]["back_last"], d[1]["back_last"], jc["back_first"], d[3]["back_last"]]),  # as written
            span([d[0]["fwd_last"], d[1]["fwd_last"], jc["fwd_first"], d[3]["fwd_last"]]),  # as written
            span([x["back_first"] for x in d]),
        ]
        draws = np.array([[rng.randint(lo, hi) for lo, hi in ranges] for _ in range(k)], dtype=float)
        draws.sort(axis=0)  # comonotone: index i holds the i-th smallest of every quantity
        pick = [rng.randint(0, k - 1) for _ in range(k)]
        hf_lo, hf_hi = span([hv["fwd_mid"], hl["fwd_mid"]])
        hb_lo, hb_hi = span([hv["back_mid"], hl["back_mid"]])
        hdraw = np.array(
            [[rng.randint(hf_lo, hf_hi), rng.randint(hb_lo, hb_hi)] for _ in range(h)], dtype=float
        )
        hdraw.sort(axis=0)
        hpick = [rng.randint(0, h - 1) for _ in range(h)]
        first_f, last_b, last_f = draws[pick, 0], draws[pick, 1], draws[pick, 2]
        first_b = np.zeros(k)  # as written: the code copies part-1 backward from the zero array it fills
        h_f, h_b = hdraw[hpick, 0], hdraw[hpick, 1]
        clients, helpers = ("synthetic",) * k, ("synthetic",) * h

    def net(kb):
        return kb * kb_to_mbit / bw * 1000.0  # ms, per link

    release = net(act_cut1) + first_f[:, None]
    trans_back, release_back = net(act_cut2), net(act_cut2) + last_b[:, None]
    grads_back = net(act_cut1)
    proc_local, proc_local_back = last_f, first_b
    p_fwd, p_bwd = np.broadcast_to(h_f, (k, h)).astype(float), np.broadcast_to(h_b, (k, h)).astype(float)
    meta = {
        "scenario": "tirana2024", "heterogeneity": heterogeneity, "model": model, "dataset": "cifar10",
        "cuts": tuple(cuts), "seed": seed, "kb_to_mbit": kb_to_mbit, "slots": slots, "bandwidth": bw,
    }  # fmt: skip
    if slots is not None:
        peak = max(
            np.rint(release).max(), np.rint(release_back).max(), np.rint(proc_local).max(),
            np.rint(proc_local_back).max(), np.rint(trans_back).max(), np.rint(grads_back).max(),
        )  # fmt: skip

        def to_slots(x, at_least=0):
            return np.maximum(np.ceil(np.asarray(x) * slots / peak), at_least)

        release, trans_back, release_back, grads_back = map(
            to_slots, (release, trans_back, release_back, grads_back)
        )
        proc_local, proc_local_back = to_slots(proc_local), to_slots(proc_local_back)
        p_fwd, p_bwd = to_slots(p_fwd, 1), to_slots(p_bwd, 1)
        slot_ms = float(peak) / slots
        meta["slot_ms"] = slot_ms
        scale = slot_ms
    else:
        scale = 1.0
    demand = math.ceil(
        float((costs.activation_kb[cuts[0] : cuts[1]] + costs.weights_kb[cuts[0] : cuts[1]]).sum()) / 1024
    )
    return HelperInstance(
        release=release * scale,
        p_fwd=p_fwd * scale,
        gap=(proc_local[:, None] + trans_back + release_back) * scale,
        p_bwd=p_bwd * scale,
        tail=(grads_back + proc_local_back[:, None]) * scale,
        mem_demand=np.full(k, float(demand)),
        mem_capacity=np.full(h, float(demand * k)),
        client_devices=clients,
        helper_devices=helpers,
        meta=meta,
    )
