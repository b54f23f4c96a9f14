"""report.html: one self-contained page for stakeholders, readable offline.

plotly.js is embedded once, inline; every figure comes from :mod:`optimizer_core.views.figures` (the same
builders the dashboard uses). Nothing is loaded from elsewhere, and a Content-Security-Policy says so
to the browser as well. Every string that comes from the report (model, variant, feature and class
names, notes) is HTML-escaped: model files can be hostile.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from optimizer_core import summary as S
from optimizer_core.metric_tolerance import loss_within
from optimizer_core.report import LatencyStats, Report, VariantResult
from optimizer_core.tradeoffs import has_truncation, metric_tolerance
from optimizer_core.units import fmt_delta, fmt_mb, fmt_pct, fmt_rows_per_s, fmt_us
from optimizer_core.views import figures as F
from optimizer_core.views.tables import truncation_table
from optimizer_core.views.text import EXPLANATIONS_HEADING, SCORES_SHOWN, fmt_drift, provider_text

_CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:"
)
_PLOT_CONFIG = {"displaylogo": False, "responsive": True}
WORST_ROWS_SHOWN = 10

_CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d8dee4; --bg: #ffffff; --panel: #f6f8fa; --accent: #0072B2;
        --bad: #b00020; --ok: #1a7f37; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg); line-height: 1.45;
       font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 28px 24px 60px; }
h1 { font-size: 1.7rem; margin: 0 0 4px; }
h2 { font-size: 1.25rem; margin: 36px 0 12px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.02rem; margin: 18px 0 8px; }
.sub { color: var(--muted); margin: 0 0 18px; }
.grid { display: grid; gap: 14px; grid-template-columns: repeat(auto-fit, minmax(250px, 1fr)); }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; }
.panel h3 { margin-top: 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 3px 12px; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
.metrics { display: grid; gap: 12px; grid-template-columns: repeat(auto-fit, minmax(210px, 1fr)); }
.metric { border: 1px solid var(--line); border-left: 4px solid var(--accent); border-radius: 6px;
          padding: 10px 14px; }
.metric .k { color: var(--muted); font-size: .85rem; }
.metric .v { font-size: 1.08rem; font-weight: 600; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { text-align: left; padding: 6px 9px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--panel); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.na td { color: #8c959f; }
table.compact { width: auto; min-width: 50%; }
td.wide { min-width: 280px; }
.nowrap { white-space: nowrap; }
td.metricsc { white-space: nowrap; font-size: .85rem; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
.badge { display: inline-block; font-size: .75rem; padding: 1px 6px; border-radius: 10px; border: 1px solid; }
.badge.bad { color: var(--bad); border-color: var(--bad); }
.badge.ok { color: var(--ok); border-color: var(--ok); }
.badge.warn { color: #9a6700; border-color: #9a6700; }
p.warn { color: #9a6700; background: #fff8e5; border-left: 4px solid #9a6700; padding: 6px 10px; margin: 8px 0; }
.metric .v .warn { color: #9a6700; font-weight: 400; font-size: .85rem; }
.notes { margin: 0; padding-left: 18px; }
dl.variant-notes dt { font-weight: 600; margin-top: 8px; }
dl.variant-notes dd { margin: 2px 0 0 0; }
pre { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px;
      overflow-x: auto; font: 13px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.figure { border: 1px solid var(--line); border-radius: 8px; padding: 6px; margin: 14px 0;
          break-inside: avoid; }
.muted { color: var(--muted); }
footer { margin-top: 40px; color: var(--muted); font-size: .85rem; }
@media print { main { max-width: none; padding: 0; } h2 { break-after: avoid; } }
"""


def e(value: Any) -> str:
    """Escape anything for HTML text or attribute context."""
    return html.escape("" if value is None else str(value), quote=True)


