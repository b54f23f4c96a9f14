"""What every figure shares: one colour per variant across all charts, the layout, log axes labelled at
measured sizes, an empty figure that says why, hover text and vertical markers."""

from __future__ import annotations

import math

import plotly.graph_objects as go

from optimizer_core.report import LatencyStats, Report
from optimizer_core.summary import listed_variants, p50_rows_per_s
from optimizer_core.units import fmt_rows_per_s, fmt_us
from optimizer_core.views.text import label

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
# for variants without a precision colour (truncated ensembles, tensor, a second provider): each at least 75 apart
# in RGB from every precision colour, the greys and each other, so no two variants read as the same hue
# (QA: fp32 and rounds-100 both blue, rounds-50 and rounds-150 both orange)
_EXTRA_COLORS = (
    "#BCBD22",  # olive
    "#8C564B",  # brown
    "#E7298A",  # magenta
    "#66A61E",  # lime
    "#6A3D9A",  # purple
    "#00CED1",  # turquoise
    "#800000",  # maroon
)
ZERO_FLOOR = 1e-12  # drift values below this (exact zeros included) are drawn here on log axes
TEMPLATE = "plotly_white"


def variant_colors(report: Report) -> dict[str, str]:
    """One colour per variant name (and native configuration, "native t1"), the same in every chart of the report."""
    colors: dict[str, str] = {}
    used: set[str] = set()
    for v in report.variants:
        preferred = NATIVE_COLOR if v.precision == "native" else _PRECISION_COLORS.get(v.precision)
        if preferred and preferred not in used and v.name not in colors:
            colors[v.name] = preferred
            used.add(preferred)
    free = [c for c in (*_EXTRA_COLORS, *_PRECISION_COLORS.values()) if c not in used] or list(_EXTRA_COLORS)
    i = 0
    for v in listed_variants(report):
        if v.name not in colors:
            colors[v.name] = free[i % len(free)]
            i += 1
    return colors


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


def _vertical_marker(fig: go.Figure, x: float, *, name: str, text: str, color: str, dash: str,
                     text_color: str) -> None:
    """A labelled vertical line across the plot at ``x`` on a log x-axis."""
    fig.add_shape(type="line", name=name, xref="x", yref="paper", x0=x, x1=x, y0=0, y1=1,
                  line={"color": color, "dash": dash, "width": 1.5})
    fig.add_annotation(name=name, xref="x", yref="paper", x=math.log10(x), y=1, yanchor="bottom",
                       showarrow=False, text=text, font={"size": 11, "color": text_color})
