"""LightGBM family: text models sniffed by content, native prediction, ONNX conversion and parity.

Every converter workaround in optimizer_core/converters/lightgbm.py has a regression test here.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from optimizer_core.converters import convert, supports_double
from optimizer_core.converters.verify import verify_conversion
from optimizer_core.errors import InputError, ModelLoadError, UnsupportedModelError
from optimizer_core.models import LoadedModel, load_model, model_from_object
from optimizer_core.models import lightgbm as lgb_family

ROUNDS = 20
PROBA_ATOL = 1e-5
REG_RTOL = 1e-5
BAGGING = {"bagging_freq": 1, "bagging_fraction": 0.7}

# Wrappers fitted on a DataFrame are benchmarked with plain arrays, as the optimizer does.
pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names:UserWarning")


# --- data and helpers ---------------------------------------------------------------------------------


@cache
def _dataset(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Float32 data (exactly representable for both LightGBM and ONNX), ~10% NaN as missing values."""
    loader = {"binary": load_breast_cancer, "multiclass": load_iris, "regression": load_diabetes}[kind]
    X, y = loader(return_X_y=True)
    X = X.astype(np.float32)
    X[np.random.default_rng(0).random(X.shape) < 0.1] = np.nan
    return X, y


def _kind(objective: str) -> str:
    if objective.startswith("multiclass"):
        return "multiclass"
    return "binary" if objective in ("binary", "cross_entropy", "cross_entropy_lambda") else "regression"


def _train(objective: str, **params: Any) -> tuple[lgb.Booster, np.ndarray]:
    X, y = _dataset(_kind(objective))
    params = {"objective": objective, "num_leaves": 8, "verbose": -1, "num_threads": 2, **params}
    if objective.startswith("multiclass"):
        params["num_class"] = 3
    rounds = params.pop("rounds", ROUNDS)
    return lgb.train(params, lgb.Dataset(X, y), rounds), X


def _run(proto: onnx.ModelProto, X: np.ndarray, capfd: pytest.CaptureFixture[str]) -> np.ndarray:
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    capfd.readouterr()
    (scores,) = session.run(None, {"input": X.astype(np.float32)})
    # onnxmltools declares the label output as [1]; the contract drops it, so ORT must not warn.
    assert "VerifyOutputSizes" not in capfd.readouterr().err
    return scores


def _assert_contract(proto: onnx.ModelProto, model: LoadedModel) -> None:
    (inp,) = proto.graph.input
    assert inp.name == "input" and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["N", model.n_features]
    (out,) = proto.graph.output
    assert out.name == "scores" and out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["N", model.n_outputs]
    assert any(op.domain in ("", "ai.onnx") for op in proto.opset_import)
    assert not any(n.op_type == "ZipMap" for n in proto.graph.node)


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


def _save(booster: lgb.Booster, path: Path) -> Path:
    booster.save_model(path)
    return path


# --- files of every supported objective ------------------------------------------------------------------

OBJECTIVES = [
    ("binary", "binary"),
    ("multiclass", "multiclass"),
    ("multiclassova", "multiclass"),  # workaround: per-class sigmoid, not softmax
    ("regression", "regression"),
    ("regression_l1", "regression"),
    ("huber", "regression"),
    ("fair", "regression"),  # workaround: converted as regression
    ("quantile", "regression"),
    ("mape", "regression"),  # workaround: converted as regression
    ("poisson", "regression"),
    ("gamma", "regression"),
    ("tweedie", "regression"),
    ("cross_entropy", "regression"),  # workaround: converted as binary, positive column kept
]