def render_html(report: Report) -> str:
    """The whole report as one HTML document (plotly.js inline, no external resources)."""
    title = f"Inference report: {report.model.get('estimator') or 'model'}"
    body = "\n".join(
        [
            _header(report),
            _headline(report),
            _recommendation(report),
            _variants(report),
            _explanations(report),
            _metrics(report),
            _truncation(report),
            _floor(report),
            _figures(report),
            _worst_rows(report),
            _notes(report),
            _footer(report),
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(title)}</title>\n<style>{_CSS}</style>\n"
        f'<script type="text/javascript">{get_plotlyjs()}</script>\n'
        f"</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


# --------------------------------------------------------------------------- small builders


def _dl(pairs: Iterable[tuple[str, Any]]) -> str:
    rows = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in pairs if v not in (None, "", [], ()))
    return f"<dl>{rows}</dl>" if rows else '<p class="muted">not recorded</p>'


def _table(
    head: Sequence[str],
    rows: Iterable[Sequence[str]],
    numeric: Sequence[int] = (),
    row_classes: Sequence[str] | None = None,
    compact: bool = False,
    col_classes: Mapping[int, str] | None = None,
) -> str:
    """A table whose cells are already-escaped HTML; ``numeric`` column indices align right."""
    cols = {i: "num" for i in numeric} | dict(col_classes or {})

    def attr(i: int) -> str:
        return f' class="{cols[i]}"' if i in cols else ""

    th = "".join(f"<th{attr(i)}>{h}</th>" for i, h in enumerate(head))
    body = []
    for n, row in enumerate(rows):
        cls = f' class="{row_classes[n]}"' if row_classes and row_classes[n] else ""
        tds = "".join(f"<td{attr(i)}>{c}</td>" for i, c in enumerate(row))
        body.append(f"<tr{cls}>{tds}</tr>")
    table = '<table class="compact">' if compact else "<table>"
    return (
        f'<div class="scroll">{table}<thead><tr>{th}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
    )


def _section(title: str, inner: str, anchor: str) -> str:
    return f'<section id="{anchor}"><h2>{e(title)}</h2>\n{inner}\n</section>'


def _join(values: Any) -> str:
    if isinstance(values, list | tuple):
        return ", ".join(str(v) for v in values)
    return "" if values is None else str(values)


# --------------------------------------------------------------------------- sections


def _header(report: Report) -> str:
    m, d, env = report.model, report.data, report.environment
    features = m.get("feature_names")
    n_features = m.get("n_features")
    feature_text = f"{n_features} ({_join(features)})" if features else n_features
    model = _dl(
        [
            ("family", m.get("family")),
            ("estimator", m.get("estimator")),
            ("task", m.get("task")),
            ("scores", SCORES_SHOWN.get(m.get("scores"))),
            ("features", feature_text),
            ("classes", _join(m.get("classes")) or m.get("n_classes")),
            ("file size", fmt_mb(m["source_bytes"]) if m.get("source_bytes") else None),
        ]
    )
    data = _dl(
        [
            ("file", d.get("path")),
            ("rows", f"{d['rows']:,}" if isinstance(d.get("rows"), int) else d.get("rows")),
            ("target", d.get("target") or "none (drift against the native model only)"),
        ]
    )
    known = {"onnxruntime", "cpu", "cores", "logical_cores", "available_providers", "python"}
    environment = _dl(
        [
            ("onnxruntime", env.get("onnxruntime")),
            ("CPU", env.get("cpu")),
            ("cores", _cores(env)),
            ("providers", _join(env.get("available_providers"))),
            ("python", env.get("python")),
            *((k, _join(v)) for k, v in env.items() if k not in known and not isinstance(v, dict)),
        ]
    )
    subtitle = " · ".join(e(x) for x in (m.get("estimator"), m.get("family"), m.get("task")) if x)
    when = f"created {e(report.created_at)} · run {e(report.run_id)}"
    if report.wall_s is not None:
        when += f" · took {report.wall_s:,.1f} s"
    return (
        f'<header><h1>Inference optimization report</h1><p class="sub">{subtitle}<br>{when}</p>'
        f'<div class="grid"><div class="panel"><h3>Model</h3>{model}</div>'
        f'<div class="panel"><h3>Data</h3>{data}</div>'
        f'<div class="panel"><h3>Environment</h3>{environment}</div></div></header>'
    )


