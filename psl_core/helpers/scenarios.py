"""Seeded scenario generators for the helper problem, built from the measured per-layer profiles.

Two families (``SCENARIO_GENERATORS[family][heterogeneity]``):
- ``corrected`` (this module): the paper's devices with a correct KB → Mbit factor and the project
  definitions below;
- ``tirana2024`` (``psl_core.helpers.tirana2024``): the authors' generator as their code writes it.

Choices of the ``corrected`` family marked (project definition) are not fixed by the paper:
- bandwidth of each client-helper link drawn uniformly in ``bandwidth_mbps`` (default 10-100 Mbit/s);
- part-2 memory = 3 × part-2 weights (weights, gradients, SGD momentum) + part-2 output activations
  at batch 128; MNIST uses the CIFAR-10 memory table of the same model (the MNIST memory sheets were
  not exported, profiles/README.md issue 8);
- helper capacity = ``memory_slack`` × (total demand / H), equal for all helpers, so the constraint
  binds at every K (the real 16 GB helpers would hold all ResNet clients and too few VGG clients);
- high heterogeneity draws every part time of every device independently between the measured
  extremes (the authors draw them comonotone: a slow client is slow in every part).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psl_core.devices.measured import load_layer_costs
from psl_core.helpers.instance import HelperInputError, HelperInstance

DEFAULT_CUTS = {"resnet101": (3, 33), "vgg19": (3, 24)}  # profiles/README.md issue 3
LOW_HET_CLIENTS = ("rpi4b", "rpi3bplus")
LOW_HET_HELPERS = ("vm", "laptop_m1")
HIGH_HET_CLIENTS = ("rpi4b", "rpi3bplus", "jetson_cpu", "jetson_gpu")
KB_TO_MBIT = 8 * 1024 / 1e6  # KB = 1024 bytes; the SFL code's 0.0008 is 10x too small (README issue 9)


@dataclass(frozen=True)
class PartTimes:
    """Per-batch (128 samples) times in ms of the three parts on one device; bwd includes update."""

    p1_fwd: float
    p1_bwd: float
    p2_fwd: float
    p2_bwd: float
    p3: float  # part-3 forward + backward + update (the head and the loss)


def check_cuts(model: str, dataset: str, cuts: tuple[int, int]) -> tuple[int, int]:
    costs = load_layer_costs(model, dataset)
    a, b = cuts
    if not 1 <= a < b < costs.num_layers:
        raise HelperInputError(
            f"cuts {cuts} out of range for {model}: need 1 <= a < b < {costs.num_layers} "
            f"(e.g. {DEFAULT_CUTS[model]})"
        )
    return a, b


def part_times(model: str, dataset: str, device: str, cuts: tuple[int, int]) -> PartTimes:
    """Sum the measured per-layer rows of each part: client [0,a), helper [a,b), client [b,end)."""
    a, b = check_cuts(model, dataset, cuts)
    c = load_layer_costs(model, dataset)
    i = c.device_row(device)
    f, bwd = c.forward_ms[i], c.backward_ms[i] + c.update_ms[i]
    return PartTimes(
        float(f[:a].sum()),
        float(bwd[:a].sum()),
        float(f[a:b].sum()),
        float(bwd[a:b].sum()),
        float(f[b:].sum() + bwd[b:].sum()),
    )


def cut_sizes_mbit(model: str, cuts: tuple[int, int]) -> tuple[float, float]:
    """Size in Mbit of the cut-1 and cut-2 activations (= their gradients) for one batch of 128."""
    c = load_layer_costs(model, "cifar10")
    a, b = cuts
    return float(c.activation_kb[a - 1] * KB_TO_MBIT), float(c.activation_kb[b - 1] * KB_TO_MBIT)


def part2_memory_mb(model: str, cuts: tuple[int, int]) -> float:
    """Helper memory of one client's part-2 (MB): 3 × weights + stored activations at batch 128."""
    c = load_layer_costs(model, "cifar10")
    a, b = cuts
    return float((3 * c.weights_kb[a:b].sum() + c.activation_kb[a:b].sum()) / 1024)


