"""Shared rendering of a Report: the Optimize page's results and the History page's stored runs.

Widgets in, figures out: every chart comes from :mod:`optimizer_core.views.figures` (the same builders as
report.html); this module only lays them out and formats values that are already in the Report.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import state
from optimizer_core import summary as S
from optimizer_core.data import METRICS_SKIPPED
from optimizer_core.report import Report, VariantResult
from optimizer_core.tradeoffs import has_truncation, metric_tolerance, primary_metric
from optimizer_core.units import fmt_delta, fmt_diff, fmt_mb, fmt_pct, fmt_rows_per_s, fmt_us
from optimizer_core.views import figures as F
from optimizer_core.views.tables import truncation_table, tuning_table
from optimizer_core.views.text import EXPLANATIONS_HEADING, fmt_drift, provider_text

_PLOT_CONFIG = {"displaylogo": False, "responsive": True}
# Characters that Markdown (CommonMark, GFM and Streamlit's additions: LaTeX, :color[...]) may act on; a
# backslash in front of any ASCII punctuation shows it as it is.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~$])")
_MD_LINE_START = re.compile(r"^([-+])")
_KINDS = {"violin": "Violin", "box": "Box", "ecdf": "ECDF"}


def md_escape(text: object) -> str:
    """User-provided text (file, column and model names, and core messages that quote them) as Markdown that
    shows it literally: ``**x**`` stays ``**x**`` in st.markdown, st.caption, st.info and the like. Not for
    inside backticks (a code span shows backslashes)."""
    flat = " ".join(str(text).splitlines())
    # a word joiner after "://" and "www." keeps Markdown from turning a name into a link (whose escapes would
    # then show as backslashes)
    flat = flat.replace("://", ":\u2060//").replace("www.", "www\u2060.")
    return _MD_LINE_START.sub(r"\\\1", _MD_SPECIAL.sub(r"\\\1", flat))


def chart(fig: Any, *, key: str) -> None:
    """A core figure, full width, with the figure's own colours (same as report.html)."""
    st.plotly_chart(fig, width="stretch", theme=None, key=key, config=_PLOT_CONFIG)


# --------------------------------------------------------------------------- header and headline


def run_caption(report: Report, model_name: str | None = None) -> str:
    m, d = report.model, report.data
    decision = "decision scores" if m.get("scores") == "decision" else None  # not probabilities: say so
    what = " · ".join(md_escape(x) for x in (m.get("estimator"), m.get("family"), m.get("task"), decision) if x)
    rows = d.get("rows")
    parts = [
        f"**{md_escape(model_name)}**" if model_name else None,
        what,
        f"{rows:,} rows" if isinstance(rows, int) else None,
        f"target **{md_escape(d['target'])}**" if d.get("target") else "no target column (drift only)",
        f"run `{report.run_id}`",
        report.created_at.replace("T", " ")[:19] + " UTC",
        f"took {report.wall_s:,.1f} s" if report.wall_s is not None else None,
    ]
    return " · ".join(p for p in parts if p)


CARD_WIDTH_PX = 228  # wide enough for every card's value; the cards wrap onto a second line when narrower


def headline_metrics(report: Report) -> None:
    """The five headline numbers as st.metric cards: a short value, what it compares muted below, and
    the exact figures in the help tooltip. Cards have a fixed width and wrap, so nothing is cut off."""
    h = S.headline_values(report)
    with st.container(horizontal=True, wrap=True, gap="small"):
        for label, value, detail, help_text in _headline_cards(report, h):
            st.metric(
                label,
                value,
                delta=detail,
                delta_color="off",
                delta_arrow="off",
                help=help_text,
                border=True,
                width=CARD_WIDTH_PX,
            )
    trees = S.truncation_headline(report)
    if trees:
        st.markdown(md_escape(trees))


def _ratio(x: float) -> str:
    """A ratio short enough for a metric card: 2.83×, 15.6×, 1,948×."""
    if x >= 100:
        return f"{x:,.0f}×"
    return f"{x:.3g}×" if x >= 10 else f"{x:.2f}×"


