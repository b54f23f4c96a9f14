"""ONNX family: loading a user's ONNX file, converting it to the contract, refusing hostile files."""

from __future__ import annotations

import json
import random
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import convert_sklearn, to_onnx
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression

from optimizer_core.converters import convert, supports_double
from optimizer_core.errors import (
    ModelLoadError,
    OptimizerError,
    UnsafeModelError,
    UnsupportedModelError,
)
from optimizer_core.models import LoadedModel, load_model, model_from_object
from optimizer_core.onnx_safety import check_onnx_safe

N_FEATURES = 4


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    return np.random.RandomState(0).rand(300, N_FEATURES).astype(np.float32)


@pytest.fixture(scope="module")
def estimators(X: np.ndarray) -> dict[str, object]:
    rows = np.arange(len(X))
    return {
        "logreg_zipmap": LogisticRegression().fit(X, (X[:, 0] > 0.5).astype(int)),
        "forest_regressor": RandomForestRegressor(n_estimators=5, max_depth=4, random_state=0).fit(X, X[:, 1]),
        "forest_string_labels": RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(
            X, np.array(["cat", "dog", "eel"])[rows % 3]
        ),
        "logreg_no_zipmap": LogisticRegression().fit(X, rows % 3),
    }


def _onnx_for(name: str, estimator: object, X: np.ndarray) -> onnx.ModelProto:
    options = {"zipmap": False} if name == "logreg_no_zipmap" else None
    return to_onnx(estimator, X[:1], options=options)


def _expected_scores(estimator: object, X: np.ndarray) -> np.ndarray:
    if hasattr(estimator, "predict_proba"):
        return estimator.predict_proba(X)
    return estimator.predict(X).reshape(-1, 1)


def _run(proto: onnx.ModelProto, feed: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feed)[0]


def _dims(vi: onnx.ValueInfoProto) -> list[object]:
    return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]


def _assert_contract(proto: onnx.ModelProto, n_features: int, n_outputs: int, elem: int) -> None:
    assert [i.name for i in proto.graph.input] == ["input"]
    assert proto.graph.input[0].type.tensor_type.elem_type == elem
    assert _dims(proto.graph.input[0]) == ["N", n_features]
    assert proto.graph.output[0].name == "scores"
    assert proto.graph.output[0].type.tensor_type.elem_type == elem
    assert _dims(proto.graph.output[0]) == ["N", n_outputs]
    assert any(op.domain in ("", "ai.onnx") for op in proto.opset_import)
    assert not any(n.op_type == "ZipMap" for n in proto.graph.node)


