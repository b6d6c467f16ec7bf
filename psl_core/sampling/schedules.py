"""Batch-composition schedules (methods §2): FLS, FPLS, UGS (GPSL), centralised; LDS lives in lds.py.

Every schedule turns the client sizes N_k alone into one epoch's count matrix b[t, k].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psl_core.sampling.counts import CountMatrix
from psl_core.sampling.lds import LDSSampler
from psl_core.sampling.validation import ScheduleError, check_batch_size, check_client_sizes


@dataclass(frozen=True)
class MethodInfo:
    """What the UI and docs say about one sampling method."""

    name: str
    title: str
    short: str
    description: str
    project_definition: bool


SAMPLING_METHODS: dict[str, MethodInfo] = {
    "fls": MethodInfo(
        "fls",
        "FLS - fixed local sampling",
        "every client sends max(1, round(B/K)) samples per step",
        "Each client contributes b_k = max(1, round(B/K)) samples every step (or a fixed per-client batch b: "
        "vanilla PSL, effective batch K*b). A client whose data runs out drops out; the epoch lasts "
        "max_k ceil(N_k/b_k) steps, so late batches are small and skewed to the largest clients.",
        False,
    ),
    "fpls": MethodInfo(
        "fpls",
        "FPLS - fixed proportional local sampling",
        "every client sends max(1, round(B*N_k/N)) samples per step",
        "Each client contributes b_k = max(1, round(B*N_k/N)) samples every step until its data runs out; "
        "the epoch lasts max_k ceil(N_k/b_k) steps.",
        False,
    ),
    "ugs": MethodInfo(
        "ugs",
        "UGS / GPSL - uniform global sampling",
        "global batches have the law of uniform sampling without replacement from the pooled data",
        "One owner token per pooled sample is shuffled and cut into T = ceil(N/B) chunks whose sizes differ "
        "by at most one; b[t,k] counts client k's tokens in chunk t. Every sample is used once per epoch.",
        False,
    ),
    "lds": MethodInfo(
        "lds",
        "LDS - latent Dirichlet sampling",
        "Dirichlet client shares with knobs c (concentration) and delta (latency aversion); counts vary "
        "~2x as much as UGS's",
        "Project definition (the paper's code is unpublished): each step theta ~ Dir(c*Z*pi) with "
        "pi_k ~ (N_k/N)*(l_k/median l)^(-delta), l_k the client's expected per-sample latency, and "
        "Z = B(N-1)/(N-B) - 1; b[t,:] ~ Multinomial(B, theta) capped by what each client has left in its "
        "current local pass (overflow re-drawn among the others). c = 1, delta = 0 matches UGS's share "
        "variance, but the realised per-client counts vary about 2x as much as UGS's (Dirichlet-"
        "multinomial); delta > 0 moves samples away from slow clients (delta = 1: share ~ data / latency); "
        "large c makes the shares deterministic.",
        True,
    ),
    "centralised": MethodInfo(
        "centralised",
        "Centralised reference",
        "one client holding all data, uniform batches: the accuracy ceiling",
        "K = 1 holds every sample; batches are uniform without replacement (UGS with one client).",
        False,
    ),
}


def fixed_counts(client_sizes: np.ndarray, per_client: np.ndarray) -> CountMatrix:
    """Count matrix where client k sends per_client[k] samples per step until its data runs out.

    Its last batch is partial; clients with N_k = 0 never appear; T = max_k ceil(N_k / b_k).
    """
    sizes = np.asarray(client_sizes, dtype=np.int64)
    per_client = np.asarray(per_client, dtype=np.int64)
    steps_k = np.where(sizes > 0, -(-sizes // np.maximum(per_client, 1)), 0)
    num_steps = int(steps_k.max())
    total = int(steps_k.sum())
    client = np.repeat(np.arange(sizes.size, dtype=np.int64), steps_k)
    seg_start = np.cumsum(steps_k) - steps_k
    step = np.arange(total, dtype=np.int64) - np.repeat(seg_start, steps_k)
    count = np.repeat(per_client, steps_k)
    last = seg_start[steps_k > 0] + steps_k[steps_k > 0] - 1
    count[last] = sizes[steps_k > 0] - (steps_k[steps_k > 0] - 1) * per_client[steps_k > 0]
    order = np.lexsort((client, step))
    return CountMatrix(num_steps, sizes.size, step[order], client[order], count[order])


def fls_counts(client_sizes, batch_size, *, per_client_batch: int | None = None) -> CountMatrix:
    """FLS: every client sends b_k = max(1, round(B/K)) (or ``per_client_batch``) samples per step.

    ``round`` is Python's/numpy's round-half-to-even, as written in methods §2.
    """
    sizes = check_client_sizes(client_sizes)
    batch = check_batch_size(batch_size)
    if per_client_batch is None:
        b = max(1, int(np.round(batch / sizes.size)))
    else:
        if (
            isinstance(per_client_batch, bool)
            or int(per_client_batch) != per_client_batch
            or per_client_batch < 1
        ):
            raise ScheduleError(
                f"per_client_batch must be a positive integer or None, got {per_client_batch!r}"
            )
        b = int(per_client_batch)
    return fixed_counts(sizes, np.full(sizes.size, b, dtype=np.int64))


def fpls_counts(client_sizes, batch_size) -> CountMatrix:
    """FPLS: client k sends b_k = max(1, round(B * N_k / N)) samples per step until its data runs out."""
    sizes = check_client_sizes(client_sizes)
    batch = check_batch_size(batch_size)
    per_client = np.maximum(1, np.round(batch * sizes / sizes.sum())).astype(np.int64)
    return fixed_counts(sizes, per_client)


def ugs_chunk_ids(num_samples: int, num_steps: int) -> np.ndarray:
    """Chunk (step) id of each of ``num_samples`` shuffled positions; chunk sizes differ by at most one.

    The first ``num_samples % num_steps`` chunks hold one sample more (numpy.array_split's convention).
    """
    base, extra = divmod(num_samples, num_steps)
    pos = np.arange(num_samples, dtype=np.int64)
    big = extra * (base + 1)
    return np.where(pos < big, pos // (base + 1), extra + (pos - big) // max(base, 1))


def ugs_counts(client_sizes, batch_size, rng: np.random.Generator) -> CountMatrix:
    """UGS / GPSL: shuffle N owner tokens, cut into T = ceil(N/B) near-equal chunks, count owners per chunk."""
    sizes = check_client_sizes(client_sizes)
    batch = check_batch_size(batch_size)
    num_clients = sizes.size
    n = int(sizes.sum())
    num_steps = -(-n // batch)
    owners = rng.permutation(np.repeat(np.arange(num_clients, dtype=np.int64), sizes))
    key = ugs_chunk_ids(n, num_steps) * num_clients + owners
    key.sort()
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    count = np.diff(np.r_[starts, n])
    key = key[starts]
    return CountMatrix(num_steps, num_clients, key // num_clients, key % num_clients, count)


def epoch_counts(
    method: str,
    client_sizes,
    batch_size,
    rng: np.random.Generator,
    *,
    per_client_batch: int | None = None,
    lds: LDSSampler | None = None,
    max_steps: int | None = None,
) -> CountMatrix:
    """One epoch's count matrix for ``method`` in SAMPLING_METHODS, cut to ``max_steps`` steps if given.

    "lds" needs the caller's stateful ``lds`` sampler (built from the same client sizes) so that local
    passes continue across epochs; it then draws only the steps that run, so its pass positions advance
    by what is used. "centralised" needs a single client holding all samples.
    """
    if max_steps is not None and (
        isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1
    ):
        raise ScheduleError(f"max_steps must be a positive integer or None, got {max_steps!r}")
    if str(method).lower() == "lds":
        if per_client_batch is not None:
            raise ScheduleError("per_client_batch only applies to 'fls' (vanilla PSL), not to 'lds'")
        return _lds_counts(client_sizes, batch_size, rng, lds, max_steps)
    return truncate_counts(
        _full_epoch_counts(method, client_sizes, batch_size, rng, per_client_batch=per_client_batch),
        max_steps,
    )


def truncate_counts(counts: CountMatrix, max_steps: int | None) -> CountMatrix:
    """The first ``max_steps`` steps of an epoch (quick demos)."""
    if max_steps is None or counts.num_steps <= max_steps:
        return counts
    keep = counts.step < max_steps
    return CountMatrix(
        max_steps, counts.num_clients, counts.step[keep], counts.client[keep], counts.count[keep]
    )


def _lds_counts(client_sizes, batch_size, rng, lds: LDSSampler | None, max_steps: int | None) -> CountMatrix:
    if lds is None:
        raise ScheduleError("method 'lds' needs lds=LDSSampler(client_sizes, batch_size, c=..., delta=...)")
    sizes = check_client_sizes(client_sizes)
    if not np.array_equal(sizes, lds.client_sizes) or check_batch_size(batch_size) != lds.batch_size:
        raise ScheduleError("the LDSSampler was built for other client sizes or batch size; rebuild it")
    return lds.epoch_counts(rng, num_steps=max_steps)


def _full_epoch_counts(
    method: str, client_sizes, batch_size, rng: np.random.Generator, *, per_client_batch: int | None
) -> CountMatrix:
    name = str(method).lower()
    if name not in SAMPLING_METHODS:
        raise ScheduleError(f"unknown sampling method {method!r}; choose one of {sorted(SAMPLING_METHODS)}")
    if name == "fls":
        return fls_counts(client_sizes, batch_size, per_client_batch=per_client_batch)
    if per_client_batch is not None:
        raise ScheduleError(f"per_client_batch only applies to 'fls' (vanilla PSL), not to {name!r}")
    if name == "fpls":
        return fpls_counts(client_sizes, batch_size)
    if name == "ugs":
        return ugs_counts(client_sizes, batch_size, rng)
    if name == "centralised":
        sizes = check_client_sizes(client_sizes)
        if sizes.size != 1:
            raise ScheduleError(
                f"'centralised' needs one client holding every sample, got {sizes.size} clients: "
                "merge the clients (client_sizes=[N]) before asking for the centralised reference"
            )
        return ugs_counts(sizes, batch_size, rng)
    raise AssertionError(f"unhandled sampling method {name!r}")  # every name is handled above
