"""Tests for psl_core.models: per-client BatchNorm, the block models, cuts and norms."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from psl_core.models import (
    ARCHITECTURES,
    NORM_KINDS,
    InvalidCutError,
    InvalidModelError,
    InvalidNormError,
    SegmentBatchNorm,
    block_names_for,
    build_model,
    group_count,
)

SHAPES_BY_LAYOUT = {"(N,C)": (12, 6), "(N,C,L)": (12, 6, 5), "(N,C,H,W)": (12, 6, 3, 4)}
# Shuffled, non-contiguous ids; segment 3 has one row, segment 2 none (empty segments must be harmless).
SEGMENT_IDS = torch.tensor([0, 1, 0, 4, 1, 1, 3, 0, 4, 1, 0, 4])
NUM_SEGMENTS = 5


def _seeded_bn(channels: int) -> SegmentBatchNorm:
    bn = SegmentBatchNorm(channels)
    with torch.no_grad():
        bn.weight.copy_(torch.linspace(0.5, 1.5, channels))
        bn.bias.copy_(torch.linspace(-0.3, 0.3, channels))
    return bn


def _reference(x, weight, bias, ids, eps=1e-5):
    """Loop over segments with F.batch_norm: what each client would compute on its own batch."""
    out = torch.empty_like(x)
    for segment in ids.unique():
        rows = (ids == segment).nonzero().squeeze(1)
        out[rows] = F.batch_norm(x[rows], None, None, weight, bias, training=True, eps=eps)
    return out


@pytest.mark.parametrize("layout", ["(N,C,L)", "(N,C,H,W)"])
def test_segment_batchnorm_matches_per_segment_reference_output_and_gradients(layout):
    torch.manual_seed(0)
    x = (torch.randn(SHAPES_BY_LAYOUT[layout]) * 3 + 1).requires_grad_()
    bn = _seeded_bn(x.shape[1]).train()
    bn.set_segments(SEGMENT_IDS, NUM_SEGMENTS)
    out = bn(x)
    upstream = torch.randn_like(out)
    grads = torch.autograd.grad((out * upstream).sum(), (x, bn.weight, bn.bias))

    x_ref = x.detach().clone().requires_grad_()
    w_ref = bn.weight.detach().clone().requires_grad_()
    b_ref = bn.bias.detach().clone().requires_grad_()
    ref = _reference(x_ref, w_ref, b_ref, SEGMENT_IDS)
    ref_grads = torch.autograd.grad((ref * upstream).sum(), (x_ref, w_ref, b_ref))

    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_segment_batchnorm_flat_features_and_size_one_segment_gives_bias_and_zero_gradient():
    torch.manual_seed(1)
    x = torch.randn(SHAPES_BY_LAYOUT["(N,C)"]).requires_grad_()
    bn = _seeded_bn(x.shape[1]).train()
    bn.set_segments(SEGMENT_IDS, NUM_SEGMENTS)
    out = bn(x)
    upstream = torch.randn_like(out)
    (grad_x,) = torch.autograd.grad((out * upstream).sum(), x)
    single = (SEGMENT_IDS == 3).nonzero().squeeze(1)
    multi = (SEGMENT_IDS != 3).nonzero().squeeze(1)
    # Size-1 segment: variance 0 + eps, so (x - mean) = 0 and the output is the bias.
    torch.testing.assert_close(out[single], bn.bias.detach().expand(len(single), -1))
    assert torch.all(grad_x[single] == 0)
    # The other segments match the reference (which torch refuses to run on a size-1 segment).
    x_ref = x.detach().clone().requires_grad_()
    ref = _reference(x_ref[multi], bn.weight.detach(), bn.bias.detach(), SEGMENT_IDS[multi])
    (grad_ref,) = torch.autograd.grad((ref * upstream[multi]).sum(), x_ref)
    torch.testing.assert_close(out[multi], ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grad_x[multi], grad_ref[multi], atol=1e-5, rtol=1e-5)


def test_segment_batchnorm_running_stats_are_sample_weighted_mean_of_segment_stats():
    torch.manual_seed(2)
    x = torch.randn(SHAPES_BY_LAYOUT["(N,C,L)"]) * 2 + 0.5
    bn = SegmentBatchNorm(x.shape[1], momentum=0.3).train()
    bn.set_segments(SEGMENT_IDS, NUM_SEGMENTS)
    bn(x)
    mean = torch.zeros(x.shape[1])
    var = torch.zeros(x.shape[1])
    for segment in SEGMENT_IDS.unique():
        part = x[SEGMENT_IDS == segment].transpose(0, 1).reshape(x.shape[1], -1)  # (C, values)
        share = (SEGMENT_IDS == segment).sum() / len(SEGMENT_IDS)
        mean += share * part.mean(dim=1)
        var += share * part.var(dim=1, unbiased=True)
    torch.testing.assert_close(bn.running_mean, 0.3 * mean, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(bn.running_var, 0.7 + 0.3 * var, atol=1e-5, rtol=1e-5)
    assert int(bn.num_batches_tracked) == 1
    # Eval mode ignores segments and evaluates ONE client's model: the last client that saw data
    # (tests/core/test_client_batchnorm_eval.py checks the per-client statistics themselves).
    bn.eval()
    last = int(SEGMENT_IDS.max())
    expected = F.batch_norm(
        x, bn.client_running_mean[last], bn.client_running_var[last], bn.weight, bn.bias, training=False
    )
    torch.testing.assert_close(bn(x), expected)


@pytest.mark.parametrize("with_single_segment_ids", [False, True])
def test_segment_batchnorm_with_one_segment_equals_torch_batchnorm(with_single_segment_ids):
    torch.manual_seed(3)
    x = torch.randn(8, 4, 5, 5) * 2 + 1
    ours, theirs = SegmentBatchNorm(4).train(), nn.BatchNorm2d(4).train()
    if with_single_segment_ids:
        ours.set_segments(torch.zeros(8, dtype=torch.long))
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    out1, out2 = ours(x1), theirs(x2)
    upstream = torch.randn_like(out1)
    (out1 * upstream).sum().backward()
    (out2 * upstream).sum().backward()
    torch.testing.assert_close(out1, out2, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(x1.grad, x2.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.weight.grad, theirs.weight.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.running_mean, theirs.running_mean, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(ours.running_var, theirs.running_var, atol=1e-6, rtol=1e-5)


def test_segment_batchnorm_rejects_bad_segments():
    bn = SegmentBatchNorm(3).train()
    with pytest.raises(InvalidNormError, match="out of range"):
        bn.set_segments(torch.tensor([0, 2]), num_segments=2)
    with pytest.raises(InvalidNormError, match=">= 0"):
        bn.set_segments(torch.tensor([0, -1]))
    bn.set_segments(torch.tensor([0, 1, 1]))
    with pytest.raises(InvalidNormError, match="batch has 4 rows"):
        bn(torch.randn(4, 3))


def test_group_count_divides_channels_and_is_at_most_eight():
    assert [group_count(c) for c in (1, 3, 10, 16, 32, 64, 512, 7, 12)] == [1, 3, 5, 8, 8, 8, 8, 7, 6]


# ---- models -----------------------------------------------------------------------------------------

CASES = [
    ("mlp", (1, 8, 8)),
    ("mlp", (40,)),
    ("cnn", (1, 8, 8)),
    ("cnn", (1, 28, 28)),
    ("cnn", (1, 40)),
    ("resnet8", (3, 8, 8)),
    ("resnet8", (1, 40)),
    ("resnet20", (1, 8, 8)),
    ("resnet18", (1, 8, 8)),
]


@pytest.mark.parametrize("arch,shape", CASES)
def test_every_cut_splits_forward_exactly(arch, shape):
    torch.manual_seed(0)
    model = build_model(arch, input_shape=shape, num_classes=7).eval()
    x = torch.randn(2, *shape)
    with torch.no_grad():
        full = model(x)
        assert full.shape == (2, 7)
        smashed = x
        for cut in range(1, model.num_blocks):
            smashed = model.forward_range(smashed, cut - 1, cut)  # == forward_range(x, 0, cut)
            assert torch.equal(model.forward_range(smashed, cut, model.num_blocks), full)
        assert torch.equal(model.forward_range(model.forward_range(x, 0, 2), 2, model.num_blocks), full)


def test_block_names_and_counts():
    assert block_names_for("mlp") == ["fc1", "fc2", "head"]
    assert block_names_for("cnn") == ["conv1", "conv2", "fc", "head"]
    assert block_names_for("resnet8") == ["stem", "layer1.0", "layer2.0", "layer3.0", "pool", "fc"]
    assert len(block_names_for("resnet20")) == 12
    names18 = block_names_for("resnet18")
    assert names18[:3] == ["stem", "layer1.0", "layer1.1"] and names18[-3:] == ["layer4.1", "pool", "fc"]
    assert set(ARCHITECTURES) == {"mlp", "cnn", "resnet8", "resnet20", "resnet18"}


def test_resolve_cut_by_index_and_name_and_errors():
    model = build_model("resnet8", input_shape=(1, 8, 8), num_classes=3)
    assert model.resolve_cut(2) == 2
    assert model.resolve_cut("layer1.0") == 2  # cut AFTER the named block
    assert model.resolve_cut("stem") == 1
    for bad in (0, 6, -1, "fc", "nope", 1.5, True):
        with pytest.raises(InvalidCutError, match="valid indices are 1..5"):
            model.resolve_cut(bad)


def _norm_types(block: nn.Module) -> set[type]:
    """The norm kinds in a block; the server's BatchNorm subclasses (one-sample rule) count as BatchNorm."""
    kinds = (SegmentBatchNorm, nn.GroupNorm, nn.BatchNorm2d, nn.BatchNorm1d)
    return {next(k for k in kinds if isinstance(m, k)) for m in block.modules() if isinstance(m, kinds)}


