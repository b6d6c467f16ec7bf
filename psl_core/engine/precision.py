"""Numeric precision of training (``training.precision``) and ``torch.compile`` (``training.compile``).

- ``fp32``: plain float32, the reference.
- ``bf16``: forward passes under ``torch.autocast`` with bfloat16 (same exponent range as float32,
  so no loss scaling); weights, gradients and the optimiser stay float32.
- ``fp16``: autocast with float16 and a ``GradScaler``: the loss is scaled before backward so small
  gradients do not underflow, and steps whose gradients overflowed are skipped. The scaled gradient
  travels through the cut unchanged (the client part back-propagates the server's scaled gradient),
  and the scaler unscales every parameter's gradient before the optimiser step. On a GPU the
  optimiser runs fused, which lets the scaler skip a step without reading the overflow flag back
  to the host.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

PRECISIONS = ("fp32", "bf16", "fp16")
_AUTOCAST_DTYPE = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """Autocast context, backward and optimiser step for one precision on one device."""

    def __init__(self, mode: str, device: torch.device):
        if mode not in PRECISIONS:
            raise ValueError(f"unknown precision {mode!r}; choose one of {', '.join(PRECISIONS)}")
        self.mode, self.device = mode, device
        self.dtype = _AUTOCAST_DTYPE[mode]
        self.scaler = torch.amp.GradScaler(device.type) if mode == "fp16" else None

    @property
    def fused_optimizer(self) -> bool:
        """Whether the optimiser should run fused (fp16 on a GPU: the scaler then never syncs)."""
        return self.scaler is not None and self.device.type == "cuda"

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict | None:
        return self.scaler.state_dict() if self.scaler is not None else None

    def load_state_dict(self, state: dict | None) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)


def compile_blocks(model: torch.nn.Module, backend: str | Callable = "inductor") -> None:
    """``torch.compile`` the forward of every block in place (parameter names and checkpoints stay
    the same). Blocks are compiled one by one because the step runs them in ranges split at the cut.

    (``nn.Module.compile()`` is not used: in torch 2.13 the ``_call_impl`` frame it wraps is never
    captured — nothing gets compiled.)"""
    import torch._dynamo

    # Dynamo keeps its compiled variants per code object, and the blocks share theirs (nn.Sequential's
    # forward): each block needs a few (training and evaluation mode, batch shapes), so the default
    # limit of 8 would send later blocks back to eager mode.
    config = torch._dynamo.config
    config.recompile_limit = max(config.recompile_limit, 8 * len(model.blocks))
    for block in model.blocks:
        block.forward = torch.compile(block.forward, backend=backend)
