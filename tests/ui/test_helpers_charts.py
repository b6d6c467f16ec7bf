"""Charts and tables of the Helpers & scheduling page, built from real solver results (issue 11 item 9)."""

import pytest

from app.ui.charts.helpers import PHASES, comparison_table, gantt_chart, schedule_frame
from psl_core.helpers import low_heterogeneity_instance, random_instance, solve


def test_chart_builders_show_every_task_and_rank_methods():
    inst = random_instance(6, 2, seed=1)
    results = [solve(inst, m) for m in ("baseline", "decomposition", "local_search")]
    frame = schedule_frame(inst, results[1].schedule)
    assert (frame["phase"] == "fwd").sum() == 6 and (frame["phase"] == "bwd").sum() >= 6
    assert gantt_chart(inst, results[1].schedule).to_dict()["layer"][0]["encoding"]["y"]["field"] == "helper"
    table = comparison_table(results, lower_bound_ms=min(r.makespan for r in results))
    assert table["makespan_s"].is_monotonic_increasing
    assert table.loc[table["method"] == "baseline", "vs_baseline"].item() == 1.0
    assert table["gap_%"].min() == pytest.approx(0.0) and (table["gap_%"] >= 0).all()


@pytest.mark.parametrize("variant", ["non_preemptive", "preemptive"])
def test_gantt_bars_reach_the_reported_makespan_and_mark_it(variant):
    inst = low_heterogeneity_instance(30, 5, model="vgg19", seed=0)  # VGG tails are seconds long
    res = solve(inst, "decomposition", variant=variant)
    frame = schedule_frame(inst, res.schedule)
    helper_work_end = frame.loc[frame["phase"] != "tail", "end"].max()
    assert helper_work_end < res.makespan  # before: the chart stopped here, short of the makespan
    assert frame["end"].max() == pytest.approx(res.makespan, rel=1e-12)  # the client tail is drawn
    chart = gantt_chart(inst, res.schedule, res.makespan).to_dict()
    assert [layer["mark"]["type"] for layer in chart["layer"]].count("rule") == 1
    marker = [v for data in chart["datasets"].values() for v in data if "makespan_s" in v]
    assert marker and marker[0]["makespan_s"] == pytest.approx(res.makespan / 1000)
    assert marker[0]["text"] == f"makespan {res.makespan / 1000:.3f} s"
    bars = [v for data in chart["datasets"].values() for v in data if "end_s" in v]
    assert max(v["end_s"] for v in bars) == pytest.approx(res.makespan / 1000)


def test_legend_has_three_phase_colours_for_any_number_of_clients():
    """Colour by phase, not by client: no 20-entry legend to clip, no repeated colours at K = 60."""
    inst = random_instance(60, 4, seed=2)
    res = solve(inst, "greedy")
    chart = gantt_chart(inst, res.schedule).to_dict()
    colours = [layer["encoding"]["color"] for layer in chart["layer"] if "color" in layer.get("encoding", {})]
    assert colours and all(c["field"] == "what" for c in colours)
    domain, palette = colours[0]["scale"]["domain"], colours[0]["scale"]["range"]
    assert domain == list(PHASES.values()) and len(set(palette)) == len(palette) == 3
    tooltip_fields = {t["field"] for t in chart["layer"][0]["encoding"]["tooltip"]}
    assert {"client", "helper", "what"} <= tooltip_fields
    assert not any(
        layer["mark"]["type"] == "text" and "label" in str(layer["encoding"].get("text"))
        for layer in chart["layer"]
    )
