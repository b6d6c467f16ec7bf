"""Speed of the batch-composition schedules at the reference scale (N = 1e6, K = 1e4, B = 128).

Run: python bench/bench_sampling.py   (prints a table; median of 3 runs)
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from psl_core.sampling import ClientSampler, LDSSampler, ugs_counts

N, K, B = 1_000_000, 10_000, 128


def skewed_sizes(rng: np.random.Generator) -> np.ndarray:
    """Log-normal client sizes (sigma = 1) summing to N, every client non-empty."""
    weights = rng.lognormal(0.0, 1.0, K)
    sizes = 1 + rng.multinomial(N - K, weights / weights.sum())
    return sizes.astype(np.int64)


def median_seconds(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    rng = np.random.default_rng(0)
    sizes = skewed_sizes(rng)
    num_steps = -(-N // B)
    offsets = np.r_[0, np.cumsum(sizes)]
    parts = np.split(rng.permutation(N), offsets[1:-1])
    lds = LDSSampler(sizes, B, latency_per_sample=rng.lognormal(0, 0.5, K), delta=0.5)
    sampler = ClientSampler(parts)
    ugs_cm = ugs_counts(sizes, B, rng)
    lds_cm = lds.epoch_counts(rng)
    rows = [
        ("ugs counts", median_seconds(lambda: ugs_counts(sizes, B, rng)), 1.0),
        ("lds epoch counts (c=1, delta=0.5)", median_seconds(lambda: lds.epoch_counts(rng)), 2.0),
        ("ClientSampler.epoch (ugs)", median_seconds(lambda: sampler.epoch(ugs_cm, rng)), None),
        (
            "ClientSampler.epoch (lds, streaming)",
            median_seconds(lambda: sampler.epoch(lds_cm, rng, streaming=True)),
            None,
        ),
    ]
    print(f"{'method':<40} {'N':>9} {'K':>6} {'B':>4} {'T':>6} {'seconds':>8} {'target':>7} {'result':>6}")
    for name, seconds, target in rows:
        verdict = "info" if target is None else ("pass" if seconds < target else "FAIL")
        target_text = "-" if target is None else f"<{target:g}s"
        print(f"{name:<40} {N:>9} {K:>6} {B:>4} {num_steps:>6} {seconds:>8.3f} {target_text:>7} {verdict:>6}")


if __name__ == "__main__":
    main()
