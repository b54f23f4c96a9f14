"""Precision variants: what each one changes on a neural network and on a tree model, measured."""

from __future__ import annotations

import types
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import optimizer_core.converters as convert_registry
from optimizer_core.converters import RawConversion
from optimizer_core.converters.contract import find_scores_tensor, normalize
from optimizer_core.drift import compute_drift
from optimizer_core.errors import ConfigError
from optimizer_core.models.base import LoadedModel
from optimizer_core.variants import PRECISIONS, applicability, build_variant
from optimizer_core.variants.base import PrecisionVariant

N_FEATURES = 20


def _to_onnx(est, X: np.ndarray, n_outputs: int, *, regression: bool = False) -> onnx.ModelProto:
    import skl2onnx

    raw = skl2onnx.to_onnx(est, X[:1], options={"zipmap": False} if not regression else None)
    scores = find_scores_tensor(raw.graph, regression=regression)
    return normalize(raw, scores_tensor=scores, n_features=X.shape[1], n_outputs=n_outputs)


def _scores(model: onnx.ModelProto, X: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    dtype = np.float64 if session.get_inputs()[0].type == "tensor(double)" else np.float32
    return session.run(["scores"], {"input": X.astype(dtype)})[0]


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=800, n_features=N_FEATURES, n_informative=10, random_state=0)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def mlp(data):
    X, y = data
    est = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(256, 256), max_iter=8, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    return est, _to_onnx(est, X, 2)


@pytest.fixture(scope="module")
def forest(data):
    X, y = data
    est = RandomForestClassifier(n_estimators=10, max_depth=5, random_state=0).fit(X, y)
    return est, _to_onnx(est, X, 2)


@pytest.fixture(scope="module")
def xgb_model(data):
    xgboost = pytest.importorskip("xgboost")
    onnxmltools = pytest.importorskip("onnxmltools")
    from onnxmltools.convert.common.data_types import FloatTensorType

    X, y = data
    est = xgboost.XGBClassifier(n_estimators=10, max_depth=3).fit(X, y)
    raw = onnxmltools.convert_xgboost(est, initial_types=[("input", FloatTensorType([None, N_FEATURES]))],
                                      target_opset=15)
    scores = find_scores_tensor(raw.graph, regression=False)
    return est, normalize(raw, scores_tensor=scores, n_features=N_FEATURES, n_outputs=2)


# --------------------------------------------------------------------------- MLP: everything applies

def test_fp32_is_the_verified_model_unchanged(mlp):
    _, fp32 = mlp
    variant = build_variant("fp32", fp32, loaded=None)
    assert variant.applicable and variant.model is fp32 and variant.nodes_changed == ()


def test_mlp_int8_is_much_smaller_and_its_drift_is_measured(mlp, data):
    est, fp32 = mlp
    X, _ = data
    variant = build_variant("int8", fp32, loaded=None)
    assert variant.applicable and variant.model is not None
    fp32_bytes = len(fp32.SerializeToString())
    int8_bytes = len(variant.model.SerializeToString())
    assert fp32_bytes / int8_bytes >= 3.0, (fp32_bytes, int8_bytes)
    assert any(n.startswith("MatMulInteger:") for n in variant.nodes_changed)
    assert any(n.startswith("DynamicQuantizeLinear:") for n in variant.nodes_changed)
    assert variant.config["method"] == "dynamic" and variant.config["weight_type"] == "int8"
    assert isinstance(variant.config["per_channel"], bool)
    assert any("smaller" in n for n in variant.notes)

    drift = compute_drift(est.predict_proba(X), _scores(variant.model, X), "binary")
    assert np.isfinite(drift.max_abs) and np.isfinite(drift.mean_abs) and np.isfinite(drift.label_flip_rate)
    assert drift.max_abs > 0  # quantization changes numbers; honest reporting starts with measuring it
    assert 0.0 <= drift.label_flip_rate <= 1.0
    fp32_drift = compute_drift(est.predict_proba(X), _scores(fp32, X), "binary")
    assert drift.max_abs > fp32_drift.max_abs


