"""Trees: a tree ensemble's trade-offs. Latency against the primary metric (with the Pareto front and the
recommendation) and how many trees the metric needs. The numbers come from :mod:`optimizer_core.tradeoffs`; these
builders only draw them, in the colours and layout of ``common`` (latency against drift is ``tradeoffs.pareto``;
the truncated variants' table is ``views.tables.truncation_table``)."""

from __future__ import annotations

import plotly.graph_objects as go

from optimizer_core.report import Report
from optimizer_core.summary import batch_sizes
from optimizer_core.tradeoffs import (
    TradeoffPoint,
    has_truncation,
    metric_label,
    metric_tolerance,
    primary_metric,
    tradeoff_points,
    trees_curve,
    trees_of,
)
from optimizer_core.units import fmt_delta, fmt_diff, fmt_mb, fmt_us
from optimizer_core.views.figures.common import NATIVE_COLOR, _figure, _say_empty, variant_colors
from optimizer_core.views.figures.labels import label_positions
from optimizer_core.views.text import label

RECOMMENDED_COLOR = "#f2c14e"


def _batch(report: Report, batch_size: int | None) -> int:
    """``batch_size`` when it was measured; else the first measured one (the largest when none was asked for)."""
    sizes = batch_sizes(report)
    if not sizes:
        return batch_size or 1
    if batch_size in sizes:
        return batch_size
    return sizes[-1] if batch_size is None else sizes[0]


def _hover(p: TradeoffPoint, metric: str) -> str:
    kept = f"{p.trees_kept:,} of {p.trees_total:,}" if p.trees_kept is not None else "all"
    delta = f" ({fmt_delta(p.metric_delta)})" if p.metric_delta is not None else ""
    verdict = "within the run's tolerance" if p.passes else "over the run's tolerance"
    return (f"<b>{label(p.name)}</b><br>p50: {fmt_us(p.p50_us)}<br>{label(metric)}: "
            f"{'n/a' if p.metric is None else f'{p.metric:.4f}'}{delta}<br>max drift: {fmt_diff(p.drift)}"
            f"<br>trees kept: {kept}<br>size: {fmt_mb(p.size_bytes)}<br>{verdict}"
            + ("<br>no drift or metric of its own: the native model's predictions on other threads"
               if p.native_configuration else ""))


def latency_vs_metric(report: Report, batch_size: int = 1) -> go.Figure:
    """p50 latency against the primary metric at one batch size: every variant (filled: may be recommended under
    the run's tolerance; open: over it), the Pareto front (faster or better, upper left), the metric tolerance's
    floor and the recommended variant."""
    b = _batch(report, batch_size)
    key = primary_metric(report)
    name = metric_label(key)
    fig = _figure(f"Latency vs {name} at batch {b:,} (upper left is better)", "p50 latency per call (µs, log scale)",
                  f"{name} on the target", x_log=True)
    if key is None:
        return _say_empty(fig, "No target column in this run, so no metric to trade against")
    points = [p for p in tradeoff_points(report, b) if p.metric is not None]
    if not points:
        return _say_empty(fig, f"No variant has both latency and {name} at batch {b}")
    colors = variant_colors(report)
    # labels of near points must not print over each other: each takes a free place around its point (the
    # recommended one and the front choose first); one with no free place is left to the legend and the hover
    first = sorted(range(len(points)), key=lambda i: (not points[i].recommended, not points[i].front_metric))
    places = label_positions([p.p50_us for p in points], [p.metric for p in points],
                             [p.name for p in points], x_log=True, order=first)
    for p, place in zip(points, places, strict=True):
        fig.add_trace(go.Scatter(
            x=[p.p50_us], y=[p.metric], mode="markers+text" if place else "markers", name=label(p.name),
            legendgroup=p.name, meta={"variant": p.name, "passes": p.passes},
            text=[label(p.name)] if place else None, textposition=place, textfont={"size": 10},
            marker={"color": colors.get(p.name, NATIVE_COLOR), "size": 13,
                    "symbol": "circle" if p.passes else "circle-open", "line": {"width": 2, "color": "#222"}},
            hovertemplate=_hover(p, name) + "<extra></extra>",
        ))
    front = sorted((p for p in points if p.front_metric), key=lambda p: p.p50_us)
    if len(front) > 1:
        fig.add_trace(go.Scatter(x=[p.p50_us for p in front], y=[p.metric for p in front], mode="lines",
                                 name="Pareto front", line={"color": "#666", "dash": "dot", "shape": "hv"},
                                 hoverinfo="skip"))
    native = next((p for p in points if p.precision == "native"), None)
    loss = metric_tolerance(report)
    if native is not None and native.metric is not None and loss is not None:
        floor = native.metric - loss
        fig.add_hline(y=floor, line={"color": "#b45309", "dash": "dash", "width": 1},
                      annotation_text=label(f"native − {loss:g} (metric tolerance)"), annotation_position="bottom right")
    _star(fig, next((p for p in points if p.recommended), None), p_y=lambda p: p.metric, batch=b)
    return fig


