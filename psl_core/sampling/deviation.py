"""Batch deviation (methods §2): L1 distance between a global batch's label histogram and p(c)."""

from __future__ import annotations

import numpy as np


def label_distribution(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """p(c): label frequencies of the whole training set, shape (num_classes,)."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size == 0:
        raise ValueError("labels is empty: pass the training-set labels")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must lie in 0..{num_classes - 1}; got {labels.min()}..{labels.max()}")
    return np.bincount(labels, minlength=num_classes) / labels.size


def batch_deviation(batch_labels: np.ndarray, step_offsets: np.ndarray, p: np.ndarray) -> np.ndarray:
    """(T,) dev_t = sum_c |p_hat_t(c) - p(c)| for the batches ``[step_offsets[t], step_offsets[t+1])``.

    An empty batch has p_hat = 0, hence deviation 1.
    """
    labels = np.asarray(batch_labels, dtype=np.int64)
    offsets = np.asarray(step_offsets, dtype=np.int64)
    p = np.asarray(p, dtype=float)
    num_classes, num_steps = p.size, offsets.size - 1
    if offsets[0] != 0 or offsets[-1] != labels.size or (np.diff(offsets) < 0).any():
        raise ValueError("step_offsets must rise from 0 to len(batch_labels)")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"batch labels must lie in 0..{num_classes - 1}")
    step = np.repeat(np.arange(num_steps), np.diff(offsets))
    hist = np.bincount(step * num_classes + labels, minlength=num_steps * num_classes)
    hist = hist.reshape(num_steps, num_classes).astype(float)
    sizes = np.diff(offsets).astype(float)
    p_hat = hist / np.maximum(sizes, 1.0)[:, None]
    return np.abs(p_hat - p[None, :]).sum(axis=1)
