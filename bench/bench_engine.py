"""Engine speed: plain centralised PyTorch vs the PSL engine vs a per-client reference loop.

    python bench/bench_engine.py [--block 5 --repeats 5] [--clients 16,128,1024]

ResNet-20 on 3×32×32 random data, global batch B = 128, cut after the first residual block.
(a) centralised: the usual loop on the same model and the same global batches;
(b) the PSL engine (psl_core.engine.PSLTrainer), UGS schedule, K clients;
(c) the way existing PSL simulators do it: one client-model copy and optimiser per client, a
    forward per client, gradients summed and copied to every copy.
The three are timed side by side in one process (alternating blocks); peak memory (RSS) is taken in a
fresh process per cell. Targets:
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


def engine_stepper(k: int, steps: int):
    """One engine step per call: exactly PSLTrainer.run's loop body, on the engine's own epoch plan."""
    from psl_core.engine import PSLTrainer, build_experiment

    cfg = make_config(k, steps)
    setup = build_experiment(cfg, dataset=make_dataset(B * steps))
    trainer = PSLTrainer(setup)
    plan = trainer.planner.plan(0)
    off, idx = plan.batches.step_offsets, torch.as_tensor(plan.batches.sample_index)

    def step(t):
        t %= plan.num_steps
        rows = idx[off[t] : off[t + 1]]
        x, y = trainer.x_train[rows], trainer.y_train[rows]
        trainer.optimizer.zero_grad(set_to_none=True)
        loss, _ = trainer._forward_backward(x, y)
        trainer.optimizer.step()
        float(loss)

    return step


def centralised_stepper(k: int, steps: int):
    """The usual PyTorch loop on the same model and global batch size (K does not matter)."""
    from psl_core.models import build_model

    torch.manual_seed(0)
    data = make_dataset(B * steps)
    model = build_model("resnet20", input_shape=SHAPE, num_classes=10, cut=CUT, server_norm="group")
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    perm = torch.randperm(len(data.y_train))

    def step(t):
        t %= steps
        rows = perm[t * B : (t + 1) * B]
        x, y = data.x_train[rows], data.y_train[rows]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        float(loss)

    return step


def per_client_stepper(k: int, steps: int):
    """How existing PSL simulators do it: a client-model copy and optimiser per client."""
    from psl_core.models import build_model
    from psl_core.sampling import ClientSampler, ugs_counts

    torch.manual_seed(0)
    n = B * steps
    data = make_dataset(n)
    model = build_model("resnet20", input_shape=SHAPE, num_classes=10, cut=CUT, server_norm="group")
    client_template = torch.nn.Sequential(*model.blocks[:CUT])
    server = torch.nn.Sequential(*model.blocks[CUT:])
    clients = [copy.deepcopy(client_template) for _ in range(k)]
    client_opts = [torch.optim.SGD(c.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4) for c in clients]
    server_opt = torch.optim.SGD(server.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    owners = np.arange(n) % k
    sampler = ClientSampler([np.flatnonzero(owners == c) for c in range(k)])
    counts = ugs_counts(np.bincount(owners, minlength=k), B, np.random.default_rng(0))
    batches = sampler.epoch(counts, np.random.default_rng(0))
    off = batches.step_offsets
    names = [name for name, _ in client_template.named_parameters()]

    def step(t):
        t %= counts.num_steps
        rows = batches.sample_index[off[t] : off[t + 1]]
        who = batches.client_id[off[t] : off[t + 1]]
        active = np.unique(who)
        smashed, at_server, labels = [], [], []
        for c in active:  # one forward per client
            part = torch.as_tensor(rows[who == c])
            h = clients[c](data.x_train[part])
            smashed.append(h)
            at_server.append(h.detach().requires_grad_(True))
            labels.append(data.y_train[part])
        server_opt.zero_grad(set_to_none=True)
        for c in active:
            client_opts[c].zero_grad(set_to_none=True)
        loss = F.cross_entropy(server(torch.cat(at_server)), torch.cat(labels))
        loss.backward()
        server_opt.step()
        for h, s in zip(smashed, at_server):
            h.backward(s.grad)
        # Sum client gradients over active clients and give every copy the same update.
        summed = [torch.stack([clients[c].get_parameter(n).grad for c in active]).sum(0) for n in names]
        for c in range(k):
            for p, g in zip(clients[c].parameters(), summed):
                p.grad = g
            client_opts[c].step()
        float(loss)

    return step


STEPPERS = {"centralised": centralised_stepper, "engine": engine_stepper, "per_client": per_client_stepper}


def interleaved_rates(k: int, block: int, repeats: int) -> dict[str, float]:
    """Samples/s of each method, timed in alternating blocks in ONE process (median over repeats),
    so that machine load hits all methods alike."""
    steppers = {name: make(k, 4 * block) for name, make in STEPPERS.items()}
    for step in steppers.values():
        step(0)  # warm-up: first-call allocations
    times: dict[str, list[float]] = {name: [] for name in steppers}
    for r in range(repeats):
        for name, step in steppers.items():
            t0 = time.perf_counter()
            for t in range(block):
                step(1 + r * block + t)
            times[name].append(block * B / (time.perf_counter() - t0))
    return {name: float(np.median(v)) for name, v in times.items()}


def peak_memory(method: str, k: int, steps: int) -> float:
    step = STEPPERS[method](k, steps)
    for t in range(steps):
        step(t)
    return peak_rss_mb()


def in_subprocess(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--block", type=int, default=5, help="steps per timed block")
    ap.add_argument("--repeats", type=int, default=5, help="alternating blocks per method")
    ap.add_argument("--clients", default="16,128,1024")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rates", help=argparse.SUPPRESS)
    ap.add_argument("--memory", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.rates:
        print(json.dumps(interleaved_rates(int(args.rates), args.block, args.repeats)))
        return
    if args.memory:
        # Same data size as the timed cells (4 blocks), so that memory compares like with like.
        print(json.dumps({"peak_mb": peak_memory(args.memory[0], int(args.memory[1]), 4 * args.block)}))
        return
    ks = [int(k) for k in args.clients.split(",")]
    common = ["--block", str(args.block), "--repeats", str(args.repeats), "--threads", str(args.threads)]
    print(
        f"ResNet-20, 3x32x32, B={B}, cut={CUT}; samples/s = median of {args.repeats} interleaved blocks of "
        f"{args.block} steps; torch threads={args.threads}; peak RSS of a fresh process per cell"
    )
    header = (
        f"{'K':>6} | {'(a) central s/s':>15} | {'(b) engine s/s':>14} | {'(c) per-client s/s':>18} | "
        f"{'b/a':>5} | {'b/c':>6} | {'peak MB (b)':>11} | {'peak MB (c)':>11}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for k in ks:
        rates = in_subprocess("--rates", str(k), *common)
        mem_b = in_subprocess("--memory", "engine", str(k), *common)["peak_mb"]
        mem_c = in_subprocess("--memory", "per_client", str(k), *common)["peak_mb"]
        a, b, c = rates["centralised"], rates["engine"], rates["per_client"]
        rows.append((k, a, b, c, mem_b))
        print(
            f"{k:>6} | {a:>15.1f} | {b:>14.1f} | {c:>18.1f} | {b / a:>5.2f} | {b / c:>6.2f} | {mem_b:>11.0f} | "
            f"{mem_c:>11.0f}",
            flush=True,
        )
    ratios = [b / a for _, a, b, _, _ in rows]
    mem = rows[-1][4] / rows[0][4]
    print(
        f"\ntarget (b)/(a) >= 0.9 at every K: {'PASS' if min(ratios) >= 0.9 else 'FAIL'} (min {min(ratios):.2f})"
    )
    print(
        f"target peak memory (b) K={ks[-1]} <= 1.2 x K={ks[0]}: {'PASS' if mem <= 1.2 else 'FAIL'} ({mem:.2f}x)"
    )


if __name__ == "__main__":
    main()
