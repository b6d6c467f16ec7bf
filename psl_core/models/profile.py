"""Per-block cost profiles measured by running the model with forward hooks, and per-cut summaries.

Nothing here is typed by hand: :func:`profile_model` runs a batch of 2 zeros through the model in eval
mode and every leaf module reports its cost from the shapes it actually saw.

FLOP conventions (forward pass, per sample). A multiply-add counts as 2 FLOPs; bias adds are not
counted (the usual "MACs × 2" convention that published ResNet numbers use).

* Conv: ``2 · C_in/groups · prod(kernel) · C_out · prod(out_spatial)``.
* Linear: ``2 · in_features · out_features`` (per output row).
* Norms (BatchNorm, per-client BatchNorm, GroupNorm, LayerNorm): ``NORM_FLOPS_PER_ELEMENT`` = 5 per
  output element — statistics (sum for the mean 1, squared deviation 2) and a fused normalise-scale-
  shift (2). Eval-mode BatchNorm is cheaper, but the profile serves training-time estimates.
* Activations (ReLU …): ``ACTIVATION_FLOPS_PER_ELEMENT`` = 1 per output element.
* Pooling (max, average, adaptive average): ``POOL_FLOPS_PER_INPUT_ELEMENT`` = 1 per input element
  (each input is compared or added once).
* Residual additions (the ``ResidualAdd`` module): ``ADD_FLOPS_PER_ELEMENT`` = 1 per output element.
* Flatten, Identity, Dropout: 0. Any other leaf module raises ``TypeError`` rather than being silently
  counted as free.

Bytes: activations and parameters use the tensors' own element size (4 bytes for float32).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import Tensor, nn

from psl_core.models.norms import SegmentBatchNorm
from psl_core.models.zoo import BlockModel, build_model, resolve_cut_pair
from psl_core.models.zoo_resnet import ResidualAdd

NORM_FLOPS_PER_ELEMENT = 5
ACTIVATION_FLOPS_PER_ELEMENT = 1
POOL_FLOPS_PER_INPUT_ELEMENT = 1
ADD_FLOPS_PER_ELEMENT = 1
LABEL_BYTES_PER_SAMPLE = 8  # one int64 class label
PROFILE_BATCH = 2  # > 1 so batch-dependent layers behave normally; costs are divided back per sample

_NORMS = (nn.modules.batchnorm._NormBase, SegmentBatchNorm, nn.GroupNorm, nn.LayerNorm)
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.ELU)
_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)
_FREE = (nn.Flatten, nn.Identity, nn.Dropout)


@dataclass(frozen=True)
class BlockCost:
    """Measured cost of one block."""

    index: int
    name: str
    flops_per_sample: float
    params: int
    param_bytes: int
    out_shape: tuple[int, ...]  # output shape of one sample (no batch dimension)
    out_bytes_per_sample: int


@dataclass(frozen=True)
class ModelProfile:
    """Costs of every block of a model for one input shape."""

    arch: str
    input_shape: tuple[int, ...]
    input_bytes_per_sample: int
    blocks: tuple[BlockCost, ...]

    @property
    def total_flops_per_sample(self) -> float:
        """Forward FLOPs of the whole model per sample."""
        return float(sum(b.flops_per_sample for b in self.blocks))

    @property
    def total_params(self) -> int:
        """Parameter count of the whole model."""
        return sum(b.params for b in self.blocks)

    @property
    def total_param_bytes(self) -> int:
        """Parameter bytes of the whole model."""
        return sum(b.param_bytes for b in self.blocks)

    @property
    def num_blocks(self) -> int:
        """Number of blocks L."""
        return len(self.blocks)

    @property
    def block_names(self) -> list[str]:
        """Block names in order."""
        return [b.name for b in self.blocks]


@dataclass(frozen=True)
class CutSummary:
    """What a cut (or a U-shaped pair of cuts) costs the client, the server and the link, per sample."""

    cut: int
    cut2: int | None
    cut_name: str  # name of the last client block before the cut
    client_flops_per_sample: float  # forward FLOPs of all client blocks ([0, cut) + [cut2, L))
    server_flops_per_sample: float  # forward FLOPs of the server blocks
    client_params: int
    client_param_bytes: int
    server_param_bytes: int
    smashed_bytes_per_sample: int  # activation at the cut, client → server
    return_bytes_per_sample: int  # U-shaped: activation at cut2, server → client; 0 otherwise
    client_activation_bytes_per_sample: int  # sum of client blocks' output bytes (kept for backward)
    head_flops_per_sample: float = 0.0  # U-shaped: forward FLOPs of the head [cut2, L) (in client_flops)

    @property
    def is_u_shaped(self) -> bool:
        """Whether the head runs back on the client."""
        return self.cut2 is not None

    @property
    def bytes_up_per_sample(self) -> int:
        """Client → server per sample: smashed data + label; U-shaped: smashed data + gradient at cut2."""
        if self.is_u_shaped:
            return self.smashed_bytes_per_sample + self.return_bytes_per_sample
        return self.smashed_bytes_per_sample + LABEL_BYTES_PER_SAMPLE

    @property
    def bytes_down_per_sample(self) -> int:
        """Server → client per sample: gradient at the cut; U-shaped: plus the activation at cut2."""
        if self.is_u_shaped:
            return self.return_bytes_per_sample + self.smashed_bytes_per_sample
        return self.smashed_bytes_per_sample

    def client_memory_bytes(self, batch_size: int) -> int:
        """Client training memory: 3 × parameter bytes (weights, grads, optimiser state) + activations."""
        if batch_size < 0:
            raise ValueError(f"batch_size must be >= 0, got {batch_size}")
        return 3 * self.client_param_bytes + batch_size * self.client_activation_bytes_per_sample


def _leaf_flops(module: nn.Module, inputs: tuple, output: Tensor) -> float:
    """Forward FLOPs of one call of a leaf module, for the whole batch it saw."""
    out_numel = output.numel()
    if isinstance(module, nn.modules.conv._ConvNd):
        if isinstance(module, nn.modules.conv._ConvTransposeNd):
            raise TypeError("transposed convolutions are not profiled yet")
        per_output = 2 * (module.in_channels // module.groups) * math.prod(module.kernel_size)
        return float(per_output * out_numel)
    if isinstance(module, nn.Linear):
        return float(2 * module.in_features * out_numel)
    if isinstance(module, _NORMS):
        return float(NORM_FLOPS_PER_ELEMENT * out_numel)
    if isinstance(module, _ACTIVATIONS):
        return float(ACTIVATION_FLOPS_PER_ELEMENT * out_numel)
    if isinstance(module, _POOLS):
        return float(POOL_FLOPS_PER_INPUT_ELEMENT * inputs[0].numel())
    if isinstance(module, ResidualAdd):
        return float(ADD_FLOPS_PER_ELEMENT * out_numel)
    if isinstance(module, _FREE):
        return 0.0
    raise TypeError(f"no FLOP rule for {type(module).__name__}; add one to psl_core/models/profile.py")


def _leaves(block: nn.Module) -> list[nn.Module]:
    return [m for m in block.modules() if not any(True for _ in m.children())]


def profile_model(model: BlockModel) -> ModelProfile:
    """Measure every block's FLOPs, parameters and output size with forward hooks.

    Runs a batch of ``PROFILE_BATCH`` zeros in eval mode under ``no_grad`` (so running statistics and the
    global RNG are untouched) and restores every module's train/eval mode afterwards.
    """
    first_param = next(model.parameters(), None)
    device = first_param.device if first_param is not None else torch.device("cpu")
    dtype = first_param.dtype if first_param is not None else torch.float32
    flops = [0.0] * model.num_blocks
    outputs: list[Tensor | None] = [None] * model.num_blocks
    handles = []

    def leaf_hook(index: int):
        def hook(module, inputs, output):
            flops[index] += _leaf_flops(module, inputs, output)

        return hook

    def block_hook(index: int):
        def hook(module, inputs, output):
            outputs[index] = output

        return hook

    modes = {module: module.training for module in model.modules()}
    try:
        for index, block in enumerate(model.blocks):
            handles.append(block.register_forward_hook(block_hook(index)))
            handles += [leaf.register_forward_hook(leaf_hook(index)) for leaf in _leaves(block)]
        model.eval()
        with torch.no_grad():
            model(torch.zeros(PROFILE_BATCH, *model.input_shape, device=device, dtype=dtype))
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.training = training

    blocks = []
    for index, (name, block) in enumerate(zip(model.block_names, model.blocks)):
        out = outputs[index]
        params = list(block.parameters())
        blocks.append(
            BlockCost(
                index=index,
                name=name,
                flops_per_sample=flops[index] / PROFILE_BATCH,
                params=sum(p.numel() for p in params),
                param_bytes=sum(p.numel() * p.element_size() for p in params),
                out_shape=tuple(out.shape[1:]),
                out_bytes_per_sample=out[0].numel() * out.element_size(),
            )
        )
    input_bytes = math.prod(model.input_shape) * torch.empty((), dtype=dtype).element_size()
    return ModelProfile(model.arch, tuple(model.input_shape), input_bytes, tuple(blocks))


def cut_summary(profile: ModelProfile, cut: int | str, cut2: int | str | None = None) -> CutSummary:
    """Summarise a cut (index 1..L-1 or name of the last client block), optionally U-shaped with cut2."""
    cut, cut2 = resolve_cut_pair(profile.block_names, cut, cut2)
    client = [b for b in profile.blocks if b.index < cut or (cut2 is not None and b.index >= cut2)]
    server = [b for b in profile.blocks if cut <= b.index and (cut2 is None or b.index < cut2)]
    return CutSummary(
        cut=cut,
        cut2=cut2,
        cut_name=profile.blocks[cut - 1].name,
        client_flops_per_sample=float(sum(b.flops_per_sample for b in client)),
        server_flops_per_sample=float(sum(b.flops_per_sample for b in server)),
        client_params=sum(b.params for b in client),
        client_param_bytes=sum(b.param_bytes for b in client),
        server_param_bytes=sum(b.param_bytes for b in server),
        smashed_bytes_per_sample=profile.blocks[cut - 1].out_bytes_per_sample,
        return_bytes_per_sample=profile.blocks[cut2 - 1].out_bytes_per_sample if cut2 is not None else 0,
        client_activation_bytes_per_sample=sum(b.out_bytes_per_sample for b in client),
        head_flops_per_sample=float(
            sum(b.flops_per_sample for b in client if cut2 is not None and b.index >= cut2)
        ),
    )


def cut_table(profile: ModelProfile) -> list[CutSummary]:
    """One summary per valid single cut 1..L-1."""
    return [cut_summary(profile, cut) for cut in range(1, profile.num_blocks)]


@lru_cache(maxsize=64)
def profile_arch(
    arch: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    client_norm: str = "group",
    server_norm: str = "batch",
) -> ModelProfile:
    """Profile of ``arch`` without the caller building a model (cached; for UIs and planners).

    Builds the model under a forked RNG so the caller's ``torch`` random stream is unchanged. Costs do not
    depend on the cut; the norm kinds change only the small norm terms ("none" has no norm cost).
    """
    with torch.random.fork_rng(devices=[]):
        model = build_model(
            arch,
            input_shape=tuple(input_shape),
            num_classes=num_classes,
            client_norm=client_norm,
            server_norm=server_norm,
        )
    return profile_model(model)
