"""One small class per non-IID partition scheme (flwr-datasets style; methods §3).

Every scheme turns (labels, K, C, rng) into an ``owner`` array: owner[i] is the client holding
sample i. Representing a partition by its owner array makes "disjoint and complete" true by
construction. Parameter names are the same everywhere (UI, config, CLI, docs).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np


class PartitionError(ValueError):
    """Bad partition parameters or an impossible request; the message says what to change."""


# --------------------------------------------------------------------------- dealing helpers


def apportion(total: int, weights: np.ndarray) -> np.ndarray:
    """Integers >= 0 summing to ``total``, proportional to ``weights`` (largest-remainder rounding)."""
    weights = np.asarray(weights, dtype=np.float64)
    exact = total * weights / weights.sum()
    counts = np.floor(exact).astype(np.int64)
    leftover = total - int(counts.sum())
    counts[np.argsort(-(exact - counts), kind="stable")[:leftover]] += 1
    return counts


def counts_from_proportions(proportions: np.ndarray, class_sizes: np.ndarray) -> np.ndarray:
    """(C, K) integer counts: class c's samples cut at the cumulative proportions of row c.

    This is the cumulative-proportion split of Hsu et al. / NIID-Bench; the tiny epsilon keeps exact
    fractions such as k/h from being floored one short by floating-point error.
    """
    cumulative = np.cumsum(proportions, axis=1) * class_sizes[:, None]
    bounds = np.minimum(np.floor(cumulative + 1e-9).astype(np.int64), class_sizes[:, None])
    bounds[:, -1] = class_sizes
    return np.diff(bounds, axis=1, prepend=0)


def deal_counts(labels: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Owner array giving client k exactly counts[c, k] random samples of class c (vectorised).

    Samples are grouped by class in random order; within class c, ranks [0, counts[c,0]) go to
    client 0, the next counts[c,1] to client 1, ... A single searchsorted does every class at once.
    """
    num_classes, num_clients = counts.shape
    class_sizes = np.bincount(labels, minlength=num_classes)
    offsets = np.concatenate([[0], np.cumsum(class_sizes)[:-1]])
    flat_bounds = (offsets[:, None] + np.cumsum(counts, axis=1)).ravel()
    order = np.lexsort((rng.random(len(labels)), labels))
    position = np.empty(len(labels), dtype=np.int64)
    position[order] = np.arange(len(labels))
    return np.searchsorted(flat_bounds, position, side="right") - labels * num_clients


# --------------------------------------------------------------------------- parameter checks


def _number(scheme: str, name: str, value: Any, *, minimum: float, strict: bool) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and (value > minimum if strict else value >= minimum)
    if not ok:
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise PartitionError(f"{scheme}: {name}={value!r} is not allowed; use a finite number {bound}")
    return float(value)


