"""XGBoost family: JSON/UBJ loading sniffed by content, native prediction, ONNX conversion and parity.

Every converter workaround in optimizer_core/converters/xgboost.py has a regression test here.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from optimizer_core.converters import convert, supports_double
from optimizer_core.converters.verify import verify_conversion
from optimizer_core.errors import InputError, ModelLoadError, UnsupportedModelError
from optimizer_core.models import LoadedModel, load_model, model_from_object
from optimizer_core.models import xgboost as xgb_family

ROUNDS = 20
PROBA_ATOL = 1e-5
REG_RTOL = 1e-5


# --- data and helpers ---------------------------------------------------------------------------------


@cache
def _dataset(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Float32 data (what XGBoost and ONNX both compute with), ~10% NaN to exercise missing routing."""
    loader = {"binary": load_breast_cancer, "multiclass": load_iris, "regression": load_diabetes}[kind]
    X, y = loader(return_X_y=True)
    X = X.astype(np.float32)
    X[np.random.default_rng(0).random(X.shape) < 0.1] = np.nan
    return X, y


def _kind(objective: str) -> str:
    if objective.startswith("multi:"):
        return "multiclass"
    return "binary" if objective in ("binary:logistic", "reg:logistic") else "regression"


def _train(objective: str, **params: Any) -> tuple[xgb.Booster, np.ndarray]:
    X, y = _dataset(_kind(objective))
    params = {"objective": objective, "max_depth": 3, "eta": 0.3, "nthread": 4, **params}
    if objective.startswith("multi:"):
        params["num_class"] = 3
    if objective == "reg:quantileerror":
        params.setdefault("quantile_alpha", 0.5)
    rounds = params.pop("rounds", ROUNDS)
    return xgb.train(params, xgb.DMatrix(X, y, missing=np.nan), rounds), X


def _run(proto: onnx.ModelProto, X: np.ndarray, capfd: pytest.CaptureFixture[str]) -> np.ndarray:
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    capfd.readouterr()
    (scores,) = session.run(None, {"input": X.astype(np.float32)})
    assert "VerifyOutputSizes" not in capfd.readouterr().err  # declared shapes match what ORT returns
    return scores


def _assert_contract(proto: onnx.ModelProto, model: LoadedModel) -> None:
    (inp,) = proto.graph.input
    assert inp.name == "input" and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["N", model.n_features]
    (out,) = proto.graph.output
    assert out.name == "scores" and out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["N", model.n_outputs]
    assert any(op.domain in ("", "ai.onnx") for op in proto.opset_import)


def _assert_parity(model: LoadedModel, X: np.ndarray, capfd: pytest.CaptureFixture[str]) -> None:
    proto = convert(model)
    _assert_contract(proto, model)
    onnx_scores, native = _run(proto, X, capfd), model.predict_scores(X)
    assert onnx_scores.shape == native.shape == (len(X), model.n_outputs)
    if model.task == "regression":
        scale = float(np.abs(native).max())
        np.testing.assert_allclose(onnx_scores, native, rtol=REG_RTOL, atol=1e-6 * scale)
    else:
        np.testing.assert_allclose(onnx_scores, native, rtol=0, atol=PROBA_ATOL)
        np.testing.assert_allclose(native.sum(axis=1), 1.0, atol=1e-5)


def _save(model: Any, path: Path) -> Path:
    model.save_model(path)
    return path


# --- files of every supported objective ------------------------------------------------------------------

OBJECTIVES = [
    ("binary:logistic", "binary"),
    ("multi:softprob", "multiclass"),
    ("multi:softmax", "multiclass"),
    ("reg:squarederror", "regression"),
    ("reg:squaredlogerror", "regression"),
    ("reg:absoluteerror", "regression"),
    ("reg:pseudohubererror", "regression"),
    ("reg:quantileerror", "regression"),
    ("count:poisson", "regression"),
    ("reg:gamma", "regression"),
    ("reg:tweedie", "regression"),
    ("reg:logistic", "regression"),
]


