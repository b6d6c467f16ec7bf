"""Per-client BatchNorm in the client part: every client keeps its OWN running statistics (as each
client's model copy does in a deployment), and evaluation uses one client's model — the last client
that has seen data, as the reference evaluates its last client's model — never pooled statistics
that no client holds."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from psl_core.config import ExperimentConfig, apply_overrides
from psl_core.engine import PSLTrainer, build_experiment
from psl_core.models import SegmentBatchNorm


def batches(seed: int, steps: int, num_clients: int, channels: int):
    """Per step: rows of each client, with a client-specific offset (clients see different data)."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        counts = torch.randint(2, 6, (num_clients,), generator=g)
        ids = torch.repeat_interleave(torch.arange(num_clients), counts)
        x = torch.randn(len(ids), channels, generator=g) + 3.0 * ids[:, None].float()
        yield x, ids


def test_each_client_keeps_the_statistics_of_its_own_rows():
    ours = SegmentBatchNorm(5, momentum=0.2).train()
    per_client = [nn.BatchNorm1d(5, momentum=0.2).train() for _ in range(3)]  # one model copy per client
    for x, ids in batches(0, 6, 3, 5):
        ours.set_segments(ids, 3)
        ours(x)
        for k, bn in enumerate(per_client):
            bn(x[ids == k])
    for k, bn in enumerate(per_client):
        torch.testing.assert_close(ours.client_running_mean[k], bn.running_mean)
        torch.testing.assert_close(ours.client_running_var[k], bn.running_var)


def test_evaluation_uses_the_last_clients_statistics():
    ours = SegmentBatchNorm(5).train()
    last = nn.BatchNorm1d(5).train()
    for x, ids in batches(1, 5, 4, 5):
        ours.set_segments(ids, 4)
        ours(x)
        last(x[ids == 3])
    last.load_state_dict({**last.state_dict(), "weight": ours.weight, "bias": ours.bias})
    ours.eval(), last.eval()
    probe = torch.randn(7, 5)
    torch.testing.assert_close(ours(probe), last(probe))
    ours.eval_client = 0  # any client's deployment can be evaluated on request
    assert not torch.allclose(ours(probe), last(probe))


def test_engine_evaluates_one_clients_model():
    cfg = apply_overrides(
        ExperimentConfig(),
        {
            "data.dataset": "digits",
            "partition.scheme": "dirichlet",
            "partition.alpha": 0.3,
            "partition.num_clients": 4,
            "model.arch": "mlp",
            "model.client_norm": "batch",
            "sampling.method": "ugs",
            "sampling.batch_size": 64,
            "training.epochs": 1,
            "training.device": "cpu",
        },
    )
    trainer = PSLTrainer(build_experiment(cfg))
    trainer.run()
    metrics = trainer.evaluate()
    # The deployed model of client 3: its client part with ITS statistics as a plain BatchNorm.
    deployed = copy.deepcopy(trainer.model).eval()
    for block in deployed.blocks:
        for name, module in list(block.named_modules()):
            if isinstance(module, SegmentBatchNorm):
                plain = nn.BatchNorm1d(module.num_features)
                plain.weight.data, plain.bias.data = module.weight.data, module.bias.data
                plain.running_mean.copy_(module.client_running_mean[3])
                plain.running_var.copy_(module.client_running_var[3])
                parent = block.get_submodule(name.rsplit(".", 1)[0]) if "." in name else block
                setattr(parent, name.rsplit(".", 1)[-1], plain.eval())
    with torch.no_grad():
        logits = deployed(trainer.x_test)
    loss = F.cross_entropy(logits, trainer.y_test).item()
    acc = (logits.argmax(1) == trainer.y_test).float().mean().item()
    assert abs(metrics["test_loss"] - loss) < 1e-5
    assert abs(metrics["test_acc"] - acc) < 1e-6


def test_client_statistics_survive_a_state_dict_round_trip():
    ours = SegmentBatchNorm(3).train()
    for x, ids in batches(2, 3, 5, 3):
        ours.set_segments(ids, 5)
        ours(x)
    fresh = SegmentBatchNorm(3)
    fresh.load_state_dict(ours.state_dict())
    torch.testing.assert_close(fresh.client_running_mean, ours.client_running_mean)
    assert fresh.deployed_client() == 4
    old_style = {k: v for k, v in ours.state_dict().items() if not k.startswith("client_")}
    SegmentBatchNorm(3).load_state_dict(old_style)  # checkpoints from before per-client statistics