def _headline_cards(report: Report, h: dict[str, Any]) -> list[tuple[str, str, str | None, str]]:
    return [_speedup_card(h), _throughput_card(h), _size_card(h), _drift_card(h), _flips_card(report, h)]


def _speedup_card(h: dict[str, Any]) -> tuple[str, str, str | None, str]:
    label = S.HEADLINE_LABELS["speedup"]
    x = h["speedup_batch1"]
    if x is None:
        return label, "n/a", "batch 1 not measured", "measure batch size 1 to see it"
    config, baseline = h["speedup_configuration"], h["speedup_baseline"]
    detail = f"{config} vs {baseline}" + (" · native faster" if x < 1 else "")
    return (
        label,
        _ratio(x),
        detail + (" · noisy" if h["speedup_noisy"] else ""),
        f"{x:,.2f}×: p50 latency of {baseline} at batch 1 divided by the fastest ONNX configuration's ({config})"
        + (", both from the auto-tune finalists, measured side by side" if h["speedup_tuned"] else "")
        + ". 'noisy': the calls varied a lot on this machine (see the Latency tab)",
    )


def _throughput_card(h: dict[str, Any]) -> tuple[str, str, str | None, str]:
    label = S.HEADLINE_LABELS["throughput"]
    rate = h["best_rows_per_s"]
    if rate is None:
        return label, "n/a", "no latency measured", "no variant was timed"
    variant, batch = h["best_throughput_configuration"], h["best_throughput_batch"]
    noisy = " · noisy" if h["throughput_noisy"] else ""
    return (
        label,
        _compact_rate(rate),
        f"{variant} · batch {batch:,}{noisy}",
        f"{rate:,.0f} rows/s ({variant} at batch {batch:,}): the highest rows per second at the median call "
        "(batch size ÷ p50 time per call) over every batch size and every variant within the drift tolerance, "
        "the native model at each thread setting timed included",
    )


def _size_card(h: dict[str, Any]) -> tuple[str, str, str | None, str]:
    label = S.HEADLINE_LABELS["size"]
    x = h["size_reduction"]
    if x is None:
        return label, "n/a", "one size only", "needs at least two variants with a size"
    small, base = h["size_variant"], h["size_baseline"]
    if x < 1:
        return (label, "none", f"every variant is larger than {base}",
                f"the smallest other variant, {small} ({fmt_mb(h['size_bytes'])}), is {1 / x:.2f}× larger than "
                f"{base} ({fmt_mb(h['size_baseline_bytes'])})")
    return (
        label,
        _ratio(x),
        f"{small} vs {base}",
        f"{small} is {fmt_mb(h['size_bytes'])}, {base} {fmt_mb(h['size_baseline_bytes'])}: the smallest "
        "variant's file size compared with the fp32 ONNX model (or the native file)",
    )


def _drift_card(h: dict[str, Any]) -> tuple[str, str, str | None, str]:
    label = S.HEADLINE_LABELS["drift"]
    if h["max_drift"] is None:
        return label, "n/a", "no ONNX variant ran", "no drift was measured"
    if h["max_drift_metric"] == "relative":
        return (
            label,
            fmt_diff(h["max_drift"]),
            f"{h['max_drift_variant']} · relative",
            f"{fmt_diff(h['max_drift'])} ({h['max_drift_variant']}): the largest difference between a "
            "variant's predictions and the native model's relative to the prediction (or to the predictions' "
            "RMS where a prediction is smaller), over every row of the CSV; the tolerance and the gate use it. "
            f"Largest absolute difference: {fmt_diff(h['max_drift_abs'])}",
        )
    return (
        label,
        fmt_diff(h["max_drift"]),
        h["max_drift_variant"],
        f"max |score diff| {fmt_diff(h['max_drift'])} ({h['max_drift_variant']}): the largest absolute "
        "difference between a variant's scores and the native model's, over every row of the CSV",
    )


