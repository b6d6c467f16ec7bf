"""Engine speed: plain centralised PyTorch vs the PSL engine vs a per-client reference loop.

    python bench/bench_engine.py [--steps 30] [--clients 16,128,1024]

ResNet-20 on 3×32×32 random data, global batch B = 128, cut after the first residual block.
(a) centralised: the usual loop on the same model and the same global batches;
(b) the PSL engine (psl_core.engine.PSLTrainer), UGS schedule, K clients;
(c) the way existing PSL simulators do it: one client-model copy and optimiser per client, a
    forward per client, gradients summed and copied to every copy.
Every cell runs in its own subprocess so that its peak RSS (memory) is its own. Targets:
(b)/(a) ≥ 0.9 at every K; peak memory of (b) at K = 1024 ≤ 1.2 × at K = 16.
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

B, SHAPE, CUT = 128, (3, 32, 32), 2


def make_dataset(num_samples: int):
    from psl_core.data import Dataset

    g = torch.Generator().manual_seed(0)
    x = torch.randn(num_samples, *SHAPE, generator=g)
    y = torch.randint(0, 10, (num_samples,), generator=g)
    names = [str(i) for i in range(10)]
    return Dataset("bench", x, y, x[:256], y[:256], names, SHAPE)


def make_config(k: int, steps: int):
    from psl_core.config import ExperimentConfig, apply_overrides

    return apply_overrides(
        ExperimentConfig(),
        {
            "partition.num_clients": k,
            "model.arch": "resnet20",
            "model.cut": CUT,
            "model.server_norm": "group",
            "sampling.method": "ugs",
            "sampling.batch_size": B,
            "training.epochs": 1,
            "training.max_steps_per_epoch": steps,
            "training.device": "cpu",
        },
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_engine(k: int, steps: int) -> float:
    from psl_core.engine import PSLTrainer, build_experiment

    cfg = make_config(k, steps + 1)
    setup = build_experiment(cfg, dataset=make_dataset(B * (steps + 1)))
    trainer = PSLTrainer(setup, flush_every=steps + 1)
    trainer.cfg = cfg
    plan = trainer.planner.plan(0)  # warm-up step outside the timing: first-call allocations
    _one_engine_step(trainer, plan, 0)
    t0 = time.perf_counter()
    for t in range(1, steps + 1):
        _one_engine_step(trainer, plan, t)
    return steps * B / (time.perf_counter() - t0)


def _one_engine_step(trainer, plan, t):
    # Exactly the engine's per-step work (PSLTrainer.run's loop body), on the engine's own plan.
    off = plan.batches.step_offsets
    rows = torch.as_tensor(plan.batches.sample_index[off[t] : off[t + 1]])
    x, y = trainer.x_train[rows], trainer.y_train[rows]
    trainer.optimizer.zero_grad(set_to_none=True)
    loss, _ = trainer._forward_backward(x, y)
    trainer.optimizer.step()
    float(loss)


def run_engine_full(k: int, steps: int) -> float:
    """The whole engine run (planning, metrics, evaluation excluded) — the honest end-to-end number."""
    from psl_core.engine import MemorySink, PSLTrainer, build_experiment

    cfg = make_config(k, steps)
    setup = build_experiment(cfg, dataset=make_dataset(B * steps))
    trainer = PSLTrainer(setup, flush_every=25)
    trainer.evaluate = lambda: {"test_loss": 0.0, "test_acc": 0.0, "per_class_acc": []}
    t0 = time.perf_counter()
    trainer.run(MemorySink())
    return steps * B / (time.perf_counter() - t0)


def run_centralised(k: int, steps: int) -> float:
    from psl_core.models import build_model

    torch.manual_seed(0)
    data = make_dataset(B * (steps + 1))
    model = build_model("resnet20", input_shape=SHAPE, num_classes=10, cut=CUT, server_norm="group")
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    perm = torch.randperm(len(data.y_train))

    def step(t):
        rows = perm[t * B : (t + 1) * B]
        x, y = data.x_train[rows], data.y_train[rows]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        float(loss)

    step(0)
    t0 = time.perf_counter()
    for t in range(1, steps + 1):
        step(t)
    return steps * B / (time.perf_counter() - t0)


def run_per_client_loop(k: int, steps: int) -> float:
    from psl_core.models import build_model
    from psl_core.sampling import ClientSampler, ugs_counts

    torch.manual_seed(0)
    n = B * (steps + 1)
    data = make_dataset(n)
    model = build_model("resnet20", input_shape=SHAPE, num_classes=10, cut=CUT, server_norm="group")
    client_template = torch.nn.Sequential(*model.blocks[:CUT])
    server = torch.nn.Sequential(*model.blocks[CUT:])
    clients = [copy.deepcopy(client_template) for _ in range(k)]
    client_opts = [torch.optim.SGD(c.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4) for c in clients]
    server_opt = torch.optim.SGD(server.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    owners = np.arange(n) % k
    sampler = ClientSampler([np.flatnonzero(owners == c) for c in range(k)])
    sizes = np.bincount(owners, minlength=k)
    counts = ugs_counts(sizes, B, np.random.default_rng(0))
    batches = sampler.epoch(counts, np.random.default_rng(0))
    off = batches.step_offsets

    def step(t):
        rows = batches.sample_index[off[t] : off[t + 1]]
        who = batches.client_id[off[t] : off[t + 1]]
        active = np.unique(who)
        smashed, at_server = [], []
        for c in active:  # one forward per client, as per-client simulators do
            part = torch.as_tensor(rows[who == c])
            h = clients[c](data.x_train[part])
            smashed.append(h)
            at_server.append(h.detach().requires_grad_(True))
        y = torch.cat([data.y_train[torch.as_tensor(rows[who == c])] for c in active])
        server_opt.zero_grad(set_to_none=True)
        for c in active:
            client_opts[c].zero_grad(set_to_none=True)
        loss = F.cross_entropy(server(torch.cat(at_server)), y)
        loss.backward()
        server_opt.step()
        for h, s in zip(smashed, at_server):
            h.backward(s.grad)
        # Sum client gradients over active clients and give every copy the same update.
        summed = [
            torch.stack([clients[c].get_parameter(name).grad for c in active]).sum(0)
            for name, _ in client_template.named_parameters()
        ]
        for c in range(k):
            for p, g in zip(clients[c].parameters(), summed):
                p.grad = g
            client_opts[c].step()
        float(loss)

    step(0)
    t0 = time.perf_counter()
    for t in range(1, steps + 1):
        step(t)
    return steps * B / (time.perf_counter() - t0)


RUNNERS = {
    "centralised": run_centralised,
    "engine": run_engine,
    "engine_full": run_engine_full,
    "per_client": run_per_client_loop,
}


def cell(method: str, k: int, steps: int) -> dict:
    """Run one cell in a fresh interpreter; returns samples/s and peak RSS."""
    out = subprocess.run(
        [sys.executable, __file__, "--cell", method, str(k), str(steps)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--clients", default="16,128,1024")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cell", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.cell:
        torch.set_num_threads(args.threads)
        method, k, steps = args.cell[0], int(args.cell[1]), int(args.cell[2])
        before = peak_rss_mb()
        rate = RUNNERS[method](k, steps)
        print(json.dumps({"rate": rate, "peak_mb": peak_rss_mb(), "base_mb": before}))
        return
    ks = [int(k) for k in args.clients.split(",")]
    print(
        f"ResNet-20, 3x32x32, B={B}, cut={CUT}, {args.steps} timed steps per cell, torch threads={args.threads}"
    )
    header = (
        f"{'K':>6} | {'(a) central s/s':>15} | {'(b) engine s/s':>14} | {'(b) full run':>12} | "
        f"{'(c) per-client':>14} | {'b/a':>5} | {'b/c':>6} | {'peak MB (b)':>11} | {'peak MB (c)':>11}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for k in ks:
        a, b, full, c = (
            cell(m, k, args.steps) for m in ("centralised", "engine", "engine_full", "per_client")
        )
        rows.append((k, a, b, full, c))
        print(
            f"{k:>6} | {a['rate']:>15.1f} | {b['rate']:>14.1f} | {full['rate']:>12.1f} | {c['rate']:>14.1f} | "
            f"{b['rate'] / a['rate']:>5.2f} | {b['rate'] / c['rate']:>6.2f} | {b['peak_mb']:>11.0f} | "
            f"{c['peak_mb']:>11.0f}"
        )
    ratios = [b["rate"] / a["rate"] for _, a, b, _, _ in rows]
    mem = rows[-1][2]["peak_mb"] / rows[0][2]["peak_mb"]
    print(
        f"\ntarget (b)/(a) >= 0.9 at every K: {'PASS' if min(ratios) >= 0.9 else 'FAIL'} (min {min(ratios):.2f})"
    )
    print(
        f"target peak memory (b) K={ks[-1]} <= 1.2 x K={ks[0]}: {'PASS' if mem <= 1.2 else 'FAIL'} ({mem:.2f}x)"
    )


if __name__ == "__main__":
    main()
