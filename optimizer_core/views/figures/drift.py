"""Drift figures: the distribution of per-row score differences against native, and native against variant scores."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from optimizer_core.report import Report, VariantResult
from optimizer_core.summary import _finite, _onnx
from optimizer_core.views.figures.common import (
    _EXTRA_COLORS,
    REFERENCE_COLOR,
    ZERO_FLOOR,
    _figure,
    _say_empty,
    _vertical_marker,
    variant_colors,
)
from optimizer_core.views.text import label


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
    if report.model.get("scores") == "decision":
        return f"{who} score: class {last}'s decision score"
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
