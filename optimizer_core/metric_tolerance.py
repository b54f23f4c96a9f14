"""The metric-based tolerance (``--max-metric-loss``): a variant that loses at most X of the native model's
primary metric passes the drift gate and may be recommended, whatever its drift.

Drift says how far a variant's scores are from the native model's; for a variant that changes the model on
purpose (a truncated ensemble) the question is rather what it costs in quality, measured on the target. The
primary metric is the one a task is usually judged by: ROC AUC for binary classifiers (threshold-free),
accuracy for multiclass, R² for regressors. Without ``max_metric_loss`` nothing changes: drift alone decides.
"""

from __future__ import annotations

from typing import Any

PRIMARY_METRICS = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}
METRIC_WORDS = {"roc_auc": "ROC AUC", "accuracy": "accuracy", "r2": "R²"}
# metrics are sums over rows: a loss equal to the tolerance must not fail by a rounding error in the subtraction
_SLACK = 1e-12


def primary_metric(task: str) -> str:
    return PRIMARY_METRICS[task]


def metric_delta(metrics: dict[str, float] | None, native: dict[str, float] | None, task: str) -> float | None:
    """The variant's primary metric minus the native model's (negative: worse), or None when either is missing
    (no target, or the metric is undefined on these rows)."""
    key = PRIMARY_METRICS.get(task)
    if key is None or not metrics or not native or metrics.get(key) is None or native.get(key) is None:
        return None
    return float(metrics[key]) - float(native[key])


def loss_within(delta: float | None, max_metric_loss: float | None) -> bool:
    """Whether a primary-metric delta is within the metric tolerance (False when either is unknown)."""
    return max_metric_loss is not None and delta is not None and -delta <= max_metric_loss + _SLACK


def row_metric_within(row: dict[str, Any], max_metric_loss: float | None) -> bool:
    """The same rule for a candidate row (``metric_delta`` key) of the recommendation or the tuner."""
    return row.get("precision") != "native" and loss_within(row.get("metric_delta"), max_metric_loss)


def describe(task: str, max_metric_loss: float) -> str:
    """'within 0.001 of the native model's ROC AUC (--max-metric-loss)'."""
    name = METRIC_WORDS.get(PRIMARY_METRICS.get(task, ""), "primary metric")
    return f"within {max_metric_loss:g} of the native model's {name} (--max-metric-loss)"


__all__ = ["PRIMARY_METRICS", "primary_metric", "metric_delta", "loss_within", "row_metric_within", "describe"]