EXPECTED = {
    "logreg_zipmap": ("binary", (0, 1)),
    "forest_regressor": ("regression", None),
    "forest_string_labels": ("multiclass", ("cat", "dog", "eel")),
    "logreg_no_zipmap": ("multiclass", (0, 1, 2)),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_skl2onnx_file_loads_converts_and_matches(
    name: str, estimators: dict[str, object], X: np.ndarray, tmp_path: Path
) -> None:
    path = tmp_path / f"{name}.onnx"
    onnx.save_model(_onnx_for(name, estimators[name], X), path)

    loaded = load_model(path)
    task, classes = EXPECTED[name]
    assert (loaded.family, loaded.task, loaded.classes, loaded.n_features) == ("onnx", task, classes, N_FEATURES)
    assert loaded.estimator.startswith("ONNX(") and "skl2onnx" in loaded.estimator
    assert loaded.feature_names is None and loaded.source_bytes == path.stat().st_size
    native = loaded.predict_scores(X)
    np.testing.assert_allclose(native, _expected_scores(estimators[name], X), atol=1e-5)

    converted = convert(loaded)
    _assert_contract(converted, N_FEATURES, loaded.n_outputs, TensorProto.FLOAT)
    onnx.checker.check_model(converted)
    np.testing.assert_allclose(_run(converted, {"input": X}), native, rtol=0, atol=1e-6)


def test_from_object_serializes_the_proto(estimators: dict[str, object], X: np.ndarray) -> None:
    proto = _onnx_for("logreg_zipmap", estimators["logreg_zipmap"], X)
    loaded = model_from_object(proto)
    assert isinstance(loaded, LoadedModel) and loaded.family == "onnx" and loaded.task == "binary"
    assert loaded.source_bytes == len(proto.SerializeToString()) and loaded.format == "memory"


def test_converted_model_loads_back_as_the_same_task(
    estimators: dict[str, object], X: np.ndarray, tmp_path: Path
) -> None:
    for name in ("logreg_no_zipmap", "forest_regressor"):
        first = load_model(_onnx_for(name, estimators[name], X).SerializeToString())
        path = tmp_path / f"{name}-converted.onnx"
        onnx.save_model(convert(first), path)
        again = load_model(path)
        assert (again.task, again.classes) == (first.task, first.classes)
        np.testing.assert_allclose(again.predict_scores(X), first.predict_scores(X), atol=1e-6)


def test_fp64_applies_only_to_double_graphs(estimators: dict[str, object], X: np.ndarray) -> None:
    float_model = load_model(_onnx_for("logreg_zipmap", estimators["logreg_zipmap"], X).SerializeToString())
    applies, reason = supports_double(float_model)
    assert not applies and reason == "an ONNX input is used as given; fp64 needs the original model"

    X64 = X.astype(np.float64)
    double_model = load_model(to_onnx(LinearRegression().fit(X64, X64[:, 2]), X64[:1]).SerializeToString())
    assert supports_double(double_model)[0]
    native = double_model.predict_scores(X64)

    as_double = convert(double_model, double=True)
    _assert_contract(as_double, N_FEATURES, 1, TensorProto.DOUBLE)
    np.testing.assert_allclose(_run(as_double, {"input": X64}), native, rtol=0, atol=1e-12)

    as_float = convert(double_model, double=False)
    _assert_contract(as_float, N_FEATURES, 1, TensorProto.FLOAT)
    assert "Cast" in as_float.doc_string
    np.testing.assert_allclose(_run(as_float, {"input": X}), native, rtol=0, atol=1e-5)


@pytest.mark.parametrize("input_name", ["input", "X", "scores"])
def test_double_graph_keeps_working_whatever_its_input_is_called(input_name: str) -> None:
    """Regression: a float64 input already named ``input`` collided with the Cast that feeds it
    ("Graph must be in single static assignment (SSA) form, however 'input' has been used as output
    names multiple times")."""
    X, y = load_iris(return_X_y=True)
    estimator = LogisticRegression(max_iter=500).fit(X, y)
    proto = convert_sklearn(
        estimator, initial_types=[(input_name, DoubleTensorType([None, 4]))], options={"zipmap": False}
    )
    loaded = load_model(proto.SerializeToString(), name="iris.onnx")
    assert loaded.task == "multiclass"
    native = loaded.predict_scores(X)
    np.testing.assert_allclose(native, estimator.predict_proba(X), atol=1e-9)

    for double, elem, dtype, atol in ((False, TensorProto.FLOAT, np.float32, 1e-5),
                                      (True, TensorProto.DOUBLE, np.float64, 1e-12)):
        converted = convert(loaded, double=double)
        _assert_contract(converted, 4, 3, elem)
        onnx.checker.check_model(converted, full_check=True)
        np.testing.assert_allclose(_run(converted, {"input": X.astype(dtype)}), native, rtol=0, atol=atol)


def _colliding_names_model(output: str, output_shape: list[object]) -> onnx.ModelProto:
    """X -> MatMul -> "input" -> Add -> "scores" -> Mul -> Reshape -> ``output``: internal tensors named
    like the contract's input and output, and a "<output>_2d" tensor where a rank-1 output's Reshape
    would name its result."""
    w = numpy_helper.from_array(np.arange(1, 5, dtype=np.float32).reshape(4, 1), "W")
    b = numpy_helper.from_array(np.array([0.5], np.float32), "B")
    two = numpy_helper.from_array(np.array([2.0], np.float32), "two")
    first = "h" if output == "input" else "input"
    nodes = [
        helper.make_node("MatMul", ["X", "W"], [first]),
        helper.make_node("Add", [first, "B"], ["scores"]),
        helper.make_node("Identity", ["scores"], [f"{output}_2d"]),
        helper.make_node("Mul", [f"{output}_2d", "two"], ["Y1"]),
        helper.make_node("Reshape", ["Y1", "flat"], [output]),
    ]
    flat = numpy_helper.from_array(np.array([-1, 1][: len(output_shape)], np.int64), "flat")
    return _model(
        nodes,
        outputs=[helper.make_tensor_value_info(output, TensorProto.FLOAT, output_shape)],
        initializers=[w, b, two, flat],
    )


@pytest.mark.parametrize(
    ("output", "shape"),
    [("Y", ["N", 1]), ("Y", ["N"]), ("input", ["N", 1]), ("scores_2d", ["N"])],
    ids=["2d", "rank1", "output-called-input", "rank1-reshape-name-taken"],
)
def test_internal_tensors_named_like_the_contract_do_not_collide(output: str, shape: list[object]) -> None:
    model = load_model(_colliding_names_model(output, shape).SerializeToString(), name="m.onnx")
    assert model.task == "regression"
    X = np.random.RandomState(1).rand(7, 4).astype(np.float32)
    expected = ((X @ np.arange(1, 5, dtype=np.float32)) + 0.5) * 2
    np.testing.assert_allclose(model.predict_scores(X).reshape(-1), expected, rtol=1e-6)

    converted = convert(model)
    _assert_contract(converted, 4, 1, TensorProto.FLOAT)
    onnx.checker.check_model(converted, full_check=True)
    np.testing.assert_allclose(_run(converted, {"input": X}), expected.reshape(-1, 1), rtol=1e-6)


def test_subgraph_reading_the_input_by_name_survives_the_rename() -> None:
    model = load_model(_if_model(numpy_helper.from_array(np.ones((4, 1), np.float32), "W")).SerializeToString())
    X = np.random.RandomState(2).rand(5, 4).astype(np.float32)
    converted = convert(model)
    _assert_contract(converted, 4, 1, TensorProto.FLOAT)
    np.testing.assert_allclose(_run(converted, {"input": X}), X.sum(axis=1, keepdims=True), rtol=1e-6)


@pytest.mark.parametrize(("tensor_type", "dtype"), [(FloatTensorType, np.float32), (DoubleTensorType, np.float64)])
def test_fixed_batch_size_is_refused_with_the_fix(tensor_type: type, dtype: type, tmp_path: Path) -> None:
    """Regression: a [1, 10] input failed later, in ONNX Runtime, with a truncated INVALID_ARGUMENT."""
    X, y = load_diabetes(return_X_y=True)
    proto = convert_sklearn(LinearRegression().fit(X, y), initial_types=[("input", tensor_type([1, 10]))])
    path = _write(tmp_path, proto, "diabetes.onnx")
    with pytest.raises(UnsupportedModelError) as info:
        load_model(path)
    assert str(info.value) == f"{path}: " + (
        "the model's input 'input' has a fixed batch size of 1: re-export it with a dynamic "
        f"first dimension (skl2onnx: {tensor_type.__name__}([None, 10]))"
    )
    # The advice works: the same model with a dynamic first dimension loads and runs any batch size.
    dynamic = convert_sklearn(LinearRegression().fit(X, y), initial_types=[("input", tensor_type([None, 10]))])
    assert load_model(dynamic.SerializeToString()).predict_scores(X[:7].astype(dtype)).shape == (7, 1)


# -- hand-built graphs ------------------------------------------------------------------------------


def _model(
    nodes: list[onnx.NodeProto],
    *,
    inputs: list[onnx.ValueInfoProto] | None = None,
    outputs: list[onnx.ValueInfoProto] | None = None,
    initializers: list[onnx.TensorProto] | None = None,
    opsets: tuple[tuple[str, int], ...] = (("", 15),),
    **kwargs: object,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        inputs if inputs is not None else [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 4])],
        outputs if outputs is not None else [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", 1])],
        initializers or [],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets], **kwargs)


