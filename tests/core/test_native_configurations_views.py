"""The native model's other thread settings ("native t1", ``Report.native_configurations``) in every derived number
and figure, not only the headline speedup and the recommendation: the crossover, best throughput, the figures."""

from __future__ import annotations

import dataclasses

from optimizer_core import summary as S
from optimizer_core.report import Report
from optimizer_core.views import figures as F
from optimizer_core.views.html import render_html
from tests.core.report_factory import make_latency, make_report


def _with_fast_single_thread(*, single_factor: float = 0.25) -> Report:
    """fp32 beats native (default threads) at every batch size; native t1 beats fp32 at the largest."""
    report = make_report(variants=("native", "fp32"), native_wins_large_batch=False)
    native, fp32 = report.variants
    largest = max(r.batch_size for r in fp32.latency)
    latency = []
    for row in native.latency:
        p50 = fp32.latency_at(row.batch_size).p50_us * (single_factor if row.batch_size == largest else 3.0)
        latency.append(make_latency(row.batch_size, p50, calls=600, seed=row.batch_size))
    single = dataclasses.replace(native, name="native t1", latency=tuple(latency))
    return dataclasses.replace(report, native_configurations=(single,))


def test_crossover_compares_with_the_fastest_native_configuration():
    """Regression: 'fp32 is faster than native at every measured batch size' while native t1 beat fp32 at the
    largest batch sizes (and was recommended there)."""
    plain = make_report(variants=("native", "fp32"), native_wins_large_batch=False)
    assert S.crossover(plain).winner_throughout == "fp32"
    report = _with_fast_single_thread()
    c = S.crossover(report)
    assert c.winner_throughout is None and len(c.batch_sizes) == 1
    assert (c.faster_first, c.faster_last) == ("fp32", "native t1")
    assert dict(c.native_by_batch)[1024] == "native t1"
    title = F.throughput_vs_batch(report).layout.title.text
    assert "at every measured batch size" not in title and "native t1 above" in title
    html = render_html(report)
    assert "fp32 is faster than native at every measured batch size" not in html
    assert "native t1 at large ones" in html


def test_crossover_names_the_native_configuration_that_loses_throughout():
    report = _with_fast_single_thread(single_factor=2.0)  # native t1 faster than native, slower than fp32
    c = S.crossover(report)
    assert c.winner_throughout == "fp32" and c.native == "native t1"
    assert "fp32 is faster than native t1 at every measured batch size" in F.throughput_vs_batch(
        report).layout.title.text


def test_best_throughput_counts_the_native_configurations():
    """Regression: the card showed fp32's 437k rows/s while native t1 did 738k rows/s (and was recommended)."""
    report = _with_fast_single_thread()
    h = S.headline_values(report)
    assert h["best_throughput_configuration"] == "native t1" and h["best_throughput_variant"] == "native"
    assert h["best_throughput_batch"] == 1024
    single = report.native_configurations[0]
    assert h["best_rows_per_s"] == S.p50_rows_per_s(single.latency_at(1024))
    assert "native t1, batch 1,024" in S.headline(report)[S.HEADLINE_LABELS["throughput"]]
    noisy_row = dataclasses.replace(single.latency_at(1024), noisy=True)
    noisy = dataclasses.replace(report, native_configurations=(dataclasses.replace(
        single, latency=tuple(noisy_row if r.batch_size == 1024 else r for r in single.latency)),))
    assert S.headline_values(noisy)["throughput_noisy"] is True


def _recommending_single_thread_at_largest() -> Report:
    from optimizer_core.tune import recommend

    report = _with_fast_single_thread()
    return dataclasses.replace(report, recommendation=recommend(report, tolerance=1e-2))


