"""The tree trade-off views: the summary values (fronts, tolerance, trees curve) and the figure builders that draw
them, plus their place in all_figures and report.html."""

from __future__ import annotations

import pytest

from optimizer_core.tradeoffs import has_truncation, tradeoff_points, trees_curve
from optimizer_core.views import figures as F
from optimizer_core.views.figures import trees as FT
from optimizer_core.views.html import render_html
from optimizer_core.views.tables import truncation_table
from tests.core.report_factory import make_report
from tests.core.tree_report_factory import make_tree_report


def test_points_know_the_tolerance_the_fronts_and_the_pick():
    report = make_tree_report(max_metric_loss=0.002)
    points = {p.name: p for p in tradeoff_points(report, 64)}
    assert set(points) == {"native", "fp32", "rounds-25", "rounds-50", "rounds-75"}  # fp16 did not apply
    assert not points["rounds-25"].passes and points["rounds-50"].passes
    assert [n for n, p in points.items() if p.recommended] == ["rounds-50"]
    # faster than everything: on both fronts; native has the best metric and no drift: on both too
    assert points["rounds-25"].front_drift and points["rounds-25"].front_metric
    assert points["native"].front_drift and points["native"].front_metric
    without = make_tree_report()  # drift alone: the truncated variants may not be recommended
    assert not any(p.passes for p in tradeoff_points(without, 64) if p.trees_kept)


def test_trees_curve_runs_from_the_fewest_trees_to_the_full_conversion():
    curve = trees_curve(make_tree_report(), 1024)
    assert [p.name for p in curve] == ["rounds-25", "rounds-50", "rounds-75", "fp32"]
    assert [p.p50_us for p in curve] == sorted(p.p50_us for p in curve)  # latency grows with the trees kept
    assert trees_curve(make_report("binary"), 64) == [] and not has_truncation(make_report("binary"))


def test_latency_vs_metric_draws_variants_front_floor_and_star():
    fig = FT.latency_vs_metric(make_tree_report(max_metric_loss=0.002), 64)
    names = [t.name for t in fig.data]
    assert names[:5] == ["native", "fp32", "rounds-25", "rounds-50", "rounds-75"]
    assert "Pareto front" in names and names[-1] == "recommended"
    by_name = {t.name: t for t in fig.data}
    assert by_name["rounds-25"].marker.symbol == "circle-open"  # over the tolerance
    assert by_name["rounds-50"].marker.symbol == "circle"
    assert by_name["recommended"].x[0] == by_name["rounds-50"].x[0]
    assert any("metric tolerance" in (a.text or "") for a in fig.layout.annotations)
    assert fig.layout.yaxis.title.text == "ROC AUC on the target"


def test_latency_vs_metric_without_a_target_says_why():
    fig = FT.latency_vs_metric(make_tree_report(with_target=False), 64)
    assert not fig.data and "No target column" in fig.layout.annotations[0].text


@pytest.mark.parametrize("task, metric", [("multiclass", "accuracy"), ("regression", "R²")])
def test_other_tasks_use_their_primary_metric(task, metric):
    fig = FT.latency_vs_metric(make_tree_report(task), 1)
    assert metric in fig.layout.title.text and len(fig.data) >= 5


def test_trees_needed_plots_metric_and_latency_against_trees():
    fig = FT.trees_needed(make_tree_report(), 1024)
    metric, latency = fig.data
    assert list(metric.x) == [25, 50, 75, 100] == list(latency.x)
    assert latency.yaxis == "y2" and fig.layout.yaxis2.overlaying == "y"
    assert list(metric.y)[-1] > list(metric.y)[0] and list(latency.y)[-1] > list(latency.y)[0]
    assert "boosting rounds" in fig.layout.title.text
    no_target = FT.trees_needed(make_tree_report(with_target=False), 1024)
    assert len(no_target.data) == 1 and no_target.data[0].name == "p50 latency"


def test_trees_needed_with_one_truncated_variant_still_has_two_points_and_none_says_why():
    assert len(FT.trees_needed(make_tree_report(cuts=(50,)), 1).data[0].x) == 2
    empty = FT.trees_needed(make_report("binary"), 1)
    assert not empty.data and "Fewer than two" in empty.layout.annotations[0].text


