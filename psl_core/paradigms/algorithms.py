"""What one step and one round of each paradigm do to the models (SPEC §6).

* :class:`Averaging` — sflv1, fedavg and hsfl. Every participant trains its own copy of the whole
  model; sflv1 splits each copy between the client (blocks before its cut) and its own server copy
  (the rest), but the smashed data goes forward and its gradient comes back unchanged, so by the
  chain rule a client/server pair computes exactly the full model's SGD step on the client's batch,
  whatever the cut. The split (and hsfl's FL/SL modes) therefore changes cost, not arithmetic: one
  stacked full model per participant, averaged with weights N_k / Σ N at the round end.
* :class:`SplitFedV2` — client-part copies side by side, ONE server part that serves the clients'
  smashed batches one after the other in the round's shuffled order, every step. Per-client cuts do
  change the arithmetic here: the server holds one copy of every block at or after the smallest
  cut; a client with a deeper cut trains its own copies of the blocks in between. At the round end
  each block becomes Σ_k w_k θ_k, where θ_k is the copy client k trained through (its own, or the
  server's); the server and every client start the next round from that model.
* :class:`SequentialSL` — vanilla split learning: one model, clients one at a time in the round's
  order; each client's local optimiser state for its client part starts fresh (it receives weights,
  not momentum), the server's persists.

Local optimiser state of averaged copies starts fresh every round, as in the reference
implementations (they build the client optimiser inside each round's local training).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from psl_core.data import augment_images
from psl_core.paradigms.plan import RoundPlan
from psl_core.paradigms.stacked import StackedCopies, StackedOptimizer, make_norms_maskable

FLAT_KEYS = ("params", "float_buffers", "count_buffers")
# Activation memory one batched forward/backward may use; more copies than fit are run in passes.
ACTIVATION_BUDGET_BYTES = 2 * 2**30
# Bytes held per sample per byte of block OUTPUTS: the layers inside a block keep their own outputs for
# backward, and vmap regroups copies (ResNet-20, K = 128, b = 4: ~3.4 MB held per sample against
# 0.41 MB of block outputs; bench/bench_paradigm_copies.py).
ACTIVATION_OVERHEAD = 8


def rows_per_pass(profile, local_batch: int, budget: int | None = None) -> int:
    """How many copies fit one batched pass under the activation budget."""
    per_sample = ACTIVATION_OVERHEAD * sum(b.out_bytes_per_sample for b in profile.blocks)
    budget = ACTIVATION_BUDGET_BYTES if budget is None else budget
    return max(1, int(budget // max(1, per_sample * local_batch)))


class Batches:
    """The training tensors and how a step gathers its (copies, b, …) batch from a plan."""

    def __init__(self, x_train: torch.Tensor, y_train: torch.Tensor, augment: bool, seed: int):
        self.x, self.y, self.augment, self.seed = x_train, y_train, augment, seed

    def gather(self, index: torch.Tensor, global_step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples at ``index`` (any shape; -1 = padding, filled with sample 0 and masked later)."""
        safe = index.clamp(min=0)
        x, y = self.x[safe], self.y[safe]
        if self.augment:
            gen = torch.Generator(device=x.device).manual_seed(self.seed * 1_000_003 + global_step)
            x = augment_images(x.flatten(0, index.dim() - 1), gen).view(x.shape)
        return x, y


def _active_prefix(count_row: np.ndarray) -> int:
    """Rows still training at this step; they form a prefix because rows are sorted by local steps."""
    active = int((count_row > 0).sum())
    if active and not (count_row[:active] > 0).all():
        raise RuntimeError("active clients must be a prefix of the rows (the planner sorts them so)")
    return active


def _mask(index: torch.Tensor) -> torch.Tensor | None:
    valid = index >= 0
    return None if bool(valid.all()) else valid.to(torch.float32)


def _optimizer(kind: str, shape, cfg, device) -> StackedOptimizer:
    t = cfg.training
    return StackedOptimizer(kind, shape, momentum=t.momentum, weight_decay=t.weight_decay, device=device)


