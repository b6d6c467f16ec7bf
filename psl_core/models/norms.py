"""Normalisation layers for split models, including per-client ("segment") BatchNorm.

In parallel split learning every client normalises its own mini-batch. The simulator runs the client
part once on the concatenated global batch, so a client-side BatchNorm must compute its statistics per
client *segment* of that batch. :class:`SegmentBatchNorm` does this in one vectorised pass (segment
sums with ``index_add``), never with a Python loop over clients (methods §1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NORM_KINDS = ("group", "batch", "layer", "none")

# GroupNorm never uses more than this many groups; see group_count().
MAX_GROUPS = 8


class InvalidNormError(ValueError):
    """Raised when a normalisation kind or its parameters are not supported."""


class SegmentBatchNorm(nn.Module):
    """BatchNorm whose training statistics are computed separately for each client segment.

    Accepts ``(N, C)``, ``(N, C, L)`` and ``(N, C, H, W)`` inputs. Call :meth:`set_segments` (or
    ``BlockModel.set_client_segments``) with one segment id per row of the batch; rows that share an id
    belong to the same client. Segments need not be contiguous.

    * Training mode, segments set: each segment is normalised with its own biased mean/variance over
      (its rows × spatial positions), exactly like ``F.batch_norm`` run on that segment alone.
    * A segment with a single value per channel (one row of an ``(N, C)`` input) has variance 0, so its
      output is ``bias`` (``(x - mean) = 0`` divided by ``sqrt(0 + eps)``), and its input gradient is 0.
      ``torch.nn.BatchNorm1d`` refuses such a batch in training; we accept it because one client
      contributing one sample in a late-epoch step is a normal event in PSL.
    * Running statistics: ``running ← (1 - momentum)·running + momentum·Σ_s (n_s / N)·stat_s`` — the
      sample-weighted mean over segments of each segment's mean and unbiased variance. Weighting by
      samples makes the running mean equal to the global-batch mean, so a single segment reproduces
      ``nn.BatchNorm`` exactly. A size-1 segment (one value per channel) has no unbiased variance; it
      contributes variance 0 to the running average.
    * Eval mode uses the running statistics (segments are ignored).
    * No segments set: behaves exactly like ordinary ``nn.BatchNorm``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True):
        super().__init__()
        if num_features < 1:
            raise InvalidNormError(f"num_features must be >= 1, got {num_features}")
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        # Same buffer names as nn.BatchNorm so state dicts look familiar.
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        self.segment_ids: Tensor | None = None
        self.num_segments = 0

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"

    def set_segments(self, segment_ids: Tensor | None, num_segments: int = 0) -> None:
        """Set the client id of every row of the next batches (``None`` = one segment, plain BatchNorm).

        ``num_segments`` 0 means ``max(segment_ids) + 1``.
        """
        if segment_ids is None:
            self.segment_ids, self.num_segments = None, 0
            return
        segment_ids = torch.as_tensor(segment_ids)
        if segment_ids.dim() != 1 or segment_ids.dtype not in (torch.int64, torch.int32, torch.int16):
            raise InvalidNormError(
                "segment_ids must be a 1-d integer tensor with one client id per batch row"
            )
        if segment_ids.numel() == 0:
            raise InvalidNormError("segment_ids is empty; pass None to switch segments off")
        low, high = int(segment_ids.min()), int(segment_ids.max())
        if low < 0:
            raise InvalidNormError(f"segment ids must be >= 0, got {low}")
        if num_segments == 0:
            num_segments = high + 1
        if high >= num_segments:
            raise InvalidNormError(f"segment id {high} is out of range for num_segments={num_segments}")
        self.segment_ids = segment_ids.long()
        self.num_segments = int(num_segments)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() not in (2, 3, 4) or x.shape[1] != self.num_features:
            raise InvalidNormError(
                f"SegmentBatchNorm({self.num_features}) expects (N, C), (N, C, L) or (N, C, H, W) with "
                f"C={self.num_features}; got shape {tuple(x.shape)}"
            )
        if not self.training or self.segment_ids is None:
            return F.batch_norm(
                x,
                self.running_mean,
                self.running_var,
                self.weight,
                self.bias,
                training=self.training,
                momentum=self.momentum,
                eps=self.eps,
            )
        return self._segment_forward(x)

    def _segment_forward(self, x: Tensor) -> Tensor:
        seg = self.segment_ids.to(x.device)
        batch, channels = x.shape[0], x.shape[1]
        if seg.numel() != batch:
            raise InvalidNormError(
                f"{seg.numel()} segment ids were set but the batch has {batch} rows; "
                "call set_client_segments again for this batch"
            )
        flat = x.reshape(batch, channels, -1)  # (N, C, S)
        positions = flat.shape[2]
        rows = torch.bincount(seg, minlength=self.num_segments).to(x.dtype)  # rows per segment
        # clamp: empty segments would divide by 0 and poison the running stats with NaN (weight 0 · NaN).
        count = (rows * positions).clamp(min=1.0).unsqueeze(1)  # values per channel per segment, (G, 1)
        zeros = x.new_zeros(self.num_segments, channels)
        seg_mean = zeros.index_add(0, seg, flat.sum(dim=2)) / count  # (G, C)
        centred = flat - seg_mean[seg].unsqueeze(2)
        sq_sum = zeros.index_add(0, seg, (centred * centred).sum(dim=2))  # two-pass variance: stable
        # Fold 1/std and the affine weight into one per-(segment, channel) scale: one fused pass over x.
        scale = torch.rsqrt(sq_sum / count + self.eps)
        if self.affine:
            scale = scale * self.weight
            normed = torch.addcmul(self.bias.view(1, -1, 1), centred, scale[seg].unsqueeze(2))
        else:
            normed = centred * scale[seg].unsqueeze(2)
        self._update_running_stats(seg_mean, sq_sum, count, rows)
        return normed.reshape(x.shape)

    @torch.no_grad()
    def _update_running_stats(self, seg_mean: Tensor, sq_sum: Tensor, count: Tensor, rows: Tensor) -> None:
        weights = (rows / rows.sum()).unsqueeze(1)  # sample weights n_s / N, (G, 1)
        unbiased_var = sq_sum / (count - 1).clamp(min=1.0)  # size-1 segment: 0 / 1 = 0 (documented)
        mean = (weights * seg_mean).sum(dim=0)
        var = (weights * unbiased_var).sum(dim=0)
        self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
        self.running_var.mul_(1 - self.momentum).add_(self.momentum * var)
        self.num_batches_tracked.add_(1)


