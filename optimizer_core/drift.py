"""Per-sample differences between a variant's scores and the native model's, and target metrics.

Modelled on Olive's discrepancy check: max absolute error, counts above thresholds, label flips and
a ``passed`` flag against the user's tolerance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from optimizer_core.data import encode_target
from optimizer_core.models.base import Task
from optimizer_core.report import DriftDetail, DriftStats, WorstRow

THRESHOLDS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)
SAMPLE_LIMIT = 5000
WORST_ROWS = 20
_ROWS_LISTED = 5  # rows or classes named in a note before "and N more"
METRICS_OF = "metrics of"  # how a note on a variant's left-out metrics starts: shown as a warning
DECISION_LOG_LOSS_NOTE = ("log_loss omitted: the model's scores are decision values, not probabilities, so no "
                          "probability metric applies to them")


def per_sample_abs_diff(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Largest absolute score difference per row (over classes).

    The same value on both sides (NaN and NaN, inf and inf) is agreement; any other non-finite pair (NaN
    on one side only, inf against a number) is a real disagreement and counts as infinitely far.
    """
    ref, cand = _as_2d(reference), _as_2d(candidate)
    if ref.shape != cand.shape:
        raise ValueError(f"score shapes differ: native {ref.shape} vs variant {cand.shape}")
    with np.errstate(invalid="ignore"):
        diff = np.abs(ref - cand)
    diff[(ref == cand) | (np.isnan(ref) & np.isnan(cand))] = 0.0
    diff[np.isnan(diff)] = np.inf
    return diff.max(axis=1)


def relative_scale(ref: np.ndarray) -> np.ndarray:
    """Per row, what a difference is relative to: the prediction's own size, but never less than the
    predictions' typical size (their RMS). Dividing by the prediction alone made float32 rounding on a
    row predicted near 0 look like a huge relative error (9.5e-7 / 7e-5 on a unit-scale target)."""
    size = score_size(ref)
    typical = float(np.sqrt(np.mean(size**2))) if size.size else 0.0
    return np.maximum(size, typical_floor(typical))


def score_size(ref: np.ndarray) -> np.ndarray:
    """Per row, the size of the native prediction that ``relative_scale`` measures (non-finite scores: 0)."""
    return np.abs(np.where(np.isfinite(ref), ref, 0.0)).max(axis=1)


