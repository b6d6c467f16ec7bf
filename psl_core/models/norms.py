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
    * Per-client running statistics (``client_running_mean`` / ``client_running_var``, one row per
      client): every client present in a batch updates ITS row from its own segment, exactly as its own
      ``nn.BatchNorm`` copy would in a deployment (a client absent from a step keeps its row). A segment
      with one value per channel has no unbiased variance: it updates its mean, not its variance.
    * Pooled running statistics (``running_mean`` / ``running_var``): ``(1 - momentum)·running +
      momentum·Σ_s (n_s / N)·stat_s``, the sample-weighted mean of the segment statistics — equal to
      ``nn.BatchNorm``'s with a single segment. No client holds them, so evaluation does not use them
      once per-client rows exist; they serve the no-segment (plain BatchNorm) use.
    * Eval mode evaluates ONE client's model, as a deployment would (and as the GPSL reference code
      evaluates its last client's model): the statistics of ``eval_client``, by default the last client
      (highest id) whose statistics have seen data. Segments are ignored.
    * No segments ever set: behaves exactly like ordinary ``nn.BatchNorm``.
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
        # One row per client, grown when a batch names more clients (and when a checkpoint is loaded).
        self.register_buffer("client_running_mean", torch.zeros(0, num_features))
        self.register_buffer("client_running_var", torch.ones(0, num_features))
        self.register_buffer("client_batches_tracked", torch.zeros(0, dtype=torch.long))
        self.segment_ids: Tensor | None = None
        self.num_segments = 0
        self.eval_client: int | None = None  # None: the last client whose statistics have seen data

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
        self._grow_clients(self.num_segments)

    def _grow_clients(self, num_clients: int) -> None:
        have = self.client_running_mean.shape[0]
        if num_clients <= have:
            return
        extra = num_clients - have
        like = self.running_mean
        self.client_running_mean = torch.cat(
            [self.client_running_mean, like.new_zeros(extra, self.num_features)]
        )
        self.client_running_var = torch.cat(
            [self.client_running_var, like.new_ones(extra, self.num_features)]
        )
        self.client_batches_tracked = torch.cat(
            [self.client_batches_tracked, self.client_batches_tracked.new_zeros(extra)]
        )

    _CLIENT_BUFFERS = ("client_running_mean", "client_running_var", "client_batches_tracked")

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, *args):
        # A checkpoint holds as many client rows as its run had clients: make room before loading.
        saved = state_dict.get(prefix + "client_running_mean")
        if saved is not None:
            self._grow_clients(saved.shape[0])
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, *args)
        if saved is None:  # a checkpoint from before per-client statistics: start them empty
            for name in self._CLIENT_BUFFERS:
                if prefix + name in missing_keys:
                    missing_keys.remove(prefix + name)

    def deployed_client(self) -> int | None:
        """The client whose statistics evaluation uses (None: no client statistics yet)."""
        if self.eval_client is not None:
            if not 0 <= self.eval_client < self.client_running_mean.shape[0]:
                raise InvalidNormError(
                    f"eval_client {self.eval_client} is out of range: this layer has statistics of "
                    f"{self.client_running_mean.shape[0]} clients"
                )
            return self.eval_client
        seen = torch.nonzero(self.client_batches_tracked > 0).flatten()
        return int(seen[-1]) if seen.numel() else None

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() not in (2, 3, 4) or x.shape[1] != self.num_features:
            raise InvalidNormError(
                f"SegmentBatchNorm({self.num_features}) expects (N, C), (N, C, L) or (N, C, H, W) with "
                f"C={self.num_features}; got shape {tuple(x.shape)}"
            )
        if not self.training:
            client = self.deployed_client()
            if client is not None:
                return F.batch_norm(
                    x,
                    self.client_running_mean[client],
                    self.client_running_var[client],
                    self.weight,
                    self.bias,
                    training=False,
                    eps=self.eps,
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
        # Each present client's own row, as its own BatchNorm copy would update it.
        present = (rows > 0).unsqueeze(1)
        has_var = count > 1
        m = self.momentum
        rows_mean = self.client_running_mean[: self.num_segments]
        rows_var = self.client_running_var[: self.num_segments]
        rows_mean.copy_(torch.where(present, (1 - m) * rows_mean + m * seg_mean, rows_mean))
        rows_var.copy_(torch.where(present & has_var, (1 - m) * rows_var + m * unbiased_var, rows_var))
        self.client_batches_tracked[: self.num_segments] += (rows > 0).long()


class _SingleValueSafeBatchNorm:
    """Server-side BatchNorm over the global batch that also accepts ONE value per channel.

    Late in an FLS/FPLS epoch a global batch can hold a single sample. For a BatchNorm over ``(N, C)``
    features that is one value per channel: its batch variance is 0, torch refuses the batch, and the
    formula would output the constant ``bias`` — erasing the sample and sending its client a zero
    gradient. The published method does not define this case (its code would stop). Our rule: such a
    batch is normalised with the running statistics, as at evaluation, and the running statistics are
    left unchanged. The sample is still used exactly once, as the schedule promised, and its gradient is
    informative. Every batch with more than one value per channel (two or more samples, or one image
    with H·W > 1 positions) is plain BatchNorm, bit for bit. ``single_value_batches`` counts the
    batches the rule applied to (the engine reports them as an event).
    """

    single_value_batches: int = 0

    def forward(self, x: Tensor) -> Tensor:
        if self.training and x.dim() >= 2 and x.numel() == x.shape[1] and self.running_mean is not None:
            self.single_value_batches += 1
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        return super().forward(x)


class GlobalBatchNorm1d(_SingleValueSafeBatchNorm, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` over the global batch; one sample uses the running statistics (see above)."""


class GlobalBatchNorm2d(_SingleValueSafeBatchNorm, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` over the global batch; a 1×1 single image uses the running statistics."""


def group_count(num_channels: int, max_groups: int = MAX_GROUPS) -> int:
    """Largest divisor of ``num_channels`` that is at most ``max_groups`` (8 for 16/32/64… channels)."""
    for groups in range(min(max_groups, num_channels), 0, -1):
        if num_channels % groups == 0:
            return groups
    return 1


def make_norm(
    kind: str, num_channels: int, *, spatial_dims: int, per_client: bool, groups: int | None = None
) -> nn.Module:
    """Build a normalisation layer of ``kind`` (one of NORM_KINDS) for ``num_channels`` channels.

    ``spatial_dims`` is 0 for ``(N, C)`` features, 1 for ``(N, C, L)`` and 2 for ``(N, C, H, W)``.
    ``per_client`` selects, for ``kind="batch"``, a :class:`SegmentBatchNorm` (client part: statistics
    per client) instead of an ordinary BatchNorm over the whole global batch (server part). ``groups``
    fixes the number of GroupNorm groups (None: :func:`group_count`).
    """
    if kind not in NORM_KINDS:
        raise InvalidNormError(f"unknown norm {kind!r}; choose one of {', '.join(NORM_KINDS)}")
    if spatial_dims not in (0, 1, 2):
        raise InvalidNormError(f"spatial_dims must be 0, 1 or 2, got {spatial_dims}")
    if kind == "none":
        return nn.Identity()
    if kind == "group":
        if groups is None:
            return nn.GroupNorm(group_count(num_channels), num_channels)
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or num_channels % groups:
            raise InvalidNormError(
                f"GroupNorm with norm_groups={groups!r} needs every normalised layer's channel count to be "
                f"divisible by it, but a layer has {num_channels} channels; use a divisor of {num_channels} "
                "or leave norm_groups empty (automatic)"
            )
        return nn.GroupNorm(groups, num_channels)
    if kind == "layer":
        # GroupNorm with one group normalises over (C, *spatial) per sample: LayerNorm for any rank.
        return nn.GroupNorm(1, num_channels)
    if per_client:
        return SegmentBatchNorm(num_channels)
    return GlobalBatchNorm2d(num_channels) if spatial_dims == 2 else GlobalBatchNorm1d(num_channels)
