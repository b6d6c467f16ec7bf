"""psl_core.validation: the checks of the helper fields (issue 14)."""

from __future__ import annotations

from psl_core.validation import check

BASE = {
    "data": {"train_limit": 200},
    "model": {"cut": 1, "cut2": 3},
    "partition": {"num_clients": 12},
    "system": {"clients": [{"device": "jetson_gpu"}], "helpers": {"num_helpers": 2}},
}


def _with_helpers(**helpers) -> dict:
    return {**BASE, "system": {**BASE["system"], "helpers": {"num_helpers": 2, **helpers}}}


def test_unknown_mixed_helper_device_is_named_with_its_index():
    problems = check(_with_helpers(helper_devices=["vm", "toaster"]), deep=False)
    assert [p.path for p in problems if p.is_error] == ["system.helpers.helper_devices.1"]
    assert "toaster" in problems[0].message and "use one of" in problems[0].message


def test_exact_solver_is_refused_for_many_clients_with_what_to_use():
    problems = check(_with_helpers(solver="exact"), deep=False)
    error = next(p for p in problems if p.path == "system.helpers.solver")
    assert error.is_error and "at most 10 clients" in error.message and "'lns'" in error.message
    assert not any(p.path == "system.helpers.solver" for p in check(_with_helpers(solver="lns"), deep=False))


def test_a_step_that_could_overflow_helper_memory_is_a_warning():
    # 12 equal clients on two 3.83 MB helpers: the nominal batch (2 samples each) fits 6 per helper
    # (0.62 MB of part-2 state each), but UGS may send a client's whole 17 samples in one step.
    tiny = {"id": "tiny_helper", "gflops": 5.0, "memory_mb": 3.65}  # MiB: 3.83 MB
    config = {
        **_with_helpers(helper_device="tiny_helper"),
        "sampling": {"method": "ugs", "batch_size": 24},
    }
    config["system"] = {**config["system"], "custom_devices": [tiny]}
    warning = [p for p in check(config) if p.path == "system.helpers.num_helpers" and not p.is_error]
    assert warning and "memory is checked per step" in warning[0].message
    roomy = {**config, "system": {**config["system"], "custom_devices": [{**tiny, "memory_mb": 100.0}]}}
    assert not [p for p in check(roomy) if "memory is checked per step" in p.message]
