"""Pure computations behind the "what the split point changes" explainer of the Learn page.

Costs per cut come from the measured model profile; the "privacy" view runs a briefly trained model's
client part on a few digits images and shows the smashed data (the cut activations) as images.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from psl_core.data import load_dataset
from psl_core.models import BlockModel, build_model, cut_table, profile_arch

#: Architectures whose activations keep a spatial layout on 8×8 digits (worth showing as images).
PRIVACY_ARCHS = ("cnn", "resnet8")
DIGITS_SHAPE = (1, 8, 8)
NUM_CLASSES = 10


class SplitInputError(ValueError):
    """The split-point explainer was asked for something it cannot show; the message says what to change."""


def cut_cost_frame(arch: str, batch_size: int, input_shape: tuple[int, ...] = DIGITS_SHAPE) -> pd.DataFrame:
    """One row per cut of ``arch``: client FLOPs share, client memory, smashed bytes, params on the client.

    Client memory is ``CutSummary.client_memory_bytes(batch_size)`` (3 × parameter bytes + activations).
    """
    if batch_size < 1:
        raise SplitInputError(f"batch size must be >= 1, got {batch_size}")
    profile = profile_arch(arch, tuple(input_shape), NUM_CLASSES)
    total = profile.total_flops_per_sample
    rows = []
    for summary in cut_table(profile):
        rows.append(
            {
                "cut": summary.cut,
                "after block": summary.cut_name,
                "client FLOPs share (%)": 100.0 * summary.client_flops_per_sample / total,
                "client memory (KiB)": summary.client_memory_bytes(batch_size) / 1024,
                "smashed bytes / sample": summary.smashed_bytes_per_sample,
                "smashed / input size": summary.smashed_bytes_per_sample / profile.input_bytes_per_sample,
                "client parameters": summary.client_params,
            }
        )
    return pd.DataFrame(rows)


def digits_samples(count: int, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """``count`` digits test images (normalised, (n, 1, 8, 8)) of distinct classes where possible, and labels."""
    data = load_dataset("digits")
    rng = np.random.default_rng(seed)
    labels = data.y_test.numpy()
    # One random image per class first, then repeats: the grid shows as many different digits as it can.
    order = rng.permutation(labels.size)
    first_of_class = order[np.unique(labels[order], return_index=True)[1]]
    rest = np.setdiff1d(order, first_of_class, assume_unique=True)
    picks = np.r_[rng.permutation(first_of_class), rest][:count]
    return data.x_test[picks].clone(), labels[picks]


def train_digits_model(arch: str, steps: int = 40, seed: int = 0, batch_size: int = 32) -> BlockModel:
    """``arch`` briefly trained (Adam, ``steps`` steps) on the digits training set; seeded, eval mode.

    The client norm is GroupNorm (per sample), so the cut activations of an image do not depend on
    which other images share its batch.
    """
    if arch not in PRIVACY_ARCHS:
        raise SplitInputError(f"the activation view supports {', '.join(PRIVACY_ARCHS)}, got {arch!r}")
    data = load_dataset("digits")
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        names_count = len(profile_arch(arch, DIGITS_SHAPE, NUM_CLASSES).blocks)
        model = build_model(
            arch, input_shape=DIGITS_SHAPE, num_classes=NUM_CLASSES, cut=names_count - 1, client_norm="group"
        )
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    # Tiny tensors: one thread avoids oversubscription on shared CPUs (several times faster here).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(steps):
            idx = torch.randint(0, data.y_train.numel(), (batch_size,), generator=generator)
            loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def cut_activations(model: BlockModel, images: torch.Tensor, cut: int) -> np.ndarray:
    """Smashed data: output of client blocks ``[0, cut)`` for ``images``, shape (n, *out_shape)."""
    if not 1 <= cut <= model.num_blocks - 1:
        raise SplitInputError(f"cut must be in 1..{model.num_blocks - 1}, got {cut}")
    with torch.no_grad():
        return model.forward_range(images, 0, cut).numpy()


def _normalise_maps(maps: np.ndarray) -> np.ndarray:
    """Scale each (..., h, w) map to [0, 1] independently (a constant map becomes 0)."""
    lo = maps.min(axis=(-2, -1), keepdims=True)
    span = maps.max(axis=(-2, -1), keepdims=True) - lo
    return np.where(span > 0, (maps - lo) / np.where(span > 0, span, 1.0), 0.0)


def top_channels(activations: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` channels with the largest mean spatial variance (the most informative)."""
    if activations.ndim != 4:
        raise SplitInputError("activations must be (n, channels, h, w) to pick channels")
    energy = activations.var(axis=(-2, -1)).mean(axis=0)
    return np.argsort(-energy, kind="stable")[:count]


