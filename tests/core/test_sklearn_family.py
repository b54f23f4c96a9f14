"""scikit-learn family: skops loading (allowlist), native prediction, skl2onnx conversion and parity."""

from __future__ import annotations

import io
import json
import os
import re
import warnings
import zipfile
from collections.abc import Callable
from functools import cache, partial
from typing import Any

import joblib
import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
    VotingClassifier,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import (
    ElasticNet,
    Lasso,
    LinearRegression,
    LogisticRegression,
    Perceptron,
    Ridge,
    RidgeClassifier,
    SGDClassifier,
)
from sklearn.multioutput import MultiOutputClassifier, MultiOutputRegressor, RegressorChain
from sklearn.neighbors import KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
)
from sklearn.svm import SVC, SVR, LinearSVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.utils.validation import check_array

from optimizer_core.converters import convert, supports_double
from optimizer_core.converters.verify import verify_conversion
from optimizer_core.errors import ConversionError, ModelLoadError, UnsafeModelError, UnsupportedModelError
from optimizer_core.models import LoadedModel, load_model, model_from_object

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    # scikit-learn 1.9 deprecates SVC(probability=True); it is still what users save today.
    pytest.mark.filterwarnings("ignore:The `probability` parameter was deprecated:FutureWarning"),
]

ROWS = 200
PROBA_ATOL = 1e-5
REG_RTOL = 1e-5


# --- data ---------------------------------------------------------------------------------------------


@cache
def _dataset(kind: str) -> tuple[np.ndarray, np.ndarray]:
    loader = {"binary": load_breast_cancer, "multiclass": load_iris, "regression": load_diabetes}[kind]
    X, y = loader(return_X_y=True)
    return X[:ROWS], y[:ROWS]


def _data(kind: str, *, nan: bool = False) -> tuple[np.ndarray, np.ndarray]:
    X, y = _dataset(kind)
    X = X.copy()
    if nan:
        X[np.random.default_rng(0).random(X.shape) < 0.1] = np.nan
    return X, y


def _fit(estimator: Any, kind: str, *, nan: bool = False) -> tuple[Any, np.ndarray]:
    X, y = _data(kind, nan=nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X, y)
    return estimator, X


def _dump(estimator: Any, tmp_path: Any, name: str = "model.skops") -> Any:
    path = tmp_path / name
    sio.dump(estimator, path)
    return path


