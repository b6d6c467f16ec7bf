"""The model zoo: split-able networks built as ordered lists of named blocks.

A cut index ``c`` puts blocks ``[0, c)`` on the client and ``[c, L)`` on the server; a U-shaped model
adds ``cut2``: blocks ``[cut2, L)`` (head and loss) run back on the client (methods §1). Client
blocks are built with ``client_norm``, server blocks with ``server_norm``; ``"batch"`` on the client is
per-client BatchNorm (:class:`~psl_core.models.norms.SegmentBatchNorm`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor, nn

from psl_core.models.norms import NORM_KINDS, InvalidNormError, SegmentBatchNorm, make_norm
from psl_core.models.zoo_resnet import RESNET_STAGES, build_resnet_blocks, resnet_block_names

MLP_HIDDEN = 256
CNN_CHANNELS = (32, 64)
CNN_HIDDEN = 128


class InvalidModelError(ValueError):
    """Raised when a model cannot be built from the given architecture, shape or norm."""


class InvalidCutError(ValueError):
    """Raised when a cut index or block name is not a valid split point."""


@dataclass(frozen=True)
class ArchInfo:
    """What the UI shows about an architecture."""

    name: str
    title: str
    description: str
    supports_1d: bool


ARCHITECTURES: dict[str, ArchInfo] = {
    "mlp": ArchInfo(
        "mlp",
        "MLP",
        "Flatten → fc1 (256, norm, ReLU) → fc2 (256, norm, ReLU) → head. Any input shape.",
        True,
    ),
    "cnn": ArchInfo(
        "cnn",
        "Small CNN",
        "conv1 (32) and conv2 (64), each conv 3×3 + norm + ReLU + max-pool 2, then fc (128) and head. "
        "2-d images (C, H, W) with H, W ≥ 4, or 1-d signals (C, L) with L ≥ 4.",
        True,
    ),
    "resnet8": ArchInfo(
        "resnet8",
        "ResNet-8 (CIFAR)",
        "3×3 stem (16 ch), 3 stages × 1 basic block at 16/32/64 ch, 1×1-conv shortcuts, avg-pool, fc.",
        True,
    ),
    "resnet20": ArchInfo(
        "resnet20",
        "ResNet-20 (CIFAR)",
        "3×3 stem (16 ch), 3 stages × 3 basic blocks at 16/32/64 ch, 1×1-conv shortcuts, avg-pool, fc.",
        True,
    ),
    "resnet18": ArchInfo(
        "resnet18",
        "ResNet-18 (CIFAR variant)",
        "3×3 stem (64 ch), no max-pool, 4 stages × 2 basic blocks at 64/128/256/512 ch, avg-pool, fc.",
        True,
    ),
}


def block_names_for(arch: str) -> list[str]:
    """Block names of ``arch`` in order (known before building, so cuts can be resolved first)."""
    if arch == "mlp":
        return ["fc1", "fc2", "head"]
    if arch == "cnn":
        return ["conv1", "conv2", "fc", "head"]
    if arch in RESNET_STAGES:
        return resnet_block_names(arch)
    raise InvalidModelError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")


def normalised_channels(arch: str) -> tuple[int, ...]:
    """Channel counts of the layers ``arch`` normalises (what GroupNorm groups must divide)."""
    if arch == "mlp":
        return (MLP_HIDDEN,)
    if arch == "cnn":
        return CNN_CHANNELS
    if arch in RESNET_STAGES:
        _, widths, stem = RESNET_STAGES[arch]
        return tuple(sorted({stem, *widths}))
    raise InvalidModelError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")


def resolve_cut_index(block_names: list[str], cut: int | str) -> int:
    """Turn a cut (index 1..L-1, or the name of the last client block) into an index.

    ``cut=c`` gives the client blocks ``[0, c)``; ``cut="X"`` cuts right AFTER block ``X``.
    """
    num_blocks = len(block_names)
    valid = f"valid indices are 1..{num_blocks - 1}; valid names are {', '.join(block_names[:-1])}"
    if isinstance(cut, str):
        if cut not in block_names[:-1]:
            raise InvalidCutError(f"cannot cut after block {cut!r}: {valid}")
        return block_names.index(cut) + 1
    if isinstance(cut, bool) or not isinstance(cut, int):
        raise InvalidCutError(f"cut must be an int or a block name, got {cut!r}: {valid}")
    if not 1 <= cut <= num_blocks - 1:
        raise InvalidCutError(f"cut {cut} is out of range: {valid}")
    return cut


def resolve_cut_pair(
    block_names: list[str], cut: int | str, cut2: int | str | None
) -> tuple[int, int | None]:
    """Resolve a cut and an optional U-shaped second cut; requires cut < cut2 ≤ L-1."""
    first = resolve_cut_index(block_names, cut)
    if cut2 is None:
        return first, None
    second = resolve_cut_index(block_names, cut2)
    if second <= first:
        raise InvalidCutError(
            f"cut2 ({cut2!r} → {second}) must come after cut ({cut!r} → {first}) so the server keeps at "
            f"least one block; use a cut2 in {first + 1}..{len(block_names) - 1}"
        )
    return first, second


class BlockModel(nn.Module):
    """A network as an ordered list of named blocks, runnable as a whole or by block range."""

    def __init__(
        self,
        arch: str,
        blocks: list[nn.Module],
        block_names: list[str],
        input_shape: tuple[int, ...],
        cut: int,
        cut2: int | None,
        client_norm: str,
        server_norm: str,
    ):
        super().__init__()
        if len(blocks) != len(block_names):
            raise InvalidModelError(f"{len(blocks)} blocks but {len(block_names)} names")
        self.arch = arch
        self.blocks = nn.ModuleList(blocks)
        self.block_names = list(block_names)
        self.input_shape = tuple(input_shape)
        self.cut = cut
        self.cut2 = cut2
        self.client_norm = client_norm
        self.server_norm = server_norm

    @property
    def num_blocks(self) -> int:
        """Number of blocks L."""
        return len(self.blocks)

    def is_client_block(self, index: int) -> bool:
        """Whether block ``index`` runs on the client for the cut(s) this model was built with."""
        return index < self.cut or (self.cut2 is not None and index >= self.cut2)

    def forward(self, x: Tensor) -> Tensor:
        """Run all blocks in order."""
        return self.forward_range(x, 0, self.num_blocks)

    def forward_range(self, x: Tensor, start: int, end: int) -> Tensor:
        """Run blocks ``[start, end)`` on ``x``."""
        if not 0 <= start <= end <= self.num_blocks:
            raise InvalidCutError(f"block range [{start}, {end}) is not inside [0, {self.num_blocks}]")
        for block in self.blocks[start:end]:
            x = block(x)
        return x

    def resolve_cut(self, cut: int | str) -> int:
        """Index c (client holds blocks [0, c)) for an index 1..L-1 or the name of the last client block."""
        return resolve_cut_index(self.block_names, cut)

    def set_client_segments(self, segment_ids: Tensor | None, num_segments: int = 0) -> None:
        """Tell every per-client BatchNorm which client each row of the next batches belongs to."""
        for module in self.modules():
            if isinstance(module, SegmentBatchNorm):
                module.set_segments(segment_ids, num_segments)

    def set_eval_client(self, client: int | None) -> None:
        """Whose per-client BatchNorm statistics evaluation uses (None: the last client that saw data).

        Evaluation is of ONE client's model, as in a deployment; this picks which client's.
        """
        for module in self.modules():
            if isinstance(module, SegmentBatchNorm):
                module.eval_client = client


def _spatial_dims(arch: str, input_shape: tuple[int, ...]) -> int:
    if not input_shape or any(not isinstance(d, int) or isinstance(d, bool) or d < 1 for d in input_shape):
        raise InvalidModelError(
            f"input_shape must be a non-empty tuple of positive ints, got {input_shape!r}"
        )
    if arch == "mlp":
        return 0  # flattened first, so the shape does not matter
    if len(input_shape) not in (2, 3):
        one_d = ", ".join(name for name, info in ARCHITECTURES.items() if info.supports_1d)
        raise InvalidModelError(
            f"{arch} needs a 2-d image (C, H, W) or a 1-d signal (C, L) (1-d supported by: {one_d}); "
            f"got input_shape {input_shape}; use 'mlp' for flat feature vectors"
        )
    return len(input_shape) - 1


def _build_mlp(input_shape, num_classes, norm_for_block) -> list[nn.Module]:
    def hidden(index: int, in_features: int, flatten: bool) -> nn.Sequential:
        layers = [nn.Flatten()] if flatten else []
        layers += [nn.Linear(in_features, MLP_HIDDEN), norm_for_block(index)(MLP_HIDDEN), nn.ReLU()]
        return nn.Sequential(*layers)

    return [
        hidden(0, math.prod(input_shape), True),
        hidden(1, MLP_HIDDEN, False),
        nn.Linear(MLP_HIDDEN, num_classes),
    ]


def _build_cnn(input_shape, spatial_dims, num_classes, norm_for_block) -> list[nn.Module]:
    if min(input_shape[1:]) < 4:
        raise InvalidModelError(
            f"cnn halves each spatial size twice, so each must be >= 4; got input_shape {input_shape}"
        )
    conv = nn.Conv1d if spatial_dims == 1 else nn.Conv2d
    pool = nn.MaxPool1d if spatial_dims == 1 else nn.MaxPool2d
    in_channels, c1, c2 = input_shape[0], *CNN_CHANNELS
    flat = c2 * math.prod(size // 4 for size in input_shape[1:])
    return [
        nn.Sequential(conv(in_channels, c1, 3, padding=1), norm_for_block(0)(c1), nn.ReLU(), pool(2)),
        nn.Sequential(conv(c1, c2, 3, padding=1), norm_for_block(1)(c2), nn.ReLU(), pool(2)),
        nn.Sequential(nn.Flatten(), nn.Linear(flat, CNN_HIDDEN), nn.ReLU()),
        nn.Linear(CNN_HIDDEN, num_classes),
    ]


def build_model(
    arch: str,
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    cut: int | str = 1,
    cut2: int | str | None = None,
    client_norm: str = "group",
    server_norm: str = "batch",
    norm_groups: int | None = None,
) -> BlockModel:
    """Build ``arch`` for ``input_shape`` (without batch dim) and ``num_classes`` outputs.

    Blocks ``[0, cut)`` (and ``[cut2, L)`` when U-shaped) are client blocks normalised with
    ``client_norm``; the others use ``server_norm``. Norm kinds: ``NORM_KINDS``; ``norm_groups`` fixes the
    number of GroupNorm groups (None: the largest divisor of the channels up to 8). The same
    ``torch.manual_seed`` gives the same weights (norm choice and cut do not change the draws).
    """
    names = block_names_for(arch)
    for role, kind in (("client_norm", client_norm), ("server_norm", server_norm)):
        if kind not in NORM_KINDS:
            raise InvalidNormError(f"unknown {role} {kind!r}; choose one of {', '.join(NORM_KINDS)}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise InvalidModelError(f"num_classes must be a positive int, got {num_classes!r}")
    input_shape = tuple(input_shape)
    spatial_dims = _spatial_dims(arch, input_shape)
    cut_index, cut2_index = resolve_cut_pair(names, cut, cut2)

    def is_client(index: int) -> bool:
        return index < cut_index or (cut2_index is not None and index >= cut2_index)

    def norm_for_block(index: int) -> Callable[[int], nn.Module]:
        client = is_client(index)
        kind = client_norm if client else server_norm
        # Inside the MLP the norm acts on (N, C) features; elsewhere on the conv layout.
        dims = 0 if arch == "mlp" else spatial_dims
        return lambda channels: make_norm(
            kind, channels, spatial_dims=dims, per_client=client, groups=norm_groups
        )

    if arch == "mlp":
        blocks = _build_mlp(input_shape, num_classes, norm_for_block)
    elif arch == "cnn":
        blocks = _build_cnn(input_shape, spatial_dims, num_classes, norm_for_block)
    else:
        blocks = build_resnet_blocks(arch, input_shape[0], spatial_dims, num_classes, norm_for_block)
    return BlockModel(arch, blocks, names, input_shape, cut_index, cut2_index, client_norm, server_norm)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = [
    "ARCHITECTURES",
    "ArchInfo",
    "BlockModel",
    "InvalidCutError",
    "InvalidModelError",
    "build_model",
    "block_names_for",
    "count_parameters",
    "normalised_channels",
    "resolve_cut_index",
    "resolve_cut_pair",
]
