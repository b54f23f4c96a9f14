"""Trade-offs: p50 latency against drift at one batch size, with the Pareto front (``summary.pareto_front_points``),
the tuning candidates and the recommended configuration."""

from __future__ import annotations

import math

import plotly.graph_objects as go

from optimizer_core.report import LatencyStats, Report, VariantResult
from optimizer_core.summary import (
    _candidate_drift,
    _tuning_candidates,
    batch_sizes,
    drift_points,
    is_native_configuration,
    pareto_front_points,
    recommended_name,
)
from optimizer_core.units import fmt_diff, fmt_mb
from optimizer_core.views.figures.common import ZERO_FLOOR, _figure, _say_empty, _stats_hover, variant_colors
from optimizer_core.views.text import label

NO_DRIFT_OF_ITS_OWN = "<br>no drift of its own: the native model's predictions, placed at native's drift (0)"


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
    pts = drift_points(report, b)
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
                    + (NO_DRIFT_OF_ITS_OWN if is_native_configuration(report, v) else "")
                )
                + "<extra></extra>",
            )
        )
    front = pareto_front_points(report, b)  # through the variants and, in a tuned run, its candidates
    if front:
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
    pick = recommended_name(report, b, [v.name for v, _, _ in pts])  # "native t1" itself, not native's default
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
