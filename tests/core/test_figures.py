from __future__ import annotations

import dataclasses
import math

import pandas as pd
import plotly.graph_objects as go
import pytest

from optimizer_core import summary as S
from optimizer_core.report import DriftDetail, Report
from optimizer_core.views import figures as F
from optimizer_core.views.tables import tuning_table
from optimizer_core.views.text import fmt_drift, provider_text

try:
    from tests.core.report_factory import make_report
except ImportError:  # tests/ is not a package: pytest puts this folder on sys.path
    from report_factory import make_report


@pytest.fixture(scope="module")
def report() -> Report:
    return make_report(with_tuning=True)


def _axis_titles(fig: go.Figure) -> tuple[str, str]:
    return fig.layout.xaxis.title.text or "", fig.layout.yaxis.title.text or ""


def _trace_color(trace: go.BaseTraceType) -> str | None:
    marker = getattr(trace, "marker", None)
    if marker is not None and isinstance(marker.color, str):
        return marker.color
    line = getattr(trace, "line", None)
    return line.color if line is not None else None


BUILDERS_AND_UNITS = [
    ("throughput", lambda r: F.throughput_vs_batch(r), "batch size (rows", "rows/s"),
    ("latency_vs_batch", lambda r: F.latency_vs_batch(r), "batch size (rows", "µs"),
    ("violin", lambda r: F.latency_distribution(r, kind="violin"), "variant", "µs"),
    ("box", lambda r: F.latency_distribution(r, kind="box"), "variant", "µs"),
    ("ecdf", lambda r: F.latency_distribution(r, kind="ecdf"), "µs", "fraction"),
    ("size", lambda r: F.model_size(r), "variant", "MB"),
    ("drift_histogram", lambda r: F.drift_histogram(r), "absolute score difference", "%"),
    ("drift_scatter", lambda r: F.drift_scatter(r, "int8"), "probability", "probability"),
    ("pareto", lambda r: F.pareto(r, 1), "µs", "absolute score difference"),
]


@pytest.mark.parametrize(
    ("name", "build", "x_unit", "y_unit"), BUILDERS_AND_UNITS, ids=[b[0] for b in BUILDERS_AND_UNITS]
)
def test_builders_return_figures_with_unit_axis_titles(report, name, build, x_unit, y_unit):
    fig = build(report)
    assert isinstance(fig, go.Figure)
    assert fig.data, f"{name} drew nothing"
    x_title, y_title = _axis_titles(fig)
    assert x_unit in x_title
    assert y_unit in y_title
    assert fig.layout.title.text


def test_all_figures_titles_and_axes(report):
    figs = F.all_figures(report)
    assert {"Throughput vs batch size", "Model size", "Drift distribution", "Native vs int8 scores"} <= set(
        figs
    )
    for fig in figs.values():
        x_title, y_title = _axis_titles(fig)
        assert x_title and y_title


def test_one_colour_per_variant_across_all_figures(report):
    colors = F.variant_colors(report)
    assert colors["native"] == F.NATIVE_COLOR
    assert len(set(colors.values())) == len(colors)
    seen = 0
    for fig in F.all_figures(report).values():
        for trace in fig.data:
            variant = (trace.meta or {}).get("variant") if isinstance(trace.meta, dict) else None
            if variant is None or not report.variant(variant).applicable:
                continue
            assert _trace_color(trace) == colors[variant], (fig.layout.title.text, variant)
            seen += 1
    assert seen > 10


def test_colours_are_stable_across_reports():
    full = F.variant_colors(make_report(with_latency=False))
    partial = F.variant_colors(make_report(with_latency=False, variants=("native", "int8")))
    assert partial["int8"] == full["int8"]
    assert partial["native"] == full["native"]


def test_crossover_marked_when_native_wins_at_large_batches():
    r = make_report(native_wins_large_batch=True)
    c = S.crossover(r)
    assert c is not None and len(c.batch_sizes) == 1
    assert 64 < c.batch_sizes[0] < 1024
    assert (c.faster_first, c.faster_last) == ("fp32", "native")
    fig = F.throughput_vs_batch(r)
    assert [s.name for s in fig.layout.shapes] == ["crossover"]
    assert any(a.name == "crossover" for a in fig.layout.annotations)
    # Annotations on log axes take log10 of the position.
    ann = next(a for a in fig.layout.annotations if a.name == "crossover")
    assert ann.x == pytest.approx(math.log10(fig.layout.shapes[0].x0))