def _flips_card(report: Report, h: dict[str, Any]) -> tuple[str, str, str | None, str]:
    label = S.HEADLINE_LABELS["flips"]
    if h["label_flips"] is None:
        regression = report.model.get("task") == "regression"
        return (
            label,
            "n/a",
            "regression model" if regression else "not measured",
            "label flips apply to classifiers only",
        )
    return (
        label,
        f"{h['label_flips']:,}",
        f"{fmt_pct(h['label_flip_rate'])} · {h['label_flip_variant']}",
        f"{h['label_flips']:,} rows ({fmt_pct(h['label_flip_rate'])}) whose predicted class differs from the "
        f"native model's, for the worst variant ({h['label_flip_variant']})",
    )


def _compact_rate(rate: float) -> str:
    """Rows per second with three significant digits, short enough for a metric card ("1.23M/s")."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if rate >= scale:
            return f"{rate / scale:.3g}{suffix}/s"
    return f"{rate:.3g}/s"


def recommendation(report: Report) -> None:
    rec = report.recommendation
    if rec is None or not rec.by_batch_size:
        st.info("No recommendation: no variant was timed.", icon=":material/info:")
        return
    picks = sorted(rec.configurations().items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else 1 << 62)
    text = " · ".join(
        f"batch **{int(b):,}** → **{name}**" if b.isdigit() else f"{b} → **{name}**" for b, name in picks
    )
    with st.container(border=True):
        st.markdown(f":material/recommend: **Recommendation:** {text}")
        st.caption(rec.reason)
        if report.tuning and report.tuning.get("candidates"):
            st.dataframe(tuning_table(report), hide_index=True, width="stretch")
            if rec.snippet:
                st.caption("Recreate the recommended ONNX Runtime session in production (copy button at the "
                           "top right of the code); it loads the .onnx file the download buttons below save:")
                st.code(rec.snippet, language="python")
        if rec.details or rec.snippet:
            with st.expander("Why, and how to use it"):
                for b, why in sorted(
                    rec.details.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else 0
                ):
                    st.markdown(f"- batch {b}: {why}")
                if rec.snippet and not report.tuning:
                    st.caption("How to use it: recreate the ONNX Runtime session the pick was timed with (it loads "
                               "the .onnx file the download buttons below save; deploy.py in the zip):")
                    st.code(rec.snippet, language="python")


# --------------------------------------------------------------------------- tabs


def _latency_tab(report: Report, key: str) -> None:
    sizes = S.batch_sizes(report)
    if not sizes:
        st.info("No latency was measured in this run.")
        return
    left, right, _ = st.columns([1, 1, 2])
    with left:
        kind = st.segmented_control(
            "Distribution",
            list(_KINDS),
            format_func=_KINDS.__getitem__,
            default="violin",
            required=True,
            key=f"{key}-kind",
        )
    with right:
        batch = st.selectbox(
            "Batch size (rows per call)", sizes, format_func=lambda b: f"{b:,}", key=f"{key}-lat-batch"
        )
    chart(F.latency_distribution(report, batch_size=batch, kind=kind or "violin"), key=f"{key}-lat-dist")
    chart(F.latency_vs_batch(report), key=f"{key}-lat-batch-fig")
    st.caption(
        "Each call runs one batch; latency is wall time per call. Error bars: 95% confidence interval "
        "of the p50. The dashed line is ONNX Runtime's floor: a trivial graph with the same input "
        "shape, the least any ONNX variant can cost."
    )
    st.dataframe(
        latency_table(report),
        hide_index=True,
        key=f"{key}-lat-table",
        column_config={
            "batch size": st.column_config.NumberColumn(format="localized"),
            "calls": st.column_config.NumberColumn(format="localized"),
            "noisy": st.column_config.CheckboxColumn(
                help="the timings of this row vary a lot: compare with care"
            ),
        },
    )
    noisy = _noise_notes(report)
    if noisy:
        with st.expander(f"Why {len(noisy)} measurement{'s are' if len(noisy) > 1 else ' is'} flagged noisy"):
            st.markdown("\n".join(noisy))
            st.caption(
                "Other processes on this machine, CPU frequency changes or a short budget make timings "
                "noisy; a longer budget on a quiet machine narrows them."
            )


def latency_table(report: Report) -> pd.DataFrame:
    records = []
    for v in S.measured_variants(report, with_configurations=True):
        for r in sorted(v.latency, key=lambda r: r.batch_size):
            records.append(
                {
                    "variant": v.name,
                    "batch size": r.batch_size,
                    "calls": r.calls,
                    "p50": fmt_us(r.p50_us),
                    "p90": fmt_us(r.p90_us),
                    "p99": fmt_us(r.p99_us) if r.p99_us is not None else f"n/a ({r.calls} calls)",
                    "throughput at p50": fmt_rows_per_s(S.p50_rows_per_s(r)),
                    "throughput at mean": fmt_rows_per_s(r.rows_per_s),
                    "noisy": bool(r.noisy),
                }
            )
    return pd.DataFrame.from_records(records)


def _noise_notes(report: Report) -> list[str]:
    notes = []
    for v in S.measured_variants(report, with_configurations=True):
        for r in sorted(v.latency, key=lambda r: r.batch_size):
            if r.noisy:
                why = "; ".join(r.noise_reasons) or "the timings vary a lot"
                notes.append(f"- **{v.name}** at batch {r.batch_size:,}: {why}")
    return notes


def _drift_tab(report: Report, key: str) -> None:
    chart(F.drift_histogram(report), key=f"{key}-drift-hist")
    names = S.drift_variants(report)
    if names:
        narrow, _ = st.columns([1, 3])
        with narrow:
            variant = st.selectbox(
                "Variant to inspect",
                names,
                key=f"{key}-drift-variant",
                help="ordered from the largest drift to the smallest",
            )
        chart(F.drift_scatter(report, variant), key=f"{key}-drift-scatter")
        st.markdown(f"**Rows where {variant} drifts most** (feature values as read from the CSV)")
        worst = S.worst_samples_table(report, variant, report.model.get("feature_names"))
        if worst.empty:
            st.caption("No rows recorded.")
        else:
            st.dataframe(
                worst,
                hide_index=True,
                key=f"{key}-worst",
                column_config={"abs diff": st.column_config.NumberColumn(format="%.3e")},
            )
    deltas = S.metric_deltas(report)
    st.markdown("**Metrics vs the target column** (Δ: change vs native)")
    if deltas.empty:
        target = (report.data or {}).get("target")
        skipped = next((n for n in report.notes if n.startswith(METRICS_SKIPPED)), None)
        if target:
            why = md_escape(skipped) if skipped else "none of its rows could be scored"
            st.caption(f"No metrics for target **{md_escape(target)}**: {why}.")
        else:
            st.caption("No target column was given, so only drift against the native model is measured.")
    else:
        st.dataframe(
            deltas,
            hide_index=True,
            key=f"{key}-metrics",
            column_config={
                c: st.column_config.NumberColumn(format="%+.4g" if c.startswith("Δ") else "%.4f")
                for c in deltas.columns
                if c != "variant"
            },
        )


def _tradeoffs_tab(report: Report, key: str) -> None:
    sizes = S.batch_sizes(report)
    if not sizes:
        st.info("No latency was measured in this run.")
        return
    narrow, _ = st.columns([1, 3])
    with narrow:
        batch = st.selectbox(
            "Batch size (rows per call)",
            sizes,
            format_func=lambda b: f"{b:,}",
            index=sizes.index(1) if 1 in sizes else 0,
            key=f"{key}-pareto-batch",
        )
    chart(F.pareto(report, batch), key=f"{key}-pareto")
    st.caption(
        "Marker area is proportional to model size. Points on the dotted Pareto front are not beaten on "
        "both p50 latency and drift by any other point in this chart"
        + (". report.json's tuning candidates carry a wider front (`pareto`: also p99 latency and size, per "
           "batch size), so a candidate can be on that one and off this line." if report.tuning else ".")
    )
    if has_truncation(report):
        _trees_tradeoffs(report, key, batch)


def _trees_tradeoffs(report: Report, key: str, batch: int) -> None:
    """A tree ensemble's frontier: latency vs its metric, how many trees it needs, and each truncated variant."""
    if primary_metric(report):
        chart(F.latency_vs_metric(report, batch), key=f"{key}-tradeoff-metric")
        st.caption(
            "Filled markers may be recommended under this run's tolerance (drift, or the metric tolerance when one "
            "was set); open markers are over it. The star is the recommendation at this batch size."
        )
    chart(F.trees_needed(report, batch), key=f"{key}-trees-needed")
    st.caption(
        "Each point keeps the first rounds (or trees) of the model; the last one is the full fp32 conversion. "
        "Latency and the metric are measured in this run, on this machine and this data."
    )
    st.dataframe(truncation_table(report, batch), hide_index=True, key=f"{key}-trees-table")
    for v in report.variants:
        if v.deploy:
            with st.expander(f"Deploy {v.name}: the ONNX file, or the same trees in the native library"):
                st.code(v.deploy.get("onnx", ""), language="python")
                st.code(v.deploy.get("native", ""), language="python")


