"""Partial aggregates of a validation: what one batch of rows contributes, merged in any order.

The drift is the run's (``drift.per_sample_abs_diff``, ``drift.score_size`` and its relative scale); the
metrics are the run's (``drift.metrics_with_notes``) rebuilt from sums and counts, except ROC AUC, which
comes from score histograms with a stated error bound (see ``sketch.roc_auc_bounds``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from optimizer_core import drift
from optimizer_core.models.base import Task
from optimizer_core.report import DriftStats
from optimizer_core.validation.sketch import (
    ExactSum,
    FirstRows,
    Frontier,
    Histogram,
    TopRows,
    probability_keys,
    roc_auc_bounds,
)

WORST_ROWS = drift.WORST_ROWS
_EXAMPLES = 5


@dataclass
class DriftAggregate:
    """Drift of the ONNX scores against the native ones, over the rows seen so far."""

    outputs: int
    classifier: bool
    rows: int = 0
    sum_abs: ExactSum = field(default_factory=ExactSum)
    max_abs: float = 0.0
    sum_size_sq: ExactSum = field(default_factory=ExactSum)  # for the predictions' RMS: the relative drift's scale
    flips: int = 0
    above: np.ndarray = field(default_factory=lambda: np.zeros(len(drift.THRESHOLDS), np.int64))
    histogram: Histogram = field(default_factory=Histogram.empty)
    frontier: Frontier = field(default_factory=Frontier.empty)
    worst: TopRows | None = None
    native_bad: FirstRows = field(default_factory=FirstRows)  # NaN or infinite native scores
    apart: FirstRows = field(default_factory=FirstRows)  # non-finite on one side only: infinite drift
    both_bad: FirstRows = field(default_factory=FirstRows)  # non-finite on both sides

    def add(self, native: np.ndarray, onnx: np.ndarray, file_index: int, first_row: int) -> None:
        diff = drift.per_sample_abs_diff(native, onnx)
        size = drift.score_size(native)
        self.rows += diff.size
        self.sum_abs.add(float(diff.sum()))
        self.max_abs = max(self.max_abs, float(diff.max(initial=0.0)))
        with np.errstate(over="ignore"):
            self.sum_size_sq.add(float(np.sum(size**2)))
        if self.classifier:
            self.flips += int(np.count_nonzero(native.argmax(axis=1) != onnx.argmax(axis=1)))
        self.above += np.array([np.count_nonzero(diff > t) for t in drift.THRESHOLDS], np.int64)
        self.histogram = self.histogram.merge(Histogram.of(diff))
        self.frontier = self.frontier.merge(Frontier.of(size, diff))
        top = TopRows.of(WORST_ROWS, diff, file_index, first_row, native, onnx)
        self.worst = top if self.worst is None else self.worst.merge(top, WORST_ROWS)
        native_bad = ~np.isfinite(native).all(axis=1)
        apart = np.isinf(diff)
        self.native_bad.add(native_bad, file_index, first_row)
        self.apart.add(apart, file_index, first_row)
        self.both_bad.add(~np.isfinite(onnx).all(axis=1) & ~apart, file_index, first_row)

    def merge(self, other: DriftAggregate) -> DriftAggregate:
        worst = other.worst if self.worst is None else self.worst if other.worst is None else \
            self.worst.merge(other.worst, WORST_ROWS)
        return DriftAggregate(
            outputs=self.outputs, classifier=self.classifier, rows=self.rows + other.rows,
            sum_abs=self.sum_abs.merge(other.sum_abs), max_abs=max(self.max_abs, other.max_abs),
            sum_size_sq=self.sum_size_sq.merge(other.sum_size_sq), flips=self.flips + other.flips,
            above=self.above + other.above, histogram=self.histogram.merge(other.histogram),
            frontier=self.frontier.merge(other.frontier), worst=worst,
            native_bad=self.native_bad.merge(other.native_bad), apart=self.apart.merge(other.apart),
            both_bad=self.both_bad.merge(other.both_bad),
        )

    @property
    def scale(self) -> float:
        """The relative drift's floor: the native predictions' RMS size (``drift.relative_scale``)."""
        typical = math.sqrt(self.sum_size_sq.value / self.rows) if self.rows else 0.0
        return drift.typical_floor(typical)

    def stats(self, task: Task, tolerance: float | None) -> DriftStats:
        if self.rows == 0:
            raise ValueError("cannot measure drift on zero rows")
        max_rel = self.frontier.max_ratio(self.scale)
        _, p99 = self.histogram.quantile_bounds(0.99)
        metric = "max_rel" if task == "regression" else "max_abs"
        value = max_rel if metric == "max_rel" else self.max_abs
        return DriftStats(
            rows=self.rows,
            max_abs=self.max_abs,
            mean_abs=self.sum_abs.value / self.rows,
            p99_abs=p99,
            max_rel=max_rel,
            label_flips=self.flips if self.classifier else None,
            label_flip_rate=self.flips / self.rows if self.classifier else None,
            above_thresholds={f"{t:g}": int(n) for t, n in zip(drift.THRESHOLDS, self.above, strict=True)},
            tolerance=tolerance,
            passed=None if tolerance is None else bool(value <= tolerance),
            metric=metric,
        )

    def p99_exact(self) -> bool:
        low, high = self.histogram.quantile_bounds(0.99)
        return low == high


@dataclass
class TargetCounts:
    """How the target column's values met the model: missing, unknown to a classifier, infinite."""

    rows: int = 0
    missing: int = 0
    unknown: int = 0
    infinite: int = 0
    unknown_examples: tuple[str, ...] = ()

    def merge(self, other: TargetCounts) -> TargetCounts:
        examples = tuple(sorted(set(self.unknown_examples) | set(other.unknown_examples)))[:_EXAMPLES]
        return TargetCounts(self.rows + other.rows, self.missing + other.missing, self.unknown + other.unknown,
                            self.infinite + other.infinite, examples)


