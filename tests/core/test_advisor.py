"""Split advisor: the cut per device that minimises expected step time within memory budgets."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from psl_core.devices import advise_cuts, custom_device, load_catalog


@dataclass(frozen=True)
class FakeCut:
    cut: int
    cut_name: str
    client_flops_per_sample: float
    server_flops_per_sample: float
    bytes_up_per_sample: float
    bytes_down_per_sample: float
    param_bytes: int
    activation_bytes_per_sample: int

    def client_memory_bytes(self, batch_size: int) -> int:
        return self.param_bytes + batch_size * self.activation_bytes_per_sample


# Later cuts: more client FLOPs, smaller activations, more client memory (10 MFLOPs forward in all).
CUTS = [
    FakeCut(1, "block1", 1e6, 9e6, 2000, 2000, 100_000, 10_000),
    FakeCut(2, "block2", 5e6, 5e6, 1000, 1000, 500_000, 20_000),
    FakeCut(3, "block3", 9e6, 1e6, 500, 500, 900_000, 30_000),
]
N = 32  # memory at N: 420_000, 1_140_000, 1_860_000 bytes
WEAK = custom_device("weak", "Weak", gflops=1, up_mbps=10, down_mbps=10, latency_ms=5, memory_mb=1.5)
STRONG = custom_device("strong", "Strong", gflops=100, up_mbps=100, down_mbps=100, latency_ms=5, memory_mb=64)
SERVER = custom_device("server", "Server", gflops=50, up_mbps=1000, down_mbps=1000)
CATALOG = {d.id: d for d in (WEAK, STRONG, SERVER)}


def row(advice, device_id, cut):
    return next(r for r in advice.table if r.device_id == device_id and r.cut == cut)


def test_table_values_by_hand():
    advice = advise_cuts(
        CUTS, ["strong", "weak", "strong"], samples_per_step=N, catalog=CATALOG, server_device=SERVER
    )
    assert len(advice.table) == 6 and set(advice.best_cut) == {"strong", "weak"}
    r = row(advice, "strong", 2)
    # client 32*15e6/1e11 = 0.0048, server 32*15e6/5e10 = 0.0096; links 32*1000*8/1e8 * 2 + 2*0.005
    assert r.compute_s == pytest.approx(0.0048 + 0.0096)
    assert r.transfer_s == pytest.approx(0.00512 + 0.01)
    assert r.step_time_s == pytest.approx(r.compute_s + r.transfer_s)
    assert r.client_memory_bytes == 1_140_000 and r.fits_memory and r.cut_name == "block2"


def test_weak_device_gets_earlier_cut_than_strong():
    advice = advise_cuts(CUTS, ["weak", "strong"], samples_per_step=N, catalog=CATALOG, server_device=SERVER)
    # weak: cut1 0.227 s vs cut2 0.55 s; strong: cut3 0.023 s vs cut2 0.0295 s
    assert advice.best_cut == {"weak": 1, "strong": 3}
    # the weak device's 1.5 MiB memory rules out cut 3 (1.86 MB), which is reported but not chosen
    assert not row(advice, "weak", 3).fits_memory and row(advice, "weak", 2).fits_memory


def test_memory_budget_is_respected():
    budgets = {"strong": 1_500_000}  # cut 3 (fastest for the strong device) no longer fits
    advice = advise_cuts(
        CUTS,
        ["strong"],
        samples_per_step=N,
        catalog=CATALOG,
        server_device=SERVER,
        memory_budget_bytes=budgets,
    )
    assert advice.best_cut == {"strong": 2}
    assert row(advice, "strong", 3).step_time_s < row(advice, "strong", 2).step_time_s
    chosen = row(advice, "strong", advice.best_cut["strong"])
    assert chosen.fits_memory and chosen.client_memory_bytes <= budgets["strong"]


def test_error_when_nothing_fits_names_device_and_minimum():
    with pytest.raises(ValueError, match=r"device 'weak'.*needs 0\.401 MiB"):
        advise_cuts(
            CUTS,
            ["strong", "weak"],
            samples_per_step=N,
            catalog=CATALOG,
            server_device=SERVER,
            memory_budget_bytes={"weak": 400_000},
        )


def test_measured_catalog_weak_pi_cuts_earlier_than_jetson_gpu():
    catalog = load_catalog()
    advice = advise_cuts(
        CUTS,
        ["rpi3bplus", "jetson_gpu"],
        samples_per_step=N,
        catalog=catalog,
        server_device=catalog["vm"],
        memory_budget_bytes={"rpi3bplus": 1_000_000},
    )
    assert advice.best_cut["rpi3bplus"] < advice.best_cut["jetson_gpu"]


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="samples_per_step"):
        advise_cuts(CUTS, ["weak"], samples_per_step=0, catalog=CATALOG, server_device=SERVER)
    with pytest.raises(ValueError, match="known devices"):
        advise_cuts(CUTS, ["nope"], samples_per_step=N, catalog=CATALOG, server_device=SERVER)
