"""The public Python API with in-memory inputs (one per family) and the InferenceOptimizer facade."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import onnx
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

import optimizer_core
from optimizer_core import InputError, OptimizeConfig, Report, optimize
from optimizer_core.compat import InferenceOptimizer

FAST = OptimizeConfig(precisions=("fp32",), batch_sizes=(1, 8), budget_s=1.0)
FP32_TOLERANCE = 1e-5
CPU = "CPUExecutionProvider"


# --------------------------------------------------------------------------- data and models


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X.iloc[:300], y.iloc[:300]


@pytest.fixture(scope="module")
def xgb_classifier(cancer):
    xgboost = pytest.importorskip("xgboost")
    X, y = cancer
    return xgboost.XGBClassifier(n_estimators=12, max_depth=3, random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def lgbm_regressor():
    lightgbm = pytest.importorskip("lightgbm")
    X, y = load_diabetes(return_X_y=True)
    model = lightgbm.LGBMRegressor(n_estimators=15, num_leaves=8, random_state=0, verbose=-1).fit(X, y)
    return model, X[:200], y[:200]


@pytest.fixture(scope="module")
def sklearn_pipeline():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True, as_frame=True)
    model = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))]).fit(X, y)
    return model, X, y


@pytest.fixture(scope="module")
def onnx_proto():
    """A skl2onnx export as users make them: ZipMap probabilities after the label."""
    from skl2onnx import to_onnx
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_iris(return_X_y=True)
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    proto = to_onnx(tree, X[:1].astype(np.float32), target_opset={"": 17, "ai.onnx.ml": 3})
    return proto, X.astype(np.float32)


def _check_report(report: Report) -> None:
    assert isinstance(report, Report)
    names = [v.name for v in report.variants]
    assert names[:1] == ["native"] and "fp32" in names
    fp32 = report.variant("fp32")
    assert fp32.applicable and fp32.drift is not None
    # float32 carries ~7 significant digits: regressors are held to a relative bound (a prediction of 150
    # is only representable to ~1e-5 in float32), classifiers' probabilities to an absolute one. This is
    # the pipeline's own verification rule.
    regression = report.model["task"] == "regression"
    drift = fp32.drift.max_rel if regression else fp32.drift.max_abs
    assert drift <= FP32_TOLERANCE, (drift, fp32.notes)
    assert any(n.startswith("verification: fp32 matches") for n in report.notes), report.notes
    for v in (report.native, fp32):
        assert [row.batch_size for row in v.latency] == [1, 8]
    assert fp32.artifact in report.artifacts


# --------------------------------------------------------------------------- public API


def test_public_names_are_lazy_and_complete():
    for name in ("optimize", "OptimizeConfig", "Report", "load_model", "model_from_object", "load_dataset",
                 "convert", "OptimizerError", "InputError"):
        assert name in dir(optimizer_core)
        assert getattr(optimizer_core, name) is not None
    with pytest.raises(AttributeError):
        optimizer_core.not_a_name  # noqa: B018


def test_optimize_xgboost_classifier_with_dataframe(xgb_classifier, cancer):
    X, y = cancer
    report = optimize(xgb_classifier, X, FAST, y=y)
    _check_report(report)
    assert report.model["family"] == "xgboost" and report.model["task"] == "binary"
    assert report.native.metrics and "accuracy" in report.native.metrics
    scores = report.variant("fp32")
    assert scores.metrics["accuracy"] == pytest.approx(report.native.metrics["accuracy"])


def test_optimize_lightgbm_regressor_with_numpy(lgbm_regressor):
    model, X, y = lgbm_regressor
    report = optimize(model, X, FAST, y=y)
    _check_report(report)
    assert report.model["family"] == "lightgbm" and report.model["task"] == "regression"
    assert report.variant("fp32").drift.label_flips is None
    import io

    per_row = pd.read_csv(io.BytesIO(report.artifacts["drift.csv"]))
    # the relative column is the metric a regressor's gate and recommendation use (DriftStats.max_rel)
    assert per_row["rel_diff_fp32"].max() == pytest.approx(report.variant("fp32").drift.max_rel, rel=1e-6)
    assert per_row["abs_diff_fp32"].max() == pytest.approx(report.variant("fp32").drift.max_abs, rel=1e-6)


def test_optimize_sklearn_pipeline_with_dataframe(sklearn_pipeline):
    model, X, y = sklearn_pipeline
    report = optimize(model, X, FAST, y=y)
    _check_report(report)
    assert report.model["family"] == "sklearn" and report.model["task"] == "multiclass"
    assert report.variant("fp32").drift.label_flips == 0


def test_optimize_onnx_model_proto(onnx_proto):
    proto, X = onnx_proto
    report = optimize(proto, X, FAST)
    _check_report(report)
    assert report.model["family"] == "onnx"


def test_optimize_reports_progress(sklearn_pipeline):
    model, X, y = sklearn_pipeline
    seen: list[tuple[str, float]] = []
    optimize(model, X, FAST, lambda stage, fraction: seen.append((stage, fraction)))
    fractions = [f for _, f in seen]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert all(0.0 <= f <= 1.0 for f in fractions)


# --------------------------------------------------------------------------- the facade


@pytest.fixture(scope="module")
def facade(xgb_classifier, tmp_path_factory):
    opt = InferenceOptimizer(xgb_classifier)
    path = tmp_path_factory.mktemp("facade") / "model.onnx"
    # with an output_path the classic form wins: the path is returned, the ModelProto is opt.onnx_model
    assert opt.convert_to_onnx(output_path=path) == str(path)
    proto = opt.onnx_model
    assert path.read_bytes() == proto.SerializeToString()
    opt.load_onnx_model(path)
    return opt, proto


def test_convert_to_onnx_follows_the_output_contract(facade):
    _, proto = facade
    assert isinstance(proto, onnx.ModelProto)
    assert [i.name for i in proto.graph.input] == ["input"]
    assert proto.graph.output[0].name == "scores"
    assert not any(n.op_type == "ZipMap" for n in proto.graph.node)


def test_predict_with_onnx_matches_predict_proba(facade, xgb_classifier, cancer):
    opt, _ = facade
    X, _ = cancer
    assert opt.provider_used == CPU
    scores = opt.predict_with_onnx(X)
    assert scores.shape == (len(X), 2)
    np.testing.assert_allclose(scores, xgb_classifier.predict_proba(X), atol=FP32_TOLERANCE)
    # columns are matched by name: a shuffled DataFrame gives the same scores
    shuffled = X[list(reversed(X.columns))]
    np.testing.assert_allclose(opt.predict_with_onnx(shuffled), scores, atol=0)
    # a 1-D array is one row
    assert opt.predict_with_onnx(X.to_numpy()[0]).shape == (1, 2)


def test_quantize_tree_ensemble_returns_unchanged_model_with_warning(facade):
    opt, proto = facade
    with pytest.warns(UserWarning, match=r"(?i)int8.*unchanged"):
        out = opt.quantize_model(proto, precision="int8")
    assert out.SerializeToString() == proto.SerializeToString()


def test_load_onnx_model_on_gpu_request_reports_the_provider_used(facade):
    opt, proto = facade
    # on this CPU-only install CUDA is missing; with onnxruntime-gpu the tree nodes still have no CUDA
    # kernel: either way the model runs on the CPU, and the facade says so
    other = InferenceOptimizer()
    with pytest.warns(UserWarning, match="use_gpu=True"):
        other.load_onnx_model(proto, use_gpu=True)
    assert other.provider_used == CPU
    assert other.session_info.provider_requested == "cuda"
    assert other.session_info.notes


def test_load_onnx_model_on_cpu_does_not_warn(facade):
    _, proto = facade
    other = InferenceOptimizer()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        other.load_onnx_model(proto)
    assert other.provider_used == CPU


def test_benchmark_inference_ms_and_us(facade, cancer):
    opt, _ = facade
    X, _ = cancer
    stats = opt.benchmark_inference(X, n_runs=50, batch_size=1)
    assert stats["calls"] == 50 and stats["batch_size"] == 1
    for key in ("mean", "p50", "p90", "p95"):
        assert stats[f"{key}_us"] > 0
        assert stats[f"{key}_ms"] == pytest.approx(stats[f"{key}_us"] / 1000)
    assert stats["p99_ms"] is None and stats["p99_us"] is None
    assert any("p99" in n and "insufficient samples" in n for n in stats["notes"])
    assert stats["throughput_rows_per_s"] > 0
    assert stats["provider_used"] == CPU


def test_benchmark_with_percentiles(facade, cancer):
    opt, _ = facade
    X, _ = cancer
    result = opt.benchmark_with_percentiles(X, n_runs=500, batch_sizes=(1, 4))
    assert sorted(result) == [1, 4]
    for b, stats in result.items():
        assert stats["batch_size"] == b and stats["calls"] == 500
        assert stats["p50_us"] <= stats["p90_us"] <= stats["p95_us"] <= stats["p99_us"]
        assert stats["p99_ms"] == pytest.approx(stats["p99_us"] / 1000)
        assert not any("p99 not reported" in n for n in stats["notes"])


def test_facade_needs_a_session_first(xgb_classifier, cancer):
    opt = InferenceOptimizer(xgb_classifier)
    with pytest.raises(InputError, match="load_onnx_model"):
        opt.predict_with_onnx(cancer[0])
    with pytest.raises(InputError, match="no model"):
        InferenceOptimizer().convert_to_onnx()


def test_facade_optimize_is_the_core_pipeline(sklearn_pipeline):
    model, X, y = sklearn_pipeline
    report = InferenceOptimizer(model).optimize(X, y=y, config=FAST, progress=False)
    _check_report(report)


def test_a_provider_that_fell_back_onto_cpu_is_not_quoted_next_to_cpu(sklearn_pipeline):
    import dataclasses

    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA is available here: nothing falls back")
    model, X, y = sklearn_pipeline
    config = dataclasses.replace(FAST, providers=("cpu", "cuda"))
    report = optimize(model, X, config, y=y)
    cuda = next(v for v in report.variants if v.name.endswith("@cuda"))
    assert cuda.fell_back
    assert not any("@cuda" in line for line in report.explanations)
    assert "@cuda" not in " ".join(report.recommendation.by_batch_size.values())


def test_quantize_model_starts_each_precision_from_the_converted_model(cancer):
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = cancer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(32,), max_iter=30, random_state=0))
        model.fit(X, y)
    facade = InferenceOptimizer()
    facade.convert_to_onnx(model)
    int8 = facade.quantize_model(None, precision="int8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # fp16 must apply: it starts from fp32, not from the int8 graph
        fp16 = facade.quantize_model(None, precision="fp16")
    ops = {n.op_type for n in fp16.graph.node}
    assert "MatMulInteger" not in ops and "DynamicQuantizeLinear" not in ops
    assert {n.op_type for n in int8.graph.node} & {"MatMulInteger", "DynamicQuantizeLinear"}


def test_convert_stays_the_documented_function_after_the_converters_are_imported():
    import subprocess
    import sys

    code = ("import optimizer_core.pipeline\n"  # imports the converter package, as optimize() does
            "from optimizer_core import convert\n"
            "assert callable(convert) and convert.__name__ == 'convert', convert\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_an_onnx_model_is_timed_as_native_with_the_variants_session_settings(onnx_proto, monkeypatch):
    """Regression: the native ONNX session kept ORT's spinning on while fp32 had it off, so the same graph
    read 2x slower as 'fp32' and the recommendation picked 'native' for a settings difference."""
    import optimizer_core.runtime as runtime

    proto, X = onnx_proto
    made = []
    real = runtime.create_session

    def recording(model_bytes, settings):
        made.append(settings)
        return real(model_bytes, settings)

    monkeypatch.setattr(runtime, "create_session", recording)
    report = optimize(proto, X, replace(FAST, threads=1))
    assert len(made) == 1  # the native timing session (the pipeline holds its own reference for the variants)
    native = made[0].to_dict()
    fp32 = report.variant("fp32").session_settings
    for key in ("intra_op_threads", "allow_spinning", "graph_optimization", "execution_mode"):
        assert native[key] == fp32[key], key
    assert any("variants' settings" in note for note in report.variant("native").notes)


def _log_regressor(n_features: int) -> onnx.ModelProto:
    """y = log(x . 1): NaN wherever the row sums below zero, the way a real model can misbehave off its range."""
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.ones((n_features, 1), dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["s"]), helper.make_node("Log", ["s"], ["y"])], "log_reg",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])], [weights])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_nan_predictions_are_named_and_never_crash_the_summary_or_a_json_round_trip():
    """Regression: a model predicting NaN on some rows crashed the CLI summary and the dashboard (an int8
    variant's infinite drift came back from JSON as None) or read as 'matches within 0'."""
    from optimizer_core.history import summarize
    from optimizer_core.summary import headline
    from optimizer_core.views.cli_table import format_summary

    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 4)).astype(np.float32)
    X[::3] = np.abs(X[::3])  # some rows with a positive sum, so not every prediction is NaN
    report = optimize(_log_regressor(4), X, replace(FAST, precisions=("fp32", "int8"), batch_sizes=(1,)))
    assert any("predicts NaN or infinity on" in n for n in report.notes)
    verification = next(n for n in report.notes if n.startswith("verification: fp32"))
    assert "where the native model predicts a number" in verification  # never "within 0 on every row"
    back = Report.from_json(report.to_json())
    for r in (report, back):
        format_summary(r)
        headline(r)
        summarize(r, model_name="log.onnx")
    # the unbounded-drift round trip itself: test_html_report's NaN-where-native-is-not test


