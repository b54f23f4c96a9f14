"""The headline compares the whole model's variants; truncated ensembles (--trees) are summarized apart, and the
"where each variant wins" lines put the whole model first and mark each truncated line with its cost."""

from __future__ import annotations

import dataclasses

from optimizer_core import summary as S
from optimizer_core.views.cli_table import format_summary
from optimizer_core.views.html import render_html
from optimizer_core.views.notebook import report_html
from optimizer_core.views.text import EXPLANATIONS_HEADING
from tests.core.tree_report_factory import make_tree_report


def test_headline_values_never_name_a_truncated_variant():
    report = make_tree_report()  # rounds-25 is the smallest, fastest, most drifting: it must not be quoted
    h = S.headline_values(report)
    quoted = [h[k] for k in ("speedup_variant", "best_throughput_variant", "size_variant", "max_drift_variant",
                             "label_flip_variant")]
    assert not any(str(name).startswith("rounds-") for name in quoted if name), quoted
    assert h["max_drift_variant"] == "fp32" and h["max_drift"] < 0.01
    c = S.crossover(report)
    assert c is not None and c.onnx == "fp32"
    assert all("rounds-" not in v for v in S.headline(report).values())


def test_truncation_headline_names_the_fewest_trees_within_the_metric_tolerance():
    line = S.truncation_headline(make_tree_report(max_metric_loss=0.002))  # rounds-50 loses 0.0015, -25 0.012
    assert line is not None and line.startswith("Fewer trees: rounds-50 (50 of 100 trees)")
    assert "ROC AUC within 0.0015" in line and "faster than fp32 at" in line and "rows" in line


def test_truncation_headline_says_none_is_within_the_drift_tolerance_with_the_closest_cost():
    line = S.truncation_headline(make_tree_report())  # drift alone (1e-4): every cut drifts more
    assert line is not None and "none of the 3 truncated variants is within" in line
    assert "rounds-75" in line and "loses 0.0004 ROC AUC" in line and "drifts 0.01 (tolerance 0.0001)" in line


def test_no_truncation_no_line():
    from tests.core.report_factory import make_report

    assert S.truncation_headline(make_report("binary")) is None


def _with_explanations(report):
    lines = ("batch 1: rounds-25 is 40.0x faster than native (p50 1.0 µs vs 40 µs)",
             "batch 1: fp16 is 2.0x slower than native; likely cause: fp16 has few CPU kernels")
    return dataclasses.replace(report, explanations=lines)


def test_variant_explanations_list_the_whole_model_first_and_mark_the_cut_ones():
    report = _with_explanations(make_tree_report())
    lines = S.variant_explanations(report)
    cut = [i for i, line in enumerate(lines) if "rounds-25" in line]
    full = [i for i, line in enumerate(lines) if "rounds-" not in line]
    assert full and cut
    for i in cut:  # by batch size, the whole model's lines first within one
        batch = lines[i].split(":")[0]
        assert all(j < i for j in full if lines[j].split(":")[0] == batch)
    assert any(line.startswith("batch 1: fp32 is") and "faster than native" in line for line in lines)
    assert "rounds-25 has fewer trees (25 of 100)" in lines[cut[0]]
    assert "loses 0.012 ROC AUC" in lines[cut[0]] and "drifts 0.2" in lines[cut[0]]
    assert "over the run's tolerance, not recommended" in lines[cut[0]]


def test_every_view_shows_the_line_and_the_matching_heading():
    report = _with_explanations(make_tree_report())
    line = S.truncation_headline(report)
    html = render_html(report)
    assert EXPLANATIONS_HEADING in html and "Why some variants are slower<" not in html
    assert "rounds-25 is faster than native at every" not in html
    import html as h

    assert h.escape(line) in html  # type: ignore[arg-type]
    assert h.escape(line) in report_html(report, figures=False)  # type: ignore[arg-type]
    assert line in format_summary(report)  # type: ignore[operator]


def test_a_delta_of_rounding_noise_reads_as_no_change_everywhere():
    # QA: rounds-150 showed "-1.11e-16" / "-0.0000" ROC AUC against native when its ROC AUC was the same
    from optimizer_core.units import clean_delta, fmt_delta
    from optimizer_core.views.tables import truncation_table

    assert fmt_delta(-1.1102230246251565e-16) == "±0" and clean_delta(-1e-13) == 0.0
    assert fmt_delta(-0.0038667) == "-0.0039" and fmt_delta(2e-6) == "+2.0e-06" and fmt_delta(None) == "n/a"
    report = make_tree_report()
    fp32 = report.variant("fp32")
    native_auc = report.native.metrics["roc_auc"]  # type: ignore[union-attr]
    noisy = dataclasses.replace(fp32, metric_delta=-1.1102230246251565e-16,  # type: ignore[arg-type]
                                metrics={**fp32.metrics, "roc_auc": native_auc - 1.1102230246251565e-16})  # type: ignore[union-attr]
    report = dataclasses.replace(report, variants=tuple(noisy if v.name == "fp32" else v for v in report.variants))
    deltas = S.metric_deltas(report).set_index("variant")
    assert deltas.loc["fp32", "Δ roc_auc"] == 0.0
    assert truncation_table(report, 64).set_index("variant").loc["fp32", "Δ ROC AUC"] == "±0"
    assert "-0.0000" not in format_summary(report) and "e-16" not in format_summary(report)


def test_every_variant_gets_a_colour_far_from_every_other():
    from itertools import combinations

    from optimizer_core.views.figures.common import NATIVE_COLOR, variant_colors

    colors = variant_colors(make_tree_report())  # fp32, fp16, three truncated variants, native

    def rgb(h: str) -> tuple[int, ...]:
        return tuple(int(h[i:i + 2], 16) for i in (1, 3, 5))

    assert len(set(colors.values())) == len(colors)
    for a, b in combinations([*colors.values(), NATIVE_COLOR], 2):
        if a != b:
            assert sum((x - y) ** 2 for x, y in zip(rgb(a), rgb(b), strict=True)) ** 0.5 >= 75, (a, b)