def test_all_figures_and_the_html_carry_the_frontier_only_for_tree_runs():
    tree = make_tree_report(max_metric_loss=0.002)
    titles = list(F.all_figures(tree))
    assert [t for t in titles if t.startswith("Latency vs drift")] == [
        "Latency vs drift (batch 1)", "Latency vs drift (batch 64)", "Latency vs drift (batch 1,024)"]
    assert "Latency vs ROC AUC (batch 64)" in titles and "How many trees (batch 1,024)" in titles
    plain = list(F.all_figures(make_report("binary")))
    assert not any("ROC AUC" in t or "How many" in t for t in plain)
    html = render_html(tree)
    assert "Truncated ensembles" in html and "iteration_range=(0, 50)" in html
    assert "within by metric" in html  # rounds-50's drift badge: over the drift tolerance, within the metric one
    assert "Truncated ensembles" not in render_html(make_report("binary"))


def test_truncation_table_rows():
    df = truncation_table(make_tree_report(max_metric_loss=0.002), 64)
    assert list(df["trees kept"]) == ["25 of 100", "50 of 100", "75 of 100", "all"]
    assert list(df["Δ ROC AUC"])[:3] == ["-0.0120", "-0.0015", "-0.0004"]


def test_labels_of_near_points_do_not_print_over_each_other():
    """QA: "rounds-100" and "fp32" at nearly the same latency and metric printed as "rounds-1fp32"."""
    import dataclasses

    report = make_tree_report(max_metric_loss=0.002)
    fp32 = next(v for v in report.variants if v.name == "fp32")
    near = [dataclasses.replace(v, latency=tuple(dataclasses.replace(s, p50_us=s.p50_us * 1.001) for s in fp32.latency),
                                metrics=fp32.metrics, metric_delta=fp32.metric_delta)
            if v.name == "rounds-75" else v for v in report.variants]
    fig = FT.latency_vs_metric(dataclasses.replace(report, variants=tuple(near)), 64)
    by_name = {t.name: t for t in fig.data}
    a, b = by_name["fp32"], by_name["rounds-75"]
    assert a.x[0] != b.x[0] and a.y[0] == b.y[0]
    drawn = [t for t in (a, b) if t.text]
    assert drawn  # at least one is named on the chart
    assert len({t.textposition for t in drawn}) == len(drawn)  # never both at the same place
    # every point keeps its legend entry and hover, labelled or not
    assert a.showlegend is not False and b.showlegend is not False and "rounds-75" in b.hovertemplate


def test_label_positions_spread_near_labels_and_drop_what_has_no_room():
    from optimizer_core.views.figures.labels import label_positions

    far = label_positions([10, 1000], [0.5, 0.9], ["a", "b"], x_log=True)
    assert far == ["top center", "top center"]
    near = label_positions([10, 10.01, 1000], [0.9, 0.9, 0.5], ["rounds-100", "fp32", "native"], x_log=True)
    assert near[0] is not None and near[0] != near[1]
    crowd = label_positions([10.0] * 12, [0.9] * 12, [f"rounds-{i}" for i in range(12)], x_log=True)
    assert crowd.count(None) > 0 and len({p for p in crowd if p}) == len([p for p in crowd if p])
    assert label_positions([1, 2], [1, 2], ["x", "y"], order=[1])[1] == "top center"


def test_trees_needed_latency_axis_has_round_ticks_and_the_native_label_clears_the_last_point():
    """QA: the latency axis read 2.06 / 5.41 / 8.76 / 12.1 µs (plotly.js syncing an overlaying axis's ticks to the
    primary grid), and "native (all trees)" printed over the full model's point at the right end."""
    fig = FT.trees_needed(make_tree_report(), 1024)
    axis = fig.layout.yaxis2
    assert axis.tickmode == "auto" and axis.tickvals is None and axis.dtick is None  # plotly's own round ticks
    assert "µs" in axis.title.text
    (native,) = [a for a in fig.layout.annotations if a.text == "native (all trees)"]
    assert native.xref == "x domain" and native.x == 0 and native.xanchor == "left"  # the left end, not the last point
    assert max(fig.data[0].x) > 0 and fig.layout.xaxis.rangemode == "tozero"