def test_convert_to_onnx_warns_like_the_cli_when_the_self_check_disagrees(xgb_classifier, monkeypatch):
    import optimizer_core.converters.verify as verify

    monkeypatch.setattr(verify, "verify_conversion", lambda model, proto: ["the ONNX file differs by up to 0.15"])
    with pytest.warns(UserWarning, match="differs by up to 0.15"):
        InferenceOptimizer(xgb_classifier).convert_to_onnx()


def test_a_batch_larger_than_the_data_is_named_in_the_run_notes(onnx_proto):
    proto, X = onnx_proto
    report = optimize(proto, X[:10], replace(FAST, batch_sizes=(1, 64)))
    assert any(n.startswith("repeated rows: the data has 10 rows, fewer than batch size 64") for n in report.notes)


def test_odd_api_arguments_are_one_line_errors_before_any_work(onnx_proto):
    """Regression: a config dict, progress=5, StringIO or sparse data and an unknown provider raised raw
    TypeErrors, or failed only deep inside the run."""
    import io

    import scipy.sparse

    from optimizer_core.errors import ConfigError, InputError

    proto, X = onnx_proto
    report = optimize(proto, X, {"precisions": ("fp32",), "batch_sizes": (1,), "budget_s": 0.5})
    assert report.config["budget_s"] == 0.5
    with pytest.raises(ConfigError, match="unknown config field 'budget'"):
        optimize(proto, X, {"budget": 1})
    with pytest.raises(ConfigError, match="pass a function progress"):
        optimize(proto, X, FAST, 5)
    with pytest.raises(ConfigError, match="unknown provider 'bogus'"):
        optimize(proto, X, replace(FAST, providers=("bogus",)))
    for data in (io.StringIO("a,b\n1,2\n"), scipy.sparse.csr_matrix(X)):
        with pytest.raises(InputError, match="pass a CSV path or its bytes, a pandas DataFrame"):
            optimize(proto, data, FAST)


def test_int8_static_in_a_run_says_its_drift_is_partly_in_sample():
    """The run calibrates int8-static on the CSV it measures drift on; the API's own calibration rows do not."""
    from sklearn.neural_network import MLPClassifier

    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, random_state=0).fit(X, y)
    report = optimize(model, X, replace(FAST, precisions=("fp32", "int8-static"), batch_sizes=(1,)))
    variant = report.variant("int8-static")
    assert variant.applicable, variant.notes
    assert any("it is in-sample" in n for n in variant.notes)
