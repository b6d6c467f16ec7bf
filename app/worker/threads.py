"""CPU threads per worker slot: each slot of ``psl worker --concurrency N`` gets its share of the cores.

Without a budget every worker process lets torch use every core: two slots on two cores ran a
12-run sweep 5.6× slower than one process (each OpenMP thread spin-waits for partners that the
other process has descheduled). A slot gets ``cores // slots`` threads unless told otherwise
(``--threads-per-slot`` or ``PSL_THREADS_PER_SLOT``); the budget goes to torch in the slot's
process and to the OpenMP/MKL/OpenBLAS variables its own children inherit. A single slot keeps
torch's default (all cores, or ``OMP_NUM_THREADS`` where the user set it) unless told otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it, else the CPU count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def threads_per_slot(slots: int, requested: int | None = None, cores: int | None = None) -> int | None:
    """``requested`` if given; else an equal share of the cores (at least one thread) when several
    slots share them; None for a single slot (torch's own default, which honours OMP_NUM_THREADS)."""
    if slots < 1:
        raise ValueError(f"a worker needs at least one slot, got {slots}")
    if requested is not None:
        if requested < 1:
            raise ValueError(f"threads per slot must be at least 1, got {requested}")
        return requested
    if slots == 1:
        return None
    return max(1, (cores or available_cores()) // slots)


def thread_env(threads: int) -> dict[str, str]:
    """The environment variables that cap the threads of native libraries in child processes."""
    return {name: str(threads) for name in THREAD_ENV_VARS}


@contextmanager
def thread_env_for_children(threads: int) -> Iterator[None]:
    """Cap the threads of the processes started inside the block (they inherit the environment when
    they start); this process's own environment is given back afterwards."""
    saved = {name: os.environ.get(name) for name in THREAD_ENV_VARS}
    os.environ.update(thread_env(threads))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def apply_thread_budget(threads: int) -> None:
    """Limit this process (torch) and the processes it starts (environment) to ``threads`` threads."""
    os.environ.update(thread_env(threads))
    import torch

    torch.set_num_threads(threads)


def torch_threads() -> int:
    """The intra-op threads torch uses in this process (what the worker logs at start)."""
    import torch

    return torch.get_num_threads()