@pytest.mark.parametrize("objective,task", OBJECTIVES)
def test_booster_file_loads_and_converts_without_drift(
    objective: str, task: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    booster, X = _train(objective)
    path = _save(booster, tmp_path / "model.txt")

    model = load_model(path)

    assert model.family == "lightgbm" and model.format == "lightgbm-text"
    assert model.estimator == f"Booster({objective})"
    assert model.task == task
    assert model.n_features == X.shape[1]
    assert model.feature_names is None  # LightGBM's made-up Column_0, Column_1... are not names
    assert model.classes == {"binary": (0, 1), "multiclass": (0, 1, 2), "regression": None}[task]
    assert model.source_bytes == path.stat().st_size
    reference = booster.predict(X).reshape(len(X), -1)
    np.testing.assert_allclose(model.predict_scores(X)[:, -reference.shape[1]:], reference, rtol=1e-12)
    _assert_parity(model, X, capfd)


def test_format_is_sniffed_from_content_not_extension(tmp_path: Path) -> None:
    booster, X = _train("binary", rounds=5)
    model = load_model(_save(booster, tmp_path / "model.bin"))
    assert model.format == "lightgbm-text"
    np.testing.assert_allclose(model.predict_scores(X)[:, 1], booster.predict(X))


@pytest.mark.parametrize("objective,params", [
    ("binary", {"boosting": "rf", **BAGGING}),
    ("multiclass", {"boosting": "rf", **BAGGING}),
    ("poisson", {"boosting": "rf", **BAGGING}),
    ("binary", {"boosting": "dart"}),
    ("binary", {"sigmoid": 2.0}),
    ("multiclassova", {"sigmoid": 0.5}),
])
def test_boosting_variants_and_sigmoid_parameter(
    objective: str, params: dict[str, Any], capfd: pytest.CaptureFixture[str]
) -> None:
    # Workarounds: random forests average their trees (onnxmltools sums them or divides by 100); the
    # sigmoid parameter scales the logistic link (onnxmltools ignores it).
    booster, X = _train(objective, **params)
    _assert_parity(model_from_object(booster), X, capfd)


# --- scikit-learn wrappers ----------------------------------------------------------------------------


@pytest.mark.parametrize("factory,kind,labels", [
    pytest.param(lambda: lgb.LGBMClassifier(n_estimators=15, verbose=-1), "binary", ("no", "yes"), id="str"),
    pytest.param(lambda: lgb.LGBMClassifier(n_estimators=15, verbose=-1), "multiclass", None, id="clf-3"),
    pytest.param(lambda: lgb.LGBMRegressor(n_estimators=15, verbose=-1), "regression", None, id="reg"),
])
def test_wrappers_in_memory(
    factory: Any, kind: str, labels: tuple[str, str] | None, capfd: pytest.CaptureFixture[str]
) -> None:
    X, y = _dataset(kind)
    if labels:
        y = np.where(y == 1, labels[1], labels[0])
    names = [f"f_{i}" for i in range(X.shape[1])]
    wrapper = factory().fit(pd.DataFrame(X, columns=names), y)

    model = model_from_object(wrapper)

    assert model.estimator == type(wrapper).__name__
    assert model.task == kind
    assert model.feature_names == tuple(names)
    if kind == "regression":
        assert model.classes is None
    else:
        assert model.classes == tuple(wrapper.classes_.tolist())
    expected = wrapper.predict(X) if kind == "regression" else wrapper.predict_proba(X)
    np.testing.assert_allclose(model.predict_scores(X), expected.reshape(len(X), -1))
    _assert_parity(model, X, capfd)


def test_early_stopping_predicts_and_converts_best_iteration(capfd: pytest.CaptureFixture[str]) -> None:
    X, y = _dataset("binary")
    clf = lgb.LGBMClassifier(n_estimators=300, learning_rate=0.3, num_leaves=8, verbose=-1)
    stop = lgb.early_stopping(3, verbose=False)
    clf.fit(X[:400], y[:400], eval_X=(X[400:],), eval_y=(y[400:],), callbacks=[stop])
    assert 0 < clf.best_iteration_ < 300
    model = model_from_object(clf)
    np.testing.assert_allclose(model.predict_scores(X), clf.predict_proba(X))
    _assert_parity(model, X, capfd)


def test_real_feature_names_are_kept_and_sanitized_names_reported(tmp_path: Path) -> None:
    X, y = _dataset("regression")
    frame = pd.DataFrame(X, columns=[f"col {i}" for i in range(X.shape[1])])
    booster = lgb.train({"objective": "regression", "verbose": -1}, lgb.Dataset(frame, y), 3)
    model = load_model(_save(booster, tmp_path / "model.txt"))
    assert model.feature_names == tuple(f"col_{i}" for i in range(X.shape[1]))  # LightGBM's own spelling


def test_categorical_splits_convert_without_drift(capfd: pytest.CaptureFixture[str]) -> None:
    X, y = _dataset("binary")
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 30, len(y)).astype(np.float32)
    y = (y + np.isin(codes, [3, 7, 11, 19, 25])) % 2
    X = np.c_[X[:, :5], codes]
    X[rng.random(len(X)) < 0.1, 5] = np.nan
    params = {"objective": "binary", "num_leaves": 8, "min_data_per_group": 5, "cat_smooth": 1, "verbose": -1}
    booster = lgb.train(params, lgb.Dataset(X, y, categorical_feature=[5]), ROUNDS)
    assert "num_cat=0" not in booster.model_to_string().split("\nTree=", 2)[1]  # a categorical split
    model = model_from_object(booster)
    assert any("category codes" in note for note in model.notes)
    X_test = X.copy()
    X_test[:40, 5] = np.arange(40) - 5  # negative and never-seen categories too
    _assert_parity(model, X_test, capfd)
    assert "categorical" in convert(model).doc_string


