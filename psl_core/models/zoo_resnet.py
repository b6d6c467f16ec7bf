"""CIFAR-style residual networks (He et al. 2016) as ordered lists of named blocks.

* ResNet-8 / ResNet-20: 3×3 stem with 16 channels, three stages of n basic blocks at 16/32/64 channels
  (n = 1 / 3), strides 1/2/2, global average pool, linear head.
* ResNet-18, CIFAR variant: 3×3 stem with 64 channels and NO max-pool, four stages of 2 basic blocks
  at 64/128/256/512 channels, strides 1/2/2/2.

Shortcut choice: where a block changes shape we use a projection shortcut (1×1 conv with the block's
stride + norm, "option B"), not the zero-padding "option A" of the original CIFAR ResNets. It works the
same for 1-d and 2-d inputs and for every norm kind, and costs only ~1 % more parameters on ResNet-20
(0.272 M vs 0.270 M). Every block is built for 1-d ``(C, L)`` and 2-d ``(C, H, W)`` inputs.

One residual block is one cut-able block, so users can cut between residual blocks.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

# norm_for(channels) -> a normalisation module for the block being built.
NormFactory = Callable[[int], nn.Module]

RESNET_STAGES: dict[str, tuple[tuple[int, ...], tuple[int, ...], int]] = {
    # arch: (blocks per stage, channels per stage, stem channels)
    "resnet8": ((1, 1, 1), (16, 32, 64), 16),
    "resnet20": ((3, 3, 3), (16, 32, 64), 16),
    "resnet18": ((2, 2, 2, 2), (64, 128, 256, 512), 64),
}


class ResidualAdd(nn.Module):
    """``a + b`` as a module, so forward hooks (cost profiling) can see the residual addition."""

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return a + b


def _conv_cls(spatial_dims: int) -> type[nn.Module]:
    return nn.Conv1d if spatial_dims == 1 else nn.Conv2d


class BasicBlock(nn.Module):
    """conv3×3 → norm → ReLU → conv3×3 → norm, plus shortcut, then ReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, spatial_dims: int, norm_for: NormFactory
    ):
        super().__init__()
        conv = _conv_cls(spatial_dims)
        self.conv1 = conv(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.norm1 = norm_for(out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = conv(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.norm2 = norm_for(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = nn.Sequential(
                conv(in_channels, out_channels, 1, stride=stride, bias=False), norm_for(out_channels)
            )
        else:
            self.shortcut = nn.Identity()
        self.add = ResidualAdd()
        self.relu2 = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = self.norm2(self.conv2(self.relu1(self.norm1(self.conv1(x)))))
        return self.relu2(self.add(out, self.shortcut(x)))


def resnet_block_names(arch: str) -> list[str]:
    """Names of the blocks of a ResNet: stem, layer{stage}.{i}, pool, fc."""
    per_stage, _, _ = RESNET_STAGES[arch]
    names = ["stem"]
    for stage, count in enumerate(per_stage, start=1):
        names += [f"layer{stage}.{i}" for i in range(count)]
    return names + ["pool", "fc"]


def build_resnet_blocks(
    arch: str,
    in_channels: int,
    spatial_dims: int,
    num_classes: int,
    norm_for_block: Callable[[int], NormFactory],
) -> list[nn.Module]:
    """Build the blocks of ``arch`` in order; ``norm_for_block(i)`` gives block i's norm factory."""
    per_stage, widths, stem_channels = RESNET_STAGES[arch]
    conv = _conv_cls(spatial_dims)
    stem_norm = norm_for_block(0)
    blocks: list[nn.Module] = [
        nn.Sequential(
            conv(in_channels, stem_channels, 3, stride=1, padding=1, bias=False),
            stem_norm(stem_channels),
            nn.ReLU(),
        )
    ]
    channels = stem_channels
    for stage, (count, width) in enumerate(zip(per_stage, widths)):
        for i in range(count):
            stride = 2 if stage > 0 and i == 0 else 1
            blocks.append(BasicBlock(channels, width, stride, spatial_dims, norm_for_block(len(blocks))))
            channels = width
    pool = nn.AdaptiveAvgPool1d(1) if spatial_dims == 1 else nn.AdaptiveAvgPool2d(1)
    blocks.append(nn.Sequential(pool, nn.Flatten()))
    blocks.append(nn.Linear(channels, num_classes))
    return blocks