class Averaging:
    """sflv1, fedavg, hsfl: stacked full-model copies, FedAvg at the round end."""

    def __init__(self, setup, num_rows: int, batches: Batches, local_batch: int):
        self.model, self.batches, cfg = setup.model, batches, setup.config
        self.stacked = StackedCopies(self.model, num_rows)
        self.rows_per_pass = rows_per_pass(setup.profile, local_batch)
        self.opt = _optimizer(
            cfg.training.optimizer, tuple(self.stacked.params.shape), cfg, self.stacked.params.device
        )
        self.global_state = self.stacked.flatten_module(self.model)

    def begin_round(self, plan: RoundPlan) -> None:
        self.stacked.load_single(self.global_state)
        self.opt.reset()

    def step(self, plan: RoundPlan, index: torch.Tensor, j: int, lr: float, global_step: int):
        active = _active_prefix(plan.count[j])
        rows = index[j, :active]
        x, y = self.batches.gather(rows, global_step)
        mask = _mask(rows)
        self.stacked.zero_grad()
        loss, correct = self.stacked.loss_backward(x, y, mask, self.rows_per_pass)
        on = torch.zeros(self.stacked.num_copies, dtype=torch.bool, device=loss.device)
        on[:active] = True
        self.opt.step(self.stacked.params, self.stacked.grads, lr, on)
        seen = (rows >= 0).sum(dim=1)
        return (loss * seen).sum(), correct.sum(), int(seen.sum())

    def end_round(self, plan: RoundPlan) -> None:
        if plan.weights.sum() <= 0:
            return  # nobody held data: the global model stays
        w = torch.as_tensor(plan.weights, dtype=self.stacked.params.dtype, device=self.stacked.params.device)
        self.global_state = self.stacked.average(w)
        self.stacked.load_into(self.model, self.global_state)

    def tensors(self, mid_round: bool) -> dict[str, torch.Tensor]:
        out = {f"global/{k}": v for k, v in self.global_state.items()}
        if mid_round:
            out |= _stacked_tensors(self.stacked, self.opt)
        return out

    def load_tensors(self, tensors: dict[str, torch.Tensor], mid_round: bool) -> None:
        self.global_state = {k: tensors[f"global/{k}"] for k in FLAT_KEYS}
        self.stacked.load_into(self.model, self.global_state)
        if mid_round:
            _load_stacked(self.stacked, self.opt, tensors)


