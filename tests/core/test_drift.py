from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from optimizer_core.drift import (
    compute_drift,
    metrics_with_notes,
    non_finite_notes,
    per_sample_abs_diff,
)


def test_relative_drift_of_predictions_crossing_zero_is_not_blown_up_by_the_row_nearest_zero():
    rng = np.random.default_rng(0)
    native = rng.standard_normal(20_000)  # a standardized regression target: predictions cross 0
    native[0] = 7e-5
    rounded = native.astype(np.float32).astype(np.float64)  # what float32 inference does to it
    rounded[0] += 9.5e-7
    stats = compute_drift(native, rounded, "regression", tolerance=1e-4)
    assert stats.max_abs == pytest.approx(9.5e-7, rel=0.1)
    assert stats.max_rel < 1e-5  # ~ 9.5e-7 / RMS(1), not 9.5e-7 / 7e-5
    assert stats.passed


def test_relative_drift_of_large_predictions_is_relative_to_each_prediction():
    native = np.array([1e9, 2e9, 5e9])
    candidate = native * (1 + np.array([1e-7, 0.0, 2e-7]))
    stats = compute_drift(native, candidate, "regression")
    assert stats.max_rel == pytest.approx(2e-7, rel=1e-3)
    assert stats.max_abs == pytest.approx(1e3, rel=1e-3)


def test_a_real_change_near_zero_still_counts():
    native = np.array([0.0, 1.0, -1.0, 0.5])
    candidate = native + np.array([0.3, 0.0, 0.0, 0.0])
    assert compute_drift(native, candidate, "regression").max_rel > 0.3


# --------------------------------------------------------------------------- metrics


def test_multiclass_f1_averages_over_the_classes_present_not_every_model_class():
    """Regression: a perfect classifier on a test set without class 2 got F1 0.667 (class 2 counted as 0)."""
    y = np.array([0, 1, 0, 1], dtype=object)
    proba = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.8, 0.1, 0.1], [0.2, 0.7, 0.1]])
    metrics, notes = metrics_with_notes(proba, y, "multiclass", (0, 1, 2))
    assert metrics["accuracy"] == 1.0 and metrics["f1"] == 1.0
    assert metrics["roc_auc"] == 1.0  # one-vs-rest over the two classes that have rows
    assert any(n.startswith("f1 is the macro average over the 2 classes present") and "class 2" in n for n in notes)
    assert any(n.startswith("roc_auc is the one-vs-rest average over the 2 classes") for n in notes)


def test_multiclass_metrics_on_every_class_need_no_note():
    y = np.array([0, 1, 2, 2], dtype=object)
    proba = np.array([[0.9, 0.05, 0.05], [0.1, 0.6, 0.3], [0.1, 0.1, 0.8], [0.25, 0.5, 0.25]])
    metrics, notes = metrics_with_notes(proba, y, "multiclass", (0, 1, 2))
    assert metrics["f1"] == pytest.approx(f1_score([0, 1, 2, 2], [0, 1, 2, 1], average="macro"))
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score([0, 1, 2, 2], proba, multi_class="ovr"))
    assert notes == []


def test_binary_f1_without_a_positive_row_and_auc_with_one_class_are_omitted_with_the_reason():
    """Regression: one negative row reported f1 0.0 and silently dropped roc_auc."""
    metrics, notes = metrics_with_notes(np.array([[0.9, 0.1]]), np.array([0], dtype=object), "binary",
                                        ("malignant", "benign"))
    metrics_int, _ = metrics_with_notes(np.array([[0.9, 0.1]]), np.array([0], dtype=object), "binary", (0, 1))
    assert "f1" not in metrics_int and "roc_auc" not in metrics_int and metrics_int["accuracy"] == 1.0
    assert metrics == {} and notes == []  # 0 is not one of these classes: the dataset's notes say so
    _, notes = metrics_with_notes(np.array([[0.9, 0.1], [0.8, 0.2]]), np.array(["malignant"] * 2, dtype=object),
                                  "binary", ("malignant", "benign"))
    assert any(n.startswith("f1 omitted: no row's target is the positive class 'benign'") for n in notes)
    assert any(n.startswith("roc_auc omitted: every row's target is class 'malignant'") for n in notes)


