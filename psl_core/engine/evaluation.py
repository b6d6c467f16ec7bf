"""Test-set evaluation of one model, shared by every paradigm's engine."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

EVAL_BATCH = 1024


@torch.no_grad()
def evaluate_classifier(
    model, x_test: torch.Tensor, y_test: torch.Tensor, num_classes: int
) -> dict[str, Any]:
    """Mean test loss, accuracy and per-class accuracy of ``model`` in eval mode (restores train mode)."""
    was_training = model.training
    model.eval()
    if hasattr(model, "set_client_segments"):
        model.set_client_segments(None)
    loss_sum, correct = 0.0, torch.zeros(num_classes, device=x_test.device)
    for i in range(0, len(y_test), EVAL_BATCH):
        x, y = x_test[i : i + EVAL_BATCH], y_test[i : i + EVAL_BATCH]
        logits = model(x)
        loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += torch.bincount(y[logits.argmax(1) == y], minlength=num_classes).float()
    model.train(was_training)
    per_class_total = torch.bincount(y_test, minlength=num_classes).clamp(min=1).float()
    per_class = (correct / per_class_total).cpu().numpy()
    n = len(y_test)
    return {
        "test_loss": loss_sum / n,
        "test_acc": float(correct.sum()) / n,
        "per_class_acc": [round(float(a), 6) for a in per_class],
    }