@dataclass
class ClassifierMetrics:
    """One side's (native or ONNX) classification metrics as sums: accuracy, F1, log loss, ROC AUC."""

    n_classes: int
    known: int = 0  # rows with a usable target
    kept: int = 0  # ...and finite scores
    correct: int = 0
    log_loss_sum: ExactSum = field(default_factory=ExactSum)
    true_positive: np.ndarray = field(default=None)  # type: ignore[assignment]
    predicted: np.ndarray = field(default=None)  # type: ignore[assignment]
    actual: np.ndarray = field(default=None)  # type: ignore[assignment]
    positives: list[Histogram] = field(default_factory=list)  # per class: its score on rows of that class
    negatives: list[Histogram] = field(default_factory=list)  # ... and on the other rows

    def __post_init__(self) -> None:
        zeros = np.zeros(self.n_classes, np.int64)
        for name in ("true_positive", "predicted", "actual"):
            if getattr(self, name) is None:
                setattr(self, name, zeros.copy())
        columns = 1 if self.n_classes == 2 else self.n_classes
        self.positives = self.positives or [Histogram.empty() for _ in range(columns)]
        self.negatives = self.negatives or [Histogram.empty() for _ in range(columns)]

    def add(self, scores: np.ndarray, y_index: np.ndarray) -> None:
        from sklearn import metrics as skm

        known = y_index >= 0
        keep = known & np.isfinite(scores).all(axis=1)
        self.known += int(known.sum())
        y_true, proba = y_index[keep], scores[keep]
        if y_true.size == 0:
            return
        self.kept += int(y_true.size)
        pred = proba.argmax(axis=1)
        self.correct += int(np.count_nonzero(pred == y_true))
        self.true_positive += np.bincount(y_true[pred == y_true], minlength=self.n_classes)
        self.predicted += np.bincount(pred, minlength=self.n_classes)
        self.actual += np.bincount(y_true, minlength=self.n_classes)
        clipped = np.clip(proba, 1e-15, 1.0)
        clipped = clipped / clipped.sum(axis=1, keepdims=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            self.log_loss_sum.add(float(skm.log_loss(y_true, clipped, labels=list(range(self.n_classes)),
                                                     normalize=False)))
        # as the run: binary AUC on the raw positive-class column, one-vs-rest on the normalised ones
        columns = [(1, proba[:, 1])] if self.n_classes == 2 else list(enumerate(clipped.T))
        for slot, (cls, column) in enumerate(columns):
            keys = probability_keys(column)
            is_class = y_true == cls
            self.positives[slot] = self.positives[slot].merge(Histogram.of(column[is_class], keys[is_class]))
            self.negatives[slot] = self.negatives[slot].merge(Histogram.of(column[~is_class], keys[~is_class]))

    def merge(self, other: ClassifierMetrics) -> ClassifierMetrics:
        return ClassifierMetrics(
            self.n_classes, self.known + other.known, self.kept + other.kept, self.correct + other.correct,
            self.log_loss_sum.merge(other.log_loss_sum), self.true_positive + other.true_positive,
            self.predicted + other.predicted, self.actual + other.actual,
            [a.merge(b) for a, b in zip(self.positives, other.positives, strict=True)],
            [a.merge(b) for a, b in zip(self.negatives, other.negatives, strict=True)],
        )

    def result(self, name: str, classes: Sequence[Any] | None) -> tuple[dict[str, float], list[str], float]:
        """(metrics, notes, the ROC AUC's error bound) in the run's words (``drift.metrics_with_notes``)."""
        notes = _dropped_notes(self.known, self.kept, name)
        if self.kept == 0:
            return {}, notes, 0.0
        label = drift._class_namer(classes)
        out = {"accuracy": self.correct / self.kept}
        tp, fp, fn = self.true_positive, self.predicted - self.true_positive, self.actual - self.true_positive
        f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros(self.n_classes), where=(2 * tp + fp + fn) > 0)
        if self.n_classes == 2:
            if self.actual[1] > 0:
                out["f1"] = float(f1[1])
            else:
                notes.append(f"f1 omitted: no row's target is the positive {label(1)}, so recall and F1 "
                             "are undefined")
        else:
            present = (self.actual > 0) | (self.predicted > 0)
            out["f1"] = float(f1[present].mean())
            absent = [label(c) for c in np.flatnonzero(~present)]
            if absent:
                notes.append(f"f1 is the macro average over the {int(present.sum())} classes present in the target "
                             f"or the predictions; {drift._listing(absent)} "
                             f"{'appears' if len(absent) == 1 else 'appear'} in neither")
        out["log_loss"] = self.log_loss_sum.value / self.kept
        auc, bound, note = self._roc_auc(label)
        if auc is not None:
            out["roc_auc"] = auc
        if note:
            notes.append(note)
        return out, notes, bound

    def _roc_auc(self, label: Any) -> tuple[float | None, float, str | None]:
        present = np.flatnonzero(self.actual > 0)
        if present.size < 2:
            return None, 0.0, (f"roc_auc omitted: every row's target is {label(int(present[0]))}, and ROC AUC needs "
                               "rows of at least two classes")
        if self.n_classes == 2:
            auc, bound = roc_auc_bounds_or_zero(self.positives[0], self.negatives[0])
            return auc, bound, None
        pairs = [roc_auc_bounds_or_zero(self.positives[c], self.negatives[c]) for c in present]
        auc = float(np.mean([a for a, _ in pairs]))
        bound = float(np.mean([b for _, b in pairs]))
        if present.size == self.n_classes:
            return auc, bound, None
        absent = [label(c) for c in range(self.n_classes) if c not in set(present.tolist())]
        return auc, bound, (f"roc_auc is the one-vs-rest average over the {present.size} classes present in the "
                            f"target; {drift._listing(absent)} {'has' if len(absent) == 1 else 'have'} no row")