def test_no_crossover_marker_when_one_side_wins_throughout():
    r = make_report(native_wins_large_batch=False)
    c = S.crossover(r)
    assert c is not None and c.winner_throughout == "fp32"
    fig = F.throughput_vs_batch(r)
    assert not [s for s in fig.layout.shapes if s.name == "crossover"]
    assert "fp32 is faster than native at every measured batch size" in fig.layout.title.text


def test_throughput_has_dashed_floor_in_rows_per_s(report):
    fig = F.throughput_vs_batch(report)
    floor = next(t for t in fig.data if t.name.startswith("ORT floor"))
    assert floor.line.dash == "dash"
    first = min(report.runtime_floor, key=lambda r: r.batch_size)
    assert floor.y[0] == pytest.approx(first.batch_size / (first.p50_us * 1e-6))
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"


def test_latency_distribution_dropdown_per_batch_size(report):
    fig = F.latency_distribution(report)
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["batch 1", "batch 64", "batch 1,024"]
    for button in buttons:
        assert len(button.args[0]["visible"]) == len(fig.data)
    assert sum(bool(t.visible) for t in fig.data) == 3  # native, fp32, int8 at batch 1
    one = F.latency_distribution(report, batch_size=64, kind="box")
    assert not one.layout.updatemenus and {t.meta["batch_size"] for t in one.data} == {64}
    assert all(len(t.y) <= F.MAX_POINTS for t in one.data)
    with pytest.raises(ValueError):
        F.latency_distribution(report, kind="histogram")  # type: ignore[arg-type]


def test_latency_hover_names_variant_batch_calls_and_percentiles(report):
    fig = F.throughput_vs_batch(report)
    text = fig.data[0].text[0]
    for word in ("native", "batch size", "calls", "p50", "p99"):
        assert word in text


def test_model_size_greys_out_variants_that_do_not_apply(report):
    fig = F.model_size(report)
    fp16 = next(t for t in fig.data if t.name == "fp16")
    assert _trace_color(fp16) == F.NOT_APPLICABLE_COLOR
    assert "n/a: fp16 does not apply" in fp16.hovertemplate
    int8 = next(t for t in fig.data if t.name == "int8")
    assert "3.85× smaller than fp32" in int8.text[0]


def test_drift_histogram_handles_zeros_and_non_finite_values(report):
    int8 = report.variant("int8")
    odd = dataclasses.replace(
        int8, drift_detail=DriftDetail(abs_diff_sample=(0.0, 0.0, 1e-7, 1e-3, math.inf))
    )
    r = dataclasses.replace(report, variants=(report.variant("native"), odd))
    fig = F.drift_histogram(r)
    (trace,) = fig.data
    assert "1 non-finite" in trace.name
    assert min(trace.x) <= F.ZERO_FLOOR
    assert sum(trace.customdata[:-1, 2]) == 4
    assert f"{F.ZERO_FLOOR:g}" in fig.layout.xaxis.title.text


def test_drift_scatter_has_identity_line_and_regression_units():
    r = make_report("regression")
    fig = F.drift_scatter(r, "int8")
    assert any(t.name.startswith("y = x") for t in fig.data)
    assert "target units" in fig.layout.xaxis.title.text
    assert not F.drift_scatter(r, "no-such-variant").data


def test_pareto_marks_front_recommendation_and_tuning(report):
    fig = F.pareto(report, 1)
    names = [t.name for t in fig.data]
    assert {"native", "fp32", "int8", "Pareto front", "recommended", "tuning candidates"} <= set(names)
    assert names.count("recommended") == 1  # one star for the recommended configuration, not two
    native = next(t for t in fig.data if t.name == "native")
    assert native.y[0] == F.ZERO_FLOOR