def trees_needed(report: Report, batch_size: int | None = None) -> go.Figure:
    """How many trees the model needs: the primary metric (left axis) and p50 latency at one batch size (right
    axis) against the trees kept, over the truncated variants and the full fp32 conversion."""
    b = _batch(report, batch_size)
    key = primary_metric(report)
    name = metric_label(key)
    curve = trees_curve(report, b)
    unit = "boosting rounds" if any(p.trees_kept is not None for p in curve) and _rounds(report) else "trees"
    fig = _figure(f"How many {unit} do you need? ({name} and p50 at batch {b:,})", f"{unit} kept",
                  name if key else "p50 latency per call (µs)")
    if len(curve) < 2:
        return _say_empty(fig, f"Fewer than two truncated variants were timed at batch {b}")
    xs = [trees_of(p, curve) for p in curve]
    hover = [_hover(p, name) + "<extra></extra>" for p in curve]
    latency_axis = "y2" if key else "y"
    if key:
        fig.add_trace(go.Scatter(x=xs, y=[p.metric for p in curve], mode="lines+markers", name=label(name),
                                 line={"color": "#0072B2", "width": 2}, marker={"size": 9}, hovertemplate=hover))
        native = report.native
        if native is not None and native.metrics and native.metrics.get(key) is not None:
            fig.add_hline(y=native.metrics[key], line={"color": NATIVE_COLOR, "dash": "dash", "width": 1},
                          annotation_text="native (all trees)", annotation_position="top left")  # the full
            # model's point sits at the right end of this line: a label there printed over it (QA)
        # plotly.js 4 syncs an overlaying axis's ticks to the primary's grid by default, which labels latency at
        # odd values (2.06, 5.41, 8.76 µs): its own round ticks instead
        fig.update_layout(yaxis2={"title": {"text": "p50 latency per call (µs)"}, "overlaying": "y", "side": "right",
                                  "rangemode": "tozero", "showgrid": False, "tickmode": "auto"},
                          margin={"r": 80})
    fig.add_trace(go.Scatter(x=xs, y=[p.p50_us for p in curve], mode="lines+markers", name="p50 latency",
                             yaxis=latency_axis, line={"color": "#D55E00", "width": 2, "dash": "dot"},
                             marker={"size": 9, "symbol": "diamond"}, hovertemplate=hover))
    fig.update_xaxes(rangemode="tozero")
    fig.update_layout(legend={"title": {"text": ""}, "orientation": "h", "y": -0.2})
    return fig


def _rounds(report: Report) -> bool:
    return any(v.trees_kept is not None and v.name.split("@")[0].startswith("rounds-") for v in report.variants)


def _star(fig: go.Figure, point: TradeoffPoint | None, *, p_y, batch: int) -> None:
    if point is None:
        return
    fig.add_trace(go.Scatter(
        x=[point.p50_us], y=[p_y(point)], mode="markers", name="recommended",
        marker={"symbol": "star", "size": 20, "color": RECOMMENDED_COLOR, "line": {"width": 1, "color": "#333"}},
        hovertemplate=f"<b>recommended at batch {batch:,}</b>: {label(point.name)}<extra></extra>",
    ))


def tree_figures(report: Report) -> dict[str, go.Figure]:
    """The tree trade-off figures for report.html and notebooks: latency vs the primary metric at every batch
    size, and how many trees at the largest; empty unless the run measured truncated variants."""
    if not has_truncation(report):
        return {}
    sizes = batch_sizes(report)
    name = metric_label(primary_metric(report))
    out = {}
    if primary_metric(report):
        out.update({f"Latency vs {name} (batch {b:,})": latency_vs_metric(report, b) for b in sizes})
    if sizes:
        out[f"How many trees (batch {sizes[-1]:,})"] = trees_needed(report, sizes[-1])
    return {title: fig for title, fig in out.items() if fig.data and not _empty(fig)}


def _empty(fig: go.Figure) -> bool:
    meta = fig.layout.meta
    return isinstance(meta, dict) and bool(meta.get("empty"))


__all__ = ["latency_vs_metric", "trees_needed", "tree_figures"]