def _cores(env: dict[str, Any]) -> str | None:
    cores, logical = env.get("cores"), env.get("logical_cores")
    if cores is None:
        return None
    return f"{cores} physical, {logical} logical" if logical else str(cores)


def _headline(report: Report) -> str:
    h = S.headline_values(report)
    noisy = {S.HEADLINE_LABELS["speedup"]: h["speedup_noisy"], S.HEADLINE_LABELS["throughput"]: h["throughput_noisy"]}
    cards = "".join(
        f'<div class="metric"><div class="k">{e(k)}</div><div class="v">{e(v)}'
        + (' <span class="warn">· noisy</span>' if noisy.get(k) else "") + "</div></div>"
        for k, v in S.headline(report, h).items()
    )
    warnings = "".join(f'<p class="warn">⚠ {e(n)}</p>' for n in S.warning_notes(report))
    c = S.crossover(report)
    line = ""
    if c is not None and c.batch_sizes:
        where = ", ".join(f"≈{b:,.0f}" for b in c.batch_sizes)
        line = (
            f"<p>{e(c.faster_first)} is faster at small batches and {e(c.faster_last)} at large ones: "
            f"the faster side changes at batch size {e(where)} rows.</p>"
        )
    elif c is not None and c.winner_throughout:
        other = c.native if c.winner_throughout == c.onnx else c.onnx
        line = f"<p>{e(c.winner_throughout)} is faster than {e(other)} at every measured batch size.</p>"
    trees = S.truncation_headline(report)
    if trees:
        line += f'<p class="trees-line">{e(trees)}</p>'
    return _section("Headline", f'{warnings}<div class="metrics">{cards}</div>{line}', "headline")


def _recommendation(report: Report) -> str:
    rec = report.recommendation
    if rec is None:
        return _section(
            "Recommendation", '<p class="muted">No recommendation in this report.</p>', "recommendation"
        )
    rows = [
        (e(b), e(name), e(rec.details.get(b, "")))
        for b, name in sorted(rec.configurations().items(), key=_batch_key)
    ]
    inner = f"<p>{e(rec.reason)}</p>"
    if rows:
        inner += _table(["batch size", "use", "why"], rows, numeric=(0,), compact=True)
    if rec.snippet:
        inner += f"<h3>How to use it</h3><pre><code>{e(rec.snippet)}</code></pre>"
    return _section("Recommendation", inner, "recommendation")


def _batch_key(item: tuple[str, Any]) -> tuple[int, str]:
    key = item[0]
    return (int(key), key) if key.isdigit() else (1 << 62, key)


def _provider(v: VariantResult) -> str:
    text = e(provider_text(v))
    return text + ' <span class="badge warn" title="provider fell back">fallback</span>' if v.fell_back else text


def _latency_cell(row: LatencyStats | None) -> str:
    if row is None:
        return "—"
    cell = e(fmt_us(row.p50_us))
    if row.noisy:
        why = "; ".join(row.noise_reasons) or "noisy measurement"
        cell += f' <span class="badge warn" title="{e(why)}">noisy</span>'
    return cell


def _drift_cells(v: VariantResult, metric_loss: float | None = None) -> tuple[str, str]:
    if v.precision == "native":
        return "reference", "reference"
    d = v.drift
    if d is None:
        return "—", "—"
    drift = e(fmt_drift(d))
    if d.passed is not None:
        tol = f"tolerance {d.tolerance:g}" if d.tolerance is not None else "tolerance"
        cls, word = ("ok", "within") if d.passed else ("bad", "over")
        if not d.passed and loss_within(v.metric_delta, metric_loss):
            cls, word, tol = "ok", "within by metric", f"primary metric {fmt_delta(v.metric_delta)}, within {metric_loss:g}"
        drift += f' <span class="badge {cls}" title="{e(tol)}">{word}</span>'
    flips = "n/a" if d.label_flips is None else f"{d.label_flips:,} ({fmt_pct(d.label_flip_rate)})"
    return drift, e(flips)


