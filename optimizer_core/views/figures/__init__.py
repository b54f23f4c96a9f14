"""Plotly figures built from a Report, one module per subject: the dashboard, report.html and the notebook share them.

- ``latency``: per-call latency distributions and p50 latency against batch size.
- ``throughput``: throughput against batch size with the native/ONNX crossover and the ORT floor.
- ``size``: model size per variant.
- ``drift``: per-row drift distribution and native against variant scores.
- ``tradeoffs``: latency against drift, with the Pareto front and the recommendation.
- ``trees``: a tree ensemble's truncated variants: latency against the primary metric, how many trees it needs.
- ``common``: colours (each variant keeps one across all charts, :func:`variant_colors`), layout, hover text.

Every builder takes a :class:`Report` and copes with partial ones (variants that do not apply, no
latency, regression without label flips, empty samples): where there is nothing to draw it returns
a figure without traces that says why. Figures draw; the numbers they show are decided in
``optimizer_core.summary`` (and ``optimizer_core.tradeoffs``). Text that comes from the report (variant names, class labels) is
HTML-escaped before it reaches plotly, which renders a subset of HTML in labels.
"""

from __future__ import annotations

import plotly.graph_objects as go

from optimizer_core.report import Report
from optimizer_core.summary import batch_sizes, drift_variants
from optimizer_core.views.figures.common import (
    FLOOR_COLOR,
    NATIVE_COLOR,
    NOT_APPLICABLE_COLOR,
    REFERENCE_COLOR,
    TEMPLATE,
    ZERO_FLOOR,
    variant_colors,
)
from optimizer_core.views.figures.drift import drift_histogram, drift_scatter
from optimizer_core.views.figures.latency import (
    MAX_POINTS,
    DistributionKind,
    latency_distribution,
    latency_vs_batch,
)
from optimizer_core.views.figures.size import model_size
from optimizer_core.views.figures.throughput import throughput_vs_batch
from optimizer_core.views.figures.tradeoffs import pareto
from optimizer_core.views.figures.trees import latency_vs_metric, tree_figures, trees_needed

__all__ = [
    "FLOOR_COLOR", "MAX_POINTS", "NATIVE_COLOR", "NOT_APPLICABLE_COLOR", "REFERENCE_COLOR", "TEMPLATE", "ZERO_FLOOR",
    "DistributionKind", "all_figures", "drift_histogram", "drift_scatter", "latency_distribution", "latency_vs_batch",
    "latency_vs_metric", "model_size", "pareto", "throughput_vs_batch", "tree_figures", "trees_needed",
    "variant_colors",
]


def all_figures(report: Report) -> dict[str, go.Figure]:
    """Every figure that has something to show, title -> figure, in reading order."""
    pareto_batch = 1 if 1 in batch_sizes(report) else next(iter(batch_sizes(report)), 1)
    candidates: list[tuple[str, go.Figure]] = [
        ("Throughput vs batch size", throughput_vs_batch(report)),
        ("Latency vs batch size", latency_vs_batch(report)),
        ("Latency distribution", latency_distribution(report)),
        ("Model size", model_size(report)),
        ("Drift distribution", drift_histogram(report)),
        *((f"Native vs {name} scores", drift_scatter(report, name)) for name in drift_variants(report)),
        (f"Latency vs drift (batch {pareto_batch:,})", pareto(report, pareto_batch)),
    ]
    trees = tree_figures(report)
    if trees:  # a tree ensemble's frontier: latency vs drift at every batch size, then vs its metric
        candidates += [(f"Latency vs drift (batch {b:,})", pareto(report, b)) for b in batch_sizes(report)
                       if b != pareto_batch]
        candidates += list(trees.items())
    return {title: fig for title, fig in candidates if fig.data}