def test_the_pareto_front_runs_through_every_plotted_point_including_tuning_candidates(report):
    """Regression: the front joined only the variants' points while plotted candidates beat them."""
    fig = F.pareto(report, 1)
    points = [(x, y) for t in fig.data if t.name not in ("Pareto front",) and t.mode and "markers" in t.mode
              for x, y in zip(t.x, t.y, strict=True)]
    front = next(t for t in fig.data if t.name == "Pareto front")
    on_front = list(zip(front.x, front.y, strict=True))
    for x, y in points:  # nothing plotted beats a front point on both axes
        assert not any(x < fx and y < fy for fx, fy in on_front), (x, y)
    untuned = F.pareto(make_report(), 1)
    assert len(next(t for t in untuned.data if t.name == "Pareto front").x) == 2  # fp32 fast, native no drift


def test_pareto_falls_back_to_a_measured_batch_size():
    r = make_report(batch_sizes=(8, 256))
    fig = F.pareto(r, 1)
    assert "batch 8" in fig.layout.title.text and fig.data


def test_worst_samples_table_uses_feature_names(report):
    df = S.worst_samples_table(report, "int8")
    assert isinstance(df, pd.DataFrame) and len(df) == 10
    assert list(df.columns[:5]) == ["data row", "abs diff", "native score", "variant score", "label flip"]
    worst = max(report.variant("int8").drift_detail.worst, key=lambda w: w.abs_diff)
    assert df["data row"].iloc[0] == worst.row + 1  # 1-based, as the CSV errors count rows
    assert list(df.columns[5:]) == ["age", "income", "score", "tenure"]
    assert df["abs diff"].is_monotonic_decreasing
    r = dataclasses.replace(report, model={**report.model, "feature_names": None})
    assert list(S.worst_samples_table(r, "int8").columns[5:]) == ["f0", "f1", "f2", "f3"]
    multi = S.worst_samples_table(make_report("multiclass"), "int8")
    assert "class" in multi.columns
    assert "label flip" not in S.worst_samples_table(make_report("regression"), "int8").columns
    assert S.worst_samples_table(report, "fp16").empty


def test_metric_deltas(report):
    df = S.metric_deltas(report).set_index("variant")
    assert list(df.index) == ["native", "fp32", "int8"]
    assert df.loc["native", "Δ accuracy"] == 0
    assert df.loc["int8", "Δ accuracy"] < 0
    assert df.loc["int8", "accuracy"] == pytest.approx(report.variant("int8").metrics["accuracy"])
    assert S.metric_deltas(make_report("regression")).columns.tolist()[:3] == ["variant", "rmse", "Δ rmse"]


def test_headline_strings(report):
    h = S.headline(report)
    assert list(h) == list(S.HEADLINE_LABELS.values())
    values = S.headline_values(report)
    native, fp32 = report.variant("native").latency_at(1), report.variant("fp32").latency_at(1)
    assert values["speedup_batch1"] == pytest.approx(native.p50_us / fp32.p50_us)
    assert (
        h["Speedup at batch 1"].startswith(f"{values['speedup_batch1']:.2f}×")
        and "fp32" in h["Speedup at batch 1"]
    )
    assert "rows/s" in h["Best throughput"] and "batch" in h["Best throughput"]
    assert h["Size reduction"].startswith("3.85×") and "int8" in h["Size reduction"]
    assert "int8" in h["Largest drift"]
    assert "int8" in h["Label flips"] and "%" in h["Label flips"]


def test_headline_says_na_instead_of_inventing():
    h = S.headline(make_report("regression", with_latency=False))
    assert h["Speedup at batch 1"] == "n/a"
    assert h["Best throughput"] == "n/a"
    assert h["Label flips"].startswith("n/a")
    h = S.headline(make_report(variants=("native",)))
    assert h["Speedup at batch 1"] == h["Size reduction"] == h["Largest drift"] == "n/a"
    only_fp32 = S.headline(make_report(variants=("native", "fp32")))
    assert "fp32" in only_fp32["Size reduction"] and "native" in only_fp32["Size reduction"]


PARTIAL = {
    "no_latency": dict(with_latency=False),
    "native_fp32_only": dict(variants=("native", "fp32")),
    "native_only": dict(variants=("native",)),
    "regression": dict(task="regression"),
    "multiclass": dict(task="multiclass"),
    "empty_samples": dict(with_samples=False),
    "no_drift": dict(with_drift=False, with_recommendation=False, with_floor=False),
    "only_not_applicable": dict(variants=("fp16",)),
    "single_batch": dict(batch_sizes=(32,)),
}