def _session(proto: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def _assert_contract(proto: onnx.ModelProto, model: LoadedModel, elem: int = onnx.TensorProto.FLOAT) -> None:
    (inp,) = proto.graph.input
    assert inp.name == "input"
    assert inp.type.tensor_type.elem_type == elem
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["N", model.n_features]
    (out,) = proto.graph.output
    assert out.name == "scores"
    assert out.type.tensor_type.elem_type == elem
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["N", model.n_outputs]
    assert any(op.domain in ("", "ai.onnx") for op in proto.opset_import)
    assert not any(n.op_type == "ZipMap" for n in proto.graph.node)


def _assert_parity(onnx_scores: np.ndarray, native: np.ndarray, task: str) -> None:
    assert onnx_scores.shape == native.shape
    if task == "regression":
        np.testing.assert_allclose(onnx_scores, native, rtol=REG_RTOL, atol=1e-6)
    else:
        np.testing.assert_allclose(onnx_scores, native, rtol=0, atol=PROBA_ATOL)


# --- parity across estimators ------------------------------------------------------------------------

Factory = Callable[[], Any]
CASES: list[Any] = [
    pytest.param(lambda: DecisionTreeClassifier(max_depth=6, random_state=0), "binary", False, id="dt-clf"),
    pytest.param(
        lambda: DecisionTreeRegressor(max_depth=6, random_state=0), "regression", False, id="dt-reg"
    ),
    pytest.param(
        lambda: RandomForestClassifier(10, max_depth=5, random_state=0), "multiclass", False, id="rf-clf"
    ),
    pytest.param(
        lambda: RandomForestRegressor(10, max_depth=5, random_state=0), "regression", False, id="rf-reg"
    ),
    pytest.param(lambda: ExtraTreesClassifier(10, max_depth=5, random_state=0), "binary", False, id="et-clf"),
    pytest.param(
        lambda: ExtraTreesRegressor(10, max_depth=5, random_state=0), "regression", False, id="et-reg"
    ),
    pytest.param(
        lambda: GradientBoostingClassifier(n_estimators=10, random_state=0), "binary", False, id="gb-clf"
    ),
    pytest.param(
        lambda: GradientBoostingClassifier(n_estimators=10, random_state=0), "multiclass", False, id="gb-clf3"
    ),
    pytest.param(
        lambda: GradientBoostingRegressor(n_estimators=10, random_state=0), "regression", False, id="gb-reg"
    ),
    pytest.param(lambda: HistGradientBoostingClassifier(max_iter=10), "binary", True, id="hgb-clf-nan"),
    pytest.param(lambda: HistGradientBoostingClassifier(max_iter=10), "multiclass", True, id="hgb-clf3-nan"),
    pytest.param(lambda: HistGradientBoostingRegressor(max_iter=10), "regression", True, id="hgb-reg-nan"),
    # scikit-learn trees learn NaN routing too (skl2onnx 1.20 drops it without our fix).
    pytest.param(
        lambda: DecisionTreeClassifier(max_depth=6, random_state=0), "binary", True, id="dt-clf-nan"
    ),
    pytest.param(
        lambda: RandomForestRegressor(10, max_depth=5, random_state=0), "regression", True, id="rf-reg-nan"
    ),
    pytest.param(
        lambda: ExtraTreesClassifier(10, max_depth=5, random_state=0), "multiclass", True, id="et-clf3-nan"
    ),
    pytest.param(lambda: LogisticRegression(max_iter=1000), "binary", False, id="logreg"),
    pytest.param(lambda: LogisticRegression(max_iter=500), "multiclass", False, id="logreg3"),
    pytest.param(LinearRegression, "regression", False, id="linreg"),
    pytest.param(Ridge, "regression", False, id="ridge"),
    pytest.param(lambda: Lasso(alpha=0.1), "regression", False, id="lasso"),
    pytest.param(lambda: ElasticNet(alpha=0.01), "regression", False, id="elasticnet"),
    pytest.param(
        lambda: make_pipeline(
            StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,), max_iter=50, random_state=0)
        ),
        "binary",
        False,
        id="mlp-clf",
    ),
    pytest.param(
        lambda: make_pipeline(
            MinMaxScaler(), MLPRegressor(hidden_layer_sizes=(16,), max_iter=50, random_state=0)
        ),
        "regression",
        False,
        id="mlp-reg",
    ),
    pytest.param(
        lambda: make_pipeline(StandardScaler(), SVC(probability=True, random_state=0)),
        "multiclass",
        False,
        id="svc",
    ),
    pytest.param(
        lambda: make_pipeline(StandardScaler(), SVC(probability=True, random_state=0)),
        "binary",
        False,
        id="svc2",
    ),
    pytest.param(lambda: make_pipeline(RobustScaler(), SVR()), "regression", False, id="svr"),
    pytest.param(
        lambda: make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=500)),
        "binary",
        True,
        id="imputer-logreg-nan",
    ),
    pytest.param(
        # No scaler here: ONNX scales in float32 while scikit-learn scales in float64 and then rounds, so a
        # scaled value can land on the other side of a tree threshold (real float32 drift, not a bug).
        lambda: make_pipeline(SimpleImputer(strategy="median"), RandomForestClassifier(10, random_state=0)),
        "multiclass",
        True,
        id="imputer-rf-nan",
    ),
    pytest.param(
        lambda: make_pipeline(SimpleImputer(), MinMaxScaler(), Ridge()),
        "regression",
        True,
        id="imputer-ridge-nan",
    ),
]


@pytest.mark.parametrize(("factory", "kind", "nan"), CASES)
def test_skops_roundtrip_converts_with_parity(
    factory: Factory, kind: str, nan: bool, tmp_path, capfd
) -> None:
    estimator, X = _fit(factory(), kind, nan=nan)
    model = load_model(_dump(estimator, tmp_path))

    assert model.family == "sklearn"
    assert model.format == "skops"
    assert model.task == kind
    assert model.n_features == X.shape[1]
    expected_classes = None if kind == "regression" else tuple(np.unique(_dataset(kind)[1]).tolist())
    assert model.classes == expected_classes
    assert model.source_bytes == (tmp_path / "model.skops").stat().st_size

    proto = convert(model)
    _assert_contract(proto, model)
    X32 = X.astype(np.float32)
    onnx_scores = _session(proto).run(["scores"], {"input": X32})[0]
    native = model.predict_scores(X32)
    _assert_parity(onnx_scores, native, model.task)
    # ORT warns on stderr when declared and actual output shapes disagree.
    assert "shape" not in capfd.readouterr().err.lower()


