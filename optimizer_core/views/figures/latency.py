"""Latency figures: per-call distributions per variant (violin, box or ECDF) and p50 latency against batch size."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import plotly.graph_objects as go

from optimizer_core.report import LatencyStats, Report
from optimizer_core.summary import _finite, batch_sizes, floor_rows, measured_variants, timed_rows
from optimizer_core.units import fmt_us
from optimizer_core.views.figures.common import (
    FLOOR_COLOR,
    _figure,
    _say_empty,
    _stats_hover,
    _tidy_log_axes,
    variant_colors,
)
from optimizer_core.views.text import label

MAX_POINTS = 2000  # latency samples per trace, taken as evenly spaced quantiles
DistributionKind = Literal["violin", "box", "ecdf"]


def _gap(high: float | None, low: float | None) -> float:
    return max(high - low, 0.0) if _finite(high) and _finite(low) else 0.0  # type: ignore[operator]


def _even_quantiles(samples: Sequence[float], limit: int = MAX_POINTS) -> np.ndarray:
    """Sorted samples, thinned to ``limit`` evenly spaced quantiles (min and max kept)."""
    arr = np.sort(np.asarray([s for s in samples if _finite(s)], dtype=np.float64))
    if arr.size <= limit:
        return arr
    return np.quantile(arr, np.linspace(0.0, 1.0, limit))


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
        if any((r := v.latency_at(b)) is not None and r.samples_us for v in measured_variants(report, with_configurations=True))
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
        for v in measured_variants(report, with_configurations=True):
            row = v.latency_at(b)
            if row is None or not row.samples_us:
                continue
            fig.add_trace(_distribution_trace(kind, v.name, row, colors[v.name], visible=i == 0))
            groups.append(b)
    if kind == "violin":
        _violin_log_axis(fig, [x for v in measured_variants(report, with_configurations=True) for b in sizes
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
    for v in measured_variants(report, with_configurations=True):
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