@pytest.mark.parametrize("kwargs", PARTIAL.values(), ids=PARTIAL.keys())
def test_partial_reports_do_not_crash(kwargs):
    r = Report.from_json(make_report(**kwargs).to_json())  # as the history and shared links read it back
    S.headline(r)
    for _, build, _, _ in BUILDERS_AND_UNITS:
        assert isinstance(build(r), go.Figure)
    S.worst_samples_table(r, "int8")
    S.metric_deltas(r)
    for fig in F.all_figures(r).values():
        assert fig.data


def test_empty_figures_say_why():
    fig = F.throughput_vs_batch(make_report(with_latency=False))
    assert not fig.data
    assert "No latency" in fig.layout.annotations[0].text
    assert fig.layout.xaxis.title.text  # axes still titled


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            if k not in ("meta", "legendgroup"):  # identifiers, never rendered
                yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def test_report_strings_are_escaped_for_plotly(report):
    hostile = dataclasses.replace(report.variant("int8"), name="<img src=x onerror=alert(1)>")
    r = dataclasses.replace(report, variants=(*report.variants[:-1], hostile))
    rendered = [s for fig in F.all_figures(r).values() for s in _strings(fig.to_plotly_json())]
    assert not [s for s in rendered if "<img" in s]
    assert any("&lt;img src=x onerror=alert(1)&gt;" in s for s in rendered)


def test_fmt_drift_names_the_metric_only_when_it_is_relative():
    from optimizer_core.report import DriftStats

    base = DriftStats(rows=3, max_abs=2e-4, mean_abs=1e-4, p99_abs=2e-4, max_rel=3e-7, label_flips=None,
                      label_flip_rate=None, above_thresholds={}, tolerance=1e-4, passed=True)
    assert fmt_drift(base) == "2.00e-04"
    assert fmt_drift(dataclasses.replace(base, metric="max_rel")) == "3.00e-07 relative (2.00e-04 absolute)"


def test_provider_text_names_a_fallback_even_when_auto_was_requested():
    report = make_report()
    fp32 = next(v for v in report.variants if v.precision == "fp32")
    settings = {**(fp32.session_settings or {}), "provider_resolved": "CUDAExecutionProvider"}
    fell = dataclasses.replace(fp32, provider_requested="auto", provider_used="CPUExecutionProvider",
                               session_settings=settings)
    assert provider_text(fell) == "CPUExecutionProvider (fell back from CUDAExecutionProvider)"
    ran = dataclasses.replace(fell, session_settings={**settings, "provider_resolved": "CPUExecutionProvider"})
    assert provider_text(ran) == "CPUExecutionProvider"
    native = next(v for v in report.variants if v.precision == "native")
    assert provider_text(native).endswith("(own runtime)")


def test_throughput_verdict_follows_p50_like_the_recommendation():
    # native's mean is dragged down by a few slow calls while its median is faster: the chart's verdict and
    # the recommendation (p50) must agree
    report = make_report(variants=("native", "fp32"), native_wins_large_batch=True)
    native, fp32 = report.variants
    slow_mean = tuple(dataclasses.replace(s, rows_per_s=s.rows_per_s / 100) for s in native.latency)
    report = dataclasses.replace(report, variants=(dataclasses.replace(native, latency=slow_mean), fp32))
    c = S.crossover(report)
    largest = max(s.batch_size for s in native.latency)
    native_p50 = next(s.p50_us for s in native.latency if s.batch_size == largest)
    fp32_p50 = next(s.p50_us for s in fp32.latency if s.batch_size == largest)
    assert native_p50 < fp32_p50  # the factory's native wins at the largest batch by p50
    assert c.faster_last == "native"
    fig = F.throughput_vs_batch(report)
    trace = next(t for t in fig.data if t.meta and t.meta.get("variant") == "native")
    assert trace.y[-1] == pytest.approx(largest / (native_p50 * 1e-6))


def _fastest_everywhere(report: Report, name: str) -> Report:
    """``report`` with variant ``name`` 100x faster than it was at every batch size."""
    return dataclasses.replace(report, variants=tuple(
        dataclasses.replace(v, latency=tuple(dataclasses.replace(r, p50_us=r.p50_us / 100, rows_per_s_p50=None)
                                             for r in v.latency)) if v.name == name else v
        for v in report.variants))


