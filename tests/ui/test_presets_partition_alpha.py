"""Every preset with the extended-Dirichlet partition uses the GPSL settings' α = 3."""

from __future__ import annotations

from app.ui.views.presets import PRESETS, preset_config
from psl_core.data import PARTITION_SCHEMES


def test_extended_dirichlet_presets_use_alpha_three():
    chosen = [name for name in PRESETS if preset_config(name)["partition"]["scheme"] == "extended_dirichlet"]
    assert chosen, "the GPSL presets use the extended Dirichlet partition"
    for name in chosen:
        partition = preset_config(name)["partition"]
        assert partition["alpha"] == 3.0, name
        assert partition["classes_per_client"] in (2, 5), name  # severe or mild
    assert PARTITION_SCHEMES["extended_dirichlet"].params["alpha"][0] == 3.0
