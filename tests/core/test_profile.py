"""Tests for psl_core.models.profile: hook-measured block costs and per-cut summaries."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from psl_core.models import (
    BlockModel,
    InvalidCutError,
    build_model,
    cut_summary,
    cut_table,
    profile_arch,
    profile_model,
)
from psl_core.models.profile import ACTIVATION_FLOPS_PER_ELEMENT, LABEL_BYTES_PER_SAMPLE


def _tiny_model(blocks: list[nn.Module], names: list[str], shape: tuple[int, ...]) -> BlockModel:
    return BlockModel("tiny", blocks, names, shape, cut=1, cut2=None, client_norm="none", server_norm="none")


def test_linear_and_conv_flops_match_hand_computation():
    model = _tiny_model(
        [
            nn.Conv2d(3, 5, kernel_size=(3, 2), stride=2, padding=1, groups=1),
            nn.Flatten(),
            nn.Linear(5 * 3 * 5, 7),
        ],
        ["conv", "flat", "lin"],
        (3, 6, 8),
    )
    profile = profile_model(model)
    conv, flat, lin = profile.blocks
    # Output spatial size: floor((size + 2·pad - kernel) / stride) + 1 → 3 × 5.
    out_h, out_w = (6 + 2 - 3) // 2 + 1, (8 + 2 - 2) // 2 + 1
    assert (out_h, out_w) == (3, 5)
    assert conv.out_shape == (5, out_h, out_w)
    assert conv.flops_per_sample == 2 * 3 * 3 * 2 * 5 * out_h * out_w
    assert conv.params == 3 * 5 * 3 * 2 + 5 and conv.param_bytes == 4 * conv.params
    assert flat.flops_per_sample == 0 and flat.out_bytes_per_sample == 4 * 5 * out_h * out_w
    assert lin.flops_per_sample == 2 * 75 * 7 and lin.out_shape == (7,) and lin.out_bytes_per_sample == 28
    assert profile.input_bytes_per_sample == 4 * 3 * 6 * 8


def test_grouped_conv_and_relu_costs():
    model = _tiny_model(
        [nn.Conv1d(4, 6, kernel_size=3, groups=2, bias=False), nn.ReLU()], ["conv", "relu"], (4, 10)
    )
    conv, relu = profile_model(model).blocks
    assert conv.flops_per_sample == 2 * (4 // 2) * 3 * 6 * 8
    assert relu.flops_per_sample == ACTIVATION_FLOPS_PER_ELEMENT * 6 * 8


def test_unknown_leaf_module_is_not_silently_free():
    model = _tiny_model([nn.Conv1d(1, 2, 3), nn.Softmax(dim=1)], ["conv", "soft"], (1, 5))
    with pytest.raises(TypeError, match="no FLOP rule for Softmax"):
        profile_model(model)


def test_resnet20_cifar_matches_published_cost():
    profile = profile_arch("resnet20", (3, 32, 32), 10)
    assert profile.total_flops_per_sample == pytest.approx(82e6, rel=0.10)  # ≈ 41 M MACs
    assert profile.total_params == pytest.approx(0.27e6, rel=0.03)


def test_resnet18_cifar_matches_published_cost():
    profile = profile_arch("resnet18", (3, 32, 32), 10)
    assert profile.total_flops_per_sample == pytest.approx(2 * 0.56e9, rel=0.10)  # ≈ 0.56 GMACs
    assert profile.total_params == pytest.approx(11.2e6, rel=0.01)
    assert profile.blocks[-1].out_shape == (10,)


@pytest.mark.parametrize("arch,shape", [("resnet8", (3, 8, 8)), ("cnn", (1, 40)), ("mlp", (1, 8, 8))])
def test_profile_agrees_with_the_model_itself(arch, shape):
    torch.manual_seed(0)
    model = build_model(arch, input_shape=shape, num_classes=10, client_norm="batch").train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng_before = torch.get_rng_state()
    profile = profile_model(model)
    assert model.training and all(m.training for m in model.modules())  # mode restored
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())  # no stats updated
    assert profile.total_params == sum(p.numel() for p in model.parameters())
    x = torch.randn(2, *shape)
    model.eval()
    for block, cost in zip(model.blocks, profile.blocks):
        x = block(x)
        assert cost.out_shape == tuple(x.shape[1:])
        assert cost.out_bytes_per_sample == math.prod(x.shape[1:]) * 4
        assert cost.params == sum(p.numel() for p in block.parameters())
        assert cost.flops_per_sample > 0 or cost.params == 0


def test_cut_summaries_partition_the_block_sums():
    profile = profile_arch("resnet20", (3, 32, 32), 10)
    rows = cut_table(profile)
    assert [r.cut for r in rows] == list(range(1, profile.num_blocks))
    for row in rows:
        client = profile.blocks[: row.cut]
        assert row.cut_name == profile.blocks[row.cut - 1].name
        assert row.client_flops_per_sample == pytest.approx(sum(b.flops_per_sample for b in client))
        assert row.client_flops_per_sample + row.server_flops_per_sample == pytest.approx(
            profile.total_flops_per_sample
        )
        assert row.client_param_bytes + row.server_param_bytes == profile.total_param_bytes
        assert row.client_params == sum(b.params for b in client)
        assert row.smashed_bytes_per_sample == profile.blocks[row.cut - 1].out_bytes_per_sample
        assert row.client_activation_bytes_per_sample == sum(b.out_bytes_per_sample for b in client)
        assert row.return_bytes_per_sample == 0
        assert row.bytes_up_per_sample == row.smashed_bytes_per_sample + LABEL_BYTES_PER_SAMPLE
        assert row.bytes_down_per_sample == row.smashed_bytes_per_sample
        assert row.client_memory_bytes(32) == 3 * row.client_param_bytes + 32 * (
            row.client_activation_bytes_per_sample
        )
    assert rows[0].smashed_bytes_per_sample == 16 * 32 * 32 * 4  # stem output, float32


def test_u_shaped_summary_is_consistent():
    profile = profile_arch("resnet20", (3, 32, 32), 10)
    summary = cut_summary(profile, "layer1.0", "layer3.2")  # client: stem, layer1.0 + pool, fc
    assert (summary.cut, summary.cut2, summary.cut_name) == (2, 10, "layer1.0")
    client_idx = [0, 1, 10, 11]
    blocks = profile.blocks
    assert summary.client_flops_per_sample == pytest.approx(
        sum(blocks[i].flops_per_sample for i in client_idx)
    )
    assert summary.client_flops_per_sample + summary.server_flops_per_sample == pytest.approx(
        profile.total_flops_per_sample
    )
    assert summary.client_params == sum(blocks[i].params for i in client_idx)
    assert summary.client_param_bytes + summary.server_param_bytes == profile.total_param_bytes
    assert summary.smashed_bytes_per_sample == 16 * 32 * 32 * 4
    assert summary.return_bytes_per_sample == 64 * 8 * 8 * 4  # layer3.2 output goes back down
    assert summary.client_activation_bytes_per_sample == sum(
        blocks[i].out_bytes_per_sample for i in client_idx
    )
    both = summary.smashed_bytes_per_sample + summary.return_bytes_per_sample
    assert summary.bytes_up_per_sample == both and summary.bytes_down_per_sample == both


@pytest.mark.parametrize(
    "cut,cut2", [(0, None), (12, None), (3, 3), (5, 2), (2, 12), ("fc", None), ("x", None)]
)
def test_invalid_cuts_raise(cut, cut2):
    profile = profile_arch("resnet20", (3, 32, 32), 10)
    with pytest.raises(InvalidCutError):
        cut_summary(profile, cut, cut2)