def test_best_throughput_headline_skips_variants_over_the_drift_tolerance():
    report = _fastest_everywhere(make_report(), "fp32")
    assert report.variant("fp32").drift.value <= S.report_tolerance(report)
    assert S.headline_values(report)["best_throughput_variant"] == "fp32"
    fp32 = report.variant("fp32")
    drifting = dataclasses.replace(fp32, drift=dataclasses.replace(fp32.drift, max_abs=0.05, metric="max_abs"))
    over = dataclasses.replace(report, variants=tuple(drifting if v.name == "fp32" else v for v in report.variants))
    assert S.headline_values(over)["best_throughput_variant"] != "fp32"


def test_violin_density_is_estimated_on_log_latency_with_ticks_in_microseconds():
    report = make_report()
    fig = F.latency_distribution(report, kind="violin")
    trace = next(t for t in fig.data if t.visible)
    row = next(v for v in report.variants if v.name == trace.meta["variant"]).latency_at(trace.meta["batch_size"])
    assert max(trace.y) == pytest.approx(math.log10(max(row.samples_us)))
    assert fig.layout.yaxis.type == "linear"
    assert all(text.endswith(("µs", "ms")) for text in fig.layout.yaxis.ticktext)
    assert trace.box.line.color != trace.line.color  # the inner box stays visible on the fill


def test_best_throughput_uses_the_tolerance_the_recommendation_used():
    report = _fastest_everywhere(make_report(), "fp32")
    fp32 = report.variant("fp32")
    drifting = dataclasses.replace(fp32, drift=dataclasses.replace(fp32.drift, max_abs=0.05, metric="max_abs"))
    report = dataclasses.replace(report, variants=tuple(drifting if v.name == "fp32" else v for v in report.variants))
    assert S.headline_values(report)["best_throughput_variant"] != "fp32"  # over the default 1e-4
    loose = dataclasses.replace(report, recommendation=dataclasses.replace(report.recommendation, tolerance=0.1))
    assert S.headline_values(loose)["best_throughput_variant"] == "fp32"  # within the run's 0.1


def test_log_axes_label_the_measured_batch_sizes_and_only_decades():
    report = make_report()
    for fig in (F.latency_vs_batch(report), F.throughput_vs_batch(report)):
        assert list(fig.layout.xaxis.tickvals) == [float(b) for b in S.batch_sizes(report)]
        assert fig.layout.yaxis.dtick in (1, None)  # decades only when the values span two decades or more
    assert F.throughput_vs_batch(report).layout.yaxis.dtick == 1


def test_headline_drift_for_a_regressor_is_the_relative_metric_the_gate_uses():
    """Regression: the 'Largest drift' card showed the absolute difference (1.00e-04) for a regressor whose
    gate, table and recommendation used the relative one (4.2e-07)."""
    report = make_report("regression")
    values = S.headline_values(report)
    worst = max((v for v in report.variants if v.precision != "native" and v.drift), key=lambda v: v.drift.value)
    assert values["max_drift_metric"] == "relative"
    assert values["max_drift"] == worst.drift.value == worst.drift.max_rel
    assert "relative" in S.headline(report)["Largest drift"]
    assert S.headline(report)["Best throughput"].split(" (")[0].endswith("at p50")


