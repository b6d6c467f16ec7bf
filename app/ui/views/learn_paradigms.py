"""The paradigms explainer: who holds which part of the model, what travels, when copies are averaged,
and what one pass over the data costs each paradigm on a toy federation.

The costs come from the engine's own time, traffic and energy models (``psl_core.paradigms.costs``
and PSL's epoch timing), evaluated on count matrices without any training, so the page recomputes
instantly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.ui.views.learn import (
    SERVER_DEVICE,
    TIMING_INPUT_SHAPE,
    LearnInputError,
    assign_devices,
    toy_federation,
)
from psl_core.devices import build_client_system, epoch_timing, load_catalog
from psl_core.models import cut_summary, profile_arch
from psl_core.paradigms import PARADIGMS
from psl_core.paradigms.costs import ClientCosts, psl_energy, round_costs, sequential_costs
from psl_core.sampling import ugs_counts
from psl_core.sampling.schedules import fixed_counts

PARADIGM_ORDER = ("psl", "sl", "sflv1", "sflv2", "fedavg", "hsfl")


def roles_table() -> pd.DataFrame:
    """One row per paradigm: who holds what, what travels per step and per round, what is averaged."""
    rows = [
        {
            "paradigm": PARADIGMS[name].title,
            "a client holds": PARADIGMS[name].client_holds,
            "the server holds": PARADIGMS[name].server_holds,
            "every step": PARADIGMS[name].per_step_traffic,
            "every round": PARADIGMS[name].per_round_traffic,
            "averaged": PARADIGMS[name].averaging,
            "clients at once": "all" if PARADIGMS[name].parallel else "one",
            "model copies": PARADIGMS[name].copies,
        }
        for name in PARADIGM_ORDER
    ]
    return pd.DataFrame(rows)


def toy_costs(
    num_clients: int,
    device_mix: list[str],
    arch: str,
    cut: int | str,
    local_batch: int,
    *,
    partition_alpha: float = 0.5,
    seed: int = 0,
) -> pd.DataFrame:
    """Simulated time, traffic and client energy of ONE pass over the data for every paradigm.

    Digits labels split over K clients (Dirichlet α), devices round robin, CIFAR-sized inputs for
    ``arch`` cut after ``cut``. The round-based paradigms run one round of E = 1 local epoch with local
    batch b (hsfl: the fastest half of the clients in FL mode); PSL one epoch of uniform global
    sampling with B = K · b, so every paradigm processes the same samples.
    """
    if local_batch < 1:
        raise LearnInputError(f"local batch must be at least 1, got {local_batch}")
    federation = toy_federation(num_clients, partition_alpha, seed)
    sizes = federation.client_sizes
    devices = assign_devices(device_mix, num_clients)
    catalog = load_catalog()
    profile = profile_arch(arch, TIMING_INPUT_SHAPE, federation.num_classes)
    summary = cut_summary(profile, cut)
    system = build_client_system(devices, [summary], catalog[SERVER_DEVICE], catalog=catalog)
    costs = ClientCosts.from_parts(system, [summary], profile, [catalog[d] for d in devices])
    k = len(sizes)
    clients = np.arange(k)
    local = fixed_counts(sizes, np.full(k, local_batch)).to_dense()  # (S, K): one local epoch
    ones = np.ones(local.shape)
    fastest = np.zeros(k, bool)
    fastest[np.argsort(-system.speed_flops, kind="stable")[: k // 2]] = True

    out = {}
    psl = ugs_counts(sizes, k * local_batch, np.random.default_rng(seed))
    timing = epoch_timing(psl.step, psl.client, psl.count, psl.num_steps, system)
    _, energy, nbytes = psl_energy(costs, psl.step, psl.client, psl.count, psl.num_steps, np.ones(psl.nnz))
    out["psl"] = (float(timing.step_time.sum()), nbytes, energy)
    steps = (local > 0).sum(axis=0)
    order = np.repeat(clients, steps)
    position = np.arange(len(order)) - np.repeat(np.cumsum(steps) - steps, steps)
    sl = sequential_costs(costs, order, local[position, order], np.ones(len(order)))
    out["sl"] = (sl.round_time, sl.client_bytes, sl.client_energy)
    for name in ("sflv1", "sflv2", "fedavg", "hsfl"):
        c = round_costs(costs, name, clients, local, ones, fl_rows=fastest)
        out[name] = (c.round_time, c.client_bytes, c.client_energy)
    return pd.DataFrame(
        [
            {
                "paradigm": PARADIGMS[name].short,
                "simulated time (s)": seconds,
                "MB per client": float(np.mean(nbytes)) / 1e6,
                "J per client": float(np.mean(energy)),
            }
            for name, (seconds, nbytes, energy) in out.items()
        ]
    )