@pytest.mark.parametrize("objective,task", OBJECTIVES)
@pytest.mark.parametrize("suffix", [".json", ".ubj"])
def test_booster_file_loads_and_converts_without_drift(
    objective: str, task: str, suffix: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    booster, X = _train(objective)
    path = _save(booster, tmp_path / f"model{suffix}")

    model = load_model(path)

    assert model.family == "xgboost"
    assert model.format == f"xgboost-{suffix[1:]}"
    assert model.estimator == f"Booster({objective})"
    assert model.task == task
    assert model.n_features == X.shape[1]
    assert model.feature_names is None
    assert model.classes == {"binary": (0, 1), "multiclass": (0, 1, 2), "regression": None}[task]
    assert model.source_bytes == path.stat().st_size
    if objective != "multi:softmax":  # softmax: see test_multi_softmax_probabilities_...
        reference = booster.predict(xgb.DMatrix(X)).reshape(len(X), -1)
        np.testing.assert_allclose(model.predict_scores(X)[:, -reference.shape[1]:], reference, rtol=1e-6)
    _assert_parity(model, X, capfd)


@pytest.mark.parametrize("objective", ["binary:logistic", "reg:squarederror"])
@pytest.mark.parametrize("saved_as", [".json", ".ubj"])
def test_format_is_sniffed_from_content_not_extension(objective: str, saved_as: str, tmp_path: Path) -> None:
    booster, X = _train(objective, rounds=5)
    path = _save(booster, tmp_path / f"model{saved_as}").rename(tmp_path / "model.bin")
    model = load_model(path)
    assert model.format == f"xgboost-{saved_as[1:]}"
    np.testing.assert_allclose(model.predict_scores(X)[:, -1], booster.predict(xgb.DMatrix(X)), rtol=1e-6)


def test_multi_softmax_probabilities_are_xgbclassifiers_predict_proba(tmp_path: Path) -> None:
    X, y = _dataset("multiclass")
    clf = xgb.XGBClassifier(n_estimators=10, max_depth=3, objective="multi:softmax").fit(X, y)
    booster_model = load_model(_save(clf.get_booster(), tmp_path / "booster.json"))
    np.testing.assert_allclose(booster_model.predict_scores(X), clf.predict_proba(X), atol=1e-6)
    assert booster_model.predict_scores(X).argmax(axis=1).tolist() == clf.predict(X).tolist()


# --- scikit-learn wrappers ----------------------------------------------------------------------------

WRAPPERS = [
    pytest.param(lambda: xgb.XGBClassifier(n_estimators=15, max_depth=3), "binary", id="XGBClassifier"),
    pytest.param(lambda: xgb.XGBClassifier(n_estimators=15, max_depth=3), "multiclass", id="XGBClassifier-3"),
    pytest.param(lambda: xgb.XGBRegressor(n_estimators=15, max_depth=3), "regression", id="XGBRegressor"),
    pytest.param(lambda: xgb.XGBRFClassifier(n_estimators=8, max_depth=4), "binary", id="XGBRFClassifier"),
    # Workaround: onnxmltools gave tree i to class i % 3; forests lay out num_parallel_tree trees per class.
    pytest.param(lambda: xgb.XGBRFClassifier(n_estimators=4, max_depth=4), "multiclass", id="XGBRF-3"),
    pytest.param(lambda: xgb.XGBClassifier(n_estimators=4, num_parallel_tree=3, max_depth=2), "multiclass",
                 id="XGBClassifier-3-parallel"),
    pytest.param(lambda: xgb.XGBRFRegressor(n_estimators=8, max_depth=4), "regression", id="XGBRFRegressor"),
]


@pytest.mark.parametrize("factory,kind", WRAPPERS)
def test_wrapper_in_memory_and_from_file(
    factory: Any, kind: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    X, y = _dataset(kind)
    names = [f"feature {i}" for i in range(X.shape[1])]  # real names, with spaces
    wrapper = factory().fit(pd.DataFrame(X, columns=names), y)
    expected = wrapper.predict(X) if kind == "regression" else wrapper.predict_proba(X)

    live = model_from_object(wrapper)
    from_file = load_model(_save(wrapper, tmp_path / "model.json"))

    for model in (live, from_file):
        assert model.task == kind
        assert model.feature_names == tuple(names)
        np.testing.assert_allclose(model.predict_scores(X), expected.reshape(len(X), -1), rtol=1e-6)
        _assert_parity(model, X, capfd)
    assert live.estimator == type(wrapper).__name__
    # The file records only "classifier"/"regressor": random-forest wrappers come back as the plain wrapper.
    assert from_file.estimator == ("XGBRegressor" if kind == "regression" else "XGBClassifier")
    assert live.classes == from_file.classes == (None if kind == "regression" else tuple(range(len(set(y)))))


def test_booster_from_object(capfd: pytest.CaptureFixture[str]) -> None:
    booster, X = _train("binary:logistic")
    model = model_from_object(booster)
    assert (model.estimator, model.task, model.format, model.source_bytes) == (
        "Booster(binary:logistic)", "binary", "memory", 0
    )
    _assert_parity(model, X, capfd)


def test_early_stopping_predicts_and_converts_best_iteration(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    X, y = _dataset("binary")
    clf = xgb.XGBClassifier(n_estimators=200, max_depth=3, learning_rate=0.5, early_stopping_rounds=3)
    clf.fit(X[:400], y[:400], eval_set=[(X[400:], y[400:])], verbose=False)
    assert clf.best_iteration + 1 < clf.get_booster().num_boosted_rounds()

    for model in (model_from_object(clf), load_model(_save(clf, tmp_path / "es.ubj"))):
        assert xgb_family.prediction_rounds(model.native) == clf.best_iteration + 1
        np.testing.assert_allclose(model.predict_scores(X), clf.predict_proba(X), rtol=1e-6)
        _assert_parity(model, X, capfd)
        assert "best_iteration" in convert(model).doc_string


# --- converter workarounds ----------------------------------------------------------------------------


def test_booster_with_real_feature_names_converts(capfd: pytest.CaptureFixture[str]) -> None:
    # onnxmltools only understands split features named f0, f1...: a copy with names cleared is converted.
    X, y = _dataset("binary")
    names = [f"col {i}" for i in range(X.shape[1])]
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(X, y, feature_names=names), 10)
    model = model_from_object(booster)
    assert model.feature_names == tuple(names)
    _assert_parity(model, X, capfd)
    assert booster.feature_names == names  # the user's booster is left untouched


def test_first_tree_single_zero_leaf_keeps_base_score(capfd: pytest.CaptureFixture[str]) -> None:
    # A first round that cannot split leaves a single leaf of exactly 0 with all-integer covers. onnxmltools
    # then guessed "regressor" from the covers and used base_score (a probability) as a margin.
    X, _ = _dataset("binary")
    y = np.r_[np.zeros(200), np.ones(200)]
    X = X[:400]
    stump = xgb.train({"objective": "binary:logistic", "base_score": 0.5, "gamma": 1e9}, xgb.DMatrix(X, y), 1)
    params = {"objective": "binary:logistic", "max_depth": 2}
    booster = xgb.train(params, xgb.DMatrix(X, y), 5, xgb_model=stump)
    assert json.loads(booster.get_dump(dump_format="json")[0]) == {"nodeid": 0, "leaf": 0}
    for candidate in (stump, booster):
        _assert_parity(model_from_object(candidate), X, capfd)


@pytest.mark.parametrize("objective,base_score", [("binary:logistic", 0.8), ("multi:softprob", 0.3),
                                                   ("reg:squarederror", 40.0), ("count:poisson", 90.0)])
def test_explicit_base_score(objective: str, base_score: float, capfd: pytest.CaptureFixture[str]) -> None:
    booster, X = _train(objective, base_score=base_score)
    _assert_parity(model_from_object(booster), X, capfd)


def test_categorical_features_convert_as_category_codes(capfd: pytest.CaptureFixture[str]) -> None:
    X, y = _dataset("binary")
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 12, len(y))
    frame = pd.DataFrame(X[:, :6], columns=[f"x{i}" for i in range(6)]).assign(cat=pd.Categorical(codes))
    y = (y + np.isin(codes, [2, 5, 7])) % 2
    clf = xgb.XGBClassifier(n_estimators=15, max_depth=4, enable_categorical=True, max_cat_to_onehot=1)
    clf.fit(frame, y)
    model = model_from_object(clf)
    assert any("category codes" in note for note in model.notes)
    X_codes = frame.assign(cat=codes.astype(np.float32)).to_numpy(np.float32)
    X_codes[::7, 6] = np.nan  # missing category
    X_codes[::11, 6] = 40  # category never seen in training
    _assert_parity(model, X_codes, capfd)


def _categorical_classifier() -> tuple[LoadedModel, np.ndarray]:
    X, y = _dataset("binary")
    codes = np.random.default_rng(1).integers(0, 12, len(y))
    frame = pd.DataFrame(X[:, :6], columns=[f"x{i}" for i in range(6)]).assign(cat=pd.Categorical(codes))
    clf = xgb.XGBClassifier(n_estimators=15, max_depth=4, enable_categorical=True, max_cat_to_onehot=1)
    clf.fit(frame, (y + np.isin(codes, [2, 5, 7])) % 2)
    return model_from_object(clf), frame.assign(cat=codes.astype(np.float32)).to_numpy(np.float32)


def test_fractional_category_codes_are_refused_naming_the_column() -> None:
    model, X = _categorical_classifier()
    assert model.categorical_features == (6,)
    X[::7, 6] = np.nan  # missing categories are fine
    model.predict_scores(X)
    X[61, 6] = 1.5  # XGBoost truncates it, the ONNX trees compare it as a number: silent drift
    with pytest.raises(InputError, match=r"^categorical column 'cat' \(e\.g\. 1\.5\) holds values that are not "
                       r"whole numbers: .*integer category codes") as err:
        model.predict_scores(X)
    assert "\n" not in str(err.value)


def test_categorical_model_verifies_on_whole_number_codes() -> None:
    model, _ = _categorical_classifier()
    assert verify_conversion(model, convert(model)) == []


# --- refusals -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("objective,advice", [
    ("binary:logitraw", "binary:logistic"),
    ("binary:hinge", "binary:logistic"),
    ("rank:pairwise", "ranking"),
    ("survival:cox", "survival"),
])
def test_objectives_without_probabilities_are_refused_at_load(
    objective: str, advice: str, tmp_path: Path
) -> None:
    X, y = _dataset("binary")
    labels = y + 1 if objective == "survival:cox" else y  # cox needs positive survival times
    booster = xgb.train({"objective": objective}, xgb.DMatrix(X, labels), 3)
    with pytest.raises(UnsupportedModelError) as err:
        load_model(_save(booster, tmp_path / "model.json"))
    message = str(err.value)
    assert objective in message and advice in message and "\n" not in message


