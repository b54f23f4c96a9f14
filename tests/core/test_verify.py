"""verify_conversion: a converted file is loaded in ONNX Runtime and compared with the native model on
synthetic rows before `convert` writes it (QA round 3, finding 1: wrong files were written with exit 0)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import GradientBoostingClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from optimizer_core.converters import convert
from optimizer_core.converters.verify import verify_conversion
from optimizer_core.errors import ConversionError, describe_ort_error, shorten
from optimizer_core.models import LoadedModel, model_from_object

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

N_FEATURES = 4
WEIGHTS = np.array([[0.5], [-1.0], [2.0], [0.25]])


def _classifier() -> LoadedModel:
    X, y = load_breast_cancer(return_X_y=True)
    return model_from_object(make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y))


def _node(proto: onnx.ModelProto, op_type: str) -> onnx.NodeProto:
    return next(n for n in proto.graph.node if n.op_type == op_type)


def _scale_attribute(node: onnx.NodeProto, name: str, factor: float) -> None:
    attr = next(a for a in node.attribute if a.name == name)
    attr.floats[:] = [v * factor for v in attr.floats]


def _linear(predict: Callable[[np.ndarray], np.ndarray]) -> LoadedModel:
    """A single-output regressor with a hand-written native predictor."""
    return LoadedModel(
        family="onnx", estimator="Linear", task="regression", n_features=N_FEATURES, feature_names=None,
        classes=None, format="memory", source_bytes=0, source_sha256="", native=None, predictor=predict,
    )


def _linear_graph(weights: np.ndarray, *, log_first: bool = False) -> onnx.ModelProto:
    nodes = [helper.make_node("MatMul", ["logged" if log_first else "input", "W"], ["scores"])]
    if log_first:  # NaN for negative inputs, where the native model has a number
        nodes.insert(0, helper.make_node("Log", ["input"], ["logged"]))
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", N_FEATURES])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", weights.shape[1]])],
        [numpy_helper.from_array(weights.astype(np.float32), "W")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(_classifier, id="logreg"),
        pytest.param(lambda: model_from_object(
            RandomForestRegressor(10, max_depth=5, random_state=0).fit(*load_diabetes(return_X_y=True))), id="forest"),
        pytest.param(lambda: model_from_object(make_pipeline(
            StandardScaler(), MLPClassifier((16,), max_iter=50, random_state=0)).fit(*load_breast_cancer(return_X_y=True))),
            id="mlp"),
    ],
)
def test_a_faithful_conversion_has_no_warning(build: Callable[[], LoadedModel]) -> None:
    model = build()
    assert verify_conversion(model, convert(model)) == []


def test_wrong_probabilities_are_reported_with_the_difference() -> None:
    model = _classifier()
    proto = convert(model)
    _scale_attribute(_node(proto, "LinearClassifier"), "coefficients", 2.0)  # sigmoid(2d), as LDA was
    (warning,) = verify_conversion(model, proto)
    assert warning.startswith("the ONNX file differs from the native model by up to 0.")
    assert warning.endswith("(probability) on 256 synthetic rows: measure it on real data with "
                            "`inference-optimizer run`")


def test_wrong_predictions_are_reported_relative_to_their_size() -> None:
    model = model_from_object(Ridge().fit(*load_diabetes(return_X_y=True)))
    proto = convert(model)
    assert verify_conversion(model, proto, rows=40) == []
    _scale_attribute(_node(proto, "LinearRegressor"), "coefficients", 1.01)
    (warning,) = verify_conversion(model, proto, rows=40)
    assert "(relative to the predictions) on 40 synthetic rows" in warning


def test_nan_only_in_the_onnx_file_is_reported() -> None:
    model = _linear(lambda X: X @ WEIGHTS)
    (warning,) = verify_conversion(model, _linear_graph(WEIGHTS, log_first=True))
    assert warning.startswith("the ONNX file returns NaN or infinity where the native model does not")


def test_rows_the_native_model_refuses_are_skipped() -> None:
    def non_negative_only(X: np.ndarray) -> np.ndarray:
        if (X < 0).any():
            raise ValueError("Negative values in data passed to the model")
        return X @ WEIGHTS

    assert verify_conversion(_linear(non_negative_only), _linear_graph(WEIGHTS)) == []

    def refuses_everything(X: np.ndarray) -> np.ndarray:
        raise ValueError("no")

    (warning,) = verify_conversion(_linear(refuses_everything), _linear_graph(WEIGHTS))
    assert warning.startswith("the ONNX file was not compared with Linear: the native model refused every")


def test_a_graph_returning_another_shape_is_an_error() -> None:
    # what a MultiOutputRegressor became: declared [N, 1], returning [N, 2]
    graph = _linear_graph(np.hstack([WEIGHTS, WEIGHTS]))
    graph.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 1
    with pytest.raises(ConversionError, match=r"returns scores of shape \[128, 2\] where the native model gives "
                                              r"\[128, 1\]"):
        verify_conversion(_linear(lambda X: X @ WEIGHTS), graph)


def test_a_graph_onnx_runtime_cannot_load_is_a_clean_one_line_error() -> None:
    X, y = load_breast_cancer(return_X_y=True)
    y3 = np.digitize(X[:, 0], np.quantile(X[:, 0], [0.33, 0.66]))
    model = model_from_object(GradientBoostingClassifier(n_estimators=5, random_state=0).fit(X, y3))
    proto = convert(model)
    base = next(a for a in _node(proto, "TreeEnsembleClassifier").attribute if a.name == "base_values")
    base.floats[:] = [0.0]  # what skl2onnx 1.20 wrote for GradientBoostingClassifier(init='zero')
    with pytest.raises(ConversionError) as err:
        verify_conversion(model, proto)
    message = str(err.value)
    assert message.startswith("ONNX Runtime cannot load the ONNX graph converted from GradientBoostingClassifier "
                              "(base_values should have 0 or 3 values.)")
    assert "\n" not in message and "onnxruntime_src" not in message


def test_describe_ort_error_keeps_the_cause_and_drops_the_cpp_noise() -> None:
    raw = ("[ONNXRuntimeError] : 1 : FAIL : Exception during initialization: /onnxruntime_src/onnxruntime/core/"
           "providers/cpu/ml/tree_ensemble_attribute.h:126 onnxruntime::ml::detail::TreeEnsembleAttributesV3<"
           "ThresholdType>::TreeEnsembleAttributesV3(const onnxruntime::OpKernelInfo&, bool) [with ThresholdType ="
           " float] base_values.size() == static_cast<size_t>(n_targets_or_classes) || base_values.size() == 0 was"
           " false. base_values should have 0 or 3 values.\n")
    assert describe_ort_error(RuntimeError(raw)) == "base_values should have 0 or 3 values."
    plain = "[ONNXRuntimeError] : 9 : NOT_IMPLEMENTED : Could not find an implementation for Foo(13) node"
    assert describe_ort_error(RuntimeError(plain)) == "Could not find an implementation for Foo(13) node"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("short enough", "short enough"),
        ("The first sentence is here. " + "word " * 40, "The first sentence is here."),
        ("tiny. " + "longword " * 20, "tiny. " + "longword " * 5 + "longword…"),
    ],
)
def test_shorten_cuts_after_a_sentence_or_at_a_word(text: str, expected: str) -> None:
    assert shorten(text, 60) == expected
