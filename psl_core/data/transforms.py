"""Tensor transforms: per-channel normalisation and vectorised, generator-driven augmentation."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of an (N, C, ...) array, computed in float64 for stability.

    A channel with zero variance gets std 1 so normalising it never divides by zero.
    """
    if x.ndim < 2:
        raise ValueError(f"channel_stats needs an (N, C, ...) array, got shape {x.shape}")
    # Accumulate per channel to avoid a float64 copy of the whole data set.
    mean = np.array([x[:, c].mean(dtype=np.float64) for c in range(x.shape[1])])
    std = np.array([x[:, c].std(dtype=np.float64) for c in range(x.shape[1])])
    std[std == 0] = 1.0
    return mean, std


def normalise(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    """Return a NEW float32 tensor (x - mean) / std with per-channel statistics."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    out = x.astype(np.float32)  # always a copy: callers may mutate the result freely
    out -= mean.astype(np.float32).reshape(shape)
    out /= std.astype(np.float32).reshape(shape)
    return torch.from_numpy(out)


def augment_images(
    x: torch.Tensor, generator: torch.Generator, *, crop_padding: int = 4, flip: bool = True
) -> torch.Tensor:
    """Random crop with zero padding + random horizontal flip, one draw per sample, no sample loop.

    - (N, C, H, W): each image is zero-padded by ``crop_padding`` on every side and an H x W window
      is cut at a random offset; then, if ``flip``, mirrored left-right with probability 1/2.
    - (N, C, L): 1-D signals get only a random shift in [-crop_padding, crop_padding] with zero fill
      (mirroring a signal changes its meaning, so ``flip`` is ignored).

    Reproducible: the same ``generator`` state gives the same output. Returns a new tensor of the
    same shape/dtype/device; labels are untouched because samples are never reordered.
    """
    if x.ndim not in (3, 4):
        raise ValueError(f"augment_images expects (N, C, H, W) or (N, C, L), got shape {tuple(x.shape)}")
    if crop_padding < 0:
        raise ValueError(f"crop_padding must be >= 0, got {crop_padding}")
    n = x.shape[0]
    gen_device = generator.device
    pad = crop_padding

    if x.ndim == 3:
        length = x.shape[-1]
        if pad == 0:
            return x.clone()
        padded = F.pad(x, (pad, pad))
        start = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=gen_device).to(x.device)
        cols = start[:, None] + torch.arange(length, device=x.device)  # (N, L)
        index = cols[:, None, :].expand(-1, x.shape[1], -1)
        return torch.gather(padded, 2, index)

    height, width = x.shape[-2:]
    offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=generator, device=gen_device).to(x.device)
    flips = torch.rand(n, generator=generator, device=gen_device).to(x.device) < 0.5
    if pad > 0:
        # One gather over the flattened padded plane: ~5x faster than 4-D advanced indexing on CPU.
        padded = F.pad(x, (pad, pad, pad, pad)).flatten(2)  # (N, C, (H+2p)*(W+2p))
        rows = offsets[0][:, None] + torch.arange(height, device=x.device)  # (N, H)
        cols = offsets[1][:, None] + torch.arange(width, device=x.device)  # (N, W)
        flat_index = (rows[:, :, None] * (width + 2 * pad) + cols[:, None, :]).flatten(1)
        out = torch.gather(padded, 2, flat_index[:, None, :].expand(-1, x.shape[1], -1))
        out = out.view(n, x.shape[1], height, width)
    else:
        out = x.clone()
    if flip:
        out = torch.where(flips[:, None, None, None], out.flip(-1), out)
    return out