def variant_table(report: Report) -> pd.DataFrame:
    records = []
    for v in S.listed_variants(report):
        records.append(
            {
                "variant": v.name,
                "precision": v.precision,
                "applies": v.applicable,
                "provider": provider_text(v),
                "size": fmt_mb(v.size_bytes),
                "session init": f"{v.session_init_ms:,.1f} ms" if v.session_init_ms is not None else "—",
                "max drift": _drift_text(report, v),
                "within tolerance": _passed_text(v, metric_tolerance(report)),
            }
        )
    return pd.DataFrame.from_records(records)


def _drift_text(report: Report, v: VariantResult) -> str:
    if S.is_native_configuration(report, v):  # the native model on other threads: timed, not compared
        return "—"
    if v.precision == "native":
        return "reference"
    return fmt_drift(v.drift) if v.drift else "—"


def _passed_text(v: VariantResult, max_metric_loss: float | None = None) -> str:
    from optimizer_core.metric_tolerance import loss_within

    if v.drift is None or v.drift.passed is None:
        return "—"
    if not v.drift.passed and loss_within(v.metric_delta, max_metric_loss):
        return f"by metric ({fmt_delta(v.metric_delta)}, within {max_metric_loss:g})"
    return "yes" if v.drift.passed else f"no (> {v.drift.tolerance:g})"