def test_client_blocks_get_client_norm_server_blocks_get_server_norm_u_shaped():
    model = build_model(
        "resnet8", input_shape=(3, 8, 8), num_classes=4, cut="layer1.0", cut2=4, client_norm="batch"
    )
    assert (model.cut, model.cut2) == (2, 4)
    assert [model.is_client_block(i) for i in range(6)] == [True, True, False, False, True, True]
    assert _norm_types(model.blocks[0]) == {SegmentBatchNorm}
    assert _norm_types(model.blocks[1]) == {SegmentBatchNorm}
    assert _norm_types(model.blocks[2]) == {nn.BatchNorm2d}
    assert _norm_types(model.blocks[3]) == {nn.BatchNorm2d}
    default = build_model("cnn", input_shape=(1, 40), num_classes=4, cut=1)
    assert _norm_types(default.blocks[0]) == {nn.GroupNorm} and default.blocks[0][1].num_groups == 8
    assert _norm_types(default.blocks[1]) == {nn.BatchNorm1d}
    layer = build_model(
        "mlp", input_shape=(5,), num_classes=2, cut=2, client_norm="layer", server_norm="none"
    )
    assert layer.blocks[0][2].num_groups == 1 and layer.blocks[1][1].num_groups == 1
    none = build_model("cnn", input_shape=(1, 8, 8), num_classes=2, client_norm="none", server_norm="none")
    assert _norm_types(none) == set()