def input_match(images: np.ndarray, activations: np.ndarray) -> np.ndarray:
    """Per image, the largest |Pearson correlation| between the input and any channel upsampled to it.

    A simple leakage measure: near 1 means some channel is almost a copy of the picture. Flat (1-D)
    activations have no pixel layout to compare, so every entry is NaN.
    """
    n = images.shape[0]
    if activations.ndim != 4:
        return np.full(n, np.nan)
    size = images.shape[-2:]
    up = F.interpolate(torch.from_numpy(activations).float(), size=size, mode="bilinear", align_corners=False)
    x = images.reshape(n, 1, -1).astype(np.float64)
    a = up.numpy().reshape(n, activations.shape[1], -1).astype(np.float64)
    x = x - x.mean(axis=-1, keepdims=True)
    a = a - a.mean(axis=-1, keepdims=True)
    denom = np.sqrt((x**2).sum(-1) * (a**2).sum(-1))
    corr = np.where(denom > 0, (x * a).sum(-1) / np.where(denom > 0, denom, 1.0), 0.0)
    return np.abs(corr).max(axis=1)


def activation_mosaic(
    images: np.ndarray, activations: np.ndarray, channels: np.ndarray, tile: int = 48
) -> np.ndarray:
    """One grey image: a row per input; the input first, then the chosen channels, each scaled to [0, 1].

    Every map is enlarged to ``tile`` × ``tile`` pixels by nearest-neighbour repetition (so the coarse
    grid of deep activations stays visible) with a 4-pixel white gap between tiles.
    """
    if activations.ndim != 4:
        raise SplitInputError("flat activations have no pixel layout; the mosaic needs (n, channels, h, w)")
    maps = [_normalise_maps(images[:, 0])] + [_normalise_maps(activations[:, c]) for c in channels]
    gap = 4
    n, cols = images.shape[0], len(maps)
    canvas = np.ones((n * (tile + gap) - gap, cols * (tile + gap) - gap))
    for j, group in enumerate(maps):  # loop over a handful of channels, not samples
        h, w = group.shape[-2:]
        enlarged = np.repeat(np.repeat(group, -(-tile // h), axis=1), -(-tile // w), axis=2)[:, :tile, :tile]
        for i in range(n):
            canvas[i * (tile + gap) : i * (tile + gap) + tile, j * (tile + gap) : j * (tile + gap) + tile] = (
                enlarged[i]
            )
    return canvas


def leakage_by_cut(model: BlockModel, images: torch.Tensor) -> pd.DataFrame:
    """Mean ``input_match`` and activation shape for every cut of ``model`` (NaN once the layout is flat)."""
    x = images.numpy()
    rows = []
    for cut in range(1, model.num_blocks):
        acts = cut_activations(model, images, cut)
        rows.append(
            {
                "cut": cut,
                "after block": model.block_names[cut - 1],
                "activation shape": "×".join(str(d) for d in acts.shape[1:]),
                "best-channel |correlation| with input": float(np.mean(input_match(x, acts))),
            }
        )
    return pd.DataFrame(rows)