def _details_tab(report: Report, key: str) -> None:
    st.dataframe(
        variant_table(report),
        hide_index=True,
        key=f"{key}-variants",
        column_config={
            "applies": st.column_config.CheckboxColumn(help="whether the precision changes this model at all")
        },
    )
    noted = [v for v in S.listed_variants(report) if v.notes]
    if noted:
        st.markdown("**What each variant is** (and why one does not apply)")
        st.markdown("\n".join(f"- **{v.name}**: " + md_escape("; ".join(v.notes)) for v in noted))
    explanations = S.variant_explanations(report)
    if explanations:
        st.markdown(f"**{EXPLANATIONS_HEADING}**")
        st.markdown("\n".join(f"- {md_escape(x)}" for x in explanations))
    if report.runtime_floor:
        st.markdown(
            "**Runtime floor**: ONNX Runtime on a trivial graph with the same input shape, the least any "
            "ONNX variant can cost per call"
        )
        st.dataframe(
            pd.DataFrame(
                [
                    {"batch size": r.batch_size, "p50": fmt_us(r.p50_us), "calls": r.calls}
                    for r in report.runtime_floor
                ]
            ),
            hide_index=True,
            key=f"{key}-floor",
            width="content",
        )
    if report.notes:
        st.markdown("**Notes on this run**")
        st.markdown("\n".join(f"- {md_escape(n)}" for n in report.notes))
    left, right = st.columns(2)
    with left:
        st.markdown("**Environment**")
        env = report.environment
        rows = [
            ("ONNX Runtime", env.get("onnxruntime")),
            ("CPU", env.get("cpu")),
            (
                "cores",
                f"{env.get('cores')} physical, {env.get('logical_cores')} logical"
                if env.get("cores")
                else None,
            ),
            ("providers", ", ".join(env.get("available_providers") or [])),
            ("Python", env.get("python")),
            ("platform", env.get("platform")),
        ]
        lines = [f"- {k}: `{v}`" for k, v in rows if v]
        libs = env.get("libraries") or {}
        if libs:
            lines.append("- libraries: " + " · ".join(f"{k} `{v}`" for k, v in libs.items()))
        st.markdown("\n".join(lines))
    with right:
        st.markdown("**Run configuration**")
        st.json({"config": report.config, "benchmark": report.benchmark}, expanded=False)


