"""The two cut points of a helper-assisted (three-part) model, shared by every scenario generator.

Kept apart from ``scenarios`` so that the authors' generator (``tirana2024``) and ours can both use
them without importing each other.
"""

from __future__ import annotations

from psl_core.devices.measured import load_layer_costs
from psl_core.helpers.instance import HelperInputError

DEFAULT_CUTS = {"resnet101": (3, 33), "vgg19": (3, 24)}  # the profiled cut points of each model


def check_cuts(model: str, dataset: str, cuts: tuple[int, int]) -> tuple[int, int]:
    """``cuts`` as (a, b) when 1 <= a < b < the model's number of profiled layers, else a clear error."""
    costs = load_layer_costs(model, dataset)
    a, b = cuts
    if not 1 <= a < b < costs.num_layers:
        raise HelperInputError(
            f"cuts {cuts} out of range for {model}: need 1 <= a < b < {costs.num_layers} "
            f"(e.g. {DEFAULT_CUTS[model]})"
        )
    return a, b