def _integer(scheme: str, name: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise PartitionError(f"{scheme}: {name}={value!r} is not allowed; use an integer >= {minimum}")
    return int(value)


# --------------------------------------------------------------------------- schemes


class PartitionScheme:
    """Base class: declares parameters (default, help) and validates them once, at construction."""

    name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    params: ClassVar[dict[str, tuple[Any, str]]] = {}

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            allowed = ", ".join(self.params) or "none"
            raise PartitionError(
                f"{self.name}: unknown parameter(s) {', '.join(unknown)}; allowed: {allowed}"
            )
        self.values = {key: params.get(key, default) for key, (default, _) in self.params.items()}
        self.validate()

    def validate(self) -> None:
        """Check parameter types and ranges (data-independent)."""

    def check_data(self, num_samples: int, num_clients: int, present_classes: np.ndarray) -> None:
        """Check parameters against the data (e.g. classes_per_client <= number of classes)."""

    def assign(
        self, labels: np.ndarray, num_clients: int, num_classes: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Return (owner array of length N, scheme-specific details)."""
        raise NotImplementedError

    def _check_classes_per_client(self, present_classes: np.ndarray) -> None:
        n = self.values["classes_per_client"]
        if n > len(present_classes):
            raise PartitionError(
                f"{self.name}: classes_per_client={n} is not allowed; the labels contain only "
                f"{len(present_classes)} classes, so use 1..{len(present_classes)}"
            )


class IidPartition(PartitionScheme):
    name = "iid"
    title = "IID"
    description = "Shuffle all samples and split them into K near-equal parts (sizes differ by at most 1)."
    params: ClassVar[dict[str, tuple[Any, str]]] = {}

    def assign(self, labels, num_clients, num_classes, rng):
        n = len(labels)
        owner = np.empty(n, dtype=np.int64)
        owner[rng.permutation(n)] = np.arange(n) * num_clients // n
        return owner, {}


class DirichletPartition(PartitionScheme):
    name = "dirichlet"
    title = "Dirichlet (label skew)"
    description = (
        "Hsu et al.: for each class draw p ~ Dir(alpha·1_K) over the clients and deal the class's samples "
        "by p. Small alpha = each class concentrated on few clients."
    )
    params: ClassVar[dict[str, tuple[Any, str]]] = {
        "alpha": (0.5, "Dirichlet concentration over clients; smaller is more skewed (> 0)"),
        "min_partition_size": (0, "redraw until every client has at least this many samples (>= 0)"),
        "max_redraws": (50, "how many redraws to try before giving up with an error (>= 0)"),
    }

    def validate(self):
        _number(self.name, "alpha", self.values["alpha"], minimum=0, strict=True)
        _integer(self.name, "min_partition_size", self.values["min_partition_size"], minimum=0)
        _integer(self.name, "max_redraws", self.values["max_redraws"], minimum=0)

    def check_data(self, num_samples, num_clients, present_classes):
        minimum = self.values["min_partition_size"]
        if minimum * num_clients > num_samples:
            raise PartitionError(
                f"dirichlet: min_partition_size={minimum} x num_clients={num_clients} exceeds the "
                f"{num_samples} samples; lower min_partition_size or num_clients"
            )

    def assign(self, labels, num_clients, num_classes, rng):
        alpha, minimum = float(self.values["alpha"]), self.values["min_partition_size"]
        class_sizes = np.bincount(labels, minlength=num_classes)
        smallest = 0
        for draw in range(self.values["max_redraws"] + 1):
            proportions = rng.dirichlet(np.full(num_clients, alpha), size=num_classes)
            counts = counts_from_proportions(proportions, class_sizes)
            smallest = int(counts.sum(axis=0).min())
            if smallest >= minimum:
                return deal_counts(labels, counts, rng), {"redraws": draw}
        raise PartitionError(
            f"dirichlet: after {self.values['max_redraws']} redraws some client still had {smallest} samples "
            f"< min_partition_size={minimum}; raise alpha (now {alpha:g}), lower num_clients (now "
            f"{num_clients}) or lower min_partition_size"
        )


class ExtendedDirichletPartition(PartitionScheme):
    name = "extended_dirichlet"
    title = "Extended Dirichlet (GPSL)"
    description = (
        "As in the GPSL experiments: each client picks classes_per_client distinct classes, spreading picks "
        "evenly (probability ∝ exp(−times already picked · C)); each class is dealt by p ~ Dir(alpha·q + 1e-10) "
        "over the clients that picked it — alpha for EVERY member, so the client sizes do not get more "
        "skewed as K grows (K = 128, 2 classes each, alpha = 3: size CV ≈ 0.4, largest ≈ 2× the mean). "
        "A class nobody picked (possible when K·classes_per_client < C) is given whole to one client, "
        "round-robin over a seeded client order, and listed in details['extra_classes']."
    )
    params: ClassVar[dict[str, tuple[Any, str]]] = {
        "classes_per_client": (2, "distinct classes each client picks (1..C); mild 5, severe 2"),
        "alpha": (3.0, "Dirichlet concentration among the clients sharing a class (> 0)"),
    }

    def validate(self):
        _integer(self.name, "classes_per_client", self.values["classes_per_client"], minimum=1)
        _number(self.name, "alpha", self.values["alpha"], minimum=0, strict=True)

    def check_data(self, num_samples, num_clients, present_classes):
        self._check_classes_per_client(present_classes)

    def assign(self, labels, num_clients, num_classes, rng):
        n, alpha = self.values["classes_per_client"], float(self.values["alpha"])
        present = np.flatnonzero(np.bincount(labels, minlength=num_classes))
        times_picked = np.zeros(len(present))
        picks = np.empty((num_clients, n), dtype=np.int64)
        # Sequential on purpose: each client's pick probabilities depend on all earlier picks.
        for client in range(num_clients):
            # exp(-times * C), shifted by the minimum so the weights cannot all underflow to zero.
            weights = np.exp(-(times_picked - times_picked.min()) * num_classes)
            weights = np.maximum(weights, np.finfo(np.float64).tiny)
            chosen = rng.choice(len(present), size=n, replace=False, p=weights / weights.sum())
            times_picked[chosen] += 1
            picks[client] = present[np.sort(chosen)]
        holders = np.zeros((num_classes, num_clients), dtype=bool)
        holders[picks, np.arange(num_clients)[:, None]] = True
        unpicked = present[~holders[present].any(axis=1)]
        extra: dict[int, list[int]] = {}
        client_order = rng.permutation(num_clients)
        for j, cls in enumerate(unpicked):
            holders[cls, client_order[j % num_clients]] = True
            extra.setdefault(int(client_order[j % num_clients]), []).append(int(cls))
        proportions = np.zeros((num_classes, num_clients))
        for cls in present:
            members = np.flatnonzero(holders[cls])
            # alpha per member (q_k = 1), as in the reference splitter: dividing it by the number of
            # members would make shares far more skewed at large K (client-size CV 1.8 instead of 0.4).
            proportions[cls, members] = rng.dirichlet(np.full(len(members), alpha + 1e-10))
        counts = counts_from_proportions(proportions, np.bincount(labels, minlength=num_classes))
        details = {"client_classes": picks.tolist(), "extra_classes": extra}
        return deal_counts(labels, counts, rng), details


class ShardsPartition(PartitionScheme):
    name = "shards"
    title = "Shards (FedAvg)"
    description = (
        "McMahan et al.: sort samples by label (ties in random order), cut into K·shards_per_client "
        "near-equal shards and give each client shards_per_client random shards."
    )
    params: ClassVar[dict[str, tuple[Any, str]]] = {
        "shards_per_client": (2, "number of label-sorted shards per client (>= 1)"),
    }

    def validate(self):
        _integer(self.name, "shards_per_client", self.values["shards_per_client"], minimum=1)

    def check_data(self, num_samples, num_clients, present_classes):
        s = self.values["shards_per_client"]
        if num_clients * s > num_samples:
            raise PartitionError(
                f"shards: num_clients={num_clients} x shards_per_client={s} exceeds the {num_samples} "
                f"samples (every shard needs one); lower shards_per_client or num_clients"
            )

    def assign(self, labels, num_clients, num_classes, rng):
        n, num_shards = len(labels), num_clients * self.values["shards_per_client"]
        order = np.lexsort((rng.random(n), labels))
        shard_of_position = np.arange(n) * num_shards // n
        owner_of_shard = np.argsort(rng.permutation(num_shards)) // self.values["shards_per_client"]
        owner = np.empty(n, dtype=np.int64)
        owner[order] = owner_of_shard[shard_of_position]
        return owner, {}


class PathologicalPartition(PartitionScheme):
    name = "pathological"
    title = "Pathological (n classes per client)"
    description = (
        "Every client holds exactly classes_per_client classes, assigned round-robin over a seeded class "
        "order so every class has a holder; each class is split evenly among its holders."
    )
    params: ClassVar[dict[str, tuple[Any, str]]] = {
        "classes_per_client": (2, "exact number of classes on every client (1..C)"),
    }

    def validate(self):
        _integer(self.name, "classes_per_client", self.values["classes_per_client"], minimum=1)

    def check_data(self, num_samples, num_clients, present_classes):
        self._check_classes_per_client(present_classes)
        n = self.values["classes_per_client"]
        if num_clients * n < len(present_classes):
            raise PartitionError(
                f"pathological: num_clients={num_clients} x classes_per_client={n} < {len(present_classes)} "
                f"classes, so some class would have no holder; raise classes_per_client or num_clients"
            )

    def assign(self, labels, num_clients, num_classes, rng):
        n = self.values["classes_per_client"]
        class_sizes = np.bincount(labels, minlength=num_classes)
        present = np.flatnonzero(class_sizes)
        class_order = rng.permutation(present)
        slots = (np.arange(num_clients)[:, None] * n + np.arange(n)) % len(present)
        client_classes = class_order[slots]  # (K, n), distinct within a row because n <= C
        holders = np.zeros((num_classes, num_clients), dtype=bool)
        holders[client_classes, np.arange(num_clients)[:, None]] = True
        holder_count = holders.sum(axis=1)
        short = present[class_sizes[present] < holder_count[present]]
        if len(short):
            cls = int(short[0])
            raise PartitionError(
                f"pathological: class {cls} has {class_sizes[cls]} samples but {holder_count[cls]} clients "
                f"hold it, so not every client can get classes_per_client={n} classes; lower num_clients "
                f"or classes_per_client"
            )
        proportions = holders / np.maximum(holder_count, 1)[:, None]
        counts = counts_from_proportions(proportions, class_sizes)
        return deal_counts(labels, counts, rng), {"client_classes": np.sort(client_classes, axis=1).tolist()}


class QuantitySkewPartition(PartitionScheme):
    name = "quantity_skew"
    title = "Quantity skew"
    description = (
        "IID labels, unequal client sizes: sizes ∝ Dirichlet(beta·1_K) or log-normal(0, sigma); every "
        "client gets at least one sample."
    )
    params: ClassVar[dict[str, tuple[Any, str]]] = {
        "distribution": ("dirichlet", "how client sizes are drawn: 'dirichlet' or 'lognormal'"),
        "beta": (1.0, "Dirichlet concentration of the sizes; smaller is more unequal (> 0)"),
        "sigma": (1.0, "log-normal spread of the sizes; larger is more unequal (>= 0)"),
    }

    def validate(self):
        if self.values["distribution"] not in ("dirichlet", "lognormal"):
            raise PartitionError(
                f"quantity_skew: distribution={self.values['distribution']!r} is not allowed; "
                f"use 'dirichlet' or 'lognormal'"
            )
        _number(self.name, "beta", self.values["beta"], minimum=0, strict=True)
        _number(self.name, "sigma", self.values["sigma"], minimum=0, strict=False)

    def assign(self, labels, num_clients, num_classes, rng):
        n = len(labels)
        if self.values["distribution"] == "dirichlet":
            weights = rng.dirichlet(np.full(num_clients, float(self.values["beta"])))
        else:
            weights = rng.lognormal(0.0, float(self.values["sigma"]), size=num_clients)
        if not np.isfinite(weights).all() or weights.sum() <= 0:
            weights = np.ones(num_clients)  # degenerate draw (all mass underflowed): fall back to equal
        # One guaranteed sample per client, the rest by weight (N >= K is checked by the caller).
        sizes = 1 + apportion(n - num_clients, weights)
        owner = np.empty(n, dtype=np.int64)
        owner[rng.permutation(n)] = np.repeat(np.arange(num_clients), sizes)
        return owner, {}


SCHEME_CLASSES: dict[str, type[PartitionScheme]] = {
    cls.name: cls
    for cls in (
        IidPartition,
        DirichletPartition,
        ExtendedDirichletPartition,
        ShardsPartition,
        PathologicalPartition,
        QuantitySkewPartition,
    )
}
