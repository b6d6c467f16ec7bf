"""Fixtures shared by the science tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def one_torch_thread():
    """Small tensors on a busy machine: one intra-op thread avoids threads spinning on each other
    (a 4× saving in CPU time measured on a loaded 2-core box), and results do not change with it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
