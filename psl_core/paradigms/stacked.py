"""K copies of a model trained together: one batched kernel per layer, not K small ones (SPEC §6).

The parameters of all copies are the rows of ONE flat ``(K, P)`` tensor. Every step builds leaf views
of it (one per parameter, shape ``(K, *shape)``) whose ``.grad`` are views of a flat ``(K, P)``
gradient tensor, runs ``torch.func.functional_call`` under ``torch.func.vmap`` over the client axis,
and back-propagates once. Because the copies are independent, the gradient of the SUM of the
per-copy losses with respect to copy k is exactly copy k's own gradient. The optimiser then updates
the flat tensors with a handful of whole-tensor operations, and federated averaging is one weighted
reduction ``weights @ params``.

Local batches have one size b for every copy; a client whose batch is shorter (the last batch of a
local epoch) or empty (it has finished its local epochs) is padded and masked: masked rows add
nothing to its loss, and inside BatchNorm they add nothing to the batch statistics
(:class:`MaskedBatchNorm`), so every copy computes exactly what it would compute alone.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, vmap

from psl_core.models.norms import SegmentBatchNorm

# The leaf views of a (K, P) tensor are not contiguous per parameter; autograd warns that such a
# gradient layout "may impair performance". Accumulating into them in place is the point here.
warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout contract")

# The row mask of the copy being computed, (b,) float 0/1, set inside the vmapped function.
_ROW_MASK: contextvars.ContextVar[Tensor | None] = contextvars.ContextVar("psl_row_mask", default=None)


@contextlib.contextmanager
def _row_mask(mask: Tensor | None) -> Iterator[None]:
    token = _ROW_MASK.set(mask)
    try:
        yield
    finally:
        _ROW_MASK.reset(token)


class MaskedBatchNorm(nn.Module):
    """BatchNorm whose training statistics ignore masked (padding) rows; same parameter names.

    Training mode with a row mask set: mean and biased variance over the valid rows (× spatial
    positions), running statistics updated with the unbiased variance (n / (n − 1)), exactly like
    ``nn.BatchNorm`` run on the valid rows alone. A copy with no valid row leaves its running
    statistics untouched. One valid value per channel gives variance 0 (``nn.BatchNorm1d`` would
    refuse it), as in :class:`~psl_core.models.norms.SegmentBatchNorm`. Without a mask it is plain
    ``F.batch_norm``.
    """

    def __init__(self, num_features: int, eps: float, momentum: float, affine: bool, *, stacked: bool = True):
        super().__init__()
        self.num_features, self.eps, self.momentum, self.affine = num_features, eps, momentum, affine
        # stacked: runs under vmap on views of stacked buffers (statistics by hand, see forward).
        self.stacked = stacked
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    @classmethod
    def like(cls, norm: nn.Module, *, stacked: bool = True) -> MaskedBatchNorm:
        new = cls(norm.num_features, norm.eps, norm.momentum, norm.affine, stacked=stacked)
        # Only the state a BatchNorm copy has (a per-client BatchNorm may carry more: here every copy
        # IS one client, so its own statistics are the running ones).
        mine = new.state_dict()
        new.load_state_dict({k: v for k, v in norm.state_dict().items() if k in mine})
        return new

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        mask = _ROW_MASK.get()
        if mask is None and not self.stacked and x.numel() > x.shape[1]:
            self.num_batches_tracked.add_(1)
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, True, self.momentum, self.eps
            )
        # Statistics by hand, also without a mask: F.batch_norm's in-place running-statistics update
        # does not reach strided views of the stacked buffers under vmap.
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        if mask is None and x.numel() == x.shape[1]:
            mask = x.new_ones(
                1
            )  # one value per channel: F.batch_norm refuses it, the manual path gives var 0
        if mask is None:
            # One fused pass for the statistics, one for the normalisation.
            var, mean = torch.var_mean(x, dims, unbiased=False)
            out = F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
            n = x.new_tensor(float(x.numel() // x.shape[1]))
        else:
            row = mask.reshape([-1] + [1] * (x.dim() - 1)).to(x.dtype)
            n = mask.sum() * math.prod(x.shape[2:])
            mean = (x * row).sum(dims) / n.clamp(min=1)
            centred = x - mean.reshape(shape)
            var = (centred * centred * row).sum(dims) / n.clamp(min=1)
            out = centred * torch.rsqrt(var + self.eps).reshape(shape)
            if self.affine:
                out = out * self.weight.reshape(shape) + self.bias.reshape(shape)
        with torch.no_grad():
            active = n > 0
            unbiased = var * n / (n - 1).clamp(min=1)
            new_mean = (1 - self.momentum) * self.running_mean + self.momentum * mean
            new_var = (1 - self.momentum) * self.running_var + self.momentum * unbiased
            self.running_mean.copy_(torch.where(active, new_mean, self.running_mean))
            self.running_var.copy_(torch.where(active, new_var, self.running_var))
            self.num_batches_tracked.add_(active.long())
        return out


def _with_masked_norms(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` with every BatchNorm (global or per-client) made maskable."""
    return make_norms_maskable(copy.deepcopy(module), stacked=True)


