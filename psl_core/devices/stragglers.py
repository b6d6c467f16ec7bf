"""Seeded straggler model: persistent slow clients and transient per-step slowdowns (methods §4).

A slowdown factor s >= 1 multiplies a client's compute time at one step. It is the product of
  * a persistent factor: exactly round_half_up(persistent_fraction * K) clients, chosen once per run
    from ``seed``, are ``persistent_factor`` times slower at every step;
  * a transient factor: at each (step, client) entry, with probability ``transient_prob``, the client
    is slowed by a factor drawn from ``transient_dist``; otherwise the factor is 1.

Transient distributions (both have support [1, inf)):
  * 'lognormal': factor = exp(|Z|), Z ~ N(0, transient_scale^2) -- a log-normal folded at 1
    (half-normal in log space), median exp(0.6745 * sigma), all moments finite;
  * 'pareto': factor = 1 + Lomax(a) with a = transient_scale, i.e. the classical Pareto with x_m = 1,
    P(factor > x) = x^(-a), median 2^(1/a); the mean is infinite for a <= 1 (heavy tail).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TRANSIENT_DISTS = ("lognormal", "pareto")


@dataclass(frozen=True)
class StragglerSpec:
    """How clients straggle; see the module docstring for the exact laws."""

    persistent_fraction: float = 0.0  # fraction of clients that are always slower
    persistent_factor: float = 10.0  # their slowdown factor (>= 1)
    transient_prob: float = 0.0  # each step each client is slowed with this probability
    transient_dist: str = "lognormal"  # 'lognormal' | 'pareto'
    transient_scale: float = 1.0  # lognormal: sigma of the log-factor; pareto: shape a

    def __post_init__(self) -> None:
        if not 0.0 <= self.persistent_fraction <= 1.0:
            raise ValueError(f"persistent_fraction must be in [0, 1], got {self.persistent_fraction}")
        if not self.persistent_factor >= 1.0:
            raise ValueError(f"persistent_factor must be >= 1 (a slowdown), got {self.persistent_factor}")
        if not 0.0 <= self.transient_prob <= 1.0:
            raise ValueError(f"transient_prob must be in [0, 1], got {self.transient_prob}")
        if self.transient_dist not in TRANSIENT_DISTS:
            raise ValueError(f"transient_dist must be one of {TRANSIENT_DISTS}, got {self.transient_dist!r}")
        if not self.transient_scale > 0:
            raise ValueError(
                f"transient_scale must be > 0 (lognormal sigma or Pareto shape), got {self.transient_scale}"
            )


def num_persistent(num_clients: int, fraction: float) -> int:
    """round(fraction * K), halves rounded up (Python's round() would round 2.5 to 2)."""
    return int(np.floor(fraction * num_clients + 0.5))


def draw_transient_factors(spec: StragglerSpec, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` i.i.d. transient slowdown factors (>= 1) of the spec's distribution, ignoring the probability."""
    if spec.transient_dist == "lognormal":
        return np.exp(np.abs(rng.normal(0.0, spec.transient_scale, size)))
    return 1.0 + rng.pareto(spec.transient_scale, size)


class StragglerModel:
    """Per-run persistent factors plus per-step transient draws, all seeded."""

    def __init__(self, num_clients: int, spec: StragglerSpec, seed: int) -> None:
        if num_clients < 1:
            raise ValueError(f"num_clients must be >= 1, got {num_clients}")
        self.num_clients = num_clients
        self.spec = spec
        rng = np.random.default_rng(seed)
        slowed = rng.choice(
            num_clients, size=num_persistent(num_clients, spec.persistent_fraction), replace=False
        )
        persistent = np.ones(num_clients)
        persistent[slowed] = spec.persistent_factor
        persistent.setflags(write=False)
        self.persistent: np.ndarray = persistent

    def slowdowns(self, clients: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Slowdown factor (>= 1) for each (step, client) entry; ``clients`` holds the entries' client ids.

        Vectorised over entries: one uniform per entry decides the transient event, and factors are
        drawn only for the slowed entries (in entry order), so the result depends only on ``rng``'s state.
        """
        clients = np.asarray(clients)
        if clients.size and (clients.min() < 0 or clients.max() >= self.num_clients):
            raise ValueError(
                f"client ids must lie in [0, {self.num_clients}), got range [{clients.min()}, {clients.max()}]"
            )
        factors = self.persistent[clients].astype(float)
        if self.spec.transient_prob > 0:
            hit = rng.random(clients.shape) < self.spec.transient_prob
            factors[hit] *= draw_transient_factors(self.spec, int(hit.sum()), rng)
        return factors
