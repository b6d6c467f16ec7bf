"""Which hsfl clients train the full model (FL mode) and which train through the cut (SL mode)."""

from __future__ import annotations

import numpy as np

from psl_core.devices.catalog import TRAIN_TO_FORWARD_FLOPS


def fl_client_mask(rule: float | list[str], setup) -> np.ndarray:
    """(K,) True for the clients in FL mode under ``paradigm.fl_clients``.

    * a fraction f: the round(f · K) clients that train the full model fastest (expected seconds per
      sample, 3 · F_model / speed, times a persistent straggler factor); ties go to the lower id;
    * a list of device ids: every client whose device is listed.
    """
    device_ids = np.asarray(setup.client_device_ids)
    k = len(device_ids)
    if isinstance(rule, list):
        used = set(device_ids.tolist())
        unknown = [d for d in rule if d not in used]
        if unknown:
            raise ValueError(
                f"paradigm.fl_clients lists {unknown}, but no client uses that device; "
                f"the clients' devices are {sorted(used)}"
            )
        return np.isin(device_ids, rule)
    seconds = (
        TRAIN_TO_FORWARD_FLOPS
        * setup.profile.total_flops_per_sample
        / setup.system.speed_flops
        * setup.stragglers.persistent
    )
    fastest = np.lexsort((np.arange(k), seconds))[: int(np.round(rule * k))]
    mask = np.zeros(k, bool)
    mask[fastest] = True
    return mask