def _assemble(
    client_parts: np.ndarray,  # (K, 3): p1_fwd, p1_bwd, p3
    helper_parts: np.ndarray,  # (H, 2): p2_fwd, p2_bwd
    model: str,
    cuts: tuple[int, int],
    rng: np.random.Generator,
    bandwidth_mbps: tuple[float, float],
    memory_slack: float,
    client_devices: tuple[str, ...],
    helper_devices: tuple[str, ...],
    meta: dict,
) -> HelperInstance:
    lo, hi = bandwidth_mbps
    if not 0 < lo <= hi:
        raise HelperInputError(
            f"bandwidth_mbps must be (low, high) with 0 < low <= high, got {bandwidth_mbps}"
        )
    if memory_slack < 1:
        raise HelperInputError(f"memory_slack must be >= 1 (capacity / fair share), got {memory_slack}")
    k, h = len(client_parts), len(helper_parts)
    bw = rng.uniform(lo, hi, size=(k, h))  # Mbit/s per link
    cut1, cut2 = cut_sizes_mbit(model, cuts)
    send1, send2 = cut1 / bw * 1000.0, cut2 / bw * 1000.0  # ms
    demand = np.full(k, part2_memory_mb(model, cuts))
    capacity = np.full(h, memory_slack * demand.sum() / h)
    capacity = np.maximum(capacity, demand.max())
    return HelperInstance(
        release=client_parts[:, [0]] + send1,
        p_fwd=np.broadcast_to(helper_parts[:, 0], (k, h)).copy(),
        gap=send2 + client_parts[:, [2]] + send2,
        p_bwd=np.broadcast_to(helper_parts[:, 1], (k, h)).copy(),
        tail=send1 + client_parts[:, [1]],
        mem_demand=demand,
        mem_capacity=capacity,
        client_devices=client_devices,
        helper_devices=helper_devices,
        meta={**meta, "model": model, "cuts": tuple(cuts), "bandwidth_mbps": bandwidth_mbps, "bandwidth": bw},
    )


def _validate_sizes(num_clients: int, num_helpers: int) -> None:
    if num_clients < 1 or num_helpers < 1:
        raise HelperInputError(
            f"need num_clients >= 1 and num_helpers >= 1, got {num_clients}, {num_helpers}"
        )


def low_heterogeneity_instance(
    num_clients: int,
    num_helpers: int,
    model: str = "resnet101",
    dataset: str = "cifar10",
    cuts: tuple[int, int] | None = None,
    seed: int = 0,
    bandwidth_mbps: tuple[float, float] = (10.0, 100.0),
    memory_slack: float = 1.5,
) -> HelperInstance:
    """Paper's scenario 1: each client an RPi 4B or 3B+, each helper the VM or the laptop (uniform)."""
    _validate_sizes(num_clients, num_helpers)
    cuts = tuple(cuts or DEFAULT_CUTS[model])
    rng = np.random.default_rng(seed)
    clients = tuple(rng.choice(LOW_HET_CLIENTS, size=num_clients).tolist())
    helpers = tuple(rng.choice(LOW_HET_HELPERS, size=num_helpers).tolist())
    table = {d: part_times(model, dataset, d, cuts) for d in LOW_HET_CLIENTS + LOW_HET_HELPERS}
    cp = np.array([[table[d].p1_fwd, table[d].p1_bwd, table[d].p3] for d in clients])
    hp = np.array([[table[d].p2_fwd, table[d].p2_bwd] for d in helpers])
    meta = {"scenario": "corrected", "heterogeneity": "low", "dataset": dataset, "seed": seed}
    return _assemble(cp, hp, model, cuts, rng, bandwidth_mbps, memory_slack, clients, helpers, meta)


