"""Plotly figures built from a Report: the dashboard and report.html share them.

Every builder takes a :class:`Report` and copes with partial ones (variants that do not apply, no
latency, regression without label flips, empty samples): where there is nothing to draw it returns
a figure without traces that says why. Each variant keeps one colour across all charts
(:func:`variant_colors`). Text that comes from the report (variant names, class labels) is
HTML-escaped before it reaches plotly, which renders a subset of HTML in labels.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from optimizer_core.data import METRICS_SKIPPED
from optimizer_core.drift import METRICS_OF
from optimizer_core.machine_load import BUSY_NOTE
from optimizer_core.report import DriftStats, FloorRow, LatencyStats, Report, VariantResult
from optimizer_core.tune import fallback_duplicates, fastest_native, measured_rows, row_within, variant_within

NATIVE_COLOR = "#3b3b3b"
NOT_APPLICABLE_COLOR = "#c4c4c4"
FLOOR_COLOR = "#8c8c8c"
REFERENCE_COLOR = "#9e9e9e"
# Colour-blind safe (Okabe-Ito) slots for the first variant of each known precision, so that fp32 is
# the same blue in every report; further variants take the next free colour in order.
_PRECISION_COLORS = {
    "fp32": "#0072B2",
    "fp64": "#56B4E9",
    "fp16": "#009E73",
    "int8": "#D55E00",
    "int8-static": "#CC79A7",
}
_EXTRA_COLORS = (
    "#E69F00",
    "#4C78A8",
    "#F58518",
    "#54A24B",
    "#B279A2",
    "#9D755D",
    "#FF9DA6",
    "#72B7B2",
    "#E45756",
    "#EECA3B",
)
ZERO_FLOOR = 1e-12  # drift values below this (exact zeros included) are drawn here on log axes
MAX_POINTS = 2000  # latency samples per trace, taken as evenly spaced quantiles
TEMPLATE = "plotly_white"
MB = 1_000_000

DistributionKind = Literal["violin", "box", "ecdf"]

HEADLINE_LABELS = {
    "speedup": "Speedup at batch 1",
    "throughput": "Best throughput",
    "size": "Size reduction",
    "drift": "Largest drift",
    "flips": "Label flips",
}


# --------------------------------------------------------------------------- formatting


def label(text: Any) -> str:
    """Escape report-provided text for plotly labels (plotly renders a subset of HTML)."""
    return html.escape(str(text), quote=False)


def fmt_us(us: float | None) -> str:
    if us is None or not math.isfinite(us):
        return "n/a"
    if us >= 1e6:
        return f"{us / 1e6:.2f} s"
    if us >= 1e3:
        return f"{us / 1e3:.2f} ms"
    return f"{us:.1f} µs" if us >= 10 else f"{us:.2f} µs"


def fmt_rows_per_s(rate: float | None) -> str:
    if rate is None or not math.isfinite(rate):
        return "n/a"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if rate >= scale:
            return f"{rate / scale:.2f}{suffix} rows/s"
    return f"{rate:.1f} rows/s"


def fmt_mb(size_bytes: float | None) -> str:
    """A file size in decimal units (kB under 1 MB), the same as the CLI prints."""
    from optimizer_core.units import fmt_size

    return fmt_size(size_bytes)


def fmt_diff(x: float | None) -> str:
    if x is None:
        return "n/a"
    if not math.isfinite(x):
        return "unbounded"  # NaN or infinity on one side only (see the run's notes)
    return "0" if x == 0 else f"{x:.2e}"


def fmt_drift(d: DriftStats) -> str:
    """The drift the tolerance is checked against: absolute for classifiers, relative (and absolute) for regressors."""
    if d.metric == "max_rel":
        return f"{fmt_diff(d.max_rel)} relative ({fmt_diff(d.max_abs)} absolute)"
    return fmt_diff(d.max_abs)


def provider_text(v: VariantResult) -> str:
    """Which execution provider ran a variant, naming a fallback: one wording for every table."""
    req, used = v.provider_requested, v.provider_used
    if v.precision == "native":
        return f"{used or 'native'} (own runtime)"
    if v.fell_back:
        return f"{used} (fell back from {v.provider_wanted})"
    if used:
        return used
    return f"{req} (not run)" if req else "n/a"


def fmt_pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.2%}"


# --------------------------------------------------------------------------- colours and selections


def variant_colors(report: Report) -> dict[str, str]:
    """One colour per variant name, the same in every chart of the report."""
    colors: dict[str, str] = {}
    used: set[str] = set()
    for v in report.variants:
        preferred = NATIVE_COLOR if v.precision == "native" else _PRECISION_COLORS.get(v.precision)
        if preferred and preferred not in used and v.name not in colors:
            colors[v.name] = preferred
            used.add(preferred)
    free = [c for c in (*_EXTRA_COLORS, *_PRECISION_COLORS.values()) if c not in used] or list(_EXTRA_COLORS)
    i = 0
    for v in report.variants:
        if v.name not in colors:
            colors[v.name] = free[i % len(free)]
            i += 1
    return colors


def measured_variants(report: Report) -> list[VariantResult]:
    """Applicable variants that have latency rows (the native model included)."""
    return [v for v in report.variants if v.applicable and timed_rows(v)]


def batch_sizes(report: Report) -> list[int]:
    return sorted({row.batch_size for v in report.variants for row in v.latency})


def p50_rows_per_s(row: LatencyStats) -> float:
    """Rows per second at the median call (batch / p50): the throughput the recommendation's p50 implies.
    ``rows_per_s`` in report.json is batch / mean call time, which a few slow calls pull down."""
    if row.rows_per_s_p50 is not None:
        return row.rows_per_s_p50
    return row.batch_size / (row.p50_us * 1e-6) if row.p50_us > 0 else math.inf  # reports older than the field


def timed_rows(v: VariantResult) -> list[LatencyStats]:
    """Latency rows with a usable p50 and throughput, by batch size."""
    ok = [
        r
        for r in v.latency
        if _finite(r.p50_us) and r.p50_us > 0 and _finite(r.rows_per_s) and r.rows_per_s > 0
    ]
    return sorted(ok, key=lambda r: r.batch_size)


def _gap(high: float | None, low: float | None) -> float:
    return max(high - low, 0.0) if _finite(high) and _finite(low) else 0.0  # type: ignore[operator]


def floor_rows(report: Report) -> list[FloorRow]:
    """The ORT runtime floor rows with a usable p50, by batch size."""
    return sorted(
        (r for r in report.runtime_floor if _finite(r.p50_us) and r.p50_us > 0), key=lambda r: r.batch_size
    )


def _onnx(report: Report) -> list[VariantResult]:
    return [v for v in report.variants if v.precision != "native" and v.applicable]


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _reason(v: VariantResult) -> str:
    return v.notes[0] if v.notes else "not applicable"


# --------------------------------------------------------------------------- layout helpers


def _figure(title: str, x_title: str, y_title: str, *, x_log: bool = False, y_log: bool = False) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(
        template=TEMPLATE,
        title={"text": title, "x": 0.01, "xanchor": "left"},
        hovermode="closest",
        legend={"title": {"text": "variant"}},
        margin={"l": 70, "r": 30, "t": 70, "b": 60},
    )
    fig.update_xaxes(title_text=x_title, type="log" if x_log else None)
    fig.update_yaxes(title_text=y_title, type="log" if y_log else None)
    return fig


def _tidy_log_axes(fig: go.Figure) -> go.Figure:
    """Label a batch-size axis at the measured sizes, and a log value axis spanning two decades or more at its
    decades only: plotly's default labels minor ticks with bare digits ("2" next to "10k" meaning 20k)."""
    xs = sorted({float(x) for t in fig.data for x in (t.x or ()) if x is not None and float(x) > 0})
    if xs and fig.layout.xaxis.type == "log":
        fig.update_xaxes(tickvals=xs, ticktext=[f"{x:,.0f}" for x in xs])
        if len(xs) == 1:  # plotly would put a lone batch size on the plot's edge
            fig.update_xaxes(range=[math.log10(xs[0]) - 0.5, math.log10(xs[0]) + 0.5])
    ys = [float(y) for t in fig.data for y in (t.y or ()) if y is not None and float(y) > 0]
    if ys and fig.layout.yaxis.type == "log" and math.log10(max(ys) / min(ys)) >= 2:
        fig.update_yaxes(dtick=1, minor={"showgrid": True})
    return fig