def test_a_tuned_run_headlines_against_the_fastest_native_configuration():
    """Regression: the headline and the tuning table compared against native at default threads (28 ms on a
    busy machine: '1,882x') while the recommendation used native t1 (140 µs: '22x')."""
    from optimizer_core.report import Recommendation

    def row(name, precision, batch, p50, drift=0.0):
        return {"name": name, "variant": "native" if precision == "native" else precision, "precision": precision,
                "batch_size": batch, "p50_us": p50, "calls": 500, "max_abs": drift, "drift": drift,
                "final": True, "settings": {}, "is_default": False}

    candidates = [row("native", "native", 1, 28_000.0), row("native t1", "native", 1, 140.0),
                  row("fp32 t1", "fp32", 1, 6.2, 1e-7), row("native", "native", 256, 30_000.0),
                  row("native t1", "native", 256, 450.0), row("fp32 t1", "fp32", 256, 700.0, 1e-7)]
    rec = Recommendation(by_batch_size={"1": "fp32", "256": "native"}, reason="test",
                         configuration_by_batch_size={"1": "fp32 t1", "256": "native t1"}, tolerance=1e-4)
    report = dataclasses.replace(make_report(), tuning={"candidates": candidates}, recommendation=rec)
    h = S.headline_values(report)
    assert h["speedup_batch1"] == pytest.approx(140.0 / 6.2)
    assert h["speedup_baseline"] == "native t1" and h["speedup_configuration"] == "fp32 t1"
    assert h["best_throughput_configuration"] == "native t1" and h["best_throughput_batch"] == 256
    assert S.headline_values(report)["speedup_noisy"] is False
    thin = dataclasses.replace(report, tuning={"candidates": [
        {**c, "calls": 3} if c["name"] == "native t1" and c["batch_size"] == 1 else c for c in candidates]})
    assert S.headline_values(thin)["speedup_noisy"] is True  # a baseline resting on 3 calls
    table = tuning_table(report)
    assert table.loc[table["batch size"] == 1, "speedup vs best native"].item() == f"{140.0 / 6.2:.2f}x"
    assert table.loc[table["batch size"] == 256, "speedup vs best native"].item() == "1.00x"


def test_small_models_get_a_size_axis_in_kb_and_growth_is_not_called_a_reduction():
    """Regression: a 700-byte model's axis read '700µ' MB, and fp16 2.2x larger showed as 'Size reduction 0.45x'."""
    base = make_report()
    variants = tuple(dataclasses.replace(v, size_bytes={"native": 900, "fp32": 700}.get(v.name, 1_560))
                     if v.size_bytes else v for v in base.variants)
    report = dataclasses.replace(base, variants=variants)
    assert F.model_size(report).layout.yaxis.title.text == "model size (kB)"
    # nothing smaller than fp32: fp32 against the native file, whichever larger precisions were ticked
    text = S.headline(report)["Size reduction"]
    assert text == "1.29× (fp32 700 B vs native 900 B)"
    only_fp32 = dataclasses.replace(report, variants=tuple(v for v in variants if v.precision in ("native", "fp32")))
    assert S.headline(only_fp32)["Size reduction"] == text
    grown = dataclasses.replace(report, variants=tuple(
        dataclasses.replace(v, size_bytes=500) if v.precision == "native" else v for v in variants))
    assert S.headline(grown)["Size reduction"].startswith("none: no variant is smaller than native")


def test_a_single_batch_size_is_not_drawn_on_the_plot_edge_and_the_floor_shows():
    report = make_report(batch_sizes=(64,))
    fig = F.latency_vs_batch(report)
    low, high = fig.layout.xaxis.range
    assert low < math.log10(64) < high
    floor = next(t for t in fig.data if t.name.startswith("ORT floor"))
    assert "markers" in floor.mode


def test_the_batch1_headline_never_quotes_a_variant_over_the_drift_tolerance():
    """Regression: an untuned run headlined '40x (int8 vs native)' while int8 drifted 0.028, over the 1e-4
    tolerance its own recommendation applied."""
    base = make_report()
    variants = tuple(
        dataclasses.replace(v, latency=tuple(dataclasses.replace(r, p50_us=0.5) if r.batch_size == 1 else r
                                             for r in v.latency)) if v.precision == "int8" else v
        for v in base.variants)
    report = dataclasses.replace(base, variants=variants)
    assert report.variant("int8").drift.value > S.report_tolerance(report)
    h = S.headline_values(report)
    assert h["speedup_variant"] not in (None, "int8")


def test_the_notes_that_change_how_a_run_reads_reach_the_headline_from_their_writers():
    """The warnings next to the headline are picked by how their writers start them: wording one differently
    must not silently drop it."""
    from optimizer_core.machine_load import busy_note

    busy = busy_note(1.2, 2)
    report = dataclasses.replace(make_report(), notes=(busy, "metrics skipped: 'y' is empty on every row",
                                                       "metrics of int8 skipped: it predicts NaN", "an ordinary note"))
    assert S.warning_notes(report) == list(report.notes[:3])
