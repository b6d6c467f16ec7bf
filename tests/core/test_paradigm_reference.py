"""The stacked (vectorised) paradigms against independent per-client reference loops.

The references train one deep copy per client with its own ``torch.optim.SGD``, the way the SplitFed
reference code does (client net and server net exchanging smashed data and its gradient), and
average state dicts with a Python loop. They read only the round plans (batches, order, weights) and
hsfl's mode rule from the engine: the arithmetic is theirs. The engine trains sflv1, fedavg and hsfl
with one code path (full-model copies); the reference trains split pairs as split pairs, so it checks
that this shortcut is exact, and the averaging weights, per-client cuts and mixed modes with it.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from psl_core.config import ExperimentConfig, apply_overrides
from psl_core.engine import MemorySink, build_experiment
from psl_core.paradigms.engine import ParadigmTrainer
from psl_core.paradigms.modes import fl_client_mask

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOL = 1e-5  # float32, step for step
EXACT = 1e-9  # float64: the same arithmetic up to rounding


@pytest.fixture
def float64(monkeypatch):
    """Models and data in float64, so that a difference in the arithmetic cannot hide in rounding."""
    import psl_core.engine.setup as setup_module

    load = setup_module.load_dataset

    def load_double(*args, **kwargs):
        ds = load(*args, **kwargs)
        ds.x_train, ds.x_test = ds.x_train.double(), ds.x_test.double()
        return ds

    monkeypatch.setattr(setup_module, "load_dataset", load_double)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def config(**overrides) -> ExperimentConfig:
    base = {
        "data.dataset": "digits",
        "data.train_limit": 120,
        "data.test_limit": 30,
        "partition.num_clients": 4,
        "partition.scheme": "dirichlet",
        "partition.alpha": 0.5,
        "partition.min_partition_size": 5,
        "model.arch": "cnn",
        "model.cut": 1,
        "model.client_norm": "batch",
        "model.server_norm": "batch",
        "paradigm.local_batch": 8,
        "paradigm.local_epochs": 2,
        "training.epochs": 2,
        "training.lr": 0.05,
        "training.momentum": 0.9,
        "training.weight_decay": 5e-4,
    }
    base.update(overrides)
    return apply_overrides(ExperimentConfig(), base)


def sgd(params, cfg):
    t = cfg.training
    return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)


def block_params(model, lo, hi):
    return [p for block in model.blocks[lo:hi] for p in block.parameters()]


def average_blocks(targets, sources_per_block, weights):
    """targets[block] := Σ_k w_k · sources_per_block[block][k] (float entries; counters: max)."""
    for block, sources in sources_per_block.items():
        states = [s.blocks[block].state_dict() for s in sources]
        merged = {}
        for key, value in states[0].items():
            if value.is_floating_point():
                merged[key] = sum(w * st[key] for w, st in zip(weights, states))
            else:
                merged[key] = torch.stack([st[key] for st in states]).max(dim=0).values
        targets.blocks[block].load_state_dict(merged)


def batch(setup, plan, j, row):
    idx = plan.index[j, row]
    idx = torch.as_tensor(idx[idx >= 0])
    return setup.dataset.x_train[idx], setup.dataset.y_train[idx]


def reference_run(cfg, paradigm: str, planner) -> tuple[torch.nn.Module, list[float]]:
    """Per-client deep copies; returns the final global model and the loss of every stacked step."""
    setup = build_experiment(cfg)
    glob = setup.model
    cuts = np.array([c.cut for c in setup.client_cut_summaries])
    num_blocks = glob.num_blocks
    # which clients train the full model: every one for fedavg, the rule's choice for hsfl
    full_model = np.full(len(cuts), paradigm == "fedavg")
    if paradigm == "hsfl":
        full_model = fl_client_mask(cfg.paradigm.fl_clients, setup)
    server = glob
    server_opt = sgd(server.parameters(), cfg) if paradigm == "sflv2" else None
    step_losses = []
    for r in range(cfg.training.epochs):
        plan = planner.plan(r)
        rows = range(len(plan.clients))
        nets = [copy.deepcopy(glob) for _ in rows]
        server_nets = [copy.deepcopy(glob) for _ in rows] if paradigm in ("sflv1", "hsfl") else None
        opts = [sgd(n.parameters(), cfg) for n in nets]
        server_opts = [sgd(n.parameters(), cfg) for n in server_nets] if server_nets else None
        per_step = np.zeros((plan.num_steps, len(plan.clients)))
        order = plan.order if paradigm == "sflv2" else rows
        for j in range(plan.num_steps):
            for row in order:
                if plan.count[j, row] == 0:
                    continue
                x, y = batch(setup, plan, j, row)
                c = int(cuts[plan.clients[row]])
                if full_model[plan.clients[row]]:
                    opts[row].zero_grad()
                    loss = F.cross_entropy(nets[row](x), y)
                    loss.backward()
                    opts[row].step()
                else:
                    srv, s_opt = (
                        (server, server_opt) if paradigm == "sflv2" else (server_nets[row], server_opts[row])
                    )
                    fx = nets[row].forward_range(x, 0, c)
                    client_fx = fx.clone().detach().requires_grad_(True)
                    s_opt.zero_grad()
                    loss = F.cross_entropy(srv.forward_range(client_fx, c, num_blocks), y)
                    loss.backward()
                    s_opt.step()
                    opts[row].zero_grad()
                    fx.backward(client_fx.grad.clone())
                    opts[row].step()
                per_step[j, row] = float(loss.detach()) * len(y)
        counts = plan.count.sum(axis=1)
        step_losses += list(per_step.sum(axis=1) / counts)
        w = plan.weights.tolist()
        if paradigm == "fedavg":
            average_blocks(glob, {b: nets for b in range(num_blocks)}, w)
        elif paradigm in ("sflv1", "hsfl"):  # a split pair's model = its client part + its server part
            by_block = {
                b: [
                    nets[i] if full_model[plan.clients[i]] or b < cuts[plan.clients[i]] else server_nets[i]
                    for i in rows
                ]
                for b in range(num_blocks)
            }
            average_blocks(glob, by_block, w)
        else:  # sflv2: a client's own copy below its cut, the one server copy from its cut on
            by_block = {
                b: [nets[i] if b < cuts[plan.clients[i]] else server for i in rows]
                for b in range(int(cuts.max()))
            }
            average_blocks(glob, by_block, w)
    return glob, step_losses


def max_state_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    """Largest difference of weights and running statistics, relative to max(1, |value|): running
    variances reach ~10, where float32 carries ~1e-6 absolute. Batch counters are left out: they only
    matter for momentum=None, and the per-client BatchNorm of the reference model does not count."""
    sa, sb = a.state_dict(), b.state_dict()
    # PSL's per-client BatchNorm statistics (client_running_*) may exist on one side only: in the
    # round-based paradigms every client has a model copy of its own, so they carry nothing.
    only_one = {k for k in sa.keys() ^ sb.keys()}
    assert all(".client_" in k for k in only_one), only_one
    sa = {k: v for k, v in sa.items() if k not in only_one}
    assert all(sa[k].shape == sb[k].shape for k in sa)
    return max(
        float(((sa[k].double() - sb[k].double()).abs() / sb[k].double().abs().clamp(min=1)).max())
        for k in sa
        if sa[k].is_floating_point() and sa[k].numel()  # per-client BatchNorm buffers may be empty
    )


MIXED_CUTS = [
    {"device": "rpi4b", "fraction": 0.5, "cut": 1},
    {"device": "jetson_gpu", "fraction": 0.5, "cut": 2},
]


def run_engine(cfg):
    trainer = ParadigmTrainer(build_experiment(cfg))
    sink = MemorySink()
    trainer.run(sink)
    return trainer, sink


@pytest.mark.parametrize(
    "paradigm, overrides",
    [
        ("sflv1", {}),
        ("fedavg", {"paradigm.client_fraction": 0.75}),
        ("sflv2", {}),
        # hsfl: the fastest half trains full models, the rest train through their own cut
        ("hsfl", {"paradigm.fl_clients": 0.5, "system.clients": MIXED_CUTS}),
        ("hsfl", {"paradigm.fl_clients": ["rpi4b"], "system.clients": MIXED_CUTS}),
        (
            "sflv2",  # per-client cuts: the server holds blocks from cut 1 on, half the clients train block 1 themselves
            {
                "system.clients": [
                    {"device": "rpi4b", "fraction": 0.5, "cut": 1},
                    {"device": "jetson_gpu", "fraction": 0.5, "cut": 2},
                ]
            },
        ),
    ],
)
def test_stacked_copies_equal_a_per_client_deepcopy_loop_step_for_step(paradigm, overrides, float64):
    cfg = config(**{"paradigm.name": paradigm, **overrides})
    trainer, sink = run_engine(cfg)
    reference, ref_losses = reference_run(cfg, paradigm, trainer.planner)
    assert max_state_diff(trainer.algorithm.model, reference) <= EXACT
    losses = [row["loss"] for row in sink.steps]
    assert len(losses) == len(ref_losses) >= 8
    assert np.max(np.abs(np.array(losses) - np.array(ref_losses))) <= EXACT
    # short last batches and finished clients really were exercised
    plan = trainer.planner.plan(0)
    if paradigm == "hsfl":  # both modes really were exercised
        modes = fl_client_mask(cfg.paradigm.fl_clients, trainer.setup)
        assert modes.any() and not modes.all()
    assert (plan.count == 0).any() and ((plan.count > 0) & (plan.count < 8)).any()


@pytest.mark.parametrize("paradigm", ["sflv1", "sflv2"])
def test_float32_copies_stay_within_1e_5_of_the_reference(paradigm):
    """In float32 the two differ by rounding only: losses and weights within 1e-5 at every step."""
    cfg = config(**{"paradigm.name": paradigm, "training.epochs": 1})
    trainer, sink = run_engine(cfg)
    reference, ref_losses = reference_run(cfg, paradigm, trainer.planner)
    assert np.max(np.abs(np.array([row["loss"] for row in sink.steps]) - np.array(ref_losses))) <= TOL
    mine, theirs = dict(trainer.algorithm.model.named_parameters()), dict(reference.named_parameters())
    assert max(float((mine[k] - theirs[k]).detach().abs().max()) for k in mine) <= TOL


def test_copies_run_in_passes_under_a_memory_budget_give_the_same_training(monkeypatch):
    """A tiny activation budget runs one copy per pass: the arithmetic must not notice."""
    from psl_core.paradigms import algorithms

    cfg = config(**{"paradigm.name": "fedavg", "training.epochs": 1})
    whole, whole_sink = run_engine(cfg)
    monkeypatch.setattr(algorithms, "ACTIVATION_BUDGET_BYTES", 1)
    parts, parts_sink = run_engine(cfg)
    assert parts.algorithm.rows_per_pass == 1 and whole.algorithm.rows_per_pass >= 4
    assert [r["loss"] for r in parts_sink.steps] == pytest.approx(
        [r["loss"] for r in whole_sink.steps], abs=1e-6
    )
    assert max_state_diff(parts.algorithm.model, whole.algorithm.model) <= 1e-6


def test_sflv1_and_hsfl_train_exactly_like_fedavg_whatever_the_cut():
    """Chain rule: a client/server pair is the full model, so only costs differ between these three."""
    metrics = {}
    for name, cut in (("fedavg", 1), ("sflv1", 1), ("sflv1", 2), ("hsfl", 2)):
        overrides = {"model.arch": "mlp", "model.client_norm": "group", "model.server_norm": "group"}
        cfg = config(**{"paradigm.name": name, "model.cut": cut, "paradigm.local_epochs": 1, **overrides})
        _, sink = run_engine(cfg)
        metrics[(name, cut)] = (
            [r["loss"] for r in sink.steps],
            sink.epochs[-1]["test_loss"],
            sink.epochs[-1]["sim_time"],
        )
    base_losses, base_test, _ = metrics[("fedavg", 1)]
    for key, (losses, test_loss, _) in metrics.items():
        assert np.allclose(losses, base_losses, atol=TOL, rtol=0), key
        assert abs(test_loss - base_test) <= TOL, key
    assert len({m[2] for m in metrics.values()}) == len(metrics)  # but every one costs differently


def test_sl_equals_a_sequential_loop_that_hands_the_client_part_over():
    cfg = config(**{"paradigm.name": "sl", "paradigm.local_epochs": 1})
    trainer, sink = run_engine(cfg)
    setup = build_experiment(cfg)
    model = setup.model
    cuts = np.array([c.cut for c in setup.client_cut_summaries])
    opt = sgd(model.parameters(), cfg)
    losses = []
    for r in range(cfg.training.epochs):
        plan = trainer.planner.plan(r)
        for row in plan.order:
            c = int(cuts[plan.clients[row]])
            for p in block_params(model, 0, c):  # the next client gets weights, not momentum
                opt.state.pop(p, None)
            for j in range(int((plan.count[:, row] > 0).sum())):
                x, y = batch(setup, plan, j, row)
                opt.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
                losses.append(float(loss))
    assert np.max(np.abs(np.array([s["loss"] for s in sink.steps]) - losses)) <= TOL
    assert max_state_diff(trainer.algorithm.model, model) <= TOL
