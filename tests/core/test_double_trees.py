"""fp64 for LightGBM and HistGradientBoosting: a float64 tree graph from the model's own trees reproduces their
float64 comparisons, where the float32 graph rounds thresholds and flips rows that lie between a threshold and its
rounding."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from optimizer_core import OptimizeConfig, optimize
from optimizer_core.converters import convert, supports_double
from optimizer_core.errors import UnsupportedModelError
from optimizer_core.models import model_from_object
from optimizer_core.variants import applicability

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names:UserWarning")


def _data(kind: str) -> tuple[np.ndarray, np.ndarray]:
    loader = {"binary": load_breast_cancer, "multiclass": load_iris, "regression": load_diabetes}[kind]
    X, y = loader(return_X_y=True)
    X = X.copy()
    X[np.random.default_rng(0).random(X.shape) < 0.1] = np.nan  # float64 data with missing values
    return X, y


def _fp64_scores(model, X: np.ndarray) -> np.ndarray:
    proto = convert(model, double=True)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["scores"], {"input": X})[0]


@pytest.mark.parametrize("objective, kind, params", [
    ("binary", "binary", {}),
    ("binary", "binary", {"sigmoid": 0.5}),
    ("binary", "binary", {"use_missing": False}),  # NaN read as 0 on every split
    ("binary", "binary", {"boosting": "rf", "bagging_freq": 1, "bagging_fraction": 0.7}),
    ("multiclass", "multiclass", {"num_class": 3}),
    ("multiclassova", "multiclass", {"num_class": 3}),
    ("regression", "regression", {}),
    ("huber", "regression", {}),
    ("poisson", "regression", {}),
    ("cross_entropy", "binary", {}),
])
def test_fp64_graph_matches_lightgbm_in_float64(objective: str, kind: str, params: dict[str, Any]) -> None:
    X, y = _data(kind)
    booster = lgb.train({"objective": objective, "num_leaves": 8, "verbose": -1, "num_threads": 1, **params},
                        lgb.Dataset(X, y), 25)
    model = model_from_object(booster)
    assert supports_double(model)[0]
    native = model.predict_scores(X)
    np.testing.assert_allclose(_fp64_scores(model, X), native, rtol=1e-12, atol=1e-12)


def test_fp64_single_leaf_trees_and_wrappers() -> None:
    X, y = _data("binary")
    # min_data_in_leaf above the row count: every tree is one leaf (the boost-from-average score)
    wrapper = lgb.LGBMClassifier(n_estimators=5, min_child_samples=10_000, verbose=-1).fit(X, y)
    model = model_from_object(wrapper)
    np.testing.assert_allclose(_fp64_scores(model, X), wrapper.predict_proba(X), rtol=1e-12, atol=1e-12)


def test_categorical_splits_keep_fp64_not_applicable_with_the_reason() -> None:
    X, y = _data("binary")
    codes = np.random.default_rng(1).integers(0, 10, len(y)).astype(np.float64)
    frame = pd.DataFrame(np.c_[np.nan_to_num(X[:, :4]), codes], columns=["a", "b", "c", "d", "kind"])
    booster = lgb.train({"objective": "binary", "num_leaves": 8, "min_data_per_group": 5, "verbose": -1},
                        lgb.Dataset(frame, (y + np.isin(codes, [3, 7])) % 2, categorical_feature=[4]), 5)
    model = model_from_object(booster)
    ok, reason = applicability("fp64", convert(model), model)
    assert not ok and "by category" in reason
    with pytest.raises(UnsupportedModelError, match="by category"):
        convert(model, double=True)


def _threshold_model() -> tuple[lgb.LGBMClassifier, pd.DataFrame]:
    """One feature, one split at a threshold that float32 cannot hold, and test rows just above it: LightGBM
    (float64) sends them right, a float32 graph rounds both numbers to the same value and sends them left."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, 2000) + 1e-9 * rng.uniform(0, 1, 2000)
    y = (x > 0.3).astype(int)
    model = lgb.LGBMClassifier(n_estimators=3, num_leaves=2, learning_rate=1.0, min_child_samples=5,
                               verbose=-1).fit(pd.DataFrame({"x": x}), y)
    threshold = model.booster_.dump_model()["tree_info"][0]["tree_structure"]["threshold"]
    assert np.float64(np.float32(threshold)) != threshold
    above = [np.nextafter(threshold, 1.0)]
    for _ in range(40):
        above.append(np.nextafter(above[-1], 1.0))
    above = np.array([v for v in above if np.float32(v) <= np.float32(threshold)])  # rounds onto the split
    rows = np.r_[above, rng.uniform(0, 1, 200)]
    return model, pd.DataFrame({"x": rows, "label": (rows > 0.3).astype(int)})


def test_fp64_removes_the_label_flips_fp32_makes_on_float64_data() -> None:
    model, frame = _threshold_model()
    report = optimize(model, frame, OptimizeConfig(precisions=("fp32", "fp64"), batch_sizes=(1,), budget_s=1),
                      target="label")
    fp32, fp64 = report.variant("fp32"), report.variant("fp64")
    assert fp32.drift.label_flips > 0  # the rows between the threshold and its float32 rounding
    assert fp64.applicable and fp64.drift.max_abs <= 1e-6 and fp64.drift.label_flips == 0
    assert (fp32.graph, fp64.graph) == ("tree-ensemble", "tree-ensemble")  # report.json's graph field
    assert fp64.size_bytes and fp64.latency


@pytest.mark.parametrize("kind, loss", [("binary", None), ("multiclass", None), ("regression", "squared_error"),
                                        ("regression", "poisson"), ("regression", "absolute_error")])
def test_fp64_graph_matches_hist_gradient_boosting_in_float64(kind: str, loss: str | None) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    X, y = _data(kind)
    est = (HistGradientBoostingRegressor(max_iter=15, loss=loss) if kind == "regression"
           else HistGradientBoostingClassifier(max_iter=15)).fit(X, y)
    model = model_from_object(est)
    assert supports_double(model)[0]
    np.testing.assert_allclose(_fp64_scores(model, X), model.predict_scores(X), rtol=1e-12, atol=1e-12)