def _metric_text(metrics: dict[str, float] | None) -> str:
    if not metrics:
        return "—"
    return "<br>".join(
        e(f"{k} {v:.4g}" if isinstance(v, int | float) else f"{k} {v}") for k, v in metrics.items()
    )


def _variants(report: Report) -> str:
    sizes = S.batch_sizes(report)
    colors = F.variant_colors(report)
    head = [
        "variant",
        "precision",
        "provider (requested → used)",
        "applies",
        "size",
        "session init",
        *[f"p50 @ batch {b:,}" for b in sizes],
        "max drift vs native",
        "label flips",
        "metrics",
    ]
    rows, classes, notes_by_variant = [], [], []
    for v in S.listed_variants(report):
        swatch = f'<span class="swatch" style="background:{e(colors.get(v.name, F.NATIVE_COLOR))}"></span>'
        configuration = S.is_native_configuration(report, v)  # "native t1": timed, not compared
        drift, flips = ("—", "—") if configuration else _drift_cells(v, metric_tolerance(report))
        if v.notes:  # below the table, full width: in a table column they made rows hundreds of pixels tall
            items = "".join(f"<li>{e(n)}</li>" for n in v.notes)
            notes_by_variant.append(f'<dt>{swatch}{e(v.name)}</dt><dd><ul class="notes">{items}</ul></dd>')
        rows.append(
            [
                swatch + e(v.name),
                e(v.precision),
                _provider(v),
                "yes" if v.applicable else "<strong>no</strong>",
                e(fmt_mb(v.size_bytes)),
                e(f"{v.session_init_ms:,.1f} ms") if v.session_init_ms is not None else "—",
                *[_latency_cell(v.latency_at(b)) for b in sizes],
                drift,
                flips,
                _metric_text(v.metrics),
            ]
        )
        classes.append("" if v.applicable else "na")
    numeric = (4, 5, *range(6, 6 + len(sizes)), 6 + len(sizes))
    extra = {0: "nowrap", len(head) - 1: "metricsc"}
    table = _table(head, rows, numeric=numeric, row_classes=classes, col_classes=extra)
    notes = f'<h3>Notes per variant</h3><dl class="variant-notes">{"".join(notes_by_variant)}</dl>' if notes_by_variant else ""
    return _section("Variants", table + notes, "variants")


def _explanations(report: Report) -> str:
    lines = S.variant_explanations(report)
    if not lines:
        return ""
    items = "".join(f"<li>{e(x)}</li>" for x in lines)
    return _section(EXPLANATIONS_HEADING, f"<ul>{items}</ul>", "explanations")


def _metrics(report: Report) -> str:
    df = S.metric_deltas(report)
    if df.empty:
        return ""
    rows = [
        [e(r["variant"]), *(_num(r[c], signed=c.startswith("Δ")) for c in df.columns[1:])]
        for _, r in df.iterrows()
    ]
    inner = _table([e(c) for c in df.columns], rows, numeric=tuple(range(1, len(df.columns))))
    target = report.data.get("target")
    if target:
        inner = (
            f'<p class="muted">Against the target column {e(target)}; Δ is the change vs native.</p>' + inner
        )
    return _section("Metrics vs native", inner, "metrics")


