"""Model size per variant, with the ratio against the size baseline (``summary._size_baseline``: fp32, else native)."""

from __future__ import annotations

import plotly.graph_objects as go

from optimizer_core.report import Report, VariantResult
from optimizer_core.summary import _size_baseline
from optimizer_core.units import fmt_mb
from optimizer_core.views.figures.common import NOT_APPLICABLE_COLOR, _figure, _say_empty, variant_colors
from optimizer_core.views.text import label

MB = 1_000_000


def _reason(v: VariantResult) -> str:
    return v.notes[0] if v.notes else "not applicable"


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