def test_mlp_fp16_runs_with_float32_io_and_halves_the_size(mlp, data):
    est, fp32 = mlp
    X, _ = data
    variant = build_variant("fp16", fp32, loaded=None)
    assert variant.applicable and variant.model is not None
    session = ort.InferenceSession(variant.model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(float)"
    assert session.get_outputs()[0].type == "tensor(float)"
    assert any(n.startswith("MatMul:") for n in variant.nodes_changed)
    assert not any(n.startswith(("Cast:", "Scaler:")) for n in variant.nodes_changed)
    assert len(variant.model.SerializeToString()) < 0.6 * len(fp32.SerializeToString())
    assert "Scaler" in variant.config["op_block_list"]
    onnx.checker.check_model(variant.model, full_check=True)  # the float32-input Cast used to come last
    drift = compute_drift(est.predict_proba(X), _scores(variant.model, X), "binary")
    assert 0 < drift.max_abs < 0.01


def test_fp16_does_not_round_raw_features_before_a_float32_scaler(data):
    """Features far from zero lose their fraction in float16; the Scaler must see them in float32."""
    X, y = data
    X = X + 1000.0
    est = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,), max_iter=30, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    variant = build_variant("fp16", _to_onnx(est, X, 2), loaded=None)
    assert any("round trip" in n for n in variant.notes)
    onnx.checker.check_model(variant.model, full_check=True)  # keep_io_types appended the input Cast last
    drift = compute_drift(est.predict_proba(X), _scores(variant.model, X), "binary")
    assert drift.max_abs < 0.01  # rounding the raw features to float16 gives ~0.1 here


def test_int8_static_calibrates_on_sampled_rows_reproducibly(mlp, data):
    est, fp32 = mlp
    X, _ = data
    first = build_variant("int8-static", fp32, loaded=None, calibration=X, calibration_rows=64, seed=3)
    again = build_variant("int8-static", fp32, loaded=None, calibration=X, calibration_rows=64, seed=3)
    assert first.applicable and first.model is not None
    assert first.config["calibration_rows"] == 64 and first.config["seed"] == 3
    assert first.config["format"] == "QDQ"
    assert any("calibrated on 64 of 800 rows" in n for n in first.notes)
    assert not any("in-sample" in n for n in first.notes)  # calibration rows of its own: nothing is claimed
    assert first.model.SerializeToString() == again.model.SerializeToString()
    assert any(n.startswith("QuantizeLinear:") for n in first.nodes_changed)
    assert len(fp32.SerializeToString()) / len(first.model.SerializeToString()) >= 3.0
    drift = compute_drift(est.predict_proba(X), _scores(first.model, X), "binary")
    assert np.isfinite(drift.max_abs) and drift.max_abs > 0


def test_int8_static_leaves_out_rows_with_missing_values(mlp, data):
    _, fp32 = mlp
    X, _ = data
    X = X[:100].copy()
    X[:10, 3] = np.nan
    variant = build_variant("int8-static", fp32, loaded=None, calibration=X, calibration_rows=512)
    assert variant.applicable
    assert variant.config["rows_dropped_non_finite"] == 10 and variant.config["calibration_rows"] == 90
    assert any("10 row(s) with missing or infinite values were left out" in n for n in variant.notes)


@pytest.mark.parametrize("calibration, reason", [
    (None, "needs calibration rows"),
    (np.full((5, N_FEATURES), np.nan, dtype=np.float32), "every calibration row"),
    (np.zeros((5, 3), dtype=np.float32), "takes 20 features"),
])
def test_int8_static_without_usable_calibration_is_not_applicable(mlp, calibration, reason):
    _, fp32 = mlp
    variant = build_variant("int8-static", fp32, loaded=None, calibration=calibration)
    assert not variant.applicable and variant.model is None
    assert reason in variant.notes[0]


# --------------------------------------------------------------------------- trees: no int8; fp16 is the tensor graph

@pytest.mark.parametrize("fixture", ["forest", "xgb_model"])
@pytest.mark.parametrize("precision", ["int8", "int8-static"])
def test_tree_models_are_not_quantized(request, data, fixture, precision):
    _, fp32 = request.getfixturevalue(fixture)
    X, _ = data
    ok, reason = applicability(precision, fp32, None)
    assert not ok and "TreeEnsembleClassifier" in reason and "no size change is claimed" in reason
    assert "tree splits have no int8 form" in reason
    variant = build_variant(precision, fp32, loaded=None, calibration=X)
    assert isinstance(variant, PrecisionVariant)
    assert not variant.applicable and variant.model is None and variant.size_bytes is None
    assert "TreeEnsembleClassifier (ai.onnx.ml)" in variant.notes[0]