def test_binary_f1_with_positives_is_the_positive_class_f1():
    y = np.array([0, 1, 1, 0], dtype=object)
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.7, 0.3], [0.2, 0.8]])
    metrics, notes = metrics_with_notes(proba, y, "binary", (0, 1))
    assert metrics["f1"] == pytest.approx(f1_score([0, 1, 1, 0], [0, 1, 0, 1]))
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score([0, 1, 1, 0], proba[:, 1]))
    assert notes == []


def test_a_single_row_regression_target_says_why_r2_is_missing():
    metrics, notes = metrics_with_notes(np.array([1.5]), np.array([1.0]), "regression", None)
    assert set(metrics) == {"rmse", "mae"} and any(n.startswith("r2 omitted") for n in notes)


def test_a_constant_regression_target_says_why_r2_is_missing():
    """Regression: every row with the same target reported r2 0.0, a number that means nothing there."""
    metrics, notes = metrics_with_notes(np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0]), "regression", None)
    assert "r2" not in metrics and any("same target value" in n for n in notes)


# --------------------------------------------------------------------------- NaN predictions


def test_nan_predictions_are_left_out_of_the_metrics_with_a_note_never_a_raw_error():
    """Regression: a model predicting NaN made the metrics raise "ValueError: Input contains NaN"."""
    y = np.arange(6.0)
    pred = np.array([0.0, 1.0, np.nan, 3.0, np.inf, 5.0])
    metrics, notes = metrics_with_notes(pred, y, "regression", None, name="fp32")
    assert metrics["rmse"] == 0.0 and metrics["r2"] == 1.0
    assert notes == ["metrics of fp32 leave out 2 of 6 rows with a target: it predicts NaN or infinity there"]
    metrics, notes = metrics_with_notes(np.full(6, np.nan), y, "regression", None)
    assert metrics == {} and notes == ["metrics of native skipped: it predicts NaN or infinity on every row "
                                       "with a target"]
    proba = np.array([[0.9, 0.1], [np.nan, np.nan], [0.2, 0.8]])
    metrics, notes = metrics_with_notes(proba, np.array([0, 1, 1], dtype=object), "binary", (0, 1), name="fp16")
    assert metrics["accuracy"] == 1.0 and "1 of 3 rows" in notes[0]


def test_nan_on_one_side_only_is_infinite_drift_and_nan_on_both_is_reported():
    """Regression: NaN on both sides read as "matches within 0" with no word about the NaN rows."""
    native = np.array([0.0, 1.0, np.nan, 3.0, np.nan, 5.0])
    same = native.copy()
    apart = native.copy()
    apart[2] = 2.0
    stats = compute_drift(native, apart, "regression", tolerance=1e-4)
    assert stats.max_abs == np.inf and stats.p99_abs == np.inf and stats.passed is False
    assert stats.above_thresholds["0.01"] == 1
    assert compute_drift(native, same, "regression").max_abs == 0.0
    notes = non_finite_notes(native, {"fp32": same, "fp16": apart})
    assert notes[0] == ("native predicts NaN or infinity on 2 of 6 rows (data rows 3, 5): check those rows' "
                        "features against the range the model expects")
    assert notes[1].startswith("fp32 predicts NaN or infinity on exactly the rows native does")
    assert notes[2] == ("fp16 and native disagree on NaN or infinite predictions on 1 of 6 rows (data row 3): "
                        "counted as infinite drift; both predict NaN or infinity on 1 of 6 rows more")
    assert non_finite_notes(np.ones(3), {"fp32": np.ones(3)}) == []


def test_equal_infinities_agree_and_opposite_ones_do_not():
    native = np.array([[np.inf, 1.0], [np.inf, 1.0], [1.0, 2.0]])
    candidate = np.array([[np.inf, 1.0], [-np.inf, 1.0], [1.0, 2.0]])
    np.testing.assert_array_equal(per_sample_abs_diff(native, candidate), [0.0, np.inf, 0.0])
