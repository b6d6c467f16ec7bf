"""Test-set evaluation: a batch size that suits the device, a fixed subset for the evaluations
during training, the whole test set at the end, and no host synchronisation per batch.

Evaluating the whole test set after every epoch cost 44 % of a Fashion-MNIST run on a CPU (10,000
test images against 12,000 training images; bench/bench_throughput.py). The live curves only need
a trend, so the evaluations during training use a fixed, class-stratified subset (the same for
every seed, so curves of different seeds compare); the last one always uses the whole test set.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from psl_core.data import stratified_subset

# Evaluation batch per device type. CPU: the per-sample cost is lowest for small batches whose
# activations stay in the caches. Measured (bench/bench_throughput.py, eval section, two runs, 1
# thread): at 128 the CNN on 28×28 and ResNet-8 on 32×32 cost 1.07–1.20× their best per sample, at
# 1024 1.5–2.6×. A GPU wants large batches to fill the device.
EVAL_BATCH_BY_DEVICE = {"cpu": 128, "cuda": 1024}
DEFAULT_EVAL_BATCH = 128
# The live-curve subset does not depend on the run's seed: runs with different seeds are compared
# on the same test images.
EVAL_SUBSET_SEED = 0


def default_eval_batch(device: torch.device) -> int:
    """The evaluation batch size used on ``device`` when the config does not set one."""
    return EVAL_BATCH_BY_DEVICE.get(device.type, DEFAULT_EVAL_BATCH)


class Evaluator:
    """Evaluates a model on the test set (``full=True``) or on its fixed live-curve subset."""

    def __init__(
        self,
        x_test: torch.Tensor,
        y_test: torch.Tensor,
        num_classes: int,
        *,
        batch_size: int,
        subset_size: int | None,
    ):
        self.x_test, self.y_test = x_test, y_test
        self.num_classes = num_classes
        self.batch_size = batch_size
        labels = y_test.cpu().numpy()
        self.subset: np.ndarray | None = None
        if subset_size is not None and subset_size < len(labels):
            self.subset = stratified_subset(labels, subset_size, EVAL_SUBSET_SEED)
            index = torch.as_tensor(self.subset, device=y_test.device)
            self.x_subset, self.y_subset = x_test[index], y_test[index]
            self.subset_class_totals = np.bincount(labels[self.subset], minlength=num_classes)
        self.class_totals = np.bincount(labels, minlength=num_classes)

    @property
    def subset_size(self) -> int:
        return len(self.y_test) if self.subset is None else len(self.subset)

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, *, full: bool = True, autocast=None) -> dict[str, Any]:
        """test_loss, test_acc, per_class_acc and test_samples; the model is left in the mode it was in.

        Loss and per-class hits are summed on the device and read back once, at the end."""
        if full or self.subset is None:
            x, y, totals = self.x_test, self.y_test, self.class_totals
        else:
            x, y, totals = self.x_subset, self.y_subset, self.subset_class_totals
        was_training = model.training
        model.eval()
        if hasattr(model, "set_client_segments"):  # the paradigms' plain models have no segments
            model.set_client_segments(None)
        loss_sum = torch.zeros((), dtype=torch.float64, device=y.device)
        correct = torch.zeros(self.num_classes, dtype=torch.float64, device=y.device)
        with autocast if autocast is not None else contextlib.nullcontext():
            for i in range(0, len(y), self.batch_size):
                xb, yb = x[i : i + self.batch_size], y[i : i + self.batch_size]
                logits = model(xb).float()
                loss_sum += F.cross_entropy(logits, yb, reduction="sum")
                correct.index_add_(0, yb, (logits.argmax(1) == yb).to(correct.dtype))
        model.train(was_training)
        loss_total, *hit_list = torch.cat([loss_sum[None], correct]).tolist()  # the one read-back
        hits = np.asarray(hit_list)
        n = len(y)
        per_class = hits / np.maximum(totals, 1)
        return {
            "test_loss": loss_total / n,
            "test_acc": float(hits.sum()) / n,
            "per_class_acc": [round(float(a), 6) for a in per_class],
            "test_samples": n,
        }


def evaluate_classifier(
    model: torch.nn.Module, x_test: torch.Tensor, y_test: torch.Tensor, num_classes: int
) -> dict[str, Any]:
    """One whole-test-set evaluation of ``model`` (the paradigms' engines evaluate a single model per
    round, so they need no live-curve subset)."""
    evaluator = Evaluator(
        x_test, y_test, num_classes, batch_size=default_eval_batch(x_test.device), subset_size=None
    )
    return evaluator.evaluate(model, full=True)
