from __future__ import annotations

import numpy as np
import pytest

from optimizer_core.drift import compute_drift


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