def _say_empty(fig: go.Figure, message: str) -> go.Figure:
    fig.add_annotation(
        text=label(message),
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        showarrow=False,
        font={"size": 14, "color": "#666"},
    )
    fig.update_layout(meta={"empty": True})
    return fig


def _stats_hover(name: str, row: LatencyStats, extra: str = "") -> str:
    """Hover text for one variant and batch size (no ``<extra>``: callers add it to the template)."""
    p99 = fmt_us(row.p99_us) if row.p99_us is not None else f"n/a (only {row.calls} calls)"
    return (
        f"<b>{label(name)}</b><br>batch size: {row.batch_size:,} rows<br>calls: {row.calls:,}"
        f"<br>p50: {fmt_us(row.p50_us)}<br>p99: {p99}<br>{fmt_rows_per_s(p50_rows_per_s(row))} at p50"
        f" ({fmt_rows_per_s(row.rows_per_s)} at the mean){extra}"
    )


def _even_quantiles(samples: Sequence[float], limit: int = MAX_POINTS) -> np.ndarray:
    """Sorted samples, thinned to ``limit`` evenly spaced quantiles (min and max kept)."""
    arr = np.sort(np.asarray([s for s in samples if _finite(s)], dtype=np.float64))
    if arr.size <= limit:
        return arr
    return np.quantile(arr, np.linspace(0.0, 1.0, limit))


# --------------------------------------------------------------------------- headline


def headline_values(report: Report) -> dict[str, Any]:
    """The headline numbers, raw; None wherever the report does not have the data."""
    out: dict[str, Any] = {}
    out.update(_speedup(report))
    out.update(_best_throughput(report))
    out.update(_size_reduction(report))
    out.update(_largest_drift(report))
    out.update(_worst_flips(report))
    out.update(_noise_flags(report, out))
    return out


def _at(v: VariantResult, batch_size: int) -> LatencyStats | None:
    return next((r for r in timed_rows(v) if r.batch_size == batch_size), None)


def _tuned_finals(report: Report, batch: int | None = None) -> list[dict[str, Any]]:
    """The tuner's finalists (measured side by side), at ``batch`` when given, without the fallen-back
    duplicates the recommendation leaves out; [] for an untuned run."""
    duplicates = fallback_duplicates(report.variants)
    rows = [r for r in (report.tuning or {}).get("candidates") or [] if isinstance(r, dict) and r.get("final")
            and _finite(r.get("p50_us")) and r.get("variant") not in duplicates]
    return [r for r in rows if batch is None or int(r["batch_size"]) == batch]


def _speedup(report: Report) -> dict[str, Any]:
    """Batch 1: the fastest ONNX variant within tolerance against the fastest native configuration, as the
    recommendation compares them: a tuned run's finalists (measured side by side), else the run's variants and
    the native model's other thread settings ("native t1"). The default threads can be far slower."""
    tolerance = report_tolerance(report)  # the headline never quotes a variant the recommendation rejects
    untuned = [r for r in measured_rows(report) if int(r["batch_size"]) == 1 and _finite(r["p50_us"])
               and r["p50_us"] > 0]
    for rows, tuned in ((_tuned_finals(report, 1), True), (untuned, False)):
        base = fastest_native(rows)
        onnx = [r for r in rows if r.get("precision") != "native" and row_within(r, tolerance)]
        if base is not None and onnx:
            best = min(onnx, key=lambda r: r["p50_us"])
            return {"speedup_batch1": base["p50_us"] / best["p50_us"], "speedup_variant": best["variant"],
                    "speedup_configuration": best["name"], "speedup_baseline": base["name"], "speedup_tuned": tuned}
    return {"speedup_batch1": None, "speedup_variant": None, "speedup_configuration": None,
            "speedup_baseline": None, "speedup_tuned": False}


def report_tolerance(report: Report) -> float:
    """The drift tolerance a run's recommendation used (older reports: --max-drift, else the default)."""
    from optimizer_core.config import DEFAULT_MAX_DRIFT

    rec = report.recommendation
    if rec is not None and rec.tolerance is not None:
        return rec.tolerance
    for key in ("recommend_tolerance", "max_drift"):  # what an older report's recommendation used
        if report.config.get(key) is not None:
            return report.config[key]
    return DEFAULT_MAX_DRIFT


def _best_throughput(report: Report) -> dict[str, Any]:
    """Highest rows/s at p50 among the variants within the drift tolerance the recommendation used (native
    always counts)."""
    tolerance = report_tolerance(report)
    finals = [r for r in _tuned_finals(report) if row_within(r, tolerance)]
    if finals:  # a tuned run: the same side-by-side measurements its recommendation compares
        best = max(finals, key=lambda r: int(r["batch_size"]) / r["p50_us"])
        return {"best_rows_per_s": int(best["batch_size"]) / best["p50_us"] * 1e6,
                "best_throughput_variant": best["variant"], "best_throughput_batch": int(best["batch_size"]),
                "best_throughput_configuration": best["name"]}
    rows = [(v.name, r) for v in measured_variants(report) for r in timed_rows(v) if variant_within(v, tolerance)]
    if not rows:
        return {"best_rows_per_s": None, "best_throughput_variant": None, "best_throughput_batch": None,
                "best_throughput_configuration": None}
    name, row = max(rows, key=lambda t: p50_rows_per_s(t[1]))
    return {
        "best_rows_per_s": p50_rows_per_s(row),
        "best_throughput_variant": name,
        "best_throughput_batch": row.batch_size,
        "best_throughput_configuration": name,
    }