def group_count(num_channels: int, max_groups: int = MAX_GROUPS) -> int:
    """Largest divisor of ``num_channels`` that is at most ``max_groups`` (8 for 16/32/64… channels)."""
    for groups in range(min(max_groups, num_channels), 0, -1):
        if num_channels % groups == 0:
            return groups
    return 1


def make_norm(kind: str, num_channels: int, *, spatial_dims: int, per_client: bool) -> nn.Module:
    """Build a normalisation layer of ``kind`` (one of NORM_KINDS) for ``num_channels`` channels.

    ``spatial_dims`` is 0 for ``(N, C)`` features, 1 for ``(N, C, L)`` and 2 for ``(N, C, H, W)``.
    ``per_client`` selects, for ``kind="batch"``, a :class:`SegmentBatchNorm` (client part: statistics
    per client) instead of an ordinary BatchNorm over the whole global batch (server part).
    """
    if kind not in NORM_KINDS:
        raise InvalidNormError(f"unknown norm {kind!r}; choose one of {', '.join(NORM_KINDS)}")
    if spatial_dims not in (0, 1, 2):
        raise InvalidNormError(f"spatial_dims must be 0, 1 or 2, got {spatial_dims}")
    if kind == "none":
        return nn.Identity()
    if kind == "group":
        return nn.GroupNorm(group_count(num_channels), num_channels)
    if kind == "layer":
        # GroupNorm with one group normalises over (C, *spatial) per sample: LayerNorm for any rank.
        return nn.GroupNorm(1, num_channels)
    if per_client:
        return SegmentBatchNorm(num_channels)
    return nn.BatchNorm2d(num_channels) if spatial_dims == 2 else nn.BatchNorm1d(num_channels)