def roc_auc_bounds_or_zero(positives: Histogram, negatives: Histogram) -> tuple[float, float]:
    found = roc_auc_bounds(positives, negatives)
    return found if found is not None else (math.nan, 0.0)


@dataclass
class RegressorMetrics:
    """One side's regression metrics as sums: RMSE and MAE from exact sums, R² with Chan's parallel variance
    (its last digits depend on the order partials are merged in)."""

    known: int = 0
    kept: int = 0
    sse: ExactSum = field(default_factory=ExactSum)
    sae: ExactSum = field(default_factory=ExactSum)
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations of the target from its mean
    low: float = math.inf
    high: float = -math.inf

    def add(self, pred: np.ndarray, y: np.ndarray) -> None:
        known = ~np.isnan(y) & ~np.isinf(y)
        keep = known & np.isfinite(pred)
        y_true, p = y[keep], pred[keep]
        batch = RegressorMetrics(known=int(known.sum()))
        if y_true.size:
            err = y_true - p
            batch = RegressorMetrics(batch.known, int(y_true.size), ExactSum.of(err @ err),
                                     ExactSum.of(np.abs(err).sum()), float(y_true.mean()),
                                     float(((y_true - y_true.mean()) ** 2).sum()), float(y_true.min()),
                                     float(y_true.max()))
        self.__dict__.update(vars(self.merge(batch)))

    def merge(self, other: RegressorMetrics) -> RegressorMetrics:
        n = self.kept + other.kept
        if n == 0:
            return RegressorMetrics(self.known + other.known)
        delta = other.mean - self.mean
        return RegressorMetrics(
            self.known + other.known, n, self.sse.merge(other.sse), self.sae.merge(other.sae),
            self.mean + delta * other.kept / n, self.m2 + other.m2 + delta**2 * self.kept * other.kept / n,
            min(self.low, other.low), max(self.high, other.high),
        )

    def result(self, name: str) -> tuple[dict[str, float], list[str]]:
        notes = _dropped_notes(self.known, self.kept, name)
        if self.kept == 0:
            return {}, notes
        out = {"rmse": math.sqrt(self.sse.value / self.kept), "mae": self.sae.value / self.kept}
        if self.kept > 1 and self.high > self.low and self.m2 > 0:
            out["r2"] = 1.0 - self.sse.value / self.m2
        elif self.kept > 1:
            notes.append("r2 omitted: every row has the same target value, so R² is undefined (no variance to explain)")
        else:
            notes.append("r2 omitted: only one row has a target, and R² needs at least two")
        return out, notes