def _size_baseline(report: Report) -> VariantResult | None:
    fp32 = next((v for v in report.variants if v.precision == "fp32" and v.size_bytes), None)
    return fp32 or next((v for v in report.variants if v.precision == "native" and v.size_bytes), None)


def _size_reduction(report: Report) -> dict[str, Any]:
    none = {
        "size_reduction": None,
        "size_variant": None,
        "size_baseline": None,
        "size_bytes": None,
        "size_baseline_bytes": None,
    }
    base = _size_baseline(report)
    if base is None:
        return none
    others = [v for v in _onnx(report) if v.size_bytes and v.name != base.name]
    smaller = [v for v in others if (v.size_bytes or 0) < (base.size_bytes or 0)]
    # nothing smaller than fp32 (only fp32, or fp64 and fp16 graphs that grew): fp32 against the native file,
    # the same answer whichever larger precisions were ticked
    if not smaller and base.precision != "native" and report.native and report.native.size_bytes:
        base, others = report.native, [base]
    if not others:
        return none
    small = min(others, key=lambda v: v.size_bytes or 0)
    return {
        "size_reduction": base.size_bytes / small.size_bytes,
        "size_variant": small.name,  # type: ignore[operator]
        "size_baseline": base.name,
        "size_bytes": small.size_bytes,
        "size_baseline_bytes": base.size_bytes,
    }


def _drift_max(v: VariantResult) -> float:
    # A JSON round trip turns an infinite max_abs (NaN on one side only) into None: keep it the worst.
    return math.inf if v.drift is None or v.drift.max_abs is None else float(v.drift.max_abs)


def _drift_value(v: VariantResult) -> float:
    """The drift the gate and the recommendation compare (relative for regressors); None counts as the worst."""
    if v.drift is None or v.drift.value is None:
        return math.inf
    return float(v.drift.value)


def _largest_drift(report: Report) -> dict[str, Any]:
    drifted = [v for v in _onnx(report) if v.drift is not None]
    if not drifted:
        return {"max_drift": None, "max_drift_variant": None, "max_drift_metric": None, "max_drift_abs": None}
    worst = max(drifted, key=_drift_value)
    metric = "relative" if worst.drift.metric == "max_rel" else "absolute"  # type: ignore[union-attr]
    return {"max_drift": _drift_value(worst), "max_drift_variant": worst.name, "max_drift_metric": metric,
            "max_drift_abs": _drift_max(worst)}


def _worst_flips(report: Report) -> dict[str, Any]:
    flipped = [v for v in _onnx(report) if v.drift is not None and v.drift.label_flips is not None]
    if not flipped:
        return {"label_flips": None, "label_flip_rate": None, "label_flip_variant": None}
    worst = max(flipped, key=lambda v: (v.drift.label_flips, _drift_max(v)))  # type: ignore[union-attr]
    return {
        "label_flips": worst.drift.label_flips,
        "label_flip_rate": worst.drift.label_flip_rate,  # type: ignore[union-attr]
        "label_flip_variant": worst.name,
    }


# the notes that change how a run reads, by how their writers start them
WARNING_NOTE_PREFIXES = (BUSY_NOTE, METRICS_SKIPPED, f"{METRICS_OF} ")


def warning_notes(report: Report) -> list[str]:
    """The run's notes that change how its numbers read: shown next to the headline, not only at the bottom."""
    return [n for n in report.notes if n.startswith(WARNING_NOTE_PREFIXES)]


def _cell_noisy(report: Report, variant: str | None, batch_size: int | None) -> bool:
    v = report.measured(variant) if variant else None
    row = v.latency_at(batch_size) if v is not None and batch_size is not None else None
    return bool(row is not None and row.noisy)


def _noise_flags(report: Report, h: dict[str, Any]) -> dict[str, bool]:
    """Whether the speedup and throughput headlines rest on a measurement flagged noisy (tuned runs: on fewer
    than STABLE_MIN_CALLS timed calls, the tuner's rows carrying call counts rather than noise flags)."""
    from optimizer_core.bench import STABLE_MIN_CALLS

    def thin(name: str | None, batch: int | None) -> bool:  # tuning rows carry call counts, not noise flags
        return any(r["name"] == name and int(r["batch_size"]) == batch and int(r.get("calls") or 0) < STABLE_MIN_CALLS
                   for r in _tuned_finals(report))

    if _tuned_finals(report, 1):
        speedup = h["speedup_batch1"] is not None and (thin(h["speedup_baseline"], 1)
                                                        or thin(h["speedup_configuration"], 1))
    else:
        speedup = h["speedup_batch1"] is not None and (
            _cell_noisy(report, h["speedup_baseline"], 1) or _cell_noisy(report, h["speedup_configuration"], 1))
    if _tuned_finals(report):
        throughput = thin(h["best_throughput_configuration"], h["best_throughput_batch"])
    else:
        throughput = h["best_rows_per_s"] is not None and _cell_noisy(
            report, h["best_throughput_variant"], h["best_throughput_batch"])
    return {"speedup_noisy": bool(speedup), "throughput_noisy": bool(throughput)}