def test_set_client_segments_gives_per_client_statistics_in_the_model():
    torch.manual_seed(5)
    model = build_model("cnn", input_shape=(1, 8, 8), num_classes=3, cut=2, client_norm="batch").train()
    x = torch.randn(6, 1, 8, 8)
    ids = torch.tensor([0, 0, 1, 1, 1, 2])
    model.set_client_segments(ids, 3)
    together = model.forward_range(x, 0, 2)
    for segment in range(3):  # each client's activations depend only on its own rows
        rows = ids == segment
        model.set_client_segments(None)
        alone = model.forward_range(x[rows], 0, 2)
        torch.testing.assert_close(together[rows], alone, atol=1e-5, rtol=1e-5)


def test_same_seed_same_weights_and_norm_choice_does_not_change_draws():
    torch.manual_seed(11)
    a = build_model("resnet8", input_shape=(3, 8, 8), num_classes=5, cut=2)
    torch.manual_seed(11)
    b = build_model("resnet8", input_shape=(3, 8, 8), num_classes=5, cut=3, client_norm="batch")
    conv_a = {k: v for k, v in a.state_dict().items() if "conv" in k or k.startswith("blocks.5")}
    conv_b = {k: v for k, v in b.state_dict().items() if "conv" in k or k.startswith("blocks.5")}
    assert conv_a.keys() == conv_b.keys() and len(conv_a) > 5
    assert all(torch.equal(conv_a[k], conv_b[k]) for k in conv_a)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"arch": "vgg"}, InvalidModelError, "choose one of mlp, cnn"),
        ({"arch": "cnn", "input_shape": (64,)}, InvalidModelError, "1-d supported by"),
        ({"arch": "cnn", "input_shape": (1, 3, 3)}, InvalidModelError, ">= 4"),
        ({"arch": "resnet20", "input_shape": (1, 2, 3, 4)}, InvalidModelError, r"\(C, H, W\)"),
        ({"arch": "mlp", "num_classes": 0}, InvalidModelError, "num_classes"),
        ({"arch": "mlp", "client_norm": "instance"}, InvalidNormError, "group, batch, layer, none"),
        ({"arch": "mlp", "cut": 3}, InvalidCutError, "1..2"),
        ({"arch": "cnn", "cut": 2, "cut2": 2}, InvalidCutError, "must come after cut"),
        ({"arch": "cnn", "cut": "conv1", "cut2": "head"}, InvalidCutError, "valid names are conv1"),
    ],
)
def test_build_model_rejects_bad_input_with_a_helpful_message(kwargs, error, match):
    args = {"input_shape": (1, 8, 8), "num_classes": 3, **kwargs}
    assert issubclass(error, ValueError)
    with pytest.raises(error, match=match):
        build_model(args.pop("arch"), **args)


def test_every_norm_kind_trains_one_step_with_finite_gradients():
    torch.manual_seed(4)
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 1])
    for kind in NORM_KINDS:
        model = build_model("resnet8", input_shape=(1, 8, 8), num_classes=3, cut=3, client_norm=kind).train()
        model.set_client_segments(torch.tensor([0, 0, 1, 1]))
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        grads = [p.grad for p in model.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), kind