def test_pipeline_name_and_dataframe_features_predict_quietly() -> None:
    X, y = _data("binary")
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe = make_pipeline(
            StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0)
        ).fit(frame, y)
    model = model_from_object(pipe)

    assert model.estimator == "Pipeline(StandardScaler > MLPClassifier)"
    assert model.feature_names == tuple(frame.columns)
    assert model.format == "memory" and model.source_bytes == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names" warning
        scores = model.predict_scores(X.astype(np.float32))
    np.testing.assert_allclose(scores, pipe.predict_proba(frame.astype(np.float32)))


def test_string_class_labels() -> None:
    X, y = _data("multiclass")
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    model = model_from_object(RandomForestClassifier(5, random_state=0).fit(X, labels))
    assert model.classes == ("setosa", "versicolor", "virginica")
    scores = _session(convert(model)).run(["scores"], {"input": X.astype(np.float32)})[0]
    _assert_parity(scores, model.predict_scores(X.astype(np.float32)), "multiclass")


# --- float64 graphs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "kind"),
    [
        pytest.param(lambda: LogisticRegression(max_iter=500), "multiclass", id="logreg"),
        pytest.param(Ridge, "regression", id="ridge"),
        pytest.param(
            lambda: make_pipeline(
                StandardScaler(), MLPRegressor(hidden_layer_sizes=(8,), max_iter=30, random_state=0)
            ),
            "regression",
            id="mlp",
        ),
        pytest.param(
            lambda: make_pipeline(MinMaxScaler(), RobustScaler(), Lasso(alpha=0.1)), "regression", id="lasso"
        ),
    ],
)
def test_double_graph_matches_native_float64(factory: Factory, kind: str) -> None:
    estimator, X = _fit(factory(), kind)
    model = model_from_object(estimator)
    ok, reason = supports_double(model)
    assert ok, reason

    proto = convert(model, double=True)
    _assert_contract(proto, model, elem=onnx.TensorProto.DOUBLE)
    scores = _session(proto).run(["scores"], {"input": X})[0]
    np.testing.assert_allclose(scores, model.predict_scores(X), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("estimator", "kind", "nan", "expected"),
    [
        pytest.param(
            RandomForestClassifier(5, random_state=0), "binary", True, "RandomForestClassifier", id="rf"
        ),
        pytest.param(make_pipeline(StandardScaler(), HistGradientBoostingRegressor(max_iter=5)), "regression", False,
                     "float64", id="hgb-in-pipeline"),
        pytest.param(
            make_pipeline(StandardScaler(), SVC(probability=True, random_state=0)), "binary", False,
            "support vectors and coefficients as float32", id="svc",
        ),
        pytest.param(
            make_pipeline(SimpleImputer(), LogisticRegression(max_iter=500)),
            "binary",
            True,
            "Imputer",
            id="imputer",
        ),
    ],
)
def test_double_refused_with_reason(estimator: Any, kind: str, nan: bool, expected: str) -> None:
    model = model_from_object(_fit(estimator, kind, nan=nan)[0])
    ok, reason = supports_double(model)
    assert not ok
    assert expected in reason
    if "Imputer" not in expected:
        with pytest.raises(UnsupportedModelError, match="float32 only"):
            convert(model, double=True)


# --- skl2onnx 1.20 compatibility fixes ---------------------------------------------------------------


def test_hist_gradient_boosting_converts_despite_boolean_attribute_bug() -> None:
    """skl2onnx 1.20 + scikit-learn 1.9: 'Field onnx.AttributeProto.ints: Expected an int, got a boolean'."""
    from skl2onnx.common import tree_ensemble

    before = tree_ensemble.add_node
    estimator, X = _fit(HistGradientBoostingClassifier(max_iter=5), "binary", nan=True)
    model = model_from_object(estimator)
    proto = convert(model)

    (tree,) = [n for n in proto.graph.node if n.op_type == "TreeEnsembleClassifier"]
    flags = next(a.ints for a in tree.attribute if a.name == "nodes_missing_value_tracks_true")
    assert set(flags) <= {0, 1} and any(flags)
    assert tree_ensemble.add_node is before  # the patch lives only inside the conversion
    X32 = X.astype(np.float32)
    _assert_parity(_session(proto).run(["scores"], {"input": X32})[0], model.predict_scores(X32), "binary")


