"""What the fork server of a local pool imports once for all its slots (app/worker/executors.py).

torch, the engine and the store (app.worker.loop), and torch._dynamo, which torch.optim imports when
the first optimiser is built (~1 CPU-s). The server never computes, starts no thread and opens no
database connection; the slots forked from it leave with ``os._exit`` (no interpreter shutdown), but
the server itself ends with one: freezing the heap at exit skips the collector's final walk over
every object torch created (~1 CPU-s, as the ``psl`` command does in app.cli).
"""

from __future__ import annotations

import atexit
import gc

import torch._dynamo  # noqa: F401

import app.worker.loop  # noqa: F401

atexit.register(gc.freeze)