class SplitFedV2:
    """sflv2: stacked client parts, one server part updated client after client."""

    def __init__(self, setup, num_rows: int, batches: Batches, cuts: np.ndarray):
        cfg = setup.config
        self.model, self.batches, self.cfg = make_norms_maskable(setup.model), batches, cfg
        self.cuts = np.asarray(cuts)  # (K,) each client's cut
        self.stacked = StackedCopies(self.model, num_rows, num_blocks=int(self.cuts.max()))
        self.opt = _optimizer(
            cfg.training.optimizer, tuple(self.stacked.params.shape), cfg, self.stacked.params.device
        )
        self.server_opt = _torch_optimizer(self.model, cfg)
        self.groups: list[tuple[int, int, int]] = []

    def begin_round(self, plan: RoundPlan) -> None:
        self.stacked.load_single(self.stacked.flatten_module(self.model))
        self.opt.reset()
        row_cuts = self.cuts[plan.clients]
        bounds = np.flatnonzero(np.r_[True, row_cuts[1:] != row_cuts[:-1], True])
        self.groups = [(int(a), int(b), int(row_cuts[a])) for a, b in zip(bounds[:-1], bounds[1:])]

    def step(self, plan: RoundPlan, index: torch.Tensor, j: int, lr: float, global_step: int):
        for group in self.server_opt.param_groups:
            group["lr"] = lr
        self.stacked.zero_grad()
        smashed, labels, where = [], [], {}
        for g, (start, end, cut) in enumerate(self.groups):
            active = _active_prefix(plan.count[j, start:end])
            rows = index[j, start : start + active]
            x, y = self.batches.gather(rows, global_step)
            out = (
                self.stacked.forward(x, _mask(rows), rows=slice(start, start + active), end=cut)
                if active
                else None
            )
            smashed.append(out)
            labels.append(y)
            where.update({start + i: (g, i) for i in range(active)})
        grads = [torch.zeros_like(s) if s is not None else None for s in smashed]
        loss_sum = torch.zeros((), device=index.device)
        correct = torch.zeros((), device=index.device)
        seen = 0
        for row in plan.order:  # the server serves one client at a time, by definition of sflv2
            if int(row) not in where:
                continue
            g, i = where[int(row)]
            n = int(plan.count[j, row])
            at_server = smashed[g][i, :n].detach().requires_grad_(True)
            logits = self.model.forward_range(at_server, self.groups[g][2], self.model.num_blocks)
            y = labels[g][i, :n]
            loss = F.cross_entropy(logits, y)
            self.server_opt.zero_grad(set_to_none=True)
            loss.backward()
            self.server_opt.step()
            grads[g][i, :n] = at_server.grad
            loss_sum += loss.detach() * n
            correct += (logits.argmax(1) == y).sum()
            seen += n
        for out, grad in zip(smashed, grads):
            if out is not None:
                out.backward(grad)
        on = torch.as_tensor(plan.count[j] > 0, device=self.stacked.params.device)
        self.opt.step(self.stacked.params, self.stacked.grads, lr, on)
        return loss_sum, correct, seen

    @torch.no_grad()
    def end_round(self, plan: RoundPlan) -> None:
        if plan.weights.sum() <= 0:
            return
        device = self.stacked.params.device
        w = torch.as_tensor(plan.weights, dtype=self.stacked.params.dtype, device=device)
        row_cuts = torch.as_tensor(self.cuts[plan.clients], device=device)
        server = self.stacked.flatten_module(self.model)
        merged = {k: v.clone() for k, v in server.items()}
        for key, slots, copies in (
            ("params", self.stacked.param_slots, self.stacked.params),
            ("float_buffers", self.stacked.float_slots, self.stacked.float_buffers),
        ):
            for block in range(self.stacked.num_blocks):  # a loop over blocks, not clients
                cols = [s for s in slots if s.block == block]
                if not cols:
                    continue
                lo, hi = cols[0].offset, cols[-1].offset + cols[-1].numel
                own = w * (row_cuts > block)  # clients that trained their own copy of this block
                merged[key][lo:hi] = own @ copies[:, lo:hi] + (w.sum() - own.sum()) * server[key][lo:hi]
        merged["count_buffers"] = torch.maximum(
            self.stacked.count_buffers.max(dim=0).values, server["count_buffers"]
        )
        self.stacked.load_into(self.model, merged)

    def tensors(self, mid_round: bool) -> dict[str, torch.Tensor]:
        out = {f"model/{k}": v for k, v in self.model.state_dict().items()}
        out |= _optimizer_tensors(self.server_opt, "server_opt")
        if mid_round:
            out |= _stacked_tensors(self.stacked, self.opt)
        return out

    def load_tensors(self, tensors: dict[str, torch.Tensor], mid_round: bool) -> None:
        self.model.load_state_dict(
            {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
        )
        _load_optimizer(self.server_opt, tensors, "server_opt")
        if mid_round:
            _load_stacked(self.stacked, self.opt, tensors)


class SequentialSL:
    """sl: one model; clients one after the other, each through its own cut."""

    def __init__(self, setup, batches: Batches, cuts: np.ndarray):
        self.model, self.batches = make_norms_maskable(setup.model), batches
        self.cuts = np.asarray(cuts)
        self.opt = _torch_optimizer(self.model, setup.config)
        self.block_params = [list(b.parameters()) for b in self.model.blocks]

    def begin_round(self, plan: RoundPlan) -> None:
        pass

    def step(self, plan: RoundPlan, index: torch.Tensor, row: int, j: int, lr: float, global_step: int):
        cut = int(self.cuts[plan.clients[row]])
        if j == 0:  # a new client takes over the client part: its optimiser state starts fresh
            for block in self.block_params[:cut]:
                for p in block:
                    self.opt.state.pop(p, None)
        for group in self.opt.param_groups:
            group["lr"] = lr
        n = int(plan.count[j, row])
        x, y = self.batches.gather(index[j, row, :n], global_step)
        self.opt.zero_grad(set_to_none=True)
        smashed = self.model.forward_range(x, 0, cut)
        at_server = smashed.detach().requires_grad_(True)
        logits = self.model.forward_range(at_server, cut, self.model.num_blocks)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        smashed.backward(at_server.grad)
        self.opt.step()
        return loss.detach() * n, (logits.argmax(1) == y).sum(), n

    def end_round(self, plan: RoundPlan) -> None:
        pass

    def tensors(self, mid_round: bool) -> dict[str, torch.Tensor]:
        return {f"model/{k}": v for k, v in self.model.state_dict().items()} | _optimizer_tensors(
            self.opt, "opt"
        )

    def load_tensors(self, tensors: dict[str, torch.Tensor], mid_round: bool) -> None:
        self.model.load_state_dict(
            {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
        )
        _load_optimizer(self.opt, tensors, "opt")


# ---------------------------------------------------------------------- optimisers and their state
def _torch_optimizer(model, cfg) -> torch.optim.Optimizer:
    from psl_core.engine.training import make_optimizer

    return make_optimizer(model, cfg)


def _stacked_tensors(stacked: StackedCopies, opt: StackedOptimizer) -> dict[str, torch.Tensor]:
    out = {f"stacked/{k}": getattr(stacked, k) for k in FLAT_KEYS}
    return out | {f"stacked_opt/{k}": v for k, v in opt.state.items()}


def _load_stacked(stacked: StackedCopies, opt: StackedOptimizer, tensors: dict[str, torch.Tensor]) -> None:
    for k in FLAT_KEYS:
        getattr(stacked, k).copy_(tensors[f"stacked/{k}"])
    for k, v in opt.state.items():
        v.copy_(tensors[f"stacked_opt/{k}"])


def _optimizer_tensors(opt: torch.optim.Optimizer, prefix: str) -> dict[str, torch.Tensor]:
    """A torch optimiser's per-parameter state as plain tensors (``prefix/<param>/<key>``)."""
    out: dict[str, torch.Tensor] = {}
    for pid, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            if value is not None:  # SGD without momentum keeps momentum_buffer=None
                out[f"{prefix}/{pid}/{key}"] = torch.as_tensor(value)
    return out


def _load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], prefix: str) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "/"):
            _, pid, key = name.split("/")
            state.setdefault(int(pid), {})[key] = value
    saved = opt.state_dict()
    saved["state"] = state
    opt.load_state_dict(saved)