@pytest.mark.parametrize("fixture", ["forest", "xgb_model"])
def test_fp16_of_a_tree_model_is_the_float16_tensor_graph(request, data, fixture):
    est, fp32 = request.getfixturevalue(fixture)
    X, _ = data
    ok, reason = applicability("fp16", fp32, None)
    assert ok and reason.startswith("float16 tensor graph of the trees")
    variant = build_variant("fp16", fp32, loaded=None)
    assert variant.applicable and variant.graph == "tensor" and variant.config["dtype"] == "float16"
    assert not any(n.domain == "ai.onnx.ml" for n in variant.model.graph.node)
    assert any(i.data_type == TensorProto.FLOAT16 for i in variant.model.graph.initializer)
    assert any("rounded to float16" in note for note in variant.notes)
    assert variant.size_bytes < fp32.ByteSize()
    drift = compute_drift(est.predict_proba(X), _scores(variant.model, X), "binary")
    assert 0 < drift.max_abs < 0.5  # measured, not zero: thresholds and leaves were rounded


def test_applicability_for_the_mlp_names_the_ops(mlp):
    _, fp32 = mlp
    assert applicability("fp32", fp32, None)[0]
    ok, reason = applicability("int8", fp32, None)
    assert ok and "3 MatMul" in reason
    assert applicability("fp16", fp32, None)[0] and applicability("int8-static", fp32, None)[0]


def _gemm_model(duplicate_opset: bool) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    w = helper.make_tensor("W", TensorProto.FLOAT, [4, 64], rng.normal(size=256).tolist())
    b = helper.make_tensor("B", TensorProto.FLOAT, [64], rng.normal(size=64).tolist())
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["input", "W", "B"], ["scores"], name="gemm")], "gemm",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 64])], initializer=[w, b])
    opsets = [helper.make_opsetid("", 17)] * (2 if duplicate_opset else 1)  # skl2onnx emits duplicates
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model


def test_gemm_is_left_to_static_quantization():
    model = _gemm_model(duplicate_opset=True)
    ok, reason = applicability("int8", model, None)
    assert not ok and "int8-static quantizes Gemm" in reason
    X = np.random.default_rng(1).normal(size=(50, 4)).astype(np.float32)
    variant = build_variant("int8-static", model, loaded=None, calibration=X, calibration_rows=32)
    assert variant.applicable, variant.notes
    assert _scores(variant.model, X).shape == (50, 64)


# --------------------------------------------------------------------------- fp64

def _loaded(est, task: str, n_features: int, classes=None) -> LoadedModel:
    predictor = est.predict_proba if task != "regression" else est.predict
    return LoadedModel(family="sklearn", estimator=type(est).__name__, task=task, n_features=n_features,
                       feature_names=None, classes=classes, format="memory", source_bytes=0, source_sha256="",
                       native=est, predictor=predictor)


def _fake_converter(monkeypatch, *, double_ok: bool):
    """A stand-in family converter (skl2onnx directly) so fp64 is tested whatever the real one does."""
    import skl2onnx

    def to_onnx(model, *, double):
        dtype = np.float64 if double else np.float32
        raw = skl2onnx.to_onnx(model.native, np.zeros((1, model.n_features), dtype=dtype))
        return RawConversion(raw, find_scores_tensor(raw.graph, regression=True))

    def supports_double(model):
        return (True, "") if double_ok else (False, "this estimator only converts to float32 here")

    fake = types.SimpleNamespace(to_onnx=to_onnx, supports_double=supports_double)
    monkeypatch.setattr(convert_registry, "_module", lambda model: fake)


def test_fp64_has_double_input_and_drifts_no_more_than_fp32(monkeypatch):
    X, y = make_regression(n_samples=400, n_features=8, random_state=0)
    X, y = X.astype(np.float32), y * 1000
    est = LinearRegression().fit(X, y)
    loaded = _loaded(est, "regression", 8)
    _fake_converter(monkeypatch, double_ok=True)
    fp32 = convert_registry.convert(loaded)
    variant = build_variant("fp64", fp32, loaded=loaded)
    assert variant.applicable and variant.model is not None
    assert variant.model.graph.input[0].type.tensor_type.elem_type == TensorProto.DOUBLE
    assert variant.config["dtype"] == "float64"
    native = est.predict(X)
    drift64 = compute_drift(native, _scores(variant.model, X), "regression")
    drift32 = compute_drift(native, _scores(fp32, X), "regression")
    assert drift64.max_abs <= drift32.max_abs
    assert variant.graph is None and variant.to_dict()["graph"] is None  # no tree ensemble
    assert any("float64 input, arithmetic and scores" in n for n in variant.notes)
    assert any("twice the input bytes" in n for n in variant.notes)


def test_fp64_not_supported_says_why(monkeypatch, mlp):
    _, fp32 = mlp
    _fake_converter(monkeypatch, double_ok=False)
    loaded = _loaded(LinearRegression(), "regression", N_FEATURES)
    assert applicability("fp64", fp32, loaded) == (False, "this estimator only converts to float32 here")
    variant = build_variant("fp64", fp32, loaded=loaded)
    assert not variant.applicable and variant.model is None
    assert variant.notes == ("this estimator only converts to float32 here",)
    assert not build_variant("fp64", fp32, loaded=None).applicable