def headline(report: Report, h: dict[str, Any] | None = None) -> dict[str, str]:
    """The headline metrics as display strings, keyed by :data:`HEADLINE_LABELS` values; "n/a" if missing.
    ``h``: :func:`headline_values` when the caller has it already."""
    h = h if h is not None else headline_values(report)
    speedup = throughput = size = drift = flips = "n/a"
    if h["speedup_batch1"] is not None:
        faster = " (native is faster)" if h["speedup_batch1"] < 1 else ""
        speedup = f"{h['speedup_batch1']:.2f}× ({h['speedup_configuration']} vs {h['speedup_baseline']}){faster}"
    if h["best_rows_per_s"] is not None:
        throughput = (
            f"{fmt_rows_per_s(h['best_rows_per_s'])} at p50 ({h['best_throughput_configuration']}, "
            f"batch {h['best_throughput_batch']:,})"
        )
    if h["size_reduction"] is not None and h["size_reduction"] < 1:
        size = (f"none: no variant is smaller than {h['size_baseline']} {fmt_mb(h['size_baseline_bytes'])} "
                f"(the smallest, {h['size_variant']}, is {1 / h['size_reduction']:.2f}× larger)")
    elif h["size_reduction"] is not None:
        size = (
            f"{h['size_reduction']:.2f}× ({h['size_variant']} {fmt_mb(h['size_bytes'])} vs "
            f"{h['size_baseline']} {fmt_mb(h['size_baseline_bytes'])})"
        )
    if h["max_drift"] is not None:
        kind = " relative" if h["max_drift_metric"] == "relative" else ""
        drift = f"{fmt_diff(h['max_drift'])}{kind} ({h['max_drift_variant']})"
    if h["label_flips"] is not None:
        flips = f"{h['label_flips']:,} rows, {fmt_pct(h['label_flip_rate'])} ({h['label_flip_variant']})"
    elif report.model.get("task") == "regression":
        flips = "n/a (regression)"
    values = {"speedup": speedup, "throughput": throughput, "size": size, "drift": drift, "flips": flips}
    return {HEADLINE_LABELS[k]: v for k, v in values.items()}


# --------------------------------------------------------------------------- latency


def latency_distribution(
    report: Report, batch_size: int | None = None, kind: DistributionKind = "violin"
) -> go.Figure:
    """Per-call latency per variant; a dropdown switches batch size when there are several."""
    if kind not in ("violin", "box", "ecdf"):
        raise ValueError(f"kind must be 'violin', 'box' or 'ecdf', not {kind!r}")
    colors = variant_colors(report)
    sizes = [
        b
        for b in batch_sizes(report)
        if any((r := v.latency_at(b)) is not None and r.samples_us for v in measured_variants(report))
    ]
    if batch_size is not None:
        sizes = [b for b in sizes if b == batch_size]
    ecdf = kind == "ecdf"
    value_title = "latency per call (µs, log scale)"
    fig = _figure(
        _distribution_title(sizes[0] if sizes else batch_size),
        value_title if ecdf else "variant",
        "share of calls at or below (fraction)" if ecdf else value_title,
        x_log=ecdf,
        y_log=kind == "box",  # a violin is drawn on log10 values (see _violin_log_axis)
    )
    if not sizes:
        return _say_empty(fig, "No per-call latency samples in this report")
    groups: list[int] = []
    for i, b in enumerate(sizes):
        for v in measured_variants(report):
            row = v.latency_at(b)
            if row is None or not row.samples_us:
                continue
            fig.add_trace(_distribution_trace(kind, v.name, row, colors[v.name], visible=i == 0))
            groups.append(b)
    if kind == "violin":
        _violin_log_axis(fig, [x for v in measured_variants(report) for b in sizes
                               if (r := v.latency_at(b)) is not None for x in r.samples_us])
    if len(sizes) > 1:
        buttons = [
            {
                "label": f"batch {b:,}",
                "method": "update",
                "args": [{"visible": [g == b for g in groups]}, {"title.text": _distribution_title(b)}],
            }
            for b in sizes
        ]
        fig.update_layout(
            updatemenus=[
                {
                    "buttons": buttons,
                    "direction": "down",
                    "x": 1.0,
                    "xanchor": "right",
                    "y": 1.15,
                    "yanchor": "top",
                    "showactive": True,
                }
            ]
        )
    return fig


def _distribution_title(b: int | None) -> str:
    return "Latency per call" + (f" at batch {b:,}" if b is not None else "")


def _distribution_trace(
    kind: str, name: str, row: LatencyStats, color: str, *, visible: bool
) -> go.BaseTraceType:
    s = _even_quantiles(row.samples_us)
    common = {
        "name": label(name),
        "legendgroup": name,
        "visible": visible,
        "marker": {"color": color},
        "meta": {"variant": name, "batch_size": row.batch_size},
    }
    if kind == "ecdf":
        frac = np.arange(1, s.size + 1) / s.size
        return go.Scatter(
            x=s,
            y=frac,
            mode="lines",
            line={"color": color, "shape": "hv"},
            **common,
            hovertemplate=_stats_hover(name, row, "<br>this call: %{x:.1f} µs, share ≤: %{y:.1%}")
            + "<extra></extra>",
        )
    hover = _stats_hover(name, row) + "<extra></extra>"
    if kind == "box":
        return go.Box(y=s, boxpoints=False, line={"color": color}, hovertemplate=hover, **common)
    # the density is estimated on log10(µs): plotly's kernel works in data units, and on raw µs one slow
    # outlier widens the kernel until the shape no longer shows where the calls are
    return go.Violin(
        y=np.log10(np.maximum(s, 1e-3)),
        points=False,
        box={"visible": True, "fillcolor": "rgba(255,255,255,0.85)", "line": {"color": "#333333"}, "width": 0.25},
        meanline={"visible": True, "color": "#333333"},
        line={"color": color},
        fillcolor=color,
        opacity=0.6,
        spanmode="hard",
        hoveron="violins",
        hovertemplate=hover,
        **common,
    )


def _violin_log_axis(fig: go.Figure, samples_us: list[float]) -> None:
    """Label a log10(µs) value axis in µs at 1-2-5 steps."""
    if not samples_us:
        return
    low, high = math.log10(max(min(samples_us), 1e-3)), math.log10(max(max(samples_us), 1e-3))
    ticks = [m * 10.0**e for e in range(math.floor(low) - 1, math.ceil(high) + 1) for m in (1, 2, 5)]
    ticks = [t for t in ticks if low - 0.35 <= math.log10(t) <= high + 0.35]
    text = [f"{t / 1000:g} ms" if t >= 1000 else f"{t:g} µs" for t in ticks]
    fig.update_yaxes(type="linear", tickvals=[math.log10(t) for t in ticks], ticktext=text)


def latency_vs_batch(report: Report) -> go.Figure:
    """p50 latency per call with its confidence interval, per variant, log-log."""
    colors = variant_colors(report)
    fig = _figure(
        "p50 latency per call vs batch size",
        "batch size (rows, log scale)",
        "p50 latency per call (µs, log scale)",
        x_log=True,
        y_log=True,
    )
    for v in measured_variants(report):
        rows = timed_rows(v)
        fig.add_trace(
            go.Scatter(
                x=[r.batch_size for r in rows],
                y=[r.p50_us for r in rows],
                mode="lines+markers",
                name=label(v.name),
                legendgroup=v.name,
                line={"color": colors[v.name]},
                meta={"variant": v.name},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [_gap(r.p50_ci_high_us, r.p50_us) for r in rows],
                    "arrayminus": [_gap(r.p50_us, r.p50_ci_low_us) for r in rows],
                },
                text=[
                    _stats_hover(
                        v.name, r, f"<br>p50 95% CI: {fmt_us(r.p50_ci_low_us)} – {fmt_us(r.p50_ci_high_us)}"
                    )
                    for r in rows
                ],
                hovertemplate="%{text}<extra></extra>",
            )
        )
    floor = floor_rows(report)
    if floor:
        fig.add_trace(
            go.Scatter(
                x=[r.batch_size for r in floor],
                y=[r.p50_us for r in floor],
                mode="lines+markers",  # a single batch size still draws the floor
                name="ORT floor (trivial graph)",
                line={"color": FLOOR_COLOR, "dash": "dash"},
                hovertemplate=(
                    "<b>ORT floor</b><br>batch size: %{x:,} rows<br>p50: %{y:.1f} µs<extra></extra>"
                ),
            )
        )
    if not fig.data:
        return _say_empty(fig, "No latency was measured in this report")
    return _tidy_log_axes(fig)