def make_norms_maskable(module: nn.Module, *, stacked: bool = False) -> nn.Module:
    """Replace, in place, every BatchNorm of ``module`` by a :class:`MaskedBatchNorm` (same state).

    Outside vmap this matters for one thing: a batch with one value per channel (a client's last
    batch of one sample reaching a server-side BatchNorm1d) gets variance 0 instead of an error.
    """
    for parent in list(module.modules()):
        for name, child in parent.named_children():
            if isinstance(child, (nn.modules.batchnorm._BatchNorm, SegmentBatchNorm, MaskedBatchNorm)):
                setattr(parent, name, MaskedBatchNorm.like(child, stacked=stacked))
    return module


class BlockRange(nn.Module):
    """Blocks ``[0, end)`` of a block model, runnable by range; parameter names as in the model."""

    def __init__(self, blocks: nn.ModuleList):
        super().__init__()
        self.blocks = blocks

    def forward(self, x: Tensor, start: int, end: int) -> Tensor:
        for block in self.blocks[start:end]:
            x = block(x)
        return x


@dataclass(frozen=True)
class _Slot:
    name: str
    shape: tuple[int, ...]
    offset: int
    numel: int
    block: int  # index of the block the tensor belongs to (blocks.<i>.…)


def _slots(named: list[tuple[str, Tensor]]) -> tuple[list[_Slot], int]:
    slots, offset = [], 0
    for name, tensor in named:
        block = int(name.split(".")[1])
        slots.append(_Slot(name, tuple(tensor.shape), offset, tensor.numel(), block))
        offset += tensor.numel()
    return slots, offset