def test_fp64_with_the_real_sklearn_converter(data):
    pytest.importorskip("optimizer_core.converters.sklearn")
    from optimizer_core.converters import convert, supports_double
    from optimizer_core.models import model_from_object

    X, y = data
    est = RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0).fit(X, y)
    loaded = model_from_object(est)
    fp32 = convert(loaded)
    ok, reason = supports_double(loaded)
    variant = build_variant("fp64", fp32, loaded=loaded)
    if not ok:
        assert not variant.applicable and variant.notes == (reason,)
        return
    assert variant.applicable, variant.notes
    assert variant.model.graph.input[0].type.tensor_type.elem_type == TensorProto.DOUBLE
    native = est.predict_proba(X)
    drift64 = compute_drift(native, _scores(variant.model, X), "binary")
    drift32 = compute_drift(native, _scores(fp32, X), "binary")
    assert drift64.max_abs <= drift32.max_abs


def test_unknown_precision_is_a_config_error(mlp):
    _, fp32 = mlp
    assert PRECISIONS == ("fp32", "fp64", "fp16", "int8", "int8-static", "tensor")
    with pytest.raises(ConfigError, match="unknown precision 'int4'"):
        build_variant("int4", fp32, loaded=None)
    with pytest.raises(ConfigError):
        applicability("bf16", fp32, None)


def test_quantization_leaves_no_temporary_files(mlp, data, tmp_path, monkeypatch):
    import tempfile

    _, fp32 = mlp
    X, _ = data
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    build_variant("int8", fp32, loaded=None)
    build_variant("int8-static", fp32, loaded=None, calibration=X, calibration_rows=32)
    assert list(tmp_path.iterdir()) == []


def test_fp16_of_a_converted_mlp_passes_the_onnx_checker(data):
    from optimizer_core.converters import convert
    from optimizer_core.models import model_from_object

    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPClassifier(hidden_layer_sizes=(16, 16), max_iter=30, random_state=0).fit(X, y)
    loaded = model_from_object(est)
    variant = build_variant("fp16", convert(loaded), loaded=loaded)
    assert variant.applicable
    onnx.checker.check_model(variant.model, full_check=True)  # keep_io_types appended the input Cast last


def _chain(n: int, order: list[int]) -> onnx.GraphProto:
    """x -> Relu -> Relu ... (n nodes), with the nodes stored in ``order``."""
    nodes = [helper.make_node("Relu", ["x" if i == 0 else f"t{i - 1}"], [f"t{i}"], name=f"n{i}") for i in range(n)]
    return helper.make_graph([nodes[i] for i in order], "chain",
                             [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
                             [helper.make_tensor_value_info(f"t{n - 1}", TensorProto.FLOAT, [None, 3])])


def test_topological_sort_moves_producers_first_and_keeps_a_valid_order_untouched():
    from optimizer_core.variants.fp16 import _sort_topologically

    graph = _chain(4, [3, 0, 2, 1])
    _sort_topologically(graph)
    assert [n.name for n in graph.node] == ["n0", "n1", "n2", "n3"]
    onnx.checker.check_model(helper.make_model(graph))
    already = _chain(3, [0, 1, 2])
    first = already.node[0]
    _sort_topologically(already)
    assert already.node[0] is first  # nothing copied when the order is already valid


def test_topological_sort_leaves_a_cycle_or_a_dangling_input_as_it_is():
    from optimizer_core.variants.fp16 import _sort_topologically

    cyclic = _chain(3, [2, 1, 0])
    cyclic.node[2].input[0] = "t2"  # n0 now reads n2's output, which needs n0
    dangling = _chain(3, [2, 1, 0])
    dangling.node[0].input[0] = "nobody_makes_this"
    for graph in (cyclic, dangling):
        before = [n.name for n in graph.node]
        _sort_topologically(graph)
        assert [n.name for n in graph.node] == before


def test_topological_sort_handles_long_graphs():
    from optimizer_core.variants.fp16 import _sort_topologically

    n = 20_000  # the earlier wave-by-wave sort was quadratic: minutes on a graph like this
    graph = _chain(n, list(reversed(range(n))))
    _sort_topologically(graph)
    assert [n.name for n in graph.node[:3]] == ["n0", "n1", "n2"]
    assert graph.node[-1].name == f"n{n - 1}"