# --------------------------------------------------------------------------- downloads


def downloads(report: Report, key: str) -> None:
    """Everything in one zip (the CLI's --out folder), then report.html, report.json, deploy.py, drift.csv and each
    variant's ONNX file. Every file keeps the name report.json and the deploy snippets use (fp32.onnx, drift.csv),
    so a snippet runs next to the downloaded files; only the two reports carry the run id (report-<run id>.json),
    so two runs' reports do not overwrite each other. Bytes are produced when a button is clicked (callables)."""
    stem = f"inference-report-{report.run_id}"
    carries_files = all(v.artifact in report.artifacts for v in report.variants if v.artifact)
    items: list[tuple[str, Any, str, str, str]] = []
    if carries_files:
        items.append((
            "Download everything (.zip)",
            lambda: _zip(report),
            f"{stem}.zip",
            "application/zip",
            "the folder the CLI writes with --out: report.json, report.html, one .onnx per variant, drift.csv "
            "(and deploy.py when the run has one), named as the reports and snippets name them",
        ))
    items += [
        (
            "report.html",
            lambda: state.html_report(report.run_id, report),
            f"{stem}.html",
            "text/html",
            "one self-contained page with every chart (works offline); the zip names it report.html",
        ),
        (
            "report.json",
            report.to_json,
            f"{stem}.json",
            "application/json",
            "every measurement, machine-readable (the schema the CLI writes); the zip names it report.json",
        ),
    ]
    for name, mime, help_text in (
        ("deploy.py", "text/x-python",
         "recreates the recommended ONNX Runtime session; keep it in the folder of the downloaded .onnx file"),
        ("drift.csv", "text/csv", "per-row absolute score difference of each variant vs the native model"),
    ):
        if name in report.artifacts:
            items.append((name, _artifact(report, name), name, mime, help_text))
    for v in report.variants:
        if v.artifact and v.artifact in report.artifacts:
            items.append(
                (
                    v.artifact,
                    _artifact(report, v.artifact),
                    v.artifact,
                    "application/octet-stream",
                    f"the {v.name} ONNX model ({fmt_mb(v.size_bytes)}), named as report.json and the snippets name it",
                )
            )
    with st.container(horizontal=True):
        for label, data, file_name, mime, help_text in items:
            st.download_button(
                label,
                data,
                file_name=file_name,
                mime=mime,
                on_click="ignore",
                help=help_text,
                icon=":material/download:",
                key=f"{key}-dl-{label}",
            )
    if not any(v.artifact in report.artifacts for v in report.variants if v.artifact):
        st.caption("No ONNX files are stored with this run.")


def _zip(report: Report) -> bytes:
    from dashboard.bundle import out_folder_zip

    return out_folder_zip(report, state.html_report(report.run_id, report))


def _artifact(report: Report, name: str) -> Any:
    return lambda: report.artifacts[name]


# --------------------------------------------------------------------------- comparing two runs


def _same_model(a: Report, b: Report) -> bool:
    """By the model files' hashes where both reports have one, else by what the model is (estimator,
    family, task, feature count)."""
    ha, hb = a.model.get("source_sha256"), b.model.get("source_sha256")
    if ha and hb:
        return ha == hb
    keys = ("estimator", "family", "task", "n_features")
    return all(a.model.get(k) == b.model.get(k) for k in keys)


def _same_data(a: Report, b: Report) -> bool:
    """By the CSVs' hashes where both reports have one, else by name, rows and ignored columns."""
    ha, hb = a.data.get("sha256"), b.data.get("sha256")
    if ha and hb:
        return ha == hb
    return _data_shape(a) == _data_shape(b)