def _truncation(report: Report) -> str:
    """Truncated ensembles: what each keeps and costs at the largest batch size, and how to deploy it."""
    sizes = S.batch_sizes(report)
    if not has_truncation(report) or not sizes:
        return ""
    df = truncation_table(report, sizes[-1])
    inner = (f'<p class="muted">The first boosting rounds (or forest trees) of the model, each checked against the '
             f"native library's own truncated prediction; drift and metric against the full native model; p50 at "
             f"batch {sizes[-1]:,}. The trade-off charts are under Figures.</p>")
    if not df.empty:
        inner += _table([e(c) for c in df.columns], [[e(x) for x in row] for row in df.itertuples(index=False)],
                        compact=True)
    for v in report.variants:
        if v.deploy:
            inner += (f"<details><summary>Deploy {e(v.name)}</summary><pre><code>{e(v.deploy.get('onnx', ''))}"
                      f"</code></pre><pre><code>{e(v.deploy.get('native', ''))}</code></pre></details>")
    return _section("Truncated ensembles", inner, "trees")


def _num(x: Any, *, signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and x != x):
        return "—"
    return e(f"{x:+.4g}" if signed else f"{x:.4g}")


def _floor(report: Report) -> str:
    floor = S.floor_rows(report)
    if not floor:
        return ""
    rows = [
        (
            f"{r.batch_size:,}",
            e(fmt_us(r.p50_us)),
            f"{r.calls:,}",
            e(fmt_rows_per_s(r.batch_size / (r.p50_us * 1e-6))),
        )
        for r in floor
    ]
    intro = (
        '<p class="muted">ONNX Runtime running a trivial graph with the same input shape, in the same run: '
        "no variant can be faster than this.</p>"
    )
    table = _table(["batch size", "p50", "calls", "ceiling"], rows, numeric=(0, 1, 2, 3), compact=True)
    return _section("Runtime floor", intro + table, "floor")


def _figures(report: Report) -> str:
    figs = F.all_figures(report)
    if not figs:
        return _section("Figures", '<p class="muted">Nothing to plot in this report.</p>', "figures")
    blocks = [
        f'<div class="figure" aria-label="{e(title)}">{_figure_html(fig, i)}</div>'
        for i, (title, fig) in enumerate(figs.items())
    ]
    return _section("Figures", "\n".join(blocks), "figures")


def _figure_html(fig: go.Figure, index: int) -> str:
    return fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=f"figure-{index}",
        config=_PLOT_CONFIG,
        default_width="100%",
        default_height="480px",
    )


def _worst_rows(report: Report) -> str:
    names = S.drift_variants(report)
    if not names:
        return ""
    worst = names[0]
    df = S.worst_samples_table(report, worst).head(WORST_ROWS_SHOWN)
    if df.empty:
        return ""
    rows = [[_cell(value) for value in record] for record in df.itertuples(index=False)]
    numeric = tuple(i for i, c in enumerate(df.columns) if c not in ("label flip",))
    intro = f"<p>The rows where {e(worst)} differs most from the native model, with their feature values.</p>"
    return _section(
        f"Largest differences: {worst}",
        intro + _table([e(c) for c in df.columns], rows, numeric=numeric),
        "worst",
    )


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return e(f"{value:.6g}")
    return e(value)


def _notes(report: Report) -> str:
    parts = []
    if report.notes:
        parts.append("<ul>" + "".join(f"<li>{e(n)}</li>" for n in report.notes) + "</ul>")
    if report.config:
        parts.append(
            "<details><summary>Configuration</summary><pre><code>"
            f"{e(json.dumps(report.config, indent=2, default=str))}</code></pre></details>"
        )
    if report.benchmark:
        parts.append(
            "<details><summary>Benchmark settings</summary><pre><code>"
            f"{e(json.dumps(report.benchmark, indent=2, default=str))}</code></pre></details>"
        )
    return _section("Notes", "\n".join(parts), "notes") if parts else ""


def _footer(report: Report) -> str:
    return (
        f"<footer>Generated by inference-optimizer · report schema {e(report.schema_version)} · "
        "self-contained: this page loads nothing from the network.</footer>"
    )
