"""Client copies trained together (stacked, vmap) vs a per-client deepcopy loop, one round at a time.

    python bench/bench_paradigm_copies.py [--clients 16,128,1024] [--batch 4] [--steps 2] [--repeats 2]

ResNet-20 on 3×32×32 random data; every client takes ``--steps`` local SGD steps (momentum, weight
decay) on its own batches of ``--batch`` samples, then the copies are averaged with weights N_k / N.
* sflv1 loop — the SplitFed reference code's way: per client a deep copy of the client part
  (blocks before the cut) and of the server part, the smashed data detached and its gradient handed
  back, one optimiser per copy; FedAvg over state dicts with a Python loop.
* fedavg loop — per client a deep copy of the full model and its optimiser; same FedAvg.
* stacked — this project's engine (psl_core.paradigms.stacked): all copies as one (K, P) tensor,
  one vmapped forward/backward per step, one optimiser update, one weighted reduction. For sflv1 it
  trains the full model per client (client and server copy together; the cut changes no arithmetic).
Each cell runs in a fresh process (peak RSS = that process's ru_maxrss), cells alternate between the
two methods, and the second round is timed (the first allocates). Memory model of the stacked
engine: K × (params + grads + optimiser state) + the activations of one pass; a pass holds as many
copies' batches as fit the engine's activation budget (2 GiB), so large K runs in several passes.
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

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SHAPE, CUT, LR = (3, 32, 32), 4, 0.05  # cut after layer1.2: stem + three residual blocks on the client


def build():
    from psl_core.models import build_model

    torch.manual_seed(0)
    return build_model(
        "resnet20", input_shape=SHAPE, num_classes=10, cut=CUT, client_norm="group", server_norm="batch"
    )


def data(k: int, b: int, steps: int):
    g = torch.Generator().manual_seed(1)
    return torch.randn(steps, k, b, *SHAPE, generator=g), torch.randint(0, 10, (steps, k, b), generator=g)


def sgd(params):
    return torch.optim.SGD(params, lr=LR, momentum=0.9, weight_decay=5e-4)


def fedavg_state_dicts(states, weights):
    """The reference code's FedAvg: a Python loop over keys and clients."""
    avg = copy.deepcopy(states[0])
    for key in avg:
        if avg[key].is_floating_point():
            avg[key] = sum(w * s[key] for w, s in zip(weights, states))
    return avg


def loop_round(model, paradigm, x, y, clients):
    weights = [1.0 / clients] * clients
    states = []
    for k in range(clients):
        if paradigm == "fedavg":
            net = copy.deepcopy(model)
            opt = sgd(net.parameters())
            for j in range(x.shape[0]):
                opt.zero_grad()
                F.cross_entropy(net(x[j, k]), y[j, k]).backward()
                opt.step()
            states.append(net.state_dict())
        else:
            client, server = copy.deepcopy(model), copy.deepcopy(model)
            c_opt = sgd([p for b in client.blocks[:CUT] for p in b.parameters()])
            s_opt = sgd([p for b in server.blocks[CUT:] for p in b.parameters()])
            for j in range(x.shape[0]):
                fx = client.forward_range(x[j, k], 0, CUT)
                sent = fx.detach().requires_grad_(True)
                s_opt.zero_grad()
                F.cross_entropy(server.forward_range(sent, CUT, client.num_blocks), y[j, k]).backward()
                s_opt.step()
                c_opt.zero_grad()
                fx.backward(sent.grad)
                c_opt.step()
            for b in range(CUT, client.num_blocks):  # the server copy's part joins the client part
                client.blocks[b].load_state_dict(server.blocks[b].state_dict())
            states.append(client.state_dict())
    model.load_state_dict(fedavg_state_dicts(states, weights))


def stacked_round(model, stacked, opt, x, y, passes_of: int):
    k = stacked.num_copies
    stacked.load_single(stacked.flatten_module(model))
    opt.reset()
    on = torch.ones(k, dtype=torch.bool)
    for j in range(x.shape[0]):
        stacked.zero_grad()
        stacked.loss_backward(x[j], y[j], None, passes_of)
        opt.step(stacked.params, stacked.grads, LR, on)
    stacked.load_into(model, stacked.average(torch.full((k,), 1.0 / k)))


def one_cell(method: str, paradigm: str, k: int, b: int, steps: int) -> dict:
    torch.set_num_threads(1)
    model = build()
    x, y = data(k, b, steps)
    if method == "loop":
        loop_round(model, paradigm, x[:, :2], y[:, :2], 2)  # warm-up on two clients
        start = time.perf_counter()
        loop_round(model, paradigm, x, y, k)
    else:
        from psl_core.models import profile_model
        from psl_core.paradigms.algorithms import rows_per_pass
        from psl_core.paradigms.stacked import StackedCopies, StackedOptimizer

        stacked = StackedCopies(model, k)
        opt = StackedOptimizer(
            "sgd", tuple(stacked.params.shape), momentum=0.9, weight_decay=5e-4, device="cpu"
        )
        passes_of = rows_per_pass(profile_model(model), b)  # the engine's activation budget
        stacked_round(model, stacked, opt, x, y, passes_of)  # warm-up round: allocation
        start = time.perf_counter()
        stacked_round(model, stacked, opt, x, y, passes_of)
    seconds = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters())
    return {
        "seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "state_mb": 3 * k * params * 4 / 2**20,  # params + grads + momentum of K copies, float32
    }


def run_cell(method, paradigm, k, b, steps) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--cell",
            method,
            paradigm,
            str(k),
            "--batch",
            str(b),
            "--steps",
            str(steps),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", default="16,128,1024")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cell", nargs=3, metavar=("METHOD", "PARADIGM", "K"))
    args = parser.parse_args()
    if args.cell:
        method, paradigm, k = args.cell
        print(json.dumps(one_cell(method, paradigm, int(k), args.batch, args.steps)))
        return
    print(f"ResNet-20, {SHAPE}, b = {args.batch}, {args.steps} local steps per client per round, 1 thread")
    print("  (min over repeats; cells of one row run alternately in fresh processes)")
    header = "paradigm  K     loop s/round  stacked s/round  speed-up  loop RSS MB  stacked RSS MB  K·3·P MB"
    print(header)
    for k in [int(v) for v in args.clients.split(",")]:
        for paradigm in ("sflv1", "fedavg"):
            cells = {"loop": [], "stacked": []}
            for _ in range(args.repeats):
                for method in ("loop", "stacked"):  # alternate, so load changes hit both
                    cells[method].append(run_cell(method, paradigm, k, args.batch, args.steps))
            loop = min(c["seconds"] for c in cells["loop"])
            stacked = min(c["seconds"] for c in cells["stacked"])
            print(
                f"{paradigm:<9} {k:<5} {loop:>12.2f}  {stacked:>15.2f}  {loop / stacked:>7.2f}x"
                f"  {max(c['peak_rss_mb'] for c in cells['loop']):>11.0f}"
                f"  {max(c['peak_rss_mb'] for c in cells['stacked']):>14.0f}  {cells['stacked'][0]['state_mb']:>8.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