class StackedCopies:
    """``num_copies`` copies of blocks ``[0, num_blocks)`` of a block model, as flat tensors.

    ``params`` (K, P) and ``grads`` (K, P) hold every trainable parameter; ``float_buffers`` (K, Q)
    the BatchNorm running statistics; ``count_buffers`` (K, R) their batch counters.
    """

    def __init__(self, model: nn.Module, num_copies: int, num_blocks: int | None = None):
        blocks = model.blocks if num_blocks is None else nn.ModuleList(list(model.blocks)[:num_blocks])
        self.num_blocks = len(blocks)
        self.module = _with_masked_norms(BlockRange(blocks))
        self.module.train()
        self.num_copies = num_copies
        named_params = list(self.module.named_parameters())
        named_buffers = list(self.module.named_buffers())
        self.param_slots, num_params = _slots(named_params)
        floats = [(n, b) for n, b in named_buffers if b.is_floating_point()]
        counts = [(n, b) for n, b in named_buffers if not b.is_floating_point()]
        self.float_slots, num_floats = _slots(floats)
        self.count_slots, num_counts = _slots(counts)
        device = named_params[0][1].device
        self.params = torch.empty(num_copies, num_params, device=device)
        self.grads = torch.zeros(num_copies, num_params, device=device)
        self.float_buffers = torch.empty(num_copies, num_floats, device=device)
        self.count_buffers = torch.zeros(num_copies, num_counts, dtype=torch.long, device=device)
        self.load_single(self.flatten_module(self.module))

    # ------------------------------------------------------------------ flat <-> module
    def flatten_module(self, module: nn.Module) -> dict[str, Tensor]:
        """One model's parameters and buffers (same names) as flat 1-d tensors."""
        state = dict(module.named_parameters()) | dict(module.named_buffers())
        return {
            "params": torch.cat([state[s.name].detach().reshape(-1) for s in self.param_slots]),
            "float_buffers": _cat_or_empty(
                [state[s.name].reshape(-1) for s in self.float_slots], self.params
            ),
            "count_buffers": _cat_or_empty(
                [state[s.name].reshape(-1) for s in self.count_slots], self.count_buffers
            ),
        }

    @torch.no_grad()
    def load_into(self, module: nn.Module, flat: dict[str, Tensor]) -> None:
        """Write flat tensors (as from :meth:`flatten_module` or :meth:`average`) into ``module``."""
        state = dict(module.named_parameters()) | dict(module.named_buffers())
        for key, slots in (
            ("params", self.param_slots),
            ("float_buffers", self.float_slots),
            ("count_buffers", self.count_slots),
        ):
            for s in slots:
                state[s.name].copy_(flat[key][s.offset : s.offset + s.numel].view(s.shape))

    @torch.no_grad()
    def load_single(self, flat: dict[str, Tensor]) -> None:
        """Every copy := the one model ``flat`` (the start of a round)."""
        self.params.copy_(flat["params"].expand_as(self.params))
        self.float_buffers.copy_(flat["float_buffers"].expand_as(self.float_buffers))
        self.count_buffers.copy_(flat["count_buffers"].expand_as(self.count_buffers))

    @torch.no_grad()
    def average(self, weights: Tensor) -> dict[str, Tensor]:
        """Federated averaging: Σ_k w_k θ_k of parameters and running statistics, one reduction each.

        Batch counters take the largest copy's count (they only matter for ``momentum=None``).
        """
        w = weights.to(self.params.dtype)
        return {
            "params": w @ self.params,
            "float_buffers": w @ self.float_buffers,
            "count_buffers": self.count_buffers.max(dim=0).values,
        }

    # ------------------------------------------------------------------ batched forward
    def _views(self, rows: slice, with_grad: bool) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        n = len(range(*rows.indices(self.num_copies)))
        params = {}
        for s in self.param_slots:
            view = self.params[rows, s.offset : s.offset + s.numel].view(n, *s.shape)
            if with_grad:
                view.requires_grad_(True)
                view.grad = self.grads[rows, s.offset : s.offset + s.numel].view(n, *s.shape)
            params[s.name] = view
        buffers = {
            s.name: self.float_buffers[rows, s.offset : s.offset + s.numel].view(n, *s.shape)
            for s in self.float_slots
        }
        buffers |= {
            s.name: self.count_buffers[rows, s.offset : s.offset + s.numel].view(n, *s.shape)
            for s in self.count_slots
        }
        return params, buffers

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None,
        *,
        rows: slice = slice(None),
        start: int = 0,
        end: int | None = None,
    ) -> Tensor:
        """Blocks ``[start, end)`` of copies ``rows`` on their own batches ``x`` (n, b, …), with autograd
        into :attr:`grads`. ``mask`` (n, b) marks valid rows; None = all valid."""
        end = self.num_blocks if end is None else end
        params, buffers = self._views(rows, with_grad=True)

        def one_copy(p, b, xx, m):
            with _row_mask(m):
                return functional_call(self.module, (p, b), (xx, start, end))

        if mask is None:
            return vmap(lambda p, b, xx: one_copy(p, b, xx, None))(params, buffers, x)
        return vmap(one_copy)(params, buffers, x, mask)

    def loss(
        self, x: Tensor, y: Tensor, mask: Tensor | None, *, rows: slice = slice(None)
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Forward of copies ``rows`` to the loss: (per-copy mean cross-entropy over valid rows,
        per-copy correct predictions, logits). ``loss.sum().backward()`` fills :attr:`grads`."""
        logits = self.forward(x, mask, rows=rows)
        ce = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(y.shape)
        hit = (logits.argmax(-1) == y).to(ce.dtype)
        if mask is None:
            return ce.mean(dim=1), hit.sum(dim=1), logits
        valid = mask.sum(dim=1).clamp(min=1)
        return (ce * mask).sum(dim=1) / valid, (hit * mask).sum(dim=1), logits

    def loss_backward(
        self, x: Tensor, y: Tensor, mask: Tensor | None, rows_per_pass: int
    ) -> tuple[Tensor, Tensor]:
        """Forward and backward of copies ``[0, len(x))`` into :attr:`grads`, at most ``rows_per_pass``
        copies at a time (a bound on activation memory; the gradients do not depend on it).
        Returns (per-copy loss, per-copy correct predictions), detached."""
        losses, hits = [], []
        for start in range(0, x.shape[0], max(1, rows_per_pass)):
            end = min(start + max(1, rows_per_pass), x.shape[0])
            part = None if mask is None else mask[start:end]
            loss, correct, _ = self.loss(x[start:end], y[start:end], part, rows=slice(start, end))
            loss.sum().backward()
            losses.append(loss.detach())
            hits.append(correct.detach())
        return torch.cat(losses), torch.cat(hits)

    def zero_grad(self) -> None:
        self.grads.zero_()


def _cat_or_empty(parts: list[Tensor], like: Tensor) -> Tensor:
    if not parts:
        return like.new_zeros(0)
    return torch.cat([p.to(like.dtype) for p in parts])


class StackedOptimizer:
    """SGD (momentum, weight decay) or Adam on flat (K, P) tensors, row by row as ``torch.optim``
    would update each copy alone; rows that are not ``active`` are left exactly as they are."""

    def __init__(self, kind: str, shape: tuple[int, int], *, momentum: float, weight_decay: float, device):
        self.kind, self.momentum, self.weight_decay = kind, momentum, weight_decay
        self.state = {"buf": torch.zeros(shape, device=device)}
        if kind == "adam":
            self.state = {
                "exp_avg": torch.zeros(shape, device=device),
                "exp_avg_sq": torch.zeros(shape, device=device),
                "steps": torch.zeros(shape[0], 1, device=device),
            }

    def reset(self) -> None:
        """Fresh optimiser state for every copy (a client's local optimiser starts anew each round)."""
        for t in self.state.values():
            t.zero_()

    @torch.no_grad()
    def step(self, params: Tensor, grads: Tensor, lr: float, active: Tensor) -> None:
        """One update of every active row; ``grads`` may be overwritten."""
        everyone = bool(active.all())
        keep = active.view(-1, 1)

        def only_active(new: Tensor, old: Tensor) -> Tensor:
            return new if everyone else torch.where(keep, new, old)

        g = grads.add_(params, alpha=self.weight_decay) if self.weight_decay else grads
        if self.kind == "adam":
            beta1, beta2, eps = 0.9, 0.999, 1e-8
            st = self.state
            st["steps"].copy_(only_active(st["steps"] + 1, st["steps"]))
            st["exp_avg"].copy_(only_active(st["exp_avg"].lerp(g, 1 - beta1), st["exp_avg"]))
            st["exp_avg_sq"].copy_(
                only_active(st["exp_avg_sq"] * beta2 + (1 - beta2) * g * g, st["exp_avg_sq"])
            )
            safe = st["steps"].clamp(min=1)
            denom = st["exp_avg_sq"].sqrt() / (1 - beta2**safe).sqrt() + eps
            update = lr / (1 - beta1**safe) * st["exp_avg"] / denom
            params.sub_(only_active(update, torch.zeros_like(update)))
            return
        if self.momentum:
            buf = self.state["buf"]
            if everyone:
                g = buf.mul_(self.momentum).add_(g)
            else:
                buf.copy_(torch.where(keep, buf * self.momentum + g, buf))
                g = buf
        params.add_(only_active(g, torch.zeros_like(g)), alpha=-lr)