# --------------------------------------------------------------------------- throughput and crossover


@dataclass(frozen=True)
class Crossover:
    """Where the faster side changes between the native model and the best ONNX variant."""

    native: str
    onnx: str
    batch_sizes: tuple[float, ...]  # estimated (log-log interpolation) batch sizes of each change
    faster_first: str  # faster at the smallest common batch size
    faster_last: str  # faster at the largest common batch size

    @property
    def winner_throughout(self) -> str | None:
        return self.faster_first if not self.batch_sizes else None


def crossover(report: Report) -> Crossover | None:
    """Compare native with the ONNX variant that beats it most, over their common batch sizes."""
    native = report.native
    if native is None or not native.applicable or not timed_rows(native):
        return None
    best: tuple[float, VariantResult, list[int]] | None = None
    for v in _onnx(report):
        common = sorted({r.batch_size for r in timed_rows(v)} & {r.batch_size for r in timed_rows(native)})
        if not common:
            continue
        ratios = [math.log(_at(native, b).p50_us / _at(v, b).p50_us) for b in common]  # type: ignore[union-attr]
        score = float(np.mean(ratios))
        if best is None or (len(common), score) > (len(best[2]), best[0]):
            best = (score, v, common)
    if best is None:
        return None
    _, v, common = best
    logs = [math.log(_at(native, b).p50_us / _at(v, b).p50_us) for b in common]  # type: ignore[union-attr]
    changes = []
    for i in range(len(common) - 1):
        r0, r1 = logs[i], logs[i + 1]
        if (r0 > 0) != (r1 > 0):
            t = r0 / (r0 - r1) if r0 != r1 else 0.5
            lo, hi = math.log(common[i]), math.log(common[i + 1])
            changes.append(math.exp(lo + t * (hi - lo)))
    return Crossover(
        native=native.name,
        onnx=v.name,
        batch_sizes=tuple(changes),
        faster_first=v.name if logs[0] > 0 else native.name,
        faster_last=v.name if logs[-1] > 0 else native.name,
    )


def _crossover_title(c: Crossover | None) -> str:
    # the verdict goes on its own line (smaller): in a half-width panel one long line is cut off
    base = "Throughput vs batch size<br><sup>"
    if c is None:
        return "Throughput vs batch size"
    return _crossover_verdict(base, c) + "</sup>"


def _crossover_verdict(base: str, c: Crossover) -> str:
    if c.winner_throughout is not None:
        loser = c.native if c.winner_throughout == c.onnx else c.onnx
        return f"{base}{label(c.winner_throughout)} is faster than {label(loser)} at every measured batch size"
    if len(c.batch_sizes) == 1:
        return (
            f"{base}{label(c.faster_first)} is faster up to ≈{c.batch_sizes[0]:,.0f} rows, "
            f"{label(c.faster_last)} above"
        )
    return f"{base}{label(c.native)} and {label(c.onnx)} trade places {len(c.batch_sizes)} times"


def throughput_vs_batch(report: Report) -> go.Figure:
    """Rows per second vs batch size, log-log, with the native/ONNX crossover and the ORT floor."""
    colors = variant_colors(report)
    c = crossover(report)
    fig = _figure(
        _crossover_title(c),
        "batch size (rows, log scale)",
        "throughput at the median call (rows/s, log scale)",
        x_log=True,
        y_log=True,
    )
    for v in measured_variants(report):
        rows = timed_rows(v)
        fig.add_trace(
            go.Scatter(
                x=[r.batch_size for r in rows],
                y=[p50_rows_per_s(r) for r in rows],
                mode="lines+markers",
                name=label(v.name),
                legendgroup=v.name,
                line={"color": colors[v.name]},
                meta={"variant": v.name},
                text=[_stats_hover(v.name, r) for r in rows],
                hovertemplate="%{text}<extra></extra>",
            )
        )
    if not fig.data:
        return _say_empty(fig, "No latency was measured in this report")
    floor = floor_rows(report)
    if floor:
        fig.add_trace(
            go.Scatter(
                x=[r.batch_size for r in floor],
                y=[r.batch_size / (r.p50_us * 1e-6) for r in floor],
                mode="lines+markers",  # a single batch size still draws the floor
                name="ORT floor (trivial graph)",
                line={"color": FLOOR_COLOR, "dash": "dash"},
                customdata=[r.p50_us for r in floor],
                hovertemplate=(
                    "<b>ORT floor</b> (trivial graph, same input shape)<br>batch size: %{x:,} rows"
                    "<br>p50: %{customdata:.1f} µs<br>ceiling: %{y:,.0f} rows/s<extra></extra>"
                ),
            )
        )
    for x in c.batch_sizes if c else ():
        _mark_crossover(fig, x, c)  # type: ignore[arg-type]
    return _tidy_log_axes(fig)


def _mark_crossover(fig: go.Figure, x: float, c: Crossover) -> None:
    _vertical_marker(fig, x, name="crossover", text=f"crossover ≈ {x:,.0f} rows", color="#555", dash="dot",
                     text_color="#333")


def _vertical_marker(fig: go.Figure, x: float, *, name: str, text: str, color: str, dash: str,
                     text_color: str) -> None:
    """A labelled vertical line across the plot at ``x`` on a log x-axis."""
    fig.add_shape(type="line", name=name, xref="x", yref="paper", x0=x, x1=x, y0=0, y1=1,
                  line={"color": color, "dash": dash, "width": 1.5})
    fig.add_annotation(name=name, xref="x", yref="paper", x=math.log10(x), y=1, yanchor="bottom",
                       showarrow=False, text=text, font={"size": 11, "color": text_color})


# --------------------------------------------------------------------------- size