@pytest.mark.parametrize("params,expected", [
    ({"booster": "dart", "rate_drop": 0.2, "max_depth": 3}, "booster='dart'"),
    ({"booster": "gblinear"}, "gblinear"),
])
def test_non_tree_boosters_are_refused_at_conversion(params: dict[str, Any], expected: str) -> None:
    X, y = _dataset("binary")
    booster = xgb.train({"objective": "binary:logistic", **params}, xgb.DMatrix(X, y), 5)
    model = model_from_object(booster)
    assert model.predict_scores(X).shape == (len(X), 2)  # still measurable natively
    with pytest.raises(UnsupportedModelError, match=expected):
        convert(model)


def test_vector_leaf_trees_are_refused(tmp_path: Path) -> None:
    X, y = _dataset("multiclass")
    clf = xgb.XGBClassifier(n_estimators=3, multi_strategy="multi_output_tree", tree_method="hist").fit(X, y)
    for model in (model_from_object(clf), load_model(_save(clf, tmp_path / "model.ubj"))):
        np.testing.assert_allclose(model.predict_scores(X), clf.predict_proba(X), rtol=1e-6)
        with pytest.raises(UnsupportedModelError, match="multi_output_tree"):
            convert(model)


def test_wrapper_with_non_nan_missing_is_refused() -> None:
    X, y = _dataset("binary")
    clf = xgb.XGBClassifier(n_estimators=3, missing=0.0).fit(np.nan_to_num(X), y)
    with pytest.raises(UnsupportedModelError, match="missing=0.0|treats 0.0 as missing"):
        convert(model_from_object(clf))