def _dropped_notes(known: int, kept: int, name: str) -> list[str]:
    """The run's notes on rows with a target whose prediction is NaN or infinite (``drift._finite_predictions``)."""
    dropped = known - kept
    if dropped and dropped == known:
        return [f"{drift.METRICS_OF} {name} skipped: it predicts NaN or infinity on every row with a target"]
    if dropped:
        return [f"{drift.METRICS_OF} {name} leave out {drift._count_rows(dropped, known)} with a target: it "
                "predicts NaN or infinity there"]
    return []


@dataclass
class Partial:
    """Everything a set of rows contributes to a validation; ``merge`` is associative and commutative."""

    drift: DriftAggregate
    target: TargetCounts | None = None
    native_metrics: ClassifierMetrics | RegressorMetrics | None = None
    onnx_metrics: ClassifierMetrics | RegressorMetrics | None = None
    rows_by_file: dict[int, int] = field(default_factory=dict)

    @classmethod
    def empty(cls, task: Task, outputs: int, has_target: bool) -> Partial:
        classifier = task != "regression"

        def metrics() -> ClassifierMetrics | RegressorMetrics | None:
            if not has_target:
                return None
            return ClassifierMetrics(outputs) if classifier else RegressorMetrics()

        return cls(DriftAggregate(outputs, classifier), TargetCounts() if has_target else None, metrics(), metrics())

    def add(self, file_index: int, first_row: int, native: np.ndarray, onnx: np.ndarray,
            y_index: np.ndarray | None = None, y_values: np.ndarray | None = None,
            target: TargetCounts | None = None) -> None:
        """One batch: rows ``first_row`` on of file ``file_index``; for classifiers ``y_index`` (class index,
        -1 unknown), for regressors ``y_values`` (NaN missing), and the batch's ``target`` counts."""
        self.drift.add(native, onnx, file_index, first_row)
        self.rows_by_file[file_index] = self.rows_by_file.get(file_index, 0) + native.shape[0]
        if target is not None and self.target is not None:
            self.target = self.target.merge(target)
        for side, scores in ((self.native_metrics, native), (self.onnx_metrics, onnx)):
            if isinstance(side, ClassifierMetrics) and y_index is not None:
                side.add(scores, y_index)
            elif isinstance(side, RegressorMetrics) and y_values is not None:
                side.add(scores[:, 0], y_values)

    def merge(self, other: Partial) -> Partial:
        rows = dict(self.rows_by_file)
        for k, v in other.rows_by_file.items():
            rows[k] = rows.get(k, 0) + v
        return Partial(
            self.drift.merge(other.drift),
            None if self.target is None else self.target.merge(other.target),
            None if self.native_metrics is None else self.native_metrics.merge(other.native_metrics),
            None if self.onnx_metrics is None else self.onnx_metrics.merge(other.onnx_metrics),
            rows,
        )
