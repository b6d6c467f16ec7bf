"""Stacked copies: masked BatchNorm, the flat optimiser and the averaging reduction, against torch."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from psl_core.models import build_model
from psl_core.paradigms.stacked import (
    MaskedBatchNorm,
    StackedCopies,
    StackedOptimizer,
    _row_mask,
    make_norms_maskable,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("shape", [(7, 3), (7, 3, 5), (7, 3, 4, 4)])
def test_masked_batchnorm_on_valid_rows_is_batchnorm_on_those_rows_alone(shape):
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3) if len(shape) == 4 else nn.BatchNorm1d(3)
    bn.weight.data.uniform_(0.5, 2)
    bn.bias.data.uniform_(-1, 1)
    masked = make_norms_maskable(nn.Sequential(copy.deepcopy(bn)))[0]
    assert isinstance(masked, MaskedBatchNorm)
    x = torch.randn(shape) * 3 + 1

    mask = torch.tensor([1, 1, 0, 1, 0, 1, 1.0])
    with _row_mask(mask):
        out = masked(x)
    ref = bn(x[mask.bool()])
    assert torch.allclose(out[mask.bool()], ref, atol=1e-5)
    assert torch.allclose(masked.running_mean, bn.running_mean, atol=1e-6)
    assert torch.allclose(masked.running_var, bn.running_var, atol=1e-5)
    before = masked.running_mean.clone()
    with _row_mask(torch.zeros(7)):  # a copy with no valid row leaves its statistics alone
        masked(x)
    assert torch.equal(masked.running_mean, before)
    masked.eval(), bn.eval()
    assert torch.allclose(masked(x), bn(x), atol=1e-5)


def test_one_value_per_channel_gives_variance_zero_instead_of_an_error():
    masked = make_norms_maskable(nn.Sequential(nn.BatchNorm1d(4)))[0]
    out = masked(torch.randn(1, 4))
    assert torch.allclose(out, masked.bias.expand(1, 4))


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_the_flat_optimiser_updates_each_row_as_torch_optim_updates_a_copy_and_skips_idle_rows(kind):
    torch.manual_seed(1)
    k, p = 4, 50
    params = torch.randn(k, p)
    idle_row = params[3].clone()
    opt = StackedOptimizer(kind, (k, p), momentum=0.9, weight_decay=1e-2, device="cpu")
    copies = [params[i].clone().requires_grad_(True) for i in range(k)]
    make = torch.optim.Adam if kind == "adam" else torch.optim.SGD
    extra = {} if kind == "adam" else {"momentum": 0.9}
    refs = [make([c], lr=0.05, weight_decay=1e-2, **extra) for c in copies]
    schedule = [[1, 1, 1, 0], [1, 0, 1, 0], [1, 1, 0, 0], [0, 1, 1, 0]]
    for active in schedule:
        grads = torch.randn(k, p)
        opt.step(
            params, grads.clone(), 0.05, torch.tensor(active, dtype=torch.bool)
        )  # it may overwrite grads
        for i, on in enumerate(active):
            if on:
                copies[i].grad = grads[i].clone()
                refs[i].step()
    for i in range(k):
        assert torch.allclose(params[i], copies[i].detach(), atol=1e-6)
    assert torch.equal(params[3], idle_row)  # never active: untouched, weight decay included
    opt.reset()
    assert all(float(t.abs().sum()) == 0 for t in opt.state.values())


def test_averaging_is_one_weighted_reduction_of_parameters_and_running_statistics():
    torch.manual_seed(2)
    model = build_model("cnn", input_shape=(1, 8, 8), num_classes=3, client_norm="batch", server_norm="batch")
    stacked = StackedCopies(model, 3)
    with torch.no_grad():
        stacked.params.add_(torch.randn_like(stacked.params))
        stacked.float_buffers.add_(torch.rand_like(stacked.float_buffers))
        stacked.count_buffers.copy_(torch.tensor([[1, 2], [5, 0], [3, 3]]))
    w = torch.tensor([0.2, 0.3, 0.5])
    avg = stacked.average(w)
    assert torch.allclose(avg["params"], (w[:, None] * stacked.params).sum(0), atol=1e-6)
    assert torch.allclose(avg["float_buffers"], (w[:, None] * stacked.float_buffers).sum(0), atol=1e-6)
    assert avg["count_buffers"].tolist() == [5, 3]
    target = copy.deepcopy(model)
    stacked.load_into(target, avg)
    assert torch.equal(stacked.flatten_module(target)["params"], avg["params"])
    names = dict(target.named_parameters())
    first = stacked.param_slots[0]
    assert torch.equal(names[first.name].reshape(-1), avg["params"][: first.numel])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_stacked_training_on_cuda_matches_cpu():
    from psl_core.config import ExperimentConfig, apply_overrides
    from psl_core.engine import MemorySink, run_experiment

    losses = {}
    for device in ("cpu", "cuda"):
        cfg = apply_overrides(
            ExperimentConfig(),
            {"data.dataset": "digits", "data.train_limit": 200, "data.test_limit": 50,
             "partition.num_clients": 4, "model.arch": "cnn", "model.client_norm": "batch",
             "paradigm.name": "sflv2", "paradigm.local_batch": 8, "training.epochs": 1,
             "training.device": device},
        )  # fmt: skip
        sink = MemorySink()
        run_experiment(cfg, sink)
        losses[device] = [r["loss"] for r in sink.steps]
    assert losses["cuda"] == pytest.approx(losses["cpu"], abs=1e-4)