def _external(name: str, location: str) -> onnx.TensorProto:
    tensor = numpy_helper.from_array(np.ones((4, 1), np.float32), name)
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def _matmul_model(weights: onnx.TensorProto) -> onnx.ModelProto:
    return _model([helper.make_node("MatMul", ["X", "W"], ["Y"])], initializers=[weights])


def _if_model(branch_weights: onnx.TensorProto) -> onnx.ModelProto:
    y = [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", 1])]
    then_g = helper.make_graph([helper.make_node("MatMul", ["X", "W"], ["Y"])], "then", [], y, [branch_weights])
    else_g = helper.make_graph([helper.make_node("MatMul", ["X", "W0"], ["Y"])], "else", [], y)
    cond = helper.make_tensor("cond", TensorProto.BOOL, [], [True])
    w0 = numpy_helper.from_array(np.zeros((4, 1), np.float32), "W0")
    node = helper.make_node("If", ["cond"], ["Y"], then_branch=then_g, else_branch=else_g)
    return _model([node], initializers=[cond, w0])


def _constant_model(value: onnx.TensorProto) -> onnx.ModelProto:
    return _model([helper.make_node("Constant", [], ["W"], value=value), helper.make_node("MatMul", ["X", "W"], ["Y"])])


def _sparse_external_model() -> onnx.ModelProto:
    values = _external("W_values", "weights.bin")
    values.dims[:] = [1]
    indices = numpy_helper.from_array(np.array([0], np.int64), "W_indices")
    sparse = helper.make_sparse_tensor(values, indices, [4, 1])
    model = _model([helper.make_node("MatMul", ["X", "W_values"], ["Y"])])
    model.graph.sparse_initializer.append(sparse)
    return model


def _custom_domain_model() -> onnx.ModelProto:
    node = helper.make_node("Steal", ["X"], ["Y"], domain="com.evil")
    return _model([node], opsets=(("", 15), ("com.evil", 1)))


def _local_function_model() -> onnx.ModelProto:
    body = [helper.make_node("Identity", ["a"], ["b"])]
    function = helper.make_function("local.fn", "Twice", ["a"], ["b"], body, [helper.make_opsetid("", 15)])
    node = helper.make_node("Twice", ["X"], ["Y"], domain="local.fn")
    return _model([node], opsets=(("", 15), ("local.fn", 1)), functions=[function])


def _two_input_model() -> onnx.ModelProto:
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 4]) for n in ("A", "B")]
    return _model([helper.make_node("Add", ["A", "B"], ["Y"])], inputs=inputs,
                  outputs=[helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", 4])])


def _string_input_model() -> onnx.ModelProto:
    inputs = [helper.make_tensor_value_info("X", TensorProto.STRING, ["N", 4])]
    outputs = [helper.make_tensor_value_info("Y", TensorProto.STRING, ["N", 4])]
    return _model([helper.make_node("Identity", ["X"], ["Y"])], inputs=inputs, outputs=outputs)


def _input_shape_model(shape: list[object]) -> onnx.ModelProto:
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, shape)]
    outputs = [helper.make_tensor_value_info("Y", TensorProto.FLOAT, shape)]
    return _model([helper.make_node("Identity", ["X"], ["Y"])], inputs=inputs, outputs=outputs)