def test_fractional_category_codes_are_refused_naming_the_column() -> None:
    X, y = _dataset("binary")
    codes = np.random.default_rng(1).integers(0, 30, len(y)).astype(np.float64)
    frame = pd.DataFrame(np.c_[X[:, :5], codes], columns=["a", "b", "c", "d", "e", "kind"])
    params = {"objective": "binary", "num_leaves": 8, "min_data_per_group": 5, "verbose": -1}
    booster = lgb.train(params, lgb.Dataset(frame, (y + np.isin(codes, [3, 7])) % 2, categorical_feature=[5]), 5)
    model = model_from_object(booster)
    assert model.categorical_features == (5,)
    assert verify_conversion(model, convert(model)) == []
    X_bad = frame.to_numpy(copy=True)
    X_bad[:40, 5] += 0.5  # LightGBM truncates these, the ONNX trees do not: drift without a visible cause
    with pytest.raises(InputError, match=r"^categorical column 'kind' \(e\.g\. \d+\.5\) holds values that are not "
                       "whole numbers"):
        model.predict_scores(X_bad)


# --- refusals -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("objective,params,expected", [
    ("regression", {"linear_tree": True}, "linear_tree"),
    ("binary", {"zero_as_missing": True}, "zero_as_missing"),
    ("regression", {"reg_sqrt": True}, "reg_sqrt"),
    ("cross_entropy_lambda", {}, "cross_entropy_lambda"),
])
def test_unconvertible_models_are_refused_with_a_reason(
    objective: str, params: dict[str, Any], expected: str
) -> None:
    booster, X = _train(objective, **params)
    model = model_from_object(booster)
    assert model.predict_scores(X).shape[0] == len(X)  # still measurable natively
    with pytest.raises(UnsupportedModelError, match=expected) as err:
        convert(model)
    assert "\n" not in str(err.value)


def test_ranking_and_custom_objectives_are_refused_at_load(tmp_path: Path) -> None:
    X, y = _dataset("regression")
    ranker = lgb.train({"objective": "lambdarank", "verbose": -1}, lgb.Dataset(X, (y > 150).astype(int),
                                                                                group=[len(y)]), 3)
    with pytest.raises(UnsupportedModelError, match="ranking"):
        load_model(_save(ranker, tmp_path / "rank.txt"))

    def squared_error(preds: np.ndarray, data: lgb.Dataset) -> tuple[np.ndarray, np.ndarray]:
        return preds - data.get_label(), np.ones_like(preds)

    custom = lgb.train({"objective": squared_error, "verbose": -1}, lgb.Dataset(X, y), 3)
    with pytest.raises(UnsupportedModelError, match="custom objective"):
        model_from_object(custom)


def test_unfitted_wrapper_is_refused() -> None:
    with pytest.raises(UnsupportedModelError, match="LGBMClassifier is not fitted"):
        model_from_object(lgb.LGBMClassifier())


def test_double_precision_is_built_from_the_models_own_trees() -> None:
    # onnxmltools writes float32 only; the fp64 graph comes from LightGBM's dump (tests/core/test_double_trees.py)
    booster, _ = _train("regression", rounds=3)
    model = model_from_object(booster)
    ok, reason = supports_double(model)
    assert ok and "float64" in reason
    assert convert(model, double=True).graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE


def test_truncated_and_damaged_files_raise_one_line_model_load_error(tmp_path: Path) -> None:
    # LightGBM aborts or segfaults the process on such files: the loader must refuse them first.
    booster, _ = _train("binary", rounds=5)
    text = booster.model_to_string()
    trees_end, params_start = text.index("end of trees"), text.index("\nparameters:")
    cuts = [*np.linspace(10, trees_end, 30), *np.linspace(params_start + 15, len(text) - 60, 10)]
    damaged = [text[: int(cut)] for cut in cuts]
    damaged.append(text.replace("\n", "\r\n"))  # tree sizes no longer add up
    damaged.append(text.replace("[bagging_fraction: 1]", "[bagging_fraction/ 1]"))  # bad parameter line
    # Same length, so only the child-process probe can tell: LightGBM aborts on the unknown key.
    damaged.append(text.replace("\nsplit_feature=", "\nsplit_feature_", 1))
    for i, content in enumerate(damaged):
        path = tmp_path / f"damaged{i}.txt"
        path.write_text(content, newline="")
        with pytest.raises(ModelLoadError) as err:
            load_model(path)
        assert "\n" not in str(err.value), content[-80:]


def test_header_parsing() -> None:
    booster, _ = _train("multiclassova", rounds=2, boosting="rf", **BAGGING)
    header = lgb_family.read_header(booster.model_to_string())
    assert header.objective == "multiclassova"
    assert header.objective_params == {"num_class": "3", "sigmoid": "1"}
    assert header.num_class == 3 and header.average_output
    assert header.feature_names == tuple(f"Column_{i}" for i in range(4))


def test_matches_does_not_need_lightgbm_types() -> None:
    assert not lgb_family.matches(object())
    assert not lgb_family.matches(pd.DataFrame())
    assert lgb_family.matches(lgb.LGBMRegressor())
