"""Page logic of Helpers & scheduling: instances, edits, solver runs, table, paper note, exports."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from app.ui.views import helpers as hv
from psl_core.helpers import HelperInputError, check_schedule


@pytest.fixture(scope="module")
def instance():
    return hv.generate_instance("vgg19", "high", 8, 3, seed=1)


@pytest.fixture(scope="module")
def runs(instance):
    return hv.run_solvers(instance, ["baseline", "greedy", "decomposition"], time_limit_s=1.0)[0]


def test_generate_instance_follows_the_scenario(instance):
    assert (instance.num_clients, instance.num_helpers) == (8, 3)
    assert instance.meta["model"] == "vgg19" and instance.meta["scenario"] == "high"
    again = hv.generate_instance("vgg19", "high", 8, 3, seed=1)
    assert np.array_equal(again.release, instance.release)
    with pytest.raises(HelperInputError, match="model must be one of"):
        hv.generate_instance("alexnet", "low", 4, 2)
    with pytest.raises(HelperInputError, match="'low' or 'high'"):
        hv.generate_instance("vgg19", "medium", 4, 2)


def test_edits_scale_rows_and_keep_link_differences(instance):
    clients, helpers = hv.instance_tables(instance)
    clients.loc[2, "release (ms)"] *= 3
    helpers.loc[1, "part-2 bwd (ms)"] = 0.5 * helpers.loc[1, "part-2 bwd (ms)"]
    edited = hv.apply_edits(instance, clients, helpers)
    assert edited.release[2] == pytest.approx(3 * instance.release[2])
    assert np.array_equal(edited.release[[0, 1, 3]], instance.release[[0, 1, 3]])
    assert edited.p_bwd[:, 1] == pytest.approx(0.5 * instance.p_bwd[:, 1])
    assert edited.meta["edited"] is True
    clients.loc[0, "gap (ms)"] = -1
    with pytest.raises(HelperInputError, match="gap"):
        hv.apply_edits(instance, clients, helpers)
    with pytest.raises(HelperInputError, match="one row per client"):
        hv.apply_edits(instance, clients.iloc[:3], helpers)


def test_memory_edit_that_does_not_fit_is_refused(instance):
    clients, helpers = hv.instance_tables(instance)
    helpers["memory capacity (MB)"] = 1.0
    with pytest.raises(HelperInputError, match="memory"):
        hv.apply_edits(instance, clients, helpers)


def test_availability_limits_exact_and_brute_force(instance):
    big = hv.solver_availability(hv.generate_instance("resnet101", "low", hv.EXACT_MAX_CLIENTS + 1, 2))
    assert big["exact"] and "K ≤" in big["exact"] and big["baseline"] is None
    small = hv.solver_availability(hv.generate_instance("resnet101", "low", 3, 2))
    assert small["exact"] is None and small["brute_force"] is None
    assert hv.solver_availability(instance)["brute_force"]


def test_runs_are_checked_and_tabled(instance, runs):
    assert [run.result.method for run in runs] == ["baseline", "greedy", "decomposition"]
    for run in runs:
        assert run.feasible == check_schedule(instance, run.result.schedule).feasible
    table = hv.results_table(runs)
    base = table.set_index("method").loc["baseline"]
    assert base["shorter than baseline (%)"] == pytest.approx(0.0)
    dec = table.set_index("method").loc["decomposition"]
    assert dec["shorter than baseline (%)"] == pytest.approx(
        100 * (1 - dec["makespan_s"] / base["makespan_s"])
    )
    assert table["feasible (checked)"].all()


def test_skipped_solvers_and_empty_choice(instance):
    runs, skipped = hv.run_solvers(instance, ["brute_force", "baseline"], time_limit_s=1.0)
    assert [r.result.method for r in runs] == ["baseline"] and "brute force" in skipped["brute_force"]
    with pytest.raises(HelperInputError, match="at least one solver"):
        hv.run_solvers(instance, [])
    with pytest.raises(HelperInputError, match="unknown solver"):
        hv.run_solvers(instance, ["magic"])


def test_paper_note_cites_52_3_and_our_number(instance, runs):
    table = hv.results_table(runs)
    note = hv.paper_note(table, instance)
    best = table[table["method"] != "baseline"]["shorter than baseline (%)"].max()
    assert "52.3 %" in note and f"{best:.1f} %" in note
    only_base = hv.results_table([r for r in runs if r.result.method == "baseline"])
    assert "Run other solvers" in hv.paper_note(only_base, instance)


def test_exports_round_trip(instance, runs):
    table = hv.results_table(runs)
    csv = pd.read_csv(io.StringIO(hv.export_csv(table)))
    assert list(csv["method"]) == list(table["method"])
    pieces = pd.read_csv(io.StringIO(hv.schedules_csv(instance, runs)))
    assert set(pieces["method"]) == {"baseline", "greedy", "decomposition"}
    assert (pieces.groupby("method")["phase"].apply(lambda p: (p == "fwd").sum()) == 8).all()
    payload = json.loads(hv.export_json(instance, runs))
    assert np.array(payload["instance"]["release"]) == pytest.approx(instance.release)
    exported = {r["method"]: r for r in payload["results"]}
    assert exported["greedy"]["makespan_ms"] == pytest.approx(runs[1].result.makespan)
    assert exported["baseline"]["helper"] == runs[0].result.schedule.helper.tolist()
