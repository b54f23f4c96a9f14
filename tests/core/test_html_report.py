from __future__ import annotations

import dataclasses
import html
import re
from html.parser import HTMLParser

import pytest
from plotly.offline import get_plotlyjs

from optimizer_core import summary as S
from optimizer_core.report import Report
from optimizer_core.views import figures as F
from optimizer_core.views.html import render_html

try:
    from tests.core.report_factory import make_report
except ImportError:  # tests/ is not a package: pytest puts this folder on sys.path
    from report_factory import make_report

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


class _Tags(HTMLParser):
    """Start tags with their attributes; script bodies are data, so the plotly bundle is skipped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(text: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(text)
    return parser.tags


def _without_plotly_bundle(text: str) -> str:
    return text.replace(get_plotlyjs(), "", 1)


@pytest.fixture(scope="module")
def report() -> Report:
    return make_report(with_tuning=True)


@pytest.fixture(scope="module")
def page(report) -> str:
    return render_html(report)


def test_plotly_js_is_embedded_once_inline(page, report):
    assert page.count(get_plotlyjs()) == 1
    scripts = [attrs for tag, attrs in _tags(page) if tag == "script"]
    assert all("src" not in attrs for attrs in scripts)
    assert page.count("Plotly.newPlot(") == len(F.all_figures(report))


def test_nothing_is_loaded_from_elsewhere(page):
    for tag, attrs in _tags(page):
        for name in ("src", "href", "srcset", "data", "action"):
            value = (attrs.get(name) or "").strip().lower()
            assert not value.startswith(("http:", "https:", "//")), (tag, name, value)
        assert tag not in ("link", "iframe", "object", "embed", "base")
    rest = _without_plotly_bundle(page)
    for pattern in (
        r"src\s*=\s*[\"']?\s*https?:",
        r"href\s*=\s*[\"']?\s*https?:",
        r"//cdn",
        r"@import",
        r"url\(",
    ):
        assert not re.search(pattern, rest, re.IGNORECASE), pattern
    assert "default-src 'none'" in page  # the browser is told too


def test_header_and_sections(page, report):
    for text in (
        "XGBClassifier",
        "xgboost",
        "binary",
        "age, income, score, tenure",
        "synthetic.csv",
        "400",
        "1.20.1",
        "Synthetic CPU @ 3.0GHz",
        "CPUExecutionProvider",
        "Headline",
        "Recommendation",
        "Variants",
        "Runtime floor",
        "Figures",
        report.recommendation.reason,
        report.explanations[0],
    ):
        assert html.escape(text) in page, text
    for value in S.headline(report).values():
        assert html.escape(value) in page


def test_every_variant_is_in_the_page(page, report):
    for v in report.variants:
        assert f"{v.name}</td>" in page
    assert "fp16 does not apply" in page
    assert 'class="na"' in page  # the inapplicable variant is greyed


def test_hostile_strings_are_escaped():
    r = make_report(estimator=HOSTILE)
    int8 = dataclasses.replace(r.variant("int8"), name=f"int8 {HOSTILE}", notes=(f"note {HOSTILE}",))
    r = dataclasses.replace(
        r,
        variants=(*r.variants[:-1], int8),
        model={**r.model, "feature_names": ["age", HOSTILE, "score", "tenure"]},
        explanations=(f"why {HOSTILE}",),
        notes=(HOSTILE,),
        data={**r.data, "path": f'"><img src=x onerror=alert(1)>{HOSTILE}'},
    )
    page = render_html(r)
    rest = _without_plotly_bundle(page)
    assert HOSTILE not in rest
    assert "<img" not in rest
    assert rest.count(ESCAPED) >= 6
    assert [tag for tag, _ in _tags(page)].count("script") == 1 + len(F.all_figures(r))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(task="regression"),
        dict(with_latency=False),
        dict(variants=("native", "fp32")),
        dict(with_samples=False, with_recommendation=False, with_floor=False),
        dict(variants=("fp16",)),
    ],
    ids=["regression", "no_latency", "native_fp32", "bare", "nothing_applies"],
)
def test_partial_reports_render(kwargs):
    r = make_report(**kwargs)
    page = render_html(r)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    for v in r.variants:
        assert v.name in page
    if not kwargs.get("with_recommendation", True) or not kwargs.get("with_latency", True):
        assert "No recommendation" in page


def test_no_false_fallback_badge_when_auto_resolves_to_cpu():
    import dataclasses

    from optimizer_core.views.html import render_html

    report = make_report()
    settings = {"provider_resolved": "CPUExecutionProvider"}
    auto = tuple(dataclasses.replace(v, provider_requested="auto", provider_used="CPUExecutionProvider",
                                     session_settings=settings) if v.precision == "fp32" else v
                 for v in report.variants)
    assert 'title="provider fell back"' not in render_html(dataclasses.replace(report, variants=auto))
    cuda = tuple(dataclasses.replace(v, provider_requested="cuda", provider_used="CPUExecutionProvider",
                                     session_settings={"provider_resolved": "CUDAExecutionProvider"})
                 if v.precision == "fp32" else v for v in report.variants)
    assert 'title="provider fell back"' in render_html(dataclasses.replace(report, variants=cuda))


def test_regressor_drift_cell_shows_the_relative_drift_the_tolerance_checks():
    report = make_report("regression")
    target = next(v for v in report.variants if v.drift is not None and v.precision != "native")
    drift = dataclasses.replace(target.drift, metric="max_rel", max_abs=2.5e-4, max_rel=1.5e-6)
    variants = tuple(dataclasses.replace(v, drift=drift) if v is target else v for v in report.variants)
    text = render_html(dataclasses.replace(report, variants=variants))
    assert "1.50e-06 relative (2.50e-04 absolute)" in text
    assert "max drift vs native" in text


def test_caveats_sit_next_to_the_headline():
    """Regression: report.html headlined '1311.76x' with no noisy mark, the busy-machine warning only at the
    bottom of the page."""

    base = make_report()
    busy = "the machine was busy while timing: other processes kept about 1.2 of its 2 cores busy"
    variants = tuple(
        dataclasses.replace(v, latency=tuple(dataclasses.replace(r, noisy=True) for r in v.latency))
        if v.precision == "native" else v for v in base.variants)
    report = dataclasses.replace(base, notes=(*base.notes, busy), variants=variants)
    html = render_html(report)
    headline = html[html.index('id="headline"'):html.index('id="recommendation"')]
    assert busy in headline
    assert "· noisy" in headline


def test_a_variant_predicting_nan_where_native_does_not_renders_after_a_json_round_trip():
    """Regression: a binary report whose int8 variant predicted NaN on a row crashed report.html and the
    worst-rows table once read back from JSON (the worker hands every run back that way)."""
    import math

    from optimizer_core.report import DriftStats, Report, WorstRow

    base = make_report("binary")
    unbounded = DriftStats(rows=10, max_abs=math.inf, mean_abs=math.inf, p99_abs=math.inf, max_rel=math.inf,
                           label_flips=1, label_flip_rate=0.1)
    bad_row = WorstRow(row=3, abs_diff=math.inf, native=(0.2, 0.8), variant=(math.nan, math.nan),
                       features=(1.0, 2.0, 3.0, 4.0))
    variants = tuple(
        dataclasses.replace(v, drift=unbounded,
                            drift_detail=dataclasses.replace(v.drift_detail, worst=(bad_row, *v.drift_detail.worst)))
        if v.precision == "int8" else v for v in base.variants)
    back = Report.from_json(dataclasses.replace(base, variants=variants).to_json())
    table = S.worst_samples_table(back, "int8")
    assert table.iloc[0]["data row"] == 4 and table.iloc[0]["label flip"] is None
    assert "unbounded" in render_html(back)


def test_variant_notes_sit_below_the_variants_table_not_in_a_column():
    """A notes column squeezed beside a dozen others made rows hundreds of pixels tall (QA round 2)."""
    base = make_report()
    fp32 = dataclasses.replace(base.variant("fp32"), notes=("a long note about this variant's graph",))
    report = dataclasses.replace(base, variants=tuple(fp32 if v.name == "fp32" else v for v in base.variants))
    page = render_html(report)
    section = page[page.index('id="variants"'):]
    table, after = section.split("</table>", 1)
    assert "a long note about this variant" not in table
    assert "<th>notes</th>" not in table
    assert "Notes per variant" in after.split("</section>", 1)[0]
    assert "a long note about this variant" in after.split("</section>", 1)[0]