def _data_shape(report: Report) -> tuple[Any, ...]:
    d = report.data
    return d.get("path"), d.get("rows"), tuple(d.get("ignored_columns") or ())


def _model_words(report: Report, model_name: str | None) -> str:
    m = report.model
    n = m.get("n_features")
    parts = [model_name, m.get("estimator"), m.get("task"), f"{n} features" if n else None]
    return md_escape(" · ".join(str(p) for p in parts if p))


def _data_words(report: Report) -> str:
    d = report.data
    rows = d.get("rows")
    count = f"{rows:,} rows" if isinstance(rows, int) else "rows"
    return md_escape(f"{count} of {d['path']}" if d.get("path") else count)


def different_work(a: Report, b: Report, name_a: str | None = None, name_b: str | None = None) -> str | None:
    """Why two runs' timings are not the same work measured twice (different model or data), in Markdown;
    None when both ran the same model on the same data, as far as the reports tell."""
    differences = []
    if not _same_model(a, b):
        words_a, words_b = _model_words(a, name_a), _model_words(b, name_b)
        if words_a == words_b:  # same name and shape, other file: the content tells them apart
            words_a += f" · file {str(a.model.get('source_sha256') or '?')[:12]}"
            words_b += f" · file {str(b.model.get('source_sha256') or '?')[:12]}"
        differences.append(f"model (A: {words_a}; B: {words_b})")
    if not _same_data(a, b):
        differences.append(f"data (A: {_data_words(a)}; B: {_data_words(b)})")
    if not differences:
        return None
    return (
        "**These runs measured different work**: they differ in " + " and in ".join(differences) + ". The "
        "\"B vs A\" ratios below compare different work, not the same model made faster or slower."
    )


def share_y_range(figures: Sequence[Any]) -> None:
    """Give figures that sit side by side the same y-axis range (the union of their data), so their heights
    compare by eye. Log axes get their range in decades, as plotly wants; figures without data are left."""
    log = all(fig.layout.yaxis.type == "log" for fig in figures)
    ys = [y for fig in figures for y in _y_values(fig) if y > 0 or not log]
    if not ys:
        return
    low, high = min(ys), max(ys)
    if log:
        low, high = math.log10(low), math.log10(high)
    pad = (high - low) * 0.08 or (0.25 if log else abs(high) * 0.1 or 1.0)
    for fig in figures:
        fig.update_yaxes(range=[low - pad, high + pad], autorange=False)
        if log and high - low >= 2:
            fig.update_yaxes(dtick=1, minor={"showgrid": True})  # the same ticks in both


def _y_values(fig: Any) -> list[float]:
    values = []
    for trace in fig.data:
        ys = getattr(trace, "y", None)
        for y in ys if ys is not None else ():
            if isinstance(y, numbers.Real) and not isinstance(y, bool) and math.isfinite(y):
                values.append(float(y))
    return values


# --------------------------------------------------------------------------- the whole report


def render_report(report: Report, *, key: str, model_name: str | None = None) -> None:
    """Headline, recommendation, the six tabs and the downloads for one Report."""
    st.markdown(run_caption(report, model_name))
    for note in S.warning_notes(report):  # the notes that change how to read a run (report.html shows them too)
        st.warning(md_escape(note[0].upper() + note[1:]))
    headline_metrics(report)
    recommendation(report)
    tabs = st.tabs(["Latency", "Throughput", "Size", "Drift", "Trade-offs", "Details"])
    with tabs[0]:
        _latency_tab(report, key)
    with tabs[1]:
        chart(F.throughput_vs_batch(report), key=f"{key}-throughput")
        st.caption(
            "Throughput at the median call: batch size ÷ p50 time per call, the measure the recommendation "
            "uses. Log-log; where the lines cross, the faster option changes with the batch size."
        )
    with tabs[2]:
        chart(F.model_size(report), key=f"{key}-size")
    with tabs[3]:
        _drift_tab(report, key)
    with tabs[4]:
        _tradeoffs_tab(report, key)
    with tabs[5]:
        _details_tab(report, key)
    st.subheader("Downloads", divider="gray")
    downloads(report, key)
