"""Per-sample differences between a variant's scores and the native model's, and target metrics.

Modelled on Olive's discrepancy check: max absolute error, counts above thresholds, label flips and
a ``passed`` flag against the user's tolerance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from optimizer_core.models.base import Task
from optimizer_core.report import DriftDetail, DriftStats, WorstRow

THRESHOLDS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)
SAMPLE_LIMIT = 5000
WORST_ROWS = 20


def per_sample_abs_diff(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Largest absolute score difference per row (over classes)."""
    ref, cand = _as_2d(reference), _as_2d(candidate)
    if ref.shape != cand.shape:
        raise ValueError(f"score shapes differ: native {ref.shape} vs variant {cand.shape}")
    diff = np.abs(ref - cand.astype(np.float64))
    # NaN on one side only is a real disagreement: count it as infinitely far.
    diff[np.isnan(ref) != np.isnan(cand)] = np.inf
    diff[np.isnan(ref) & np.isnan(cand)] = 0.0
    return diff.max(axis=1)


def relative_scale(ref: np.ndarray) -> np.ndarray:
    """Per row, what a difference is relative to: the prediction's own size, but never less than the
    predictions' typical size (their RMS). Dividing by the prediction alone made float32 rounding on a
    row predicted near 0 look like a huge relative error (9.5e-7 / 7e-5 on a unit-scale target)."""
    size = np.abs(np.where(np.isfinite(ref), ref, 0.0)).max(axis=1)
    typical = float(np.sqrt(np.mean(size**2))) if size.size else 0.0
    return np.maximum(size, max(typical, 1e-12))


def compute_drift(
    reference: np.ndarray, candidate: np.ndarray, task: Task, *, tolerance: float | None = None
) -> DriftStats:
    """Drift of ``candidate`` scores against ``reference`` (native) scores over all rows."""
    ref, cand = _as_2d(reference), _as_2d(candidate)
    per_row = per_sample_abs_diff(ref, cand)
    rows = int(per_row.shape[0])
    if rows == 0:
        raise ValueError("cannot measure drift on zero rows")
    rel = per_row / relative_scale(ref)
    flips = None
    flip_rate = None
    if task != "regression":
        flips = int(np.count_nonzero(ref.argmax(axis=1) != cand.argmax(axis=1)))
        flip_rate = flips / rows
    max_abs = float(per_row.max())
    max_rel = float(rel.max())
    metric = "max_rel" if task == "regression" else "max_abs"
    value = max_rel if metric == "max_rel" else max_abs
    return DriftStats(
        rows=rows,
        max_abs=max_abs,
        mean_abs=float(per_row.mean()),
        p99_abs=float(np.percentile(per_row, 99)),
        max_rel=max_rel,
        label_flips=flips,
        label_flip_rate=flip_rate,
        above_thresholds={f"{t:g}": int(np.count_nonzero(per_row > t)) for t in THRESHOLDS},
        tolerance=tolerance,
        passed=None if tolerance is None else bool(value <= tolerance),
        metric=metric,
    )


def drift_detail(
    reference: np.ndarray,
    candidate: np.ndarray,
    features: np.ndarray,
    *,
    seed: int = 0,
) -> DriftDetail:
    """Bounded samples for the drift plots plus the worst rows with their feature values."""
    ref, cand = _as_2d(reference), _as_2d(candidate)
    per_row = per_sample_abs_diff(ref, cand)
    n = per_row.shape[0]
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(n, size=SAMPLE_LIMIT, replace=False)) if n > SAMPLE_LIMIT else np.arange(n)
    # Scatter uses the last column: P(positive class) for binary, the prediction for regression.
    col = ref.shape[1] - 1
    worst_idx = np.argsort(-np.nan_to_num(per_row, posinf=np.finfo(np.float64).max))[:WORST_ROWS]
    worst = tuple(
        WorstRow(
            row=int(i),
            abs_diff=float(per_row[i]),
            native=tuple(float(v) for v in ref[i]),
            variant=tuple(float(v) for v in cand[i]),
            features=tuple(None if np.isnan(v) else float(v) for v in features[i]),
        )
        for i in worst_idx
    )
    return DriftDetail(
        abs_diff_sample=tuple(float(v) for v in per_row[idx]),
        native_score_sample=tuple(float(v) for v in ref[idx, col]),
        variant_score_sample=tuple(float(v) for v in cand[idx, col]),
        worst=worst,
    )


def compute_metrics(scores: np.ndarray, y: np.ndarray, task: Task, classes: Sequence[Any] | None) -> dict[str, float]:
    """Metrics of scores against the target: accuracy, F1, ROC AUC, log loss | RMSE, MAE, R2.

    Rows whose target is missing are skipped. Metrics that are undefined for the data (one class
    present) are omitted rather than invented.
    """
    from sklearn import metrics as skm

    scores = _as_2d(scores)
    if task == "regression":
        y_num = np.asarray(y, dtype=np.float64)
        keep = ~np.isnan(y_num)
        y_true, pred = y_num[keep], scores[keep, 0]
        if y_true.size == 0:
            return {}
        out = {
            "rmse": float(np.sqrt(skm.mean_squared_error(y_true, pred))),
            "mae": float(skm.mean_absolute_error(y_true, pred)),
        }
        if y_true.size > 1:
            out["r2"] = float(skm.r2_score(y_true, pred))
        return out
    y_idx = encode_target(y, classes)
    keep = y_idx >= 0
    y_true, proba = y_idx[keep], scores[keep]
    if y_true.size == 0:
        return {}
    pred = proba.argmax(axis=1)
    n_classes = proba.shape[1]
    out = {"accuracy": float(skm.accuracy_score(y_true, pred))}
    average = "binary" if n_classes == 2 else "macro"
    out["f1"] = float(skm.f1_score(y_true, pred, average=average, labels=list(range(n_classes)), zero_division=0))
    clipped = np.clip(proba, 1e-15, 1.0)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    out["log_loss"] = float(skm.log_loss(y_true, clipped, labels=list(range(n_classes))))
    if len(np.unique(y_true)) == n_classes:
        if n_classes == 2:
            out["roc_auc"] = float(skm.roc_auc_score(y_true, proba[:, 1]))
        else:
            out["roc_auc"] = float(skm.roc_auc_score(y_true, clipped, multi_class="ovr", labels=list(range(n_classes))))
    return out


def encode_target(y: np.ndarray, classes: Sequence[Any] | None) -> np.ndarray:
    """Map target values to class indices (-1 for missing or unknown labels).

    Matches by value, and by string form so that a CSV's "1" matches a model's integer class 1.
    """
    y = np.asarray(y, dtype=object)
    if classes is None:
        raise ValueError("classification metrics need the model's classes")
    lookup: dict[Any, int] = {}
    for i, c in enumerate(classes):
        for key in _label_keys(c):
            lookup.setdefault(key, i)
    out = np.full(y.shape[0], -1, dtype=np.int64)
    for row, value in enumerate(y):
        for key in _label_keys(value):
            if key in lookup:
                out[row] = lookup[key]
                break
    return out


def _label_keys(value: Any) -> list[Any]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    keys: list[Any] = [value, str(value).strip()]
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        return keys
    if as_float.is_integer():
        keys.append(str(int(as_float)))
    return keys


def _as_2d(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a.reshape(-1, 1) if a.ndim == 1 else a