def _multi_output_regressor() -> onnx.ModelProto:
    w = numpy_helper.from_array(np.ones((4, 3), np.float32), "W")
    outputs = [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", 3])]
    return _model([helper.make_node("MatMul", ["X", "W"], ["Y"])], outputs=outputs, initializers=[w])


def _dangling_input_model() -> onnx.ModelProto:
    return _model([helper.make_node("MatMul", ["X", "nowhere"], ["Y"])])


def _lr_bytes() -> bytes:
    X = np.random.RandomState(0).rand(40, 4).astype(np.float32)
    return to_onnx(LogisticRegression().fit(X, (X[:, 0] > 0.5).astype(int)), X[:1]).SerializeToString()


# Each case writes its file(s) under a folder and returns the path to load.
HOSTILE: dict[str, tuple[Callable[[Path], Path], type[OptimizerError], str]] = {}


def _case(name: str, error: type[OptimizerError], needle: str):
    def register(build: Callable[[Path], Path]) -> Callable[[Path], Path]:
        HOSTILE[name] = (build, error, needle)
        return build

    return register


def _write(folder: Path, content: bytes | onnx.ModelProto, name: str = "model.onnx") -> Path:
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.SerializeToString())
    return path


@_case("truncated", ModelLoadError, "not a recognised model format")
def _truncated(folder: Path) -> Path:
    data = _lr_bytes()
    return _write(folder, data[: len(data) // 2])


@_case("random-bytes", ModelLoadError, "not a recognised model format")
def _random_bytes(folder: Path) -> Path:
    return _write(folder, random.Random(7).randbytes(4096))


@_case("json-without-learner", ModelLoadError, "not an XGBoost model")
def _json_not_xgboost(folder: Path) -> Path:
    return _write(folder, json.dumps({"version": [2, 1, 0], "trees": []}).encode(), "model.json")


@_case("json-with-fake-learner", ModelLoadError, "model.json")
def _json_fake_learner(folder: Path) -> Path:
    return _write(folder, json.dumps({"learner": {"gradient_booster": "nope"}}).encode(), "model.json")


@_case("external-data-etc-passwd", UnsafeModelError, "external data is not accepted")
def _external_passwd(folder: Path) -> Path:
    return _write(folder, _matmul_model(_external("W", "../../etc/passwd")))


@_case("external-data-beside-model", UnsafeModelError, "save_as_external_data=False")
def _external_beside(folder: Path) -> Path:
    (folder / "weights.bin").write_bytes(np.ones(4, np.float32).tobytes())
    return _write(folder, _matmul_model(_external("W", "weights.bin")))


@_case("external-data-ort-memory-address", UnsafeModelError, "external data")
def _external_memory(folder: Path) -> Path:
    return _write(folder, _matmul_model(_external("W", "*/_ORT_MEM_ADDR_/*")))


@_case("external-data-in-if-branch", UnsafeModelError, "'W' references external data")
def _external_if(folder: Path) -> Path:
    return _write(folder, _if_model(_external("W", "weights.bin")))


@_case("external-data-in-constant", UnsafeModelError, "external data")
def _external_constant(folder: Path) -> Path:
    return _write(folder, _constant_model(_external("W", "weights.bin")))


@_case("external-data-in-sparse-initializer", UnsafeModelError, "external data")
def _external_sparse(folder: Path) -> Path:
    return _write(folder, _sparse_external_model())


@_case("custom-domain-op", UnsafeModelError, "com.evil")
def _custom_domain(folder: Path) -> Path:
    return _write(folder, _custom_domain_model())


@_case("model-local-function", UnsafeModelError, "model-local functions ('local.fn.Twice')")
def _local_function(folder: Path) -> Path:
    return _write(folder, _local_function_model())


@_case("two-inputs", UnsupportedModelError, "has 2 inputs ('A', 'B')")
def _two_inputs(folder: Path) -> Path:
    return _write(folder, _two_input_model())


@_case("string-input", UnsupportedModelError, "holds string values")
def _string_input(folder: Path) -> Path:
    return _write(folder, _string_input_model())


@_case("rank-1-input", UnsupportedModelError, "has rank 1")
def _rank1(folder: Path) -> Path:
    return _write(folder, _input_shape_model(["N"]))


@_case("symbolic-feature-count", UnsupportedModelError, "no fixed feature count")
def _symbolic(folder: Path) -> Path:
    return _write(folder, _input_shape_model(["N", "F"]))


@_case("fixed-batch-size", UnsupportedModelError, "'X' has a fixed batch size of 1: re-export it")
def _fixed_batch(folder: Path) -> Path:
    return _write(folder, _input_shape_model([1, 4]))


@_case("fixed-batch-size-zero", UnsupportedModelError, "FloatTensorType([None, 4])")
def _fixed_batch_zero(folder: Path) -> Path:
    return _write(folder, _input_shape_model([0, 4]))


@_case("multi-output-regressor", UnsupportedModelError, "3 values per row")
def _multi_output(folder: Path) -> Path:
    return _write(folder, _multi_output_regressor())


@_case("multi-output-declared-as-one", UnsupportedModelError, "2 values per row")
def _multi_output_declared_as_one(folder: Path) -> Path:
    # Regression: the declared [N, 1] was trusted, so only the first of two targets was scored.
    w = numpy_helper.from_array(np.ones((4, 2), np.float32), "W")
    return _write(folder, _model([helper.make_node("MatMul", ["X", "W"], ["Y"])], initializers=[w]))


@_case("checker-failure", ModelLoadError, "is not a valid ONNX model")
def _dangling(folder: Path) -> Path:
    return _write(folder, _dangling_input_model())


@_case("zero-bytes", ModelLoadError, "empty")
def _zero_bytes(folder: Path) -> Path:
    return _write(folder, b"")


@_case("directory", ModelLoadError, "is a folder")
def _directory(folder: Path) -> Path:
    (folder / "model.onnx").mkdir()
    return folder / "model.onnx"


@_case("missing-path", ModelLoadError, "does not exist")
def _missing(folder: Path) -> Path:
    return folder / "nope.onnx"


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_file_is_refused_with_one_line(case: str, tmp_path: Path) -> None:
    build, error, needle = HOSTILE[case]
    with pytest.raises(OptimizerError) as info:
        load_model(build(tmp_path))
    message = str(info.value)
    assert isinstance(info.value, error), f"{type(info.value).__name__}: {message}"
    assert "\n" not in message
    assert needle in message


def test_safety_check_refuses_unknown_opset_domains_without_nodes() -> None:
    model = _model([helper.make_node("Identity", ["X"], ["Y"])], opsets=(("", 15), ("com.evil", 1)))
    with pytest.raises(UnsafeModelError, match="com.evil"):
        check_onnx_safe(model, name="m.onnx")


def test_safety_check_accepts_ort_contrib_ops() -> None:
    node = helper.make_node("FastGelu", ["X"], ["Y"], domain="com.microsoft")
    model = _model([node], outputs=[helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", 4])],
                   opsets=(("", 15), ("com.microsoft", 1)))
    check_onnx_safe(model, name="m.onnx")


def test_hostile_names_cannot_break_the_one_line_message(tmp_path: Path) -> None:
    node = helper.make_node("Steal", ["X"], ["Y"], domain="com.evil\nsecond line")
    path = _write(tmp_path, _model([node]), "bad\nname.onnx")
    with pytest.raises(UnsafeModelError) as info:
        load_model(path.read_bytes(), name="bad\nname.onnx")
    assert "\n" not in str(info.value) and "com.evil" in str(info.value)


def test_external_data_in_loop_body_is_refused() -> None:
    body_out = [helper.make_tensor_value_info(n, TensorProto.BOOL, []) for n in ("c_out",)]
    body = helper.make_graph(
        [helper.make_node("Identity", ["c"], ["c_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
        body_out,
        [_external("W", "weights.bin")],
    )
    loop = helper.make_node("Loop", ["", "cond"], [], body=body)
    model = _model([loop, helper.make_node("Identity", ["X"], ["Y"])])
    with pytest.raises(UnsafeModelError, match="external data"):
        check_onnx_safe(model, name="m.onnx")


def test_a_converted_file_reads_back_with_its_classes_and_feature_names(tmp_path):
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.neural_network import MLPClassifier

    from optimizer_core.converters import convert
    from optimizer_core.data import load_dataset
    from optimizer_core.models import load_model, model_from_object

    iris = load_iris(as_frame=True)
    X = iris.data
    y = iris.target.map(dict(enumerate(iris.target_names)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, random_state=0).fit(X, y)
    path = tmp_path / "mlp.onnx"
    path.write_bytes(convert(model_from_object(est)).SerializeToString())
    back = load_model(path)
    assert back.task == "multiclass"
    assert back.classes == ("setosa", "versicolor", "virginica")  # a bare scores tensor used to be refused
    assert back.feature_names == tuple(X.columns)
    reordered = X[X.columns[::-1]].assign(label=y)
    ds = load_dataset(reordered, back, target="label")  # matched by name, not by position
    np.testing.assert_array_equal(ds.X, X.to_numpy())
    assert pd.Series(est.predict(X)).equals(pd.Series(np.array(back.classes)[back.predict_scores(ds.X).argmax(1)]))


def _ir3_model_with_initializer_inputs() -> onnx.ModelProto:
    """Valid IR-3 / opset-7 file as old exporters wrote them: the weights are also listed as graph inputs."""
    w = numpy_helper.from_array(np.arange(1, 5, dtype=np.float32).reshape(4, 1) / 4, "W")
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 4]),
              helper.make_tensor_value_info("W", TensorProto.FLOAT, [4, 1])]
    model = _model([helper.make_node("MatMul", ["X", "W"], ["Y"])], inputs=inputs, initializers=[w],
                   opsets=(("", 7),))
    model.ir_version = 3
    onnx.checker.check_model(model)
    return model


def test_ir3_file_with_initializers_as_inputs_converts(X: np.ndarray, tmp_path: Path) -> None:
    """Regression: refused with "the converted model fails the ONNX checker: W in initializer but not in graph
    input" (the rewrite dropped the initializer inputs but kept IR version 3)."""
    loaded = load_model(_write(tmp_path, _ir3_model_with_initializer_inputs()))
    assert (loaded.task, loaded.n_features) == ("regression", N_FEATURES)
    converted = convert(loaded)
    _assert_contract(converted, N_FEATURES, 1, TensorProto.FLOAT)
    assert converted.ir_version >= 4
    expected = X @ (np.arange(1, 5, dtype=np.float32).reshape(4, 1) / 4)
    np.testing.assert_allclose(_run(converted, {"input": X}), expected, rtol=1e-6)


def test_onnx_runtime_load_failure_is_one_clean_line(tmp_path: Path) -> None:
    """Regression: ORT's C++ message came through cut inside its source location, without the cause."""
    X = np.random.RandomState(0).rand(60, N_FEATURES).astype(np.float32)
    proto = to_onnx(RandomForestClassifier(3, max_depth=2, random_state=0).fit(X, np.arange(60) % 3), X[:1])
    tree = next(n for n in proto.graph.node if n.op_type == "TreeEnsembleClassifier")
    tree.attribute.append(helper.make_attribute("base_values", [0.5]))  # 1 value for 3 classes: ORT refuses it
    with pytest.raises(ModelLoadError) as info:
        load_model(_write(tmp_path, proto))
    message = str(info.value)
    assert "\n" not in message
    assert "base_values should have 0 or 3 values" in message
    assert "onnxruntime_src" not in message and "[ONNXRuntimeError]" not in message
    assert message.endswith("export the model again with a current converter")
