"""Limits where paradigms must coincide: one client, and FedAvg with one full-batch step per round."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from psl_core.config import ExperimentConfig, apply_overrides
from psl_core.engine import MemorySink, PSLTrainer, build_experiment
from psl_core.paradigms.engine import ParadigmTrainer
from psl_core.paradigms.plan import RoundPlanner

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOL = 1e-5
ONE_CLIENT = {
    "data.dataset": "digits",
    "data.train_limit": 150,
    "data.test_limit": 60,
    "partition.num_clients": 1,
    "model.arch": "cnn",
    "model.client_norm": "group",
    "model.server_norm": "batch",
    "sampling.batch_size": 32,
    "training.lr": 0.05,
}


def train(cfg: ExperimentConfig):
    setup = build_experiment(cfg)
    trainer = PSLTrainer(setup) if cfg.paradigm.name == "psl" else ParadigmTrainer(setup)
    sink = MemorySink()
    trainer.run(sink)
    model = trainer.model if cfg.paradigm.name == "psl" else trainer.algorithm.model
    return model, sink


def centralised(cfg: ExperimentConfig, epochs: int):
    """Plain minibatch SGD of one model over the client's batches, in the order the client draws them."""
    setup = build_experiment(cfg)
    model, t = setup.model, cfg.training
    opt = torch.optim.SGD(model.parameters(), lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    planner = RoundPlanner(
        setup.partition.client_indices,
        seed=cfg.seed,
        local_batch=cfg.sampling.batch_size,
        local_epochs=epochs,
        client_fraction=1.0,
        stragglers=setup.stragglers,
    )
    plan = planner.plan(0)
    losses = []
    for j in range(plan.num_steps):
        idx = torch.as_tensor(plan.index[j, 0][plan.index[j, 0] >= 0])
        opt.zero_grad()
        loss = F.cross_entropy(model(setup.dataset.x_train[idx]), setup.dataset.y_train[idx])
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return model, losses


def params_diff(a, b) -> float:
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    return max(float((pa[k] - pb[k]).detach().abs().max()) for k in pa)


@pytest.mark.parametrize("momentum", [0.9, 0.0])
def test_with_one_client_every_paradigm_is_psl_and_centralised_sgd(momentum):
    """One round of E = 2 local epochs (momentum kept within the round); with momentum 0 also two
    rounds of E = 1 (local optimisers start fresh each round, which momentum 0 cannot see)."""
    base = apply_overrides(ExperimentConfig(), {**ONE_CLIENT, "training.momentum": momentum})
    psl_cfg = apply_overrides(
        base, {"sampling.method": "fls", "sampling.per_client_batch": 32, "training.epochs": 2}
    )
    psl_model, psl_sink = train(psl_cfg)
    ref_model, ref_losses = centralised(base, epochs=2)
    psl_losses = [r["loss"] for r in psl_sink.steps]
    assert len(psl_losses) == 10  # 150 samples, b = 32: 5 steps per epoch, the last one short
    assert np.max(np.abs(np.array(psl_losses) - ref_losses)) <= TOL
    assert params_diff(psl_model, ref_model) <= TOL
    shapes = [(1, 2)] if momentum else [(1, 2), (2, 1)]
    for name in ("sl", "sflv1", "sflv2", "fedavg", "hsfl"):
        for rounds, local_epochs in shapes:
            cfg = apply_overrides(
                base,
                {
                    "paradigm.name": name,
                    "paradigm.local_epochs": local_epochs,
                    "training.epochs": rounds,
                },
            )
            model, sink = train(cfg)
            losses = [r["loss"] for r in sink.steps]
            assert np.max(np.abs(np.array(losses) - psl_losses)) <= TOL, (name, rounds)
            assert params_diff(model, psl_model) <= TOL, (name, rounds)
            assert abs(sink.epochs[-1]["test_loss"] - psl_sink.epochs[-1]["test_loss"]) <= TOL, name


def test_fedavg_with_one_full_batch_step_per_client_is_large_batch_gradient_descent():
    """E = 1, every client, b ≥ N_k: each client takes one step on all its data, and Σ_k (N_k/N) of
    those steps is one gradient step on the mean loss over all N samples (weight decay included;
    the fresh local momentum buffer of a one-step round is just the gradient)."""
    cfg = apply_overrides(
        ExperimentConfig(),
        {
            "data.dataset": "digits",
            "data.train_limit": 200,
            "data.test_limit": 50,
            "partition.num_clients": 5,
            "partition.scheme": "dirichlet",
            "partition.alpha": 0.5,
            "model.arch": "mlp",
            "model.client_norm": "group",
            "model.server_norm": "group",
            "paradigm.name": "fedavg",
            "paradigm.local_batch": 1000,
            "training.epochs": 3,
            "training.lr": 0.1,
        },
    )
    model, sink = train(cfg)
    setup = build_experiment(cfg)
    assert len(set(setup.partition.sizes.tolist())) > 1  # unequal clients: the weights matter
    gd, t = setup.model, cfg.training
    x, y = setup.dataset.x_train, setup.dataset.y_train
    for _ in range(3):
        gd.zero_grad()
        F.cross_entropy(gd(x), y).backward()
        with torch.no_grad():
            for p in gd.parameters():
                p -= t.lr * (p.grad + t.weight_decay * p)
    assert len(sink.steps) == 3
    assert params_diff(model, gd) <= TOL
