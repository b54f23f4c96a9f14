"""Throughput against batch size, with the native/ONNX crossover (``summary.crossover``) and the ORT floor."""

from __future__ import annotations

import plotly.graph_objects as go

from optimizer_core.report import Report
from optimizer_core.summary import (
    Crossover,
    crossover,
    floor_rows,
    measured_variants,
    p50_rows_per_s,
    timed_rows,
)
from optimizer_core.views.figures.common import (
    FLOOR_COLOR,
    _figure,
    _say_empty,
    _stats_hover,
    _tidy_log_axes,
    _vertical_marker,
    variant_colors,
)
from optimizer_core.views.text import label


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
    for v in measured_variants(report, with_configurations=True):
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
