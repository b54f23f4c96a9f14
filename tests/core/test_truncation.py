"""Truncated-ensemble variants: exact against each library's own truncated prediction, for every family.

Each case checks two things on float32 rows with ~10% NaN: the reference the run verifies against is the
library's own truncated prediction (``iteration_range``, ``num_iteration``, ``estimators_[:k]`` computed here
independently), and the ONNX graph the pass builds matches it within 1e-5, as the fp32 conversion does.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from optimizer_core.config import OptimizeConfig
from optimizer_core.errors import ConfigError
from optimizer_core.models import model_from_object
from optimizer_core.models.trees import Ensemble
from optimizer_core.variants.truncation import applicability, build_truncated, resolve_counts

ATOL = 1e-5
pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names:UserWarning")


@cache
def _data(kind: str, nan: bool = True) -> tuple[np.ndarray, np.ndarray]:
    loader = {"binary": load_breast_cancer, "multiclass": load_iris, "regression": load_diabetes}[kind]
    X, y = loader(return_X_y=True)
    X = X.astype(np.float32)
    if nan:
        X[np.random.default_rng(0).random(X.shape) < 0.1] = np.nan
    return X, y


def _onnx_scores(model, X: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["scores"], {"input": X.astype(np.float32)})[0].astype(np.float64)


def _check(native: Any, k: int, X: np.ndarray, expected: np.ndarray, *, total: int, unit: str) -> None:
    loaded = model_from_object(native)
    ok, reason, found = applicability(loaded)
    assert ok, reason
    assert (found.total, found.unit) == (total, unit)
    variants, notes = build_truncated(loaded, (k,))
    assert notes == []
    (variant,) = variants
    assert variant.applicable and variant.trees_kept == k and variant.trees_total == total
    assert variant.name == f"{unit}-{k}"
    expected = np.asarray(expected, dtype=np.float64).reshape(len(X), -1)
    if expected.shape[1] == 1 and loaded.task != "regression":
        # XGBoost computes 1 - p in its float32, as its predict_proba does
        p = expected[:, 0].astype(np.float32) if loaded.family == "xgboost" else expected[:, 0]
        expected = np.column_stack([1 - p, p]).astype(np.float64)
    np.testing.assert_allclose(variant.reference.predict_scores(X), expected, atol=1e-12, rtol=1e-12)
    scores = _onnx_scores(variant.model, X)
    if loaded.task == "regression":
        np.testing.assert_allclose(scores, expected, rtol=ATOL, atol=ATOL * np.abs(expected).max())
    else:
        np.testing.assert_allclose(scores, expected, atol=ATOL)
    full = loaded.predict_scores(X)
    assert np.abs(full - expected).max() > 1e-4  # the cut model is another model, not the full one renamed


# --------------------------------------------------------------------------- XGBoost


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_xgboost_wrappers_keep_their_first_rounds_exactly(kind):
    import xgboost as xgb

    X, y = _data(kind)
    cls = xgb.XGBRegressor if kind == "regression" else xgb.XGBClassifier
    model = cls(n_estimators=30, max_depth=3, n_jobs=1, random_state=0).fit(X, y)
    method = model.predict if kind == "regression" else model.predict_proba
    _check(model, 10, X, method(X, iteration_range=(0, 10)), total=30, unit="rounds")


@pytest.mark.parametrize("objective", ["binary:logistic", "multi:softprob", "multi:softmax", "reg:squarederror"])
def test_xgboost_boosters_keep_their_first_rounds_exactly(objective):
    import xgboost as xgb

    kind = "binary" if objective.startswith("binary") else "multiclass" if objective.startswith("multi") else "regression"
    X, y = _data(kind)
    params = {"objective": objective, "max_depth": 3, "nthread": 1}
    if kind == "multiclass":
        params["num_class"] = 3
    booster = xgb.train(params, xgb.DMatrix(X, y), 25)
    if objective == "multi:softmax":
        margin = booster.predict(xgb.DMatrix(X), iteration_range=(0, 8), output_margin=True).astype(np.float64)
        expected = np.exp(margin - margin.max(axis=1, keepdims=True))
        expected /= expected.sum(axis=1, keepdims=True)
    else:
        expected = booster.predict(xgb.DMatrix(X), iteration_range=(0, 8))
    _check(booster, 8, X, expected, total=25, unit="rounds")


def test_xgboost_early_stopping_counts_rounds_up_to_the_best_iteration():
    import xgboost as xgb

    X, y = _data("binary")
    model = xgb.XGBClassifier(n_estimators=300, max_depth=3, learning_rate=0.3, early_stopping_rounds=3, n_jobs=1)
    model.fit(X[:350], y[:350], eval_set=[(X[350:], y[350:])], verbose=False)
    best = model.best_iteration + 1
    assert best < model.get_booster().num_boosted_rounds()  # trees past the best exist and must not count
    k = max(1, best // 2)
    _check(model, k, X, model.predict_proba(X, iteration_range=(0, k)), total=best, unit="rounds")


def test_xgboost_parallel_trees_cut_whole_rounds():
    import xgboost as xgb

    X, y = _data("multiclass")
    model = xgb.XGBClassifier(n_estimators=12, num_parallel_tree=3, max_depth=2, subsample=0.8, colsample_bynode=0.8,
                              n_jobs=1, random_state=0).fit(X, y)
    found = applicability(model_from_object(model))[2]
    assert found.trees_per_unit == 9  # 3 classes x 3 parallel trees per round
    _check(model, 5, X, model.predict_proba(X, iteration_range=(0, 5)), total=12, unit="rounds")


def test_xgboost_random_forest_of_one_round_cannot_be_cut():
    import xgboost as xgb

    X, y = _data("binary")
    model = xgb.XGBRFClassifier(n_estimators=20, max_depth=3, n_jobs=1).fit(X, y)
    ok, reason, _ = applicability(model_from_object(model))
    assert not ok and "single boosting round of 20 trees" in reason


# --------------------------------------------------------------------------- LightGBM


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_lightgbm_wrappers_keep_their_first_iterations_exactly(kind):
    import lightgbm as lgb

    X, y = _data(kind)
    cls = lgb.LGBMRegressor if kind == "regression" else lgb.LGBMClassifier
    model = cls(n_estimators=30, num_leaves=8, verbose=-1, n_jobs=1).fit(X, y)
    method = model.predict if kind == "regression" else model.predict_proba
    _check(model, 12, X, method(X, num_iteration=12), total=30, unit="rounds")


def test_lightgbm_booster_and_random_forest():
    import lightgbm as lgb

    X, y = _data("binary")
    booster = lgb.train({"objective": "binary", "num_leaves": 8, "verbose": -1, "num_threads": 1},
                        lgb.Dataset(X, y), 20)
    _check(booster, 7, X, booster.predict(X, num_iteration=7), total=20, unit="rounds")
    forest = lgb.LGBMClassifier(boosting_type="rf", n_estimators=20, num_leaves=8, bagging_freq=1,
                                bagging_fraction=0.7, verbose=-1, n_jobs=1).fit(X, y)
    # a LightGBM random forest averages its trees: the cut one averages the kept trees
    _check(forest, 6, X, forest.predict_proba(X, num_iteration=6), total=20, unit="trees")


# --------------------------------------------------------------------------- scikit-learn


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_sklearn_gradient_boosting_keeps_its_first_stages_exactly(kind):
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

    X, y = _data(kind, nan=False)  # scikit-learn's GradientBoosting refuses NaN
    cls = GradientBoostingRegressor if kind == "regression" else GradientBoostingClassifier
    model = cls(n_estimators=20, max_depth=2, random_state=0).fit(X, y)
    cut = copy.deepcopy(model)
    cut.estimators_ = cut.estimators_[:6]
    cut.n_estimators_ = 6
    expected = cut.predict(X) if kind == "regression" else cut.predict_proba(X)
    # the staged prediction is scikit-learn's own view of "the first 6 stages": the same numbers
    staged = model.staged_predict(X) if kind == "regression" else model.staged_predict_proba(X)
    np.testing.assert_allclose(next(s for i, s in enumerate(staged) if i == 5), expected, rtol=1e-12)
    _check(model, 6, X, expected, total=20, unit="rounds")


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_sklearn_hist_gradient_boosting_keeps_its_first_iterations_exactly(kind):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    X, y = _data(kind)
    cls = HistGradientBoostingRegressor if kind == "regression" else HistGradientBoostingClassifier
    model = cls(max_iter=20, max_leaf_nodes=8, early_stopping=False, random_state=0).fit(X, y)
    staged = model.staged_predict(X) if kind == "regression" else model.staged_predict_proba(X)
    expected = next(s for i, s in enumerate(staged) if i == 6)
    _check(model, 7, X, expected, total=20, unit="rounds")


@pytest.mark.parametrize("name", ["RandomForestClassifier", "ExtraTreesClassifier", "RandomForestRegressor",
                                  "ExtraTreesRegressor"])
def test_sklearn_forests_average_their_first_trees_exactly(name):
    import sklearn.ensemble as ens

    kind = "regression" if name.endswith("Regressor") else "multiclass"
    X, y = _data(kind)  # scikit-learn forests route missing values (>= 1.4; ExtraTrees >= 1.6)
    model = getattr(ens, name)(n_estimators=15, max_depth=4, random_state=0).fit(X, y)
    trees = model.estimators_[:5]
    per_tree = [t.predict(X) if kind == "regression" else t.predict_proba(X) for t in trees]
    expected = np.mean(per_tree, axis=0)
    _check(model, 5, X, expected, total=15, unit="trees")


def test_sklearn_pipeline_cuts_its_last_step_and_leaves_the_model_untouched():
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline

    X, y = _data("binary")
    model = make_pipeline(SimpleImputer(), RandomForestClassifier(n_estimators=12, max_depth=4, random_state=0))
    model.fit(X, y)
    before = model.predict_proba(X)
    imputed = model[0].transform(X)
    expected = np.mean([t.predict_proba(imputed) for t in model[-1].estimators_[:4]], axis=0)
    _check(model, 4, X, expected, total=12, unit="trees")
    assert len(model[-1].estimators_) == 12
    np.testing.assert_array_equal(model.predict_proba(X), before)


def test_a_model_without_trees_is_not_applicable_with_the_reason():
    from sklearn.linear_model import LogisticRegression

    X, y = _data("binary", nan=False)
    ok, reason, _ = applicability(model_from_object(LogisticRegression(max_iter=5000).fit(X, y)))
    assert not ok and "does not end in a tree ensemble" in reason
    variants, notes = build_truncated(model_from_object(LogisticRegression(max_iter=5000).fit(X, y)), ("50%",))
    assert variants == [] and notes[0].startswith("trees: no truncated variants: ")


# --------------------------------------------------------------------------- counts


def test_counts_and_percentages_resolve_against_the_model():
    found = Ensemble(total=200, unit="rounds", trees_per_unit=1, library="XGBoost")
    counts, notes = resolve_counts(("25%", "50%", 100, "12.5%", 200, 500, "100%"), found)
    assert counts == [(25, "12.5%"), (50, "25%"), (100, "50%")]
    assert any("100: the same 100 rounds as 50%" in n for n in notes)
    assert any("trees 200: not built" in n and "whole model" in n for n in notes)
    assert any("trees 500: not built, the model has only 200 rounds" in n for n in notes)
    tiny = Ensemble(total=3, unit="trees", trees_per_unit=1, library="scikit-learn")
    assert resolve_counts(("1%",), tiny)[0] == [(1, "1%")]  # at least one tree


@pytest.mark.parametrize("text, expected", [("25%,50%, 75%", ("25%", "50%", "75%")), ("50 100", (50, 100)),
                                            ("12.5%,50,50", ("12.5%", 50))])
def test_trees_are_parsed_like_batch_sizes(text, expected):
    assert OptimizeConfig(trees=text).trees == expected
    assert OptimizeConfig(trees=list(expected)).trees == expected


@pytest.mark.parametrize("bad", ["0", "0%", "150%", "abc", "5.5", 1.5, [True]])
def test_bad_tree_counts_are_one_line_errors(bad):
    with pytest.raises(ConfigError):
        OptimizeConfig(trees=bad)


def test_a_cut_graph_that_does_not_match_its_native_cut_is_reported_not_passed():
    import xgboost as xgb

    from optimizer_core.variants.truncation import verify

    X, y = _data("binary")
    model = xgb.XGBClassifier(n_estimators=10, max_depth=2, n_jobs=1).fit(X, y)
    (variant,), _ = build_truncated(model_from_object(model), (5,))
    scores = _onnx_scores(variant.model, X)
    result, note = verify("rounds-5", variant, scores, variant.reference.predict_scores(X), "binary")
    assert result["passed"] and note.startswith("verification: rounds-5 matches XGBoost's own iteration_range")
    wrong = model.predict_proba(X, iteration_range=(0, 6))  # one round too many
    result, note = verify("rounds-5", variant, scores, wrong, "binary")
    assert not result["passed"] and result["max_abs"] > 1e-3
    assert "more than the expected 1e-05" in note and "does not match the trees it is named after" in note
