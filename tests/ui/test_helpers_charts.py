"""Charts and tables of the Helpers & scheduling page, built from real solver results."""

from app.ui.charts.helpers import comparison_table, gantt_chart, schedule_frame
from psl_core.helpers import random_instance, solve


def test_chart_builders_show_every_task_and_rank_methods():
    inst = random_instance(6, 2, seed=1)
    results = [solve(inst, m) for m in ("baseline", "decomposition", "local_search")]
    frame = schedule_frame(inst, results[1].schedule)
    assert (frame["phase"] == "fwd").sum() == 6 and (frame["phase"] == "bwd").sum() >= 6
    assert gantt_chart(inst, results[1].schedule).to_dict()["encoding"]["y"]["field"] == "helper"
    table = comparison_table(results)
    assert table["makespan_s"].is_monotonic_increasing
    assert table.loc[table["method"] == "baseline", "vs_baseline"].item() == 1.0