def model_size(report: Report) -> go.Figure:
    """Artifact size per variant with the reduction vs fp32 (or native); inapplicable ones greyed."""
    colors = variant_colors(report)
    base = _size_baseline(report)
    largest = max((v.size_bytes or 0 for v in report.variants), default=0)
    unit, scale = ("MB", MB) if largest >= MB else ("kB", 1_000) if largest >= 1_000 else ("bytes", 1)
    fig = _figure(
        "Model size" + (f" (ratios vs {label(base.name)})" if base else ""), "variant", f"model size ({unit})"
    )
    names = [label(v.name) for v in report.variants if v.size_bytes or not v.applicable]
    for v in report.variants:
        name = label(v.name)
        if not v.applicable:
            hover = f"<b>{name}</b><br>n/a: {label(_reason(v))}<extra></extra>"
            if v.size_bytes:
                fig.add_trace(
                    go.Bar(
                        x=[name],
                        y=[v.size_bytes / scale],
                        name=name,
                        marker={"color": NOT_APPLICABLE_COLOR},
                        text=["n/a"],
                        textposition="outside",
                        hovertemplate=hover,
                        meta={"variant": v.name},
                    )
                )
            else:
                fig.add_trace(
                    go.Scatter(
                        x=[name],
                        y=[0],
                        mode="markers+text",
                        name=name,
                        text=["n/a"],
                        textposition="top center",
                        hovertemplate=hover,
                        meta={"variant": v.name},
                        marker={"color": NOT_APPLICABLE_COLOR, "symbol": "x", "size": 12},
                    )
                )
        elif v.size_bytes:
            ratio = _ratio_words(v, base)
            what = "model file as loaded" if v.precision == "native" else "ONNX artifact"
            fig.add_trace(
                go.Bar(
                    x=[name],
                    y=[v.size_bytes / scale],
                    name=name,
                    marker={"color": colors[v.name]},
                    meta={"variant": v.name},
                    text=[f"{fmt_mb(v.size_bytes)}<br>{ratio}"],
                    textposition="outside",
                    hovertemplate=(
                        f"<b>{name}</b> ({what})<br>size: {fmt_mb(v.size_bytes)} ({v.size_bytes:,} bytes)"
                        f"<br>{ratio}<extra></extra>"
                    ),
                )
            )
    if not fig.data:
        return _say_empty(fig, "No variant sizes in this report")
    fig.update_layout(barmode="overlay", showlegend=False, uniformtext={"minsize": 9, "mode": "show"})
    fig.update_xaxes(categoryorder="array", categoryarray=names)
    fig.update_yaxes(rangemode="tozero")
    return fig


def _ratio_words(v: VariantResult, base: VariantResult | None) -> str:
    if base is None or not base.size_bytes or not v.size_bytes:
        return ""
    if v.name == base.name:
        return "baseline"
    ratio = base.size_bytes / v.size_bytes
    if ratio >= 1:
        return f"{ratio:.2f}× smaller than {label(base.name)}"
    return f"{1 / ratio:.2f}× larger than {label(base.name)}"


# --------------------------------------------------------------------------- drift