def typical_floor(typical: float) -> float:
    """The predictions' typical size (RMS) as ``relative_scale`` uses it: never below 1e-12."""
    return max(typical, 1e-12)


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
    with np.errstate(invalid="ignore"):
        p99 = float(np.percentile(per_row, 99))
    if np.isnan(p99):  # interpolating between two infinite rows (inf - inf)
        p99 = np.inf
    metric = "max_rel" if task == "regression" else "max_abs"
    value = max_rel if metric == "max_rel" else max_abs
    return DriftStats(
        rows=rows,
        max_abs=max_abs,
        mean_abs=float(per_row.mean()),
        p99_abs=p99,
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


def metrics_with_notes(
    scores: np.ndarray, y: np.ndarray, task: Task, classes: Sequence[Any] | None, *, name: str = "native",
    decision: bool = False,
) -> tuple[dict[str, float], list[str]]:
    """Metrics of ``name``'s scores against the target, and notes on every metric or row left out.

    Classifiers: accuracy, F1 (binary: of the positive class, ``classes[1]``; multiclass: macro average
    over the classes present in the target or the predictions), ROC AUC (one-vs-rest for multiclass)
    and log loss. Regressors: RMSE, MAE, R2. Rows whose target is missing or unknown are skipped (the
    dataset's notes say so); rows whose scores are NaN or infinite are skipped with a note. A metric
    that is undefined for these rows (F1 without a positive row, ROC AUC with one class) is omitted
    with a note saying why, never reported as 0. ``decision``: the scores are decision values, not
    probabilities; log loss is left out (with a note) and ROC AUC ranks the values as they are.
    """
    scores = _as_2d(scores)
    if task == "regression":
        return _regression_metrics(scores[:, 0], y, name)
    return _classification_metrics(scores, encode_target(y, classes), classes, name, decision)


def _regression_metrics(pred: np.ndarray, y: Any, name: str) -> tuple[dict[str, float], list[str]]:
    from sklearn import metrics as skm

    y_num = np.asarray(y, dtype=np.float64)
    notes = []
    known = ~np.isnan(y_num)
    infinite_target = known & np.isinf(y_num)
    if infinite_target.any():
        notes.append(f"{_of_rows(int(infinite_target.sum()), y_num.size)} an infinite target value: "
                     "left out of the metrics")
    keep = _finite_predictions(known & ~infinite_target, np.isfinite(pred), name, notes)
    y_true, pred = y_num[keep], pred[keep]
    if y_true.size == 0:
        return {}, notes
    out = {
        "rmse": float(np.sqrt(skm.mean_squared_error(y_true, pred))),
        "mae": float(skm.mean_absolute_error(y_true, pred)),
    }
    if y_true.size > 1 and np.ptp(y_true) > 0:
        out["r2"] = float(skm.r2_score(y_true, pred))
    elif y_true.size > 1:
        notes.append("r2 omitted: every row has the same target value, so R² is undefined (no variance to explain)")
    else:
        notes.append("r2 omitted: only one row has a target, and R² needs at least two")
    return out, notes


def _classification_metrics(scores: np.ndarray, y_idx: np.ndarray, classes: Sequence[Any] | None,
                            name: str, decision: bool = False) -> tuple[dict[str, float], list[str]]:
    from sklearn import metrics as skm

    notes: list[str] = []
    keep = _finite_predictions(y_idx >= 0, np.isfinite(scores).all(axis=1), name, notes)
    y_true, proba = y_idx[keep], scores[keep]
    if y_true.size == 0:
        return {}, notes
    n_classes = proba.shape[1]
    labels = list(range(n_classes))
    pred = proba.argmax(axis=1)
    out = {"accuracy": float(skm.accuracy_score(y_true, pred))}
    label = _class_namer(classes)
    if n_classes == 2:
        if (y_true == 1).any():
            out["f1"] = float(skm.f1_score(y_true, pred, average="binary", pos_label=1, zero_division=0))
        else:
            notes.append(f"f1 omitted: no row's target is the positive {label(1)}, so recall and F1 "
                         "are undefined")
    else:
        # sklearn's default labels: a class absent from both the target and the predictions would count
        # as F1 0 and drag the average down (a perfect classifier scored 0.67 on a set without one class).
        out["f1"] = float(skm.f1_score(y_true, pred, average="macro", zero_division=0))
        absent = sorted(set(labels) - set(np.unique(y_true)) - set(np.unique(pred)))
        if absent:
            notes.append(f"f1 is the macro average over the {n_classes - len(absent)} classes present in the target "
                         f"or the predictions; {_listing([label(c) for c in absent])} "
                         f"{'appears' if len(absent) == 1 else 'appear'} in neither")
    if decision:
        notes.append(DECISION_LOG_LOSS_NOTE)
        clipped = proba  # one-vs-rest ROC AUC ranks each class's values as they are
    else:
        clipped = np.clip(proba, 1e-15, 1.0)
        clipped = clipped / clipped.sum(axis=1, keepdims=True)
        out["log_loss"] = float(skm.log_loss(y_true, clipped, labels=labels))
    auc, auc_note = _roc_auc(y_true, proba, clipped, label, per_class=decision)
    if auc is not None:
        out["roc_auc"] = auc
    if auc_note:
        notes.append(auc_note)
    return out, notes


def _roc_auc(y_true: np.ndarray, proba: np.ndarray, clipped: np.ndarray,
             label: Callable[[int], str], *, per_class: bool = False) -> tuple[float | None, str | None]:
    """ROC AUC (one-vs-rest macro average for multiclass) and a note when it is omitted or partial.
    ``per_class``: average the classes' own AUCs (decision scores, which scikit-learn's multiclass ROC AUC
    refuses because their rows do not sum to 1)."""
    from sklearn import metrics as skm

    present = np.unique(y_true)
    n_classes = proba.shape[1]
    if present.size < 2:
        return None, (f"roc_auc omitted: every row's target is {label(int(present[0]))}, and ROC AUC needs "
                      "rows of at least two classes")
    if n_classes == 2:
        return float(skm.roc_auc_score(y_true, proba[:, 1])), None
    if present.size == n_classes and not per_class:
        return float(skm.roc_auc_score(y_true, clipped, multi_class="ovr", labels=list(range(n_classes)))), None
    if present.size == n_classes:
        return float(np.mean([skm.roc_auc_score(y_true == c, clipped[:, c]) for c in present])), None
    # A class with no row has no one-vs-rest AUC: average over the classes that have rows (sklearn's
    # one-vs-rest macro average restricted to them), and say so.
    auc = float(np.mean([skm.roc_auc_score(y_true == c, clipped[:, c]) for c in present]))
    absent = [label(c) for c in range(n_classes) if c not in set(present.tolist())]
    return auc, (f"roc_auc is the one-vs-rest average over the {present.size} classes present in the target; "
                 f"{_listing(absent)} {'has' if len(absent) == 1 else 'have'} no row")


def _finite_predictions(keep: np.ndarray, finite: np.ndarray, name: str, notes: list[str]) -> np.ndarray:
    """Rows to score: ``keep`` (a usable target) where the prediction is finite, with a note on the rest."""
    dropped = int(np.count_nonzero(keep & ~finite))
    if dropped and dropped == int(np.count_nonzero(keep)):
        notes.append(f"{METRICS_OF} {name} skipped: it predicts NaN or infinity on every row with a target")
    elif dropped:
        notes.append(f"{METRICS_OF} {name} leave out {_count_rows(dropped, int(np.count_nonzero(keep)))} with a "
                     "target: it predicts NaN or infinity there")
    return keep & finite


def non_finite_notes(native: np.ndarray, variants: Mapping[str, np.ndarray]) -> list[str]:
    """Say where predictions are NaN or infinite: the native model's rows, and for each variant the rows
    where it and native disagree on that (infinite drift) or where both agree on it (no drift, but no
    prediction either). Drift alone cannot show rows that are NaN on both sides."""
    native = _as_2d(native)
    total = native.shape[0]
    notes = []
    native_bad = _non_finite_rows(native)
    if native_bad.size:
        notes.append(f"native predicts NaN or infinity on {_count_rows(native_bad.size, total)} "
                     f"({_where(native_bad)}): check those rows' features against the range the model expects")
    for name, scores in variants.items():
        apart = np.flatnonzero(np.isinf(per_sample_abs_diff(native, scores)))
        bad = _non_finite_rows(_as_2d(scores))
        shared = np.setdiff1d(bad, apart)  # NaN or infinite on both sides: no drift, no prediction either
        if apart.size:
            notes.append(f"{name} and native disagree on NaN or infinite predictions on "
                         f"{_count_rows(apart.size, total)} ({_where(apart)}): counted as infinite drift"
                         + (f"; both predict NaN or infinity on {_count_rows(shared.size, total)} more"
                            if shared.size else ""))
        elif bad.size:
            notes.append(f"{name} predicts NaN or infinity on exactly the rows native does: no drift there, "
                         "but no usable prediction either")
    return notes


def _non_finite_rows(scores: np.ndarray) -> np.ndarray:
    return np.flatnonzero(~np.isfinite(scores).all(axis=1))


def _where(rows: np.ndarray) -> str:
    """Data rows (1-based, as in the CSV's data rows), the first few of them."""
    shown = ", ".join(str(int(r) + 1) for r in rows[:_ROWS_LISTED])
    more = f" and {rows.size - _ROWS_LISTED:,} more" if rows.size > _ROWS_LISTED else ""
    return f"data row{'s' if rows.size != 1 else ''} {shown}{more}"


def _count_rows(count: int, total: int) -> str:
    """"1 of 10 rows", "all 3 rows", "the only row"."""
    if count == total:
        return "the only row" if total == 1 else f"all {total:,} rows"
    return f"{count:,} of {total:,} rows"


def _of_rows(count: int, total: int) -> str:
    """"1 of 10 rows has", "3 of 10 rows have"."""
    return f"{count:,} of {total:,} row{'s' if total != 1 else ''} {'has' if count == 1 else 'have'}"


def _class_namer(classes: Sequence[Any] | None) -> Callable[[int], str]:
    def label(index: int) -> str:
        if classes is None or index >= len(classes):
            return f"class {index}"
        value = classes[index]
        return f"class {value.item() if isinstance(value, np.generic) else value!r}"

    return label


def _listing(items: list[str]) -> str:
    return ", ".join(items[:_ROWS_LISTED]) + (f" and {len(items) - _ROWS_LISTED} more" if len(items) > _ROWS_LISTED
                                              else "")


def _as_2d(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a.reshape(-1, 1) if a.ndim == 1 else a