def high_heterogeneity_instance(
    num_clients: int,
    num_helpers: int,
    model: str = "resnet101",
    dataset: str = "cifar10",
    cuts: tuple[int, int] | None = None,
    seed: int = 0,
    bandwidth_mbps: tuple[float, float] = (10.0, 100.0),
    memory_slack: float = 1.5,
) -> HelperInstance:
    """Paper's scenario 2: each part time drawn uniformly between the measured device extremes.

    Client parts range over RPi 4B/3B+ and both Jetsons (MNIST: the RPis only, the Jetsons were not
    measured); helper part-2 times range over the VM and the laptop. Devices whose part sums to 0 ms
    (unmeasured rows, README issue 2) are left out of that part's range.
    """
    _validate_sizes(num_clients, num_helpers)
    cuts = tuple(cuts or DEFAULT_CUTS[model])
    rng = np.random.default_rng(seed)
    measured = load_layer_costs(model, dataset).devices
    client_devs = [d for d in HIGH_HET_CLIENTS if d in measured]
    cl = np.array([[(t := part_times(model, dataset, d, cuts)).p1_fwd, t.p1_bwd, t.p3] for d in client_devs])
    hl = np.array([[(t := part_times(model, dataset, d, cuts)).p2_fwd, t.p2_bwd] for d in LOW_HET_HELPERS])

    def draw(table: np.ndarray, n: int) -> np.ndarray:
        masked = np.where(table > 0, table, np.nan)
        lo, hi = np.nanmin(masked, axis=0), np.nanmax(masked, axis=0)
        return rng.uniform(lo, hi, size=(n, table.shape[1]))

    cp, hp = draw(cl, num_clients), draw(hl, num_helpers)
    meta = {"scenario": "corrected", "heterogeneity": "high", "dataset": dataset, "seed": seed}
    return _assemble(
        cp, hp, model, cuts, rng, bandwidth_mbps, memory_slack,
        ("synthetic",) * num_clients, ("synthetic",) * num_helpers, meta,
    )  # fmt: skip


def random_instance(
    num_clients: int, num_helpers: int, seed: int = 0, memory_slack: float = 1.3
) -> HelperInstance:
    """A synthetic instance with small times and unequal memory demands, for tests and demos."""
    _validate_sizes(num_clients, num_helpers)
    rng = np.random.default_rng(seed)
    k, h = num_clients, num_helpers
    speed = rng.uniform(0.5, 2.0, size=h)  # helper slowdown factor
    demand = rng.uniform(1.0, 3.0, size=k)
    capacity = np.maximum(np.full(h, memory_slack * demand.sum() / h), demand.max())
    return HelperInstance(
        release=rng.uniform(0, 10, size=(k, 1)) + rng.uniform(0, 2, size=(k, h)),
        p_fwd=rng.uniform(1, 5, size=(k, 1)) * speed,
        gap=rng.uniform(0, 8, size=(k, 1)) + rng.uniform(0, 1, size=(k, h)),
        p_bwd=rng.uniform(2, 8, size=(k, 1)) * speed,
        tail=rng.uniform(0, 10, size=(k, 1)) + rng.uniform(0, 2, size=(k, h)),
        mem_demand=demand,
        mem_capacity=capacity,
        meta={"scenario": "random", "seed": seed},
    )


def _tirana(het: str):
    def generate(num_clients: int, num_helpers: int, **opts) -> HelperInstance:
        from psl_core.helpers.tirana2024 import tirana2024_instance

        return tirana2024_instance(num_clients, num_helpers, het, **opts)

    generate.__doc__ = f"The authors' generator, {het} heterogeneity (psl_core.helpers.tirana2024)."
    return generate


SCENARIO_GENERATORS = {
    "corrected": {"low": low_heterogeneity_instance, "high": high_heterogeneity_instance},
    "tirana2024": {"low": _tirana("low"), "high": _tirana("high")},
}


def generate_instance(
    scenario: str, heterogeneity: str, num_clients: int, num_helpers: int, **opts
) -> HelperInstance:
    """An instance of ``scenario`` ('corrected' | 'tirana2024') at ``heterogeneity`` ('low' | 'high')."""
    if scenario not in SCENARIO_GENERATORS:
        raise HelperInputError(f"scenario must be one of {', '.join(SCENARIO_GENERATORS)}, got {scenario!r}")
    family = SCENARIO_GENERATORS[scenario]
    if heterogeneity not in family:
        raise HelperInputError(f"heterogeneity must be one of {', '.join(family)}, got {heterogeneity!r}")
    return family[heterogeneity](int(num_clients), int(num_helpers), **opts)