def _drift_samples(v: VariantResult) -> tuple[np.ndarray, int]:
    """Finite absolute differences (clipped at ZERO_FLOOR) and how many non-finite ones were dropped."""
    raw = v.drift_detail.abs_diff_sample if v.drift_detail else ()
    arr = np.asarray([np.inf if x is None else x for x in raw], dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    return np.maximum(finite, ZERO_FLOOR), int(arr.size - finite.size)


def drift_histogram(report: Report) -> go.Figure:
    """Distribution of per-row absolute score differences vs native, log x with zeros at ZERO_FLOOR."""
    colors = variant_colors(report)
    fig = _figure(
        "Per-row drift vs the native model",
        f"absolute score difference vs native (log scale; zeros and values below {ZERO_FLOOR:g} "
        f"shown at {ZERO_FLOOR:g})",
        "sampled rows (%)",
        x_log=True,
    )
    fig.update_xaxes(exponentformat="power")
    samples = [(v, *_drift_samples(v)) for v in _onnx(report)]
    samples = [(v, s, bad) for v, s, bad in samples if s.size or bad]
    finite = [s for _, s, _ in samples if s.size]
    if not finite:
        return _say_empty(fig, "No drift samples in this report")
    edges = _log_edges(np.concatenate(finite))
    for v, s, bad in samples:
        if not s.size:
            continue
        counts, _ = np.histogram(s, bins=edges)
        pct = 100.0 * counts / (s.size + bad)
        y = np.append(pct, pct[-1])
        custom = np.column_stack([edges, np.append(edges[1:], edges[-1]), np.append(counts, counts[-1])])
        name = label(v.name) + (f" ({bad} non-finite rows not shown)" if bad else "")
        fig.add_trace(
            go.Scatter(
                x=edges,
                y=y,
                mode="lines",
                line={"color": colors[v.name], "shape": "hv", "width": 2},
                name=name,
                legendgroup=v.name,
                fill="tozeroy",
                opacity=0.55,
                customdata=custom,
                meta={"variant": v.name},
                hovertemplate=(
                    f"<b>{label(v.name)}</b><br>|diff| in [%{{customdata[0]:.2e}}, %{{customdata[1]:.2e}})"
                    f"<br>rows: %{{customdata[2]:,}} (%{{y:.1f}}% of {s.size + bad:,} sampled)<extra></extra>"
                ),
            )
        )
    tolerances = {v.drift.tolerance for v, _, _ in samples if v.drift and _finite(v.drift.tolerance)}
    for tol in tolerances:
        t = max(float(tol), ZERO_FLOOR)  # type: ignore[arg-type]
        _vertical_marker(fig, t, name="tolerance", text=f"tolerance {t:g}", color="#b00020", dash="dash",
                         text_color="#b00020")
    return fig


def _log_edges(values: np.ndarray, per_decade: int = 4) -> np.ndarray:
    lo = math.floor(math.log10(float(values.min())))
    hi = math.ceil(math.log10(float(values.max())))
    hi = max(hi, lo + 1)
    return 10.0 ** np.linspace(lo, hi, (hi - lo) * per_decade + 1)


def _score_title(report: Report, who: str) -> str:
    task = report.model.get("task")
    if task == "regression":
        return f"{who} prediction (target units)"
    classes = report.model.get("classes") or []
    last = label(classes[-1]) if classes else "last class"
    return f"{who} score: P(class {last}) (probability)"


def drift_scatter(report: Report, variant: str) -> go.Figure:
    """Native score vs the variant's score on sampled rows, with the y = x line of no drift."""
    v = report.variant(variant)
    name = label(variant)
    fig = _figure(f"Native vs {name} scores", _score_title(report, "native"), _score_title(report, name))
    d = v.drift_detail if v else None
    if d is None or not d.native_score_sample or len(d.native_score_sample) != len(d.variant_score_sample):
        return _say_empty(fig, f"No score samples for {variant}")
    x = np.asarray([np.nan if a is None else a for a in d.native_score_sample], dtype=np.float64)
    y = np.asarray([np.nan if a is None else a for a in d.variant_score_sample], dtype=np.float64)
    diff = np.abs(x - y)
    fig.add_trace(
        go.Scatter(
            x=x,
            y=y,
            mode="markers",
            name=name,
            customdata=diff,
            meta={"variant": variant},
            marker={
                "color": variant_colors(report).get(variant, _EXTRA_COLORS[0]),
                "size": 5,
                "opacity": 0.6,
            },
            hovertemplate=(
                f"<b>{name}</b><br>native: %{{x:.6g}}<br>{name}: %{{y:.6g}}"
                "<br>|diff|: %{customdata:.2e}<extra></extra>"
            ),
        )
    )
    both = np.concatenate([x[np.isfinite(x)], y[np.isfinite(y)]])
    if both.size:
        lo, hi = float(both.min()), float(both.max())
        fig.add_trace(
            go.Scatter(
                x=[lo, hi],
                y=[lo, hi],
                mode="lines",
                name="y = x (no drift)",
                line={"color": REFERENCE_COLOR, "dash": "dash"},
                hoverinfo="skip",
            )
        )
    return fig


def worst_samples_table(
    report: Report, variant: str, feature_names: Sequence[str] | None = None
) -> pd.DataFrame:
    """The rows that drift most: row index, |diff|, both scores, label flip (classifiers), feature values.

    Scores are P(last class) for binary models, the prediction for regressors, and for multiclass the
    class whose probability moved most (named in the ``class`` column).
    """
    v = report.variant(variant)
    worst = v.drift_detail.worst if v and v.drift_detail else ()
    n_features = max((len(w.features) for w in worst), default=int(report.model.get("n_features") or 0))
    names = list(feature_names or report.model.get("feature_names") or [])
    if len(names) != n_features:
        names = [f"f{i}" for i in range(n_features)]
    classifier = report.model.get("task") in ("binary", "multiclass")
    multiclass = any(len(w.native) > 2 for w in worst)
    records = []
    for w in worst:
        # counted as the CSV's readers and the tool's errors count: 1 = the first row after the header
        rec: dict[str, Any] = {"data row": w.row + 1, "abs diff": w.abs_diff}
        col = _worst_column(w.native, w.variant, multiclass)
        if multiclass:
            rec["class"] = col
        rec["native score"] = w.native[col] if w.native else None
        rec["variant score"] = w.variant[col] if w.variant else None
        if classifier and w.native and w.variant:
            finite = np.isfinite(w.native).all() and np.isfinite(w.variant).all()
            rec["label flip"] = (int(np.argmax(w.native)) != int(np.argmax(w.variant))) if finite else None
        rec.update({n: (w.features[i] if i < len(w.features) else None) for i, n in enumerate(names)})
        records.append(rec)
    head = [
        "data row",
        "abs diff",
        *(["class"] if multiclass else []),
        "native score",
        "variant score",
        *(["label flip"] if classifier else []),
    ]
    return pd.DataFrame.from_records(records, columns=[*head, *[n for n in names if n not in head]])


def _worst_column(native: Sequence[float], variant: Sequence[float], multiclass: bool) -> int:
    if not native:
        return 0
    if not multiclass or len(native) != len(variant):
        return len(native) - 1
    return int(np.argmax(np.abs(np.asarray(native, dtype=float) - np.asarray(variant, dtype=float))))


_METRIC_ORDER = ("accuracy", "f1", "roc_auc", "log_loss", "rmse", "mae", "r2")


def metric_deltas(report: Report) -> pd.DataFrame:
    """One row per variant with metrics: each metric and its delta vs the native model (``Δ name``)."""
    with_metrics = [v for v in report.variants if v.applicable and v.metrics]
    keys = sorted(
        {k for v in with_metrics for k in v.metrics or {}},
        key=lambda k: (_METRIC_ORDER.index(k) if k in _METRIC_ORDER else len(_METRIC_ORDER), k),
    )
    native = report.native.metrics if report.native and report.native.metrics else {}
    records = []
    for v in with_metrics:
        rec: dict[str, Any] = {"variant": v.name}
        for k in keys:
            value = (v.metrics or {}).get(k)
            rec[k] = value
            rec[f"Δ {k}"] = value - native[k] if value is not None and native.get(k) is not None else None
        records.append(rec)
    columns = ["variant", *[c for k in keys for c in (k, f"Δ {k}")]]
    return pd.DataFrame.from_records(records, columns=columns)


# --------------------------------------------------------------------------- pareto


def _pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points no other point beats on both (lower latency and lower drift), by latency."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    front, best = [], math.inf
    for i in order:
        if points[i][1] < best:
            front.append(i)
            best = points[i][1]
    return front


def pareto(report: Report, batch_size: int = 1) -> go.Figure:
    """p50 latency vs max drift at one batch size; marker size is model size; the front is connected."""
    sizes = batch_sizes(report)
    b = batch_size if batch_size in sizes or not sizes else sizes[0]
    colors = variant_colors(report)
    fig = _figure(
        f"Latency vs drift at batch {b:,} (lower left is better)",
        "p50 latency per call (µs, log scale)",
        f"max absolute score difference vs native<br>(log scale; zero shown at {ZERO_FLOOR:g})",
        x_log=True,
        y_log=True,
    )
    fig.update_yaxes(exponentformat="power")
    pts: list[tuple[VariantResult, LatencyStats, float]] = []
    for v in measured_variants(report):
        row = _at(v, b)
        if row is None or (v.precision != "native" and v.drift is None):
            continue
        drift = 0.0 if v.precision == "native" else _drift_max(v)
        if math.isfinite(drift):
            pts.append((v, row, drift))
    max_size = max((v.size_bytes or 0 for v, _, _ in pts), default=0) or 1
    for v, row, drift in pts:
        size_px = 12 + 28 * math.sqrt((v.size_bytes or 0) / max_size)
        fig.add_trace(
            go.Scatter(
                x=[row.p50_us],
                y=[max(drift, ZERO_FLOOR)],
                mode="markers",
                name=label(v.name),
                legendgroup=v.name,
                meta={"variant": v.name},
                marker={"color": colors[v.name], "size": size_px, "line": {"width": 1, "color": "#222"}},
                hovertemplate=_stats_hover(
                    v.name, row, f"<br>max |diff|: {fmt_diff(drift)}<br>size: {fmt_mb(v.size_bytes)}"
                )
                + "<extra></extra>",
            )
        )
    # the front runs through every plotted point: the variants and, in a tuned run, its candidates
    plotted = [(r.p50_us, d) for _, r, d in pts]
    plotted += [(float(c["p50_us"]), _candidate_drift(c)) for c in _tuning_candidates(report, b)]
    if len(plotted) > 1:
        front = [plotted[i] for i in _pareto_front(plotted)]
        fig.add_trace(
            go.Scatter(
                x=[x for x, _ in front],
                y=[max(d, ZERO_FLOOR) for _, d in front],
                mode="lines",
                name="Pareto front",
                line={"color": "#666", "dash": "dot", "shape": "hv"},
                hoverinfo="skip",
            )
        )
    if _tuning_candidates(report, b):
        _add_tuning(fig, report, b)  # marks the recommended configuration itself: one star, not two
    else:
        _add_recommended(fig, report, b, pts)
    if not fig.data:
        return _say_empty(fig, f"No variant has both latency and drift at batch {b}")
    return fig


def _add_recommended(
    fig: go.Figure, report: Report, b: int, pts: list[tuple[VariantResult, LatencyStats, float]]
) -> None:
    pick = report.recommendation.by_batch_size.get(str(b)) if report.recommendation else None
    hit = next(((r, d) for v, r, d in pts if v.name == pick), None)
    if hit is None:
        return
    fig.add_trace(
        go.Scatter(
            x=[hit[0].p50_us],
            y=[max(hit[1], ZERO_FLOOR)],
            mode="markers+text",
            name="recommended",
            text=[f"recommended: {label(pick)}"],
            textposition="top center",
            marker={"symbol": "star", "size": 18, "color": "#f2c14e", "line": {"width": 1}},
            hovertemplate=f"<b>recommended at batch {b:,}</b>: {label(pick)}<extra></extra>",
        )
    )


def _candidate_drift(c: dict[str, Any]) -> float:
    """A candidate's max |diff|: 0 for native; None on an ONNX row read back from JSON means unbounded."""
    if c.get("precision") == "native":
        return 0.0
    value = c.get("max_abs")
    return math.inf if value is None else float(value)


def _tuning_candidates(report: Report, b: int) -> list[dict[str, Any]]:
    raw = (report.tuning or {}).get("candidates") or []
    out = []
    for c in raw:
        if not isinstance(c, dict) or c.get("batch_size", b) != b:
            continue
        if _finite(c.get("p50_us")) and math.isfinite(_candidate_drift(c)):  # unbounded drift has no place here
            out.append(c)
    return out


def _add_tuning(fig: go.Figure, report: Report, b: int) -> None:
    cands = _tuning_candidates(report, b)
    if not cands:
        return
    for rec in (False, True):
        group = [c for c in cands if bool(c.get("recommended")) is rec]
        if not group:
            continue
        fig.add_trace(
            go.Scatter(
                x=[c["p50_us"] for c in group],
                y=[max(_candidate_drift(c), ZERO_FLOOR) for c in group],
                mode="markers",
                name="recommended" if rec else "tuning candidates",
                marker={
                    "symbol": "star-diamond" if rec else "circle-open",
                    "size": 16 if rec else 9,
                    "color": "#f2c14e" if rec else "#7f7f7f",
                    "line": {"width": 1, "color": "#333"},
                },
                text=[label(c.get("name", "candidate")) for c in group],
                customdata=[fmt_mb(c.get("size_bytes")) for c in group],
                hovertemplate=(
                    "<b>%{text}</b><br>p50: %{x:.1f} µs<br>max |diff|: %{y:.2e}<br>size: %{customdata}"
                    "<extra></extra>"
                ),
            )
        )


# --------------------------------------------------------------------------- all


def drift_variants(report: Report) -> list[str]:
    """Names of variants with score samples for the drift scatter, largest drift first."""
    named = [v for v in _onnx(report) if v.drift_detail and v.drift_detail.native_score_sample]
    return [v.name for v in sorted(named, key=_drift_max, reverse=True)]


def all_figures(report: Report) -> dict[str, go.Figure]:
    """Every figure that has something to show, title -> figure, in reading order."""
    pareto_batch = 1 if 1 in batch_sizes(report) else next(iter(batch_sizes(report)), 1)
    candidates: Iterable[tuple[str, go.Figure]] = [
        ("Throughput vs batch size", throughput_vs_batch(report)),
        ("Latency vs batch size", latency_vs_batch(report)),
        ("Latency distribution", latency_distribution(report)),
        ("Model size", model_size(report)),
        ("Drift distribution", drift_histogram(report)),
        *((f"Native vs {name} scores", drift_scatter(report, name)) for name in drift_variants(report)),
        (f"Latency vs drift (batch {pareto_batch:,})", pareto(report, pareto_batch)),
    ]
    return {title: fig for title, fig in candidates if fig.data}


def _setting_text(value: Any) -> str:
    """One type per column (text), so the table converts to Arrow: "-" where a setting does not apply."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def tuning_table(report: Report) -> pd.DataFrame:
    """Per batch size: the recommended configuration and how it compares with native and ORT's defaults
    (all from the tuner's finalists round, measured side by side)."""
    rec = report.recommendation
    rows = [r for r in (report.tuning or {}).get("candidates", []) if r.get("final")]
    records = []
    for batch in sorted({int(r["batch_size"]) for r in rows}):
        at_batch = [r for r in rows if int(r["batch_size"]) == batch]
        picked = rec.configuration(batch) if rec else None
        chosen = next((r for r in at_batch if r["name"] == picked), None)
        # the fastest native configuration measured, as the recommendation compares (default threads can be
        # far slower on a busy machine)
        native = fastest_native(at_batch)
        default = min((r for r in at_batch if r.get("is_default")), key=lambda r: r["p50_us"], default=None)
        if chosen is None:
            continue
        settings = chosen.get("settings") or {}
        records.append({
            "batch size": batch,
            "recommended": chosen["name"],
            "p50": fmt_us(chosen["p50_us"]),
            "best native p50": f"{fmt_us(native['p50_us'])} ({native['name']})" if native else "n/a",
            "ORT defaults p50": fmt_us(default["p50_us"]) if default else "n/a",
            "speedup vs best native": f"{native['p50_us'] / chosen['p50_us']:.2f}x" if native else "n/a",
            "threads": _setting_text(settings.get("intra_op_threads")),
            "spinning": _setting_text(settings.get("allow_spinning")),
            "graph level": _setting_text(settings.get("graph_optimization")),
            "max drift": fmt_diff(chosen.get("drift", chosen["max_abs"])) if chosen.get("max_abs") is not None
            else "0 (native)",
        })
    return pd.DataFrame.from_records(records)