def test_figures_draw_the_native_configurations():
    report = _with_fast_single_thread()
    colors = F.variant_colors(report)
    assert colors["native t1"] not in (colors["native"], colors["fp32"])
    for fig in (F.latency_vs_batch(report), F.throughput_vs_batch(report), F.latency_distribution(report)):
        assert "native t1" in {t.name for t in fig.data}, fig.layout.title.text
    single = report.native_configurations[0]
    line = next(t for t in F.throughput_vs_batch(report).data if t.name == "native t1")
    assert list(line.y) == [S.p50_rows_per_s(r) for r in S.timed_rows(single)]  # read, not recomputed


def test_the_recommendation_star_sits_on_the_recommended_configuration():
    """Regression: the 'recommended: native' star sat at native's default-thread latency (~20 ms, right of fp32)
    while native t1 was recommended."""
    report = _recommending_single_thread_at_largest()
    assert report.recommendation.configuration(1024) == "native t1"
    single = report.native_configurations[0]
    fig = F.pareto(report, 1024)
    point = next(t for t in fig.data if t.name == "native t1")
    assert "no drift of its own" in point.hovertemplate
    assert list(point.y) == [1e-12]  # native's drift, 0, on the log axis floor
    star = next(t for t in fig.data if t.name == "recommended")
    assert list(star.x) == [single.latency_at(1024).p50_us]
    assert star.text == ("recommended: native t1",)
    assert single.latency_at(1024).p50_us in [x for x, _ in S.pareto_front_points(report, 1024)]


def test_tradeoff_points_include_the_native_configurations():
    from optimizer_core.tradeoffs import tradeoff_points

    report = _recommending_single_thread_at_largest()
    points = {p.name: p for p in tradeoff_points(report, 1024)}
    single = points["native t1"]
    assert single.native_configuration and single.recommended and not points["native"].recommended
    assert single.drift == 0.0 and single.metric_delta == points["native"].metric_delta
    assert single.front_drift


def test_the_trees_chart_draws_native_t1_at_natives_metric():
    from tests.core.tree_report_factory import make_tree_report

    report = make_tree_report()
    native = report.native
    single = dataclasses.replace(native, name="native t1", metrics=None,
                                 latency=tuple(dataclasses.replace(r, p50_us=r.p50_us / 2) for r in native.latency))
    report = dataclasses.replace(report, native_configurations=(single,))
    b = native.latency[0].batch_size
    fig = F.latency_vs_metric(report, b)
    point = next(t for t in fig.data if t.name == "native t1")
    assert list(point.y) == list(next(t for t in fig.data if t.name == "native").y)
    assert "no drift or metric of its own" in point.hovertemplate


def test_where_each_variant_wins_is_by_batch_size_and_says_each_comparison_once():
    """Regression (--trees): lines lost batch order, and 'batch 256: fp32 is 1.05x slower than native t1' came with
    its mirror 'batch 256: native t1 is 1.05x faster than fp32'."""
    from tests.core.tree_report_factory import make_tree_report

    report = make_tree_report()
    cut = next(v.name for v in report.variants if v.trees_kept is not None)
    lines = (
        f"batch 1: {cut} is 3.0x faster than native t1 (p50 10.0 µs vs 30.0 µs)",
        f"batch 256: {cut} is 1.2x faster than native t1 (p50 100 µs vs 120 µs)",
        "batch 1: fp32 is 2.0x faster than native t1 (p50 15.0 µs vs 30.0 µs)",
        "batch 256: fp32 is 1.05x slower than native t1; likely cause: none visible from the run's settings",
        "batch 256: native t1 is 1.05x faster than fp32 (p50 120 µs vs 126 µs)",
        "batch 16: fp32 is 2.0x faster than native t1 (p50 15.0 µs vs 30.0 µs)",
    )
    out = S.variant_explanations(dataclasses.replace(report, explanations=lines))
    batches = [int(line.split(":")[0].split()[1]) for line in out]
    assert batches == sorted(batches)
    assert not any("native t1 is 1.05x faster than fp32" in line for line in out)
    assert sum("fp32 is 1.05x slower than native t1" in line for line in out) == 1
    at_256 = [line for line in out if line.startswith("batch 256")]
    assert at_256[-1].startswith(f"batch 256: {cut}")  # the whole model's lines first within a batch size
