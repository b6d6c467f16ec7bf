"""A global batch of ONE sample with a server-side BatchNorm (FLS/FPLS late-epoch steps).

Batch statistics of one value per channel are degenerate (variance 0), and torch refuses them. The
project's rule: such a layer normalises that batch with its running statistics, as at evaluation, and
leaves them unchanged; every other batch is plain BatchNorm.
"""

from __future__ import annotations

import torch
from torch import nn

from psl_core.config import ExperimentConfig, apply_overrides
from psl_core.engine import MemorySink, run_experiment
from psl_core.models import build_model
from psl_core.models.norms import make_norm


def fpls_quantity_skew_config() -> ExperimentConfig:
    # digits, quantity skew β = 0.3, K = 30, FPLS, B = 64: seed 0 has 4 steps whose global batch is 1 sample.
    return apply_overrides(
        ExperimentConfig(),
        {
            "data.dataset": "digits",
            "partition.scheme": "quantity_skew",
            "partition.num_clients": 30,
            "partition.beta": 0.3,
            "model.arch": "mlp",
            "model.server_norm": "batch",
            "sampling.method": "fpls",
            "sampling.batch_size": 64,
            "training.epochs": 1,
            "training.device": "cpu",
        },
    )


def test_fpls_run_with_one_sample_batches_completes():
    sink = MemorySink()
    result = run_experiment(fpls_quantity_skew_config(), sink)
    assert result.status == "completed"
    singles = [row for row in sink.steps if row["batch_size"] == 1]
    assert len(singles) >= 1, "the config must exercise a one-sample global batch"
    assert all(torch.isfinite(torch.tensor(row["loss"])) for row in sink.steps)
    assert any("one-sample" in message for _, message in sink.events)


def test_bn1d_two_or_more_samples_is_plain_batchnorm():
    torch.manual_seed(0)
    ours, plain = make_norm("batch", 6, spatial_dims=0, per_client=False), nn.BatchNorm1d(6)
    plain.load_state_dict(ours.state_dict())
    x = torch.randn(5, 6)
    torch.testing.assert_close(ours(x), plain(x), rtol=0, atol=0)
    torch.testing.assert_close(ours.running_var, plain.running_var, rtol=0, atol=0)


def test_bn1d_one_sample_uses_running_statistics_and_keeps_them():
    torch.manual_seed(0)
    norm = make_norm("batch", 4, spatial_dims=0, per_client=False)
    norm.train()
    norm(torch.randn(32, 4) * 3 + 1)  # give the running statistics something to hold
    mean, var = norm.running_mean.clone(), norm.running_var.clone()
    x = torch.randn(1, 4, requires_grad=True)
    out = norm(x)
    expected = (x - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(norm.running_mean, mean, rtol=0, atol=0)
    torch.testing.assert_close(norm.running_var, var, rtol=0, atol=0)
    out.sum().backward()
    assert x.grad.abs().sum() > 0, "the single sample still sends its client a gradient"
    assert norm.single_value_batches == 1


def test_bn2d_one_image_still_uses_its_own_statistics():
    """One image has H·W values per channel: batch statistics exist, as in torch and the reference."""
    torch.manual_seed(0)
    ours, plain = make_norm("batch", 3, spatial_dims=2, per_client=False), nn.BatchNorm2d(3)
    plain.load_state_dict(ours.state_dict())
    x = torch.randn(1, 3, 5, 5)
    torch.testing.assert_close(ours(x), plain(x), rtol=0, atol=0)
    assert ours.single_value_batches == 0


def test_mlp_server_part_trains_on_a_single_sample():
    torch.manual_seed(0)
    model = build_model("mlp", input_shape=(1, 8, 8), num_classes=10, cut=1, server_norm="batch")
    model.train()
    before = model.blocks[1][0].weight.detach().clone()
    logits = model(torch.randn(1, 1, 8, 8))
    nn.functional.cross_entropy(logits, torch.tensor([3])).backward()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    assert not torch.equal(before, model.blocks[1][0].weight)