def test_multi_target_regression_is_refused() -> None:
    X, y = _dataset("regression")
    reg = xgb.XGBRegressor(n_estimators=3).fit(X, np.c_[y, -y])
    with pytest.raises(UnsupportedModelError, match="2 targets"):
        model_from_object(reg)


def test_unfitted_wrapper_and_empty_booster_are_refused() -> None:
    with pytest.raises(UnsupportedModelError, match="XGBClassifier is not fitted"):
        model_from_object(xgb.XGBClassifier())
    with pytest.raises(UnsupportedModelError, match="no trees"):
        model_from_object(xgb.Booster())


def test_double_precision_is_declared_unsupported() -> None:
    booster, _ = _train("reg:squarederror")
    model = model_from_object(booster)
    ok, reason = supports_double(model)
    assert not ok and "float32" in reason
    with pytest.raises(UnsupportedModelError, match="float32"):
        convert(model, double=True)


@pytest.mark.parametrize("suffix", [".json", ".ubj"])
def test_truncated_files_raise_one_line_model_load_error(suffix: str, tmp_path: Path) -> None:
    booster, _ = _train("multi:softprob", rounds=5)
    data = _save(booster, tmp_path / f"model{suffix}").read_bytes()
    # XGBoost itself segfaults on some truncated UBJ buffers: the loader must refuse them first.
    for cut in np.linspace(8, len(data) - 1, 40).astype(int):
        path = tmp_path / f"cut{suffix}"
        path.write_bytes(data[:cut])
        with pytest.raises(ModelLoadError) as err:
            load_model(path)
        assert "\n" not in str(err.value)


def test_matches_does_not_need_xgboost_types() -> None:
    assert not xgb_family.matches(object())
    assert not xgb_family.matches(pd.DataFrame())
    assert xgb_family.matches(xgb.XGBRegressor())