def test_tree_nan_routing_is_kept_for_nan_rows_only_seen_at_predict_time() -> None:
    # Fitted without NaNs, scikit-learn sends NaNs to the child that saw more samples.
    estimator, X = _fit(DecisionTreeClassifier(max_depth=8, random_state=0), "binary")
    X_nan = _data("binary", nan=True)[0].astype(np.float32)
    model = model_from_object(estimator)
    scores = _session(convert(model)).run(["scores"], {"input": X_nan})[0]
    _assert_parity(scores, model.predict_scores(X_nan), "binary")


@pytest.mark.timeout(60)
def test_double_tree_conversion_terminates_on_infinite_thresholds() -> None:
    """skl2onnx's float64 threshold search never ends on the +inf thresholds of NaN-only splits."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType

    from optimizer_core.converters.sklearn import _skl2onnx_tree_fixes

    estimator, X = _fit(DecisionTreeRegressor(max_depth=8, random_state=0), "regression", nan=True)
    assert np.isinf(estimator.tree_.threshold).any()
    with _skl2onnx_tree_fixes():
        proto = convert_sklearn(estimator, initial_types=[("input", DoubleTensorType([None, X.shape[1]]))])
    assert proto.graph.node


# --- refusals ----------------------------------------------------------------------------------------


class PassThrough(TransformerMixin, BaseEstimator):
    """A user-defined transformer: skops must not trust it."""

    def fit(self, X: Any, y: Any = None) -> PassThrough:
        return self

    def transform(self, X: Any) -> Any:
        return X


def test_skops_with_function_outside_sklearn_is_refused(tmp_path) -> None:
    X, y = _data("binary")
    pipe = make_pipeline(FunctionTransformer(), LogisticRegression(max_iter=50))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(X, y)
    pipe[0].func = os.system  # would run a shell command on transform
    with pytest.raises(UnsafeModelError, match=r"outside scikit-learn.*system"):
        load_model(_dump(pipe, tmp_path))


def _categorical_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=ROWS), rng.integers(0, 4, ROWS), rng.normal(size=ROWS)])
    y = ((X[:, 0] + (X[:, 1] == 2) - (X[:, 1] == 0)) > 0.3).astype(int)
    return X, y


def test_hist_gradient_boosting_with_categorical_features_loads(tmp_path) -> None:
    """Regression: scikit-learn stores functools.partial(check_array, ...) in HistGradientBoosting's
    categorical preprocessor, and the whole model was refused as unsafe."""
    X, y = _categorical_data()
    estimator = HistGradientBoostingClassifier(categorical_features=[1], max_iter=10).fit(X, y)
    path = _dump(estimator, tmp_path)
    assert "functools.partial" in sio.get_untrusted_types(file=path)  # what the allowlist must handle

    model = load_model(path)
    assert (model.family, model.estimator, model.task, model.n_features) == (
        "sklearn",
        "HistGradientBoostingClassifier",
        "binary",
        3,
    )
    np.testing.assert_array_equal(model.predict_scores(X), estimator.predict_proba(X))


def test_hist_gradient_boosting_with_categorical_features_is_refused_not_converted_wrong(tmp_path) -> None:
    # skl2onnx 1.20 ignores the categorical splits: its graph differs from scikit-learn by up to ~0.6
    X, y = _categorical_data()
    estimator = HistGradientBoostingClassifier(categorical_features=[1], max_iter=10).fit(X, y)
    model = load_model(_dump(estimator, tmp_path))
    with pytest.raises(UnsupportedModelError, match="categorical_features has no faithful ONNX conversion"):
        convert(model)
    pipeline = make_pipeline(SimpleImputer(), HistGradientBoostingClassifier(categorical_features=[1], max_iter=10))
    piped = load_model(_dump(pipeline.fit(X, y), tmp_path, "piped.skops"))
    with pytest.raises(UnsupportedModelError, match="categorical_features"):
        convert(piped)
    # also inside an ensemble (it converted 0.48 off there: the check only walked pipelines)
    hgb = HistGradientBoostingClassifier(categorical_features=[1], max_iter=10)
    voting = VotingClassifier([("hgb", hgb), ("lr", LogisticRegression(max_iter=200))], voting="soft")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        voting.fit(X, y)
    with pytest.raises(UnsupportedModelError, match="HistGradientBoostingClassifier with categorical_features"):
        convert(model_from_object(voting))


def _with_func(func: Any) -> Any:
    X, y = _data("binary")
    pipe = make_pipeline(FunctionTransformer(), LogisticRegression(max_iter=50))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(X, y)
    pipe[0].func = func
    return pipe


@pytest.mark.parametrize(
    "func",
    [partial(check_array, dtype=np.float64), partial(np.log1p, dtype=np.float64)],
    ids=["sklearn-function", "numpy-ufunc"],
)
def test_partial_of_a_trusted_function_is_trusted(func: Any, tmp_path) -> None:
    pipe = _with_func(func)
    model = load_model(_dump(pipe, tmp_path))
    X = _data("binary")[0]
    np.testing.assert_allclose(model.predict_scores(X), pipe.predict_proba(X))


@pytest.mark.parametrize(
    ("func", "named"),
    [
        pytest.param(
            partial(os.system, "echo pwned"), r"functools\.partial\((posix|nt)\.system\)", id="os.system"
        ),
        pytest.param(partial(PassThrough), r"functools\.partial\([\w.]*PassThrough\)", id="class"),
        pytest.param(partial(eval, "1"), r"functools\.partial\(builtins\.eval\)", id="eval"),
    ],
)
def test_partial_of_an_untrusted_callable_is_refused(func: Any, named: str, tmp_path) -> None:
    with pytest.raises(UnsafeModelError, match=r"outside scikit-learn.*" + named) as info:
        load_model(_dump(_with_func(func), tmp_path))
    assert "\n" not in str(info.value)


def test_partial_disguised_as_another_type_is_refused(tmp_path) -> None:
    """A crafted file whose partial node claims a scikit-learn type name (skops would report that
    name, and build a partial anyway): the partial is not trusted by name alone."""
    data = _dump(_with_func(partial(check_array, dtype=np.float64)), tmp_path).read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(files["schema.json"])
    stack: list[Any] = [schema]
    disguised = 0
    while stack:
        node = stack.pop()
        if isinstance(node, dict) and node.get("__loader__") == "PartialNode":
            node["__class__"], node["__module__"] = "Pipeline", "sklearn.pipeline"
            disguised += 1
        stack.extend(node.values() if isinstance(node, dict) else node if isinstance(node, list) else [])
    assert disguised == 1
    assert "functools.partial" not in sio.get_untrusted_types(data=_zip(files, schema))
    with pytest.raises(UnsafeModelError, match=r"functools\.partial\(<PartialNode>\)"):
        load_model(_zip(files, schema), name="crafted.skops")


def _zip(files: dict[str, bytes], schema: Any) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, json.dumps(schema) if name == "schema.json" else content)
    return out.getvalue()


def test_skops_with_custom_class_is_refused(tmp_path) -> None:
    X, y = _data("binary")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe = make_pipeline(PassThrough(), LogisticRegression(max_iter=50)).fit(X, y)
    with pytest.raises(UnsafeModelError, match="PassThrough"):
        load_model(_dump(pipe, tmp_path))


def test_truncated_skops_file_is_a_load_error(tmp_path) -> None:
    path = _dump(_fit(Ridge(), "regression")[0], tmp_path)
    data = path.read_bytes()
    with pytest.raises(ModelLoadError, match="truncated"):
        load_model(data[: len(data) // 2], name="half.skops")


def test_unfitted_estimator_is_refused(tmp_path) -> None:
    with pytest.raises(UnsupportedModelError, match="not fitted"):
        load_model(_dump(LogisticRegression(), tmp_path))
    with pytest.raises(UnsupportedModelError, match="Pipeline.*not fitted"):
        model_from_object(make_pipeline(StandardScaler(), Ridge()))


@pytest.mark.parametrize(
    ("factory", "expected"),
    [
        pytest.param(
            lambda: make_pipeline(StandardScaler(), LinearSVC()),
            r"make CalibratedClassifierCV\(LinearSVC\(\.\.\.\), ensemble=False\) the pipeline's last step",
            id="linear-svc-pipeline",
        ),
        pytest.param(RidgeClassifier, r"wrap it in CalibratedClassifierCV\(RidgeClassifier\(\.\.\.\)", id="ridge"),
        pytest.param(lambda: SGDClassifier(random_state=0), r"loss='log_loss'", id="sgd"),
        pytest.param(
            lambda: VotingClassifier([("lr", LogisticRegression(max_iter=500)), ("dt", DecisionTreeClassifier())]),
            r"voting='soft'",
            id="hard-voting",
        ),
        pytest.param(SVC, r"probability=True", id="svc"),
    ],
)
def test_advice_for_classifiers_without_probabilities_fits_the_estimator(factory: Factory, expected: str) -> None:
    """Regression: every such classifier was told to use probability=True (only SVC/NuSVC have it) or to
    wrap the whole pipeline in CalibratedClassifierCV (which skl2onnx cannot convert). Those with a
    decision_function are read as decision scores and the advice is in their note; the others are refused."""
    estimator = _fit(factory(), "binary")[0]
    if not hasattr(estimator, "decision_function"):
        with pytest.raises(UnsupportedModelError, match=expected) as err:
            model_from_object(estimator)
        text = str(err.value)
    else:
        model = model_from_object(estimator)
        assert model.scores_kind == "decision"
        text = " ".join(model.notes)
        assert re.search(expected, text)
    if not isinstance(estimator, SVC):
        assert "probability=True" not in text


@pytest.mark.parametrize(
    ("factory", "kind"),
    [
        pytest.param(
            lambda: make_pipeline(StandardScaler(), CalibratedClassifierCV(LinearSVC(), ensemble=False)),
            "binary",
            id="calibrated-linear-svc-last-step",
        ),
        pytest.param(
            lambda: make_pipeline(StandardScaler(), CalibratedClassifierCV(RidgeClassifier(), ensemble=False)),
            "multiclass",
            id="calibrated-ridge-last-step",
        ),
        pytest.param(
            lambda: make_pipeline(StandardScaler(), CalibratedClassifierCV(Perceptron(), ensemble=False)),
            "binary",
            id="calibrated-perceptron-last-step",
        ),
        pytest.param(
            lambda: make_pipeline(StandardScaler(), SGDClassifier(loss="log_loss", random_state=0)),
            "binary",
            id="sgd-log-loss",
        ),
        pytest.param(
            # flatten_transform=True is VotingClassifier's default; skl2onnx refused it
            lambda: VotingClassifier(
                [("lr", LogisticRegression(max_iter=500)), ("rf", RandomForestClassifier(5, random_state=0))],
                voting="soft",
            ),
            "multiclass",
            id="soft-voting",
        ),
        pytest.param(LinearDiscriminantAnalysis, "binary", id="lda-binary"),  # was off by up to 0.15
        pytest.param(LinearDiscriminantAnalysis, "multiclass", id="lda-multiclass"),
        pytest.param(
            # skl2onnx wrote one base value for three classes: ONNX Runtime refused to load the graph
            lambda: GradientBoostingClassifier(n_estimators=10, init="zero", random_state=0),
            "multiclass",
            id="gbc-init-zero",
        ),
    ],
)
def test_advised_and_repaired_classifiers_convert_with_parity(factory: Factory, kind: str) -> None:
    estimator, X = _fit(factory(), kind)
    params = {k: v for k, v in estimator.get_params().items() if not hasattr(v, "get_params")}
    fitted = [(step, dict(vars(step))) for step in [estimator] if isinstance(step, LinearDiscriminantAnalysis)]
    model = model_from_object(estimator)
    proto = convert(model)
    _assert_contract(proto, model)
    X32 = X.astype(np.float32)
    _assert_parity(_session(proto).run(["scores"], {"input": X32})[0], model.predict_scores(X32), kind)
    assert verify_conversion(model, proto) == []
    # the temporary adjustments made for skl2onnx are undone
    assert {k: v for k, v in estimator.get_params().items() if not hasattr(v, "get_params")} == params
    for step, state in fitted:
        np.testing.assert_array_equal(step.coef_, state["coef_"])
        np.testing.assert_array_equal(step.intercept_, state["intercept_"])


def test_binary_lda_float64_graph_matches() -> None:
    estimator, X = _fit(LinearDiscriminantAnalysis(), "binary")
    model = model_from_object(estimator)
    scores = _session(convert(model, double=True)).run(["scores"], {"input": X})[0]
    np.testing.assert_allclose(scores, model.predict_scores(X), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("factory", "expected"),
    [
        pytest.param(
            lambda: CalibratedClassifierCV(make_pipeline(StandardScaler(), LinearSVC()), ensemble=False),
            r"^CalibratedClassifierCV around Pipeline\(StandardScaler > LinearSVC\) has no faithful ONNX "
            r"conversion .*make the calibrator the pipeline's last step",
            id="calibrated-pipeline",
        ),
        pytest.param(
            lambda: CalibratedClassifierCV(make_pipeline(StandardScaler(), LogisticRegression()), ensemble=False),
            r"^CalibratedClassifierCV around Pipeline",
            id="calibrated-pipeline-silently-wrong",
        ),
        pytest.param(
            lambda: make_pipeline(
                StandardScaler(), CalibratedClassifierCV(SGDClassifier(random_state=0), method="isotonic")
            ),
            r"method='isotonic'.*refit it with method='sigmoid'",
            id="isotonic",
        ),
    ],
)
def test_calibrations_skl2onnx_converts_wrong_are_refused(factory: Factory, expected: str) -> None:
    """Regression: these converted with exit 0 and probabilities off by 0.14 to 0.5 (or failed with
    "NameError: Option 'zipmap' not in [...] for class 'LinearSVC'")."""
    model = model_from_object(_fit(factory(), "binary")[0])
    with pytest.raises(UnsupportedModelError, match=expected):
        convert(model)


def test_converter_errors_are_cut_at_a_sentence_not_mid_word(monkeypatch: pytest.MonkeyPatch) -> None:
    from optimizer_core.converters import sklearn as sklearn_converter

    text = ("Unable to find column name 'a' among names ['input']. Make sure the input names specified with "
            "parameter initial_types fits the column names specified in the pipeline to convert. This may happen "
            "because a ColumnTransformer follows a transformer without any mapped converter in a pipeline.")

    def fail(model: LoadedModel, *, double: bool) -> Any:
        raise RuntimeError(text)

    monkeypatch.setattr(sklearn_converter, "to_onnx", fail)
    model = model_from_object(_fit(LogisticRegression(max_iter=500), "binary")[0])
    with pytest.raises(ConversionError) as err:
        convert(model)
    message = str(err.value)
    assert "becau" not in message
    assert "initial_types fits the column names specified in the pipeline to convert.)" in message
    assert message.endswith("export the model to ONNX yourself and pass the .onnx file")


def _multi_target(estimator: Any) -> Any:
    X, y = _data("regression")
    return estimator.fit(X, np.column_stack([y, -y]))


@pytest.mark.parametrize(
    "factory",
    [
        pytest.param(Ridge, id="ridge"),
        pytest.param(lambda: MultiOutputRegressor(LinearRegression()), id="multi-output-regressor"),
        pytest.param(lambda: RegressorChain(LinearRegression()), id="regressor-chain"),
        pytest.param(KNeighborsRegressor, id="knn"),
        pytest.param(lambda: TransformedTargetRegressor(LinearRegression()), id="transformed-target"),
        pytest.param(lambda: make_pipeline(StandardScaler(), MultiOutputRegressor(Ridge())), id="pipeline"),
    ],
)
def test_multi_output_regressor_is_refused(factory: Factory, tmp_path) -> None:
    """Regression: MultiOutputRegressor and KNN fitted on 2-D y loaded as single-output regressors; `run`
    then failed with an IndexError and `convert` declared [N, 1] for a graph returning [N, 2]."""
    path = _dump(_multi_target(factory()), tmp_path)
    with pytest.raises(UnsupportedModelError, match="predicts several targets at once: .*fit one model per target"):
        load_model(path)


def test_single_output_knn_regressor_still_loads() -> None:
    estimator, X = _fit(KNeighborsRegressor(), "regression")
    model = model_from_object(estimator)
    assert model.predict_scores(X[:7]).shape == (7, 1)


def test_multi_output_classifier_is_refused_with_the_fix() -> None:
    X, y = _data("multiclass")
    estimator = MultiOutputClassifier(LogisticRegression(max_iter=500)).fit(X, np.column_stack([y, y % 2]))
    with pytest.raises(UnsupportedModelError, match="multi-output classifier.*fit one classifier per target"):
        model_from_object(estimator)


def _frame_with_text() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "a": rng.normal(size=ROWS),
        "b": rng.normal(size=ROWS),
        "color": rng.choice(["red", "green", "blue"], ROWS),
        "size": rng.choice(["S", "M", "L"], ROWS),
    })
    return frame, ((frame.a > 0) ^ (frame.color == "red")).to_numpy().astype(int)


@pytest.mark.parametrize("encoder", [OneHotEncoder(handle_unknown="ignore"), OrdinalEncoder()], ids=type)
def test_pipeline_taking_text_columns_is_refused_at_load(encoder: Any, tmp_path) -> None:
    """Regression: the CSV was blamed ("'red' ... features must be numbers") for text the model needs."""
    frame, y = _frame_with_text()
    columns = ColumnTransformer([("num", StandardScaler(), ["a", "b"]), ("cat", encoder, ["color", "size"])])
    path = _dump(make_pipeline(columns, LogisticRegression()).fit(frame, y), tmp_path)
    with pytest.raises(UnsupportedModelError) as err:
        load_model(path)
    message = str(err.value)
    assert message.startswith(
        f"Pipeline(ColumnTransformer > LogisticRegression) takes text columns ({type(encoder).__name__} on "
        "'color', 'size'): this tool feeds the model one float32 array"
    )
    assert "encode the categories as numbers before the model" in message
    # wherever the encoder sits: inside a calibrator it slipped through to a confusing data error
    calibrated = CalibratedClassifierCV(make_pipeline(columns, LogisticRegression()), ensemble=False, cv=3)
    with pytest.raises(UnsupportedModelError, match="takes text columns"):
        load_model(_dump(calibrated.fit(frame, y), tmp_path, "calibrated.skops"))


def test_column_transformer_selecting_columns_by_name_converts() -> None:
    """Encoding categories as numbers (the advice above) keeps a ColumnTransformer that selects columns by
    name, which skl2onnx only maps onto inputs of those names: it converts with one input now."""
    frame, y = _frame_with_text()
    frame = frame.assign(color=frame.color.map({"red": 0, "green": 1, "blue": 2}).astype(float),
                         size=frame["size"].map({"S": 0, "M": 1, "L": 2}).astype(float))
    frame = frame.rename(columns={"a": "a value", "b": "input"})  # a space, and the contract's own input name
    columns = ColumnTransformer([
        ("num", StandardScaler(), ["a value", "input"]),
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["color", "size"]),
    ])
    model = model_from_object(make_pipeline(columns, LogisticRegression()).fit(frame, y))
    proto = convert(model)
    _assert_contract(proto, model)
    X = frame.to_numpy(np.float32)
    _assert_parity(_session(proto).run(["scores"], {"input": X})[0], model.predict_scores(X), "binary")
    # synthetic rows draw the encoded columns from their categories (0.3 would be unknown to scikit-learn
    # but category 0 to ONNX's OneHotEncoder): no false alarm
    assert verify_conversion(model, proto) == []


def test_estimator_without_converter_is_named(tmp_path) -> None:
    model = load_model(_dump(_fit(make_pipeline(StandardScaler(), KernelRidge()), "regression")[0], tmp_path))
    assert model.task == "regression"
    with pytest.raises(
        UnsupportedModelError, match=r"^KernelRidge \(in Pipeline\(StandardScaler > KernelRidge\)\)"
    ):
        convert(model)


def test_pickle_needs_opt_in(tmp_path) -> None:
    estimator, X = _fit(RandomForestClassifier(5, random_state=0), "binary")
    path = tmp_path / "model.joblib"
    joblib.dump(estimator, path)

    with pytest.raises(UnsafeModelError, match="pickle"):
        load_model(path)
    model = load_model(path, allow_pickle=True)
    assert (model.family, model.format, model.task) == ("sklearn", "pickle", "binary")
    np.testing.assert_allclose(model.predict_scores(X), estimator.predict_proba(X))
