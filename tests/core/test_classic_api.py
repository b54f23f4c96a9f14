"""Code written against the classic ``InferenceOptimizer`` runs as written (issue 14), with this project's honesty."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from sklearn.datasets import make_classification, make_regression

import optimizer_core
from optimizer_core import (
    ConfigError,
    InputError,
    OptimizeConfig,
    compat_bench,
    load_dataset,
    model_from_object,
    optimize,
)
from optimizer_core.compat import InferenceOptimizer
from optimizer_core.compat_paths import UNCHANGED_RECORD

ROOT = Path(__file__).resolve().parents[2]
CPU = "CPUExecutionProvider"
FP32_TOLERANCE = 1e-5
CALLS = 30  # timed calls per side in these tests (p99 is None below 460, with a note)

# The block, verbatim: the XGBoost version. The LightGBM and scikit-learn versions change only the
# import, the constructor and the model_type string.
CLASSIC_BLOCK = '''
from optimizer_core import InferenceOptimizer   # also importable as before from the package root
import xgboost as xgb

model = xgb.XGBClassifier()
model.fit(X_train, y_train)

optimizer = InferenceOptimizer(model_dir="data/models/onnx")        # relative paths are under model_dir

onnx_path = optimizer.convert_to_onnx(model, "xgboost", "model.onnx")              # returns the path
onnx_path = optimizer.convert_to_onnx(model, model_type="xgboost", output_path="model.onnx",
                                      input_shape=(None, 25))
quantized_path = optimizer.quantize_model(onnx_path, "model_int8.onnx")           # returns the path
results = optimizer.benchmark_inference(model, quantized_path, X_test)             # positional
results = optimizer.benchmark_inference(original_model=model, onnx_model_path=quantized_path,
                                        test_features=X_test)
print(f"Speedup: {results['speedup']:.2f}x")
stats = optimizer.benchmark_with_percentiles(model, quantized_path, X_test)        # p50/p95/p99 both sides

session = optimizer.load_onnx_model(quantized_path)             # also use_gpu=True
predictions = optimizer.predict_with_onnx(session, X_new)       # probabilities, as predict_proba

# production inference, later, in another process
optimizer = InferenceOptimizer(model_dir="data/models/onnx")
session = optimizer.load_onnx_model("model_int8.onnx")          # found in model_dir
for batch in batches:
    predictions = optimizer.predict_with_onnx(session, batch)
'''

FAMILIES = {
    "xgboost": ("import xgboost as xgb", "xgb.XGBClassifier()"),
    "lightgbm": ("import lightgbm as lgb", "lgb.LGBMClassifier(verbose=-1)"),
    "sklearn": ("from sklearn.pipeline import make_pipeline\n"
                "from sklearn.preprocessing import StandardScaler\n"
                "from sklearn.linear_model import LogisticRegression",
                "make_pipeline(StandardScaler(), LogisticRegression())"),
}

PRODUCTION = textwrap.dedent('''
    import numpy as np
    from optimizer_core import InferenceOptimizer
    optimizer = InferenceOptimizer(model_dir="data/models/onnx")
    session = optimizer.load_onnx_model("model_int8.onnx")
    np.save("production.npy", optimizer.predict_with_onnx(session, np.load("batch.npy")))
''')


def _block_for(family: str) -> str:
    if family == "xgboost":
        return CLASSIC_BLOCK
    import_line, constructor = FAMILIES[family]
    block = CLASSIC_BLOCK
    for old, new in (("import xgboost as xgb", import_line), ("xgb.XGBClassifier()", constructor),
                     ('"xgboost"', f'"{family}"')):
        assert old in block
        block = block.replace(old, new)
    return block


@pytest.fixture(scope="module")
def data() -> dict[str, object]:
    X, y = make_classification(n_samples=300, n_features=25, n_informative=8, random_state=0)
    return {"X_train": X[:200], "y_train": y[:200], "X_test": X[200:260], "X_new": X[260:],
            "batches": [X[200:216], X[216:232], X[232:233]]}


@pytest.fixture
def few_calls(monkeypatch):
    """Keep the block's benchmarks fast: few timed calls (the block passes no parameters)."""
    monkeypatch.setattr(compat_bench, "CLASSIC_CALLS", CALLS)
    monkeypatch.setattr(compat_bench, "PERCENTILE_CALLS", CALLS)
    monkeypatch.setattr(compat_bench, "PERCENTILE_BATCH_SIZES", (1, 64))


def _ours(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_classic_block_runs_as_written(family, data, few_calls, tmp_path, monkeypatch, capsys):
    pytest.importorskip(family if family != "sklearn" else "sklearn")
    monkeypatch.chdir(tmp_path)
    namespace = dict(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(compile(_block_for(family), f"classic block ({family})", "exec"), namespace)
    model, folder = namespace["model"], tmp_path / "data" / "models" / "onnx"

    # paths: absolute, under model_dir; the int8 model is the unchanged model (no int8 file is written)
    assert namespace["onnx_path"] == str(folder / "model.onnx")
    assert Path(namespace["onnx_path"]).is_file()
    assert namespace["quantized_path"] == namespace["onnx_path"]
    assert not (folder / "model_int8.onnx").exists()
    record = json.loads((folder / UNCHANGED_RECORD).read_text())
    assert record["model_int8.onnx"]["model"] == "model.onnx"

    # warnings: quantization said it did not apply, the production load said what it loaded instead
    messages = _ours(caught)
    assert any(m.startswith("int8 not applied, the model is returned unchanged") and "nothing was written to "
               "model_int8.onnx" in m for m in messages), messages
    assert any(m.startswith("model_int8.onnx was never written") and "loading model.onnx" in m
               for m in messages), messages
    assert not any("differs" in m for m in messages), messages  # the conversion verified

    # results: the speedup is a positive float that formats; both sides' stats; the drift of the same model
    results = namespace["results"]
    assert isinstance(results["speedup"], float) and results["speedup"] > 0 and math.isfinite(results["speedup"])
    assert f"Speedup: {results['speedup']:.2f}x" in capsys.readouterr().out
    assert results["batch_size"] == 1 and results["provider_used"] == CPU
    for side in ("original", "onnx"):
        stats = results[side]
        assert 0 < stats["calls"] <= CALLS  # fewer only if the sized budget ran out on a busy machine (then a note)
        assert 0 < stats["p50_ms"] <= stats["p95_ms"] and stats["mean_ms"] > 0 and stats["throughput_rows_per_s"] > 0
        assert stats["p99_ms"] is None and any("p99 not reported" in n for n in stats["notes"])
    assert results["speedup"] == pytest.approx(results["original"]["p50_us"] / results["onnx"]["p50_us"])
    assert results["original_time_ms"] == results["original"]["mean_ms"]
    assert 0 <= results["max_drift"] <= FP32_TOLERANCE and results["drift"]["label_flips"] == 0
    assert any(n.startswith("drift: the ONNX model differs from the original") for n in results["notes"])

    stats = namespace["stats"]
    assert sorted(stats) == [1, 64]
    for b, row in stats.items():
        assert row["batch_size"] == b and isinstance(row["speedup"], float) and row["speedup"] > 0
        assert row["original"]["p95_ms"] > 0 and row["onnx"]["p95_ms"] > 0
        assert row["onnx"]["p99_ms"] is None  # 30 calls: too few for an honest p99
    assert any(n.startswith("repeated rows: the data has 60 rows, fewer than batch size 64") for n in stats[64]["notes"])
    assert not any(n.startswith("repeated rows") for n in stats[1]["notes"])

    # predictions: probabilities exactly as predict_proba, in this process and in a fresh one
    last = data["batches"][-1]
    np.testing.assert_allclose(namespace["predictions"], model.predict_proba(last), atol=FP32_TOLERANCE)
    opt, session = namespace["optimizer"], namespace["session"]
    np.testing.assert_allclose(opt.predict_with_onnx(session, data["X_new"]), model.predict_proba(data["X_new"]),
                               atol=FP32_TOLERANCE)
    np.save(tmp_path / "batch.npy", data["X_test"])
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", PRODUCTION], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "model_int8.onnx was never written" in done.stderr  # the warning, in the other process too
    np.testing.assert_allclose(np.load(tmp_path / "production.npy"), model.predict_proba(data["X_test"]),
                               atol=FP32_TOLERANCE)


def test_the_class_is_the_same_from_the_package_root():
    assert optimizer_core.InferenceOptimizer is InferenceOptimizer


# --------------------------------------------------------------------------- regressors


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(n_samples=240, n_features=12, noise=5.0, random_state=0)
    return X[:180], y[:180], X[180:]


def _regressors():
    from sklearn.ensemble import RandomForestRegressor

    out = [pytest.param(("sklearn", lambda: RandomForestRegressor(n_estimators=10, max_depth=5, random_state=0)),
                        id="sklearn")]
    out.append(pytest.param(("lightgbm", lambda: __import__("lightgbm").LGBMRegressor(n_estimators=20, verbose=-1)),
                            id="lightgbm"))
    return out


@pytest.mark.parametrize("case", _regressors())
def test_regressors_work_the_same_way(case, regression, tmp_path):
    model_type, make = case
    X_train, y_train, X_test = regression
    model = make().fit(X_train, y_train)
    optimizer = InferenceOptimizer(model_dir=tmp_path / "models")
    onnx_path = optimizer.convert_to_onnx(model, model_type, "reg.onnx", input_shape=(None, 12))
    with pytest.warns(UserWarning, match="int8 not applied"):
        quantized_path = optimizer.quantize_model(onnx_path, "reg_int8.onnx")
    assert quantized_path == onnx_path == str(tmp_path / "models" / "reg.onnx")
    session = optimizer.load_onnx_model(quantized_path)
    predictions = optimizer.predict_with_onnx(session, X_test)
    assert predictions.shape == (len(X_test),)  # as model.predict: one value per row, never [N, 1]
    np.testing.assert_allclose(predictions, model.predict(X_test), rtol=FP32_TOLERANCE, atol=1e-3)
    results = optimizer.benchmark_inference(model, quantized_path, X_test, num_iterations=CALLS, budget_s=3)
    assert isinstance(results["speedup"], float) and results["speedup"] > 0
    assert results["drift_metric"] == "max_rel" and results["max_drift"] <= FP32_TOLERANCE
    assert results["drift"]["label_flips"] is None


# --------------------------------------------------------------------------- a precision that applies


@pytest.fixture(scope="module")
def mlp(data):
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(32,), max_iter=60,
                                                             random_state=0)).fit(data["X_train"], data["y_train"])


def test_int8_that_applies_writes_the_file_and_returns_its_path(mlp, data, tmp_path):
    optimizer = InferenceOptimizer(model_dir=tmp_path)
    onnx_path = optimizer.convert_to_onnx(mlp, "sklearn", "mlp.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        quantized_path = optimizer.quantize_model(onnx_path, "mlp_int8.onnx")
    assert quantized_path == str(tmp_path / "mlp_int8.onnx")
    ops = {n.op_type for n in onnx.load(quantized_path).graph.node}
    assert ops & {"MatMulInteger", "DynamicQuantizeLinear"}
    results = optimizer.benchmark_inference(mlp, quantized_path, data["X_test"], num_iterations=CALLS, budget_s=3)
    assert results["max_drift"] > 0  # int8 really changed the predictions, and the result says by how much
    probabilities = optimizer.predict_with_onnx(optimizer.load_onnx_model("mlp_int8.onnx"), data["X_new"])
    assert probabilities.shape == (len(data["X_new"]), 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_a_real_file_replaces_the_record_and_a_record_replaces_a_stale_file(mlp, data, tmp_path):
    from sklearn.tree import DecisionTreeClassifier

    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(data["X_train"], data["y_train"])
    optimizer = InferenceOptimizer(model_dir=tmp_path)
    (tmp_path / "q.onnx").write_bytes(b"an earlier int8 model")
    tree_path = optimizer.convert_to_onnx(tree, "sklearn", "tree.onnx")
    with pytest.warns(UserWarning, match=r"nothing was written to q\.onnx \(its earlier file was removed\)"):
        assert optimizer.quantize_model(tree_path, "q.onnx") == tree_path
    assert not (tmp_path / "q.onnx").exists()
    assert "q.onnx" in json.loads((tmp_path / UNCHANGED_RECORD).read_text())

    mlp_path = optimizer.convert_to_onnx(mlp, "sklearn", "mlp.onnx")
    assert optimizer.quantize_model(mlp_path, "q.onnx") == str(tmp_path / "q.onnx")
    assert not (tmp_path / UNCHANGED_RECORD).exists()  # its only entry is now a real file
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        optimizer.load_onnx_model("q.onnx")


def test_a_record_whose_model_changed_is_refused(data, tmp_path):
    from sklearn.tree import DecisionTreeClassifier

    optimizer = InferenceOptimizer(model_dir=tmp_path)
    shallow = DecisionTreeClassifier(max_depth=2, random_state=0).fit(data["X_train"], data["y_train"])
    deeper = DecisionTreeClassifier(max_depth=4, random_state=0).fit(data["X_train"], data["y_train"])
    path = optimizer.convert_to_onnx(shallow, "sklearn", "model.onnx")
    with pytest.warns(UserWarning):
        optimizer.quantize_model(path, "model_int8.onnx")
    optimizer.convert_to_onnx(deeper, "sklearn", "model.onnx")  # model.onnx is now another model
    with pytest.raises(InputError, match=r"model_int8\.onnx was never written .* has changed since") as e:
        InferenceOptimizer(model_dir=tmp_path).load_onnx_model("model_int8.onnx")
    assert "\n" not in str(e.value)
    (tmp_path / "model.onnx").unlink()
    with pytest.raises(InputError, match="is missing: convert the model again"):
        InferenceOptimizer(model_dir=tmp_path).load_onnx_model("model_int8.onnx")


# --------------------------------------------------------------------------- model_type, input_shape and arguments


@pytest.fixture(scope="module")
def xgb_model(data):
    xgboost = pytest.importorskip("xgboost")
    return xgboost.XGBClassifier(n_estimators=10, max_depth=3).fit(data["X_train"], data["y_train"])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"model_type": "catboost"}, r"unknown model_type 'catboost': choose one of xgboost, lightgbm, sklearn, onnx$"),
    ({"model_type": 3}, r"unknown model_type 3"),
    ({"model_type": "lightgbm"}, r"model_type='lightgbm' but the model is an XGBoost model \(XGBClassifier\): pass "
                                 r"model_type='xgboost'"),
    ({"model_type": "sklearn"}, r"but the model is an XGBoost model"),
    ({"model_type": "onnx"}, r"but the model is an XGBoost model"),
    ({"model_type": "xgboost", "input_shape": (None, 24)}, r"input_shape \(None, 24\) says 24 features but "
                                                           r"XGBClassifier takes 25: pass \(None, 25\)"),
    ({"model_type": "xgboost", "input_shape": 25}, r"input_shape is 25: pass \(None, 25\)"),
    ({"model_type": "xgboost", "input_shape": (None, 25.0)}, r"input_shape is \(None, 25.0\)"),
])
def test_model_type_and_input_shape_mismatches_are_one_line_input_errors(xgb_model, tmp_path, kwargs, message):
    optimizer = InferenceOptimizer(model_dir=tmp_path)
    with pytest.raises(InputError, match=message) as e:
        optimizer.convert_to_onnx(xgb_model, output_path="model.onnx", **kwargs)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "model.onnx").exists()


def test_model_type_is_case_insensitive_and_a_fixed_batch_is_said_to_stay_dynamic(xgb_model, tmp_path):
    optimizer = InferenceOptimizer(model_dir=tmp_path)
    with pytest.warns(UserWarning, match="batch dimension 1 is not fixed"):
        path = optimizer.convert_to_onnx(xgb_model, "XGBoost", "m.onnx", input_shape=(1, 25))
    assert Path(path).is_file()


def test_an_onnx_file_is_model_type_onnx(xgb_model, data, tmp_path):
    optimizer = InferenceOptimizer(model_dir=tmp_path)
    path = optimizer.convert_to_onnx(xgb_model, "xgboost", "model.onnx")
    again = optimizer.convert_to_onnx("model.onnx", "onnx", "again.onnx")  # a relative model path: in model_dir too
    session = optimizer.load_onnx_model(again)
    np.testing.assert_allclose(optimizer.predict_with_onnx(session, data["X_new"]),
                               xgb_model.predict_proba(data["X_new"]), atol=FP32_TOLERANCE)
    with pytest.raises(InputError, match="model_type='xgboost' but the model is an ONNX model"):
        optimizer.convert_to_onnx(path, "xgboost", "x.onnx")


def test_the_earlier_positional_output_path_gets_a_hint(xgb_model, tmp_path):
    with pytest.raises(InputError, match=r"the second argument is model_type: pass the file as output_path="):
        InferenceOptimizer(model_dir=tmp_path).convert_to_onnx(xgb_model, "model.onnx")


def test_sessions_and_missing_arguments_are_refused_in_one_line(xgb_model, data, tmp_path):
    import onnxruntime as ort

    optimizer = InferenceOptimizer(model_dir=tmp_path)
    path = optimizer.convert_to_onnx(xgb_model, "xgboost", "model.onnx")
    foreign = ort.InferenceSession(path, providers=[CPU])
    cases = [
        (lambda: optimizer.predict_with_onnx(foreign, data["X_new"]), "not created by InferenceOptimizer.load_onnx_model"),
        (lambda: optimizer.predict_with_onnx(data["X_new"], data["X_new"]), "not an ONNX Runtime session"),
        (lambda: optimizer.predict_with_onnx(optimizer.load_onnx_model(path)), r"no rows to predict"),
        (lambda: optimizer.benchmark_inference(xgb_model), "onnx_model_path and test_features are missing"),
        (lambda: optimizer.benchmark_inference(xgb_model, path), "test_features is missing"),
        (lambda: optimizer.benchmark_inference(data["X_test"], 50), "onnx_model_path is a int"),
        (lambda: optimizer.benchmark_inference(xgb_model, path, data["X_test"], 0), "at least 1"),
        (lambda: optimizer.benchmark_inference(xgb_model, path, data["X_test"][:, :20]), "20"),
        (lambda: optimizer.load_onnx_model("nowhere.onnx"), r"does not exist \(relative paths are under model_dir"),
        (lambda: InferenceOptimizer(model_dir=path), "is a file, not a folder"),
    ]
    for call, message in cases:
        with pytest.raises(InputError, match=message) as e:
            call()
        assert "\n" not in str(e.value), message


def test_a_session_from_another_optimizer_predicts_as_its_model(xgb_model, data, tmp_path):
    first = InferenceOptimizer(model_dir=tmp_path)
    session = first.load_onnx_model(first.convert_to_onnx(xgb_model, "xgboost", "model.onnx"))
    other = InferenceOptimizer()
    np.testing.assert_allclose(other.predict_with_onnx(session, data["X_new"]), xgb_model.predict_proba(data["X_new"]),
                               atol=FP32_TOLERANCE)
    # DataFrame columns are matched by name (the converter stores them in the file)
    frame = pd.DataFrame(data["X_new"], columns=[f"f{i}" for i in range(25)])
    assert other.predict_with_onnx(session, frame).shape == (len(frame), 2)


# --------------------------------------------------------------------------- model_dir


def test_model_dir_paths(xgb_model, tmp_path, monkeypatch):
    import os

    monkeypatch.chdir(tmp_path)
    InferenceOptimizer()
    InferenceOptimizer(xgb_model)
    assert list(tmp_path.iterdir()) == []  # no model_dir: nothing is created
    optimizer = InferenceOptimizer(model_dir="data/models/onnx")
    assert optimizer.model_dir == tmp_path / "data" / "models" / "onnx" and optimizer.model_dir.is_dir()
    # joined with the model_dir as written, or the attribute: the file lands once in model_dir, never doubled
    for output in ("data/models/onnx/a.onnx", os.path.join(optimizer.model_dir, "b.onnx"), "c.onnx"):
        written = optimizer.convert_to_onnx(xgb_model, "xgboost", output)
        assert Path(written).parent == optimizer.model_dir
    assert sorted(p.name for p in optimizer.model_dir.iterdir()) == ["a.onnx", "b.onnx", "c.onnx"]
    assert InferenceOptimizer().convert_to_onnx(xgb_model, "xgboost", "here.onnx") == str(tmp_path / "here.onnx")


# --------------------------------------------------------------------------- optimize(target=values)


def test_target_may_be_the_values(tmp_path):
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(n_samples=120, n_features=6, random_state=0)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)])
    model = LogisticRegression().fit(frame, y)
    loaded = model_from_object(model)
    series = pd.Series(y, name="label")
    for target in (series, y, list(y)):
        ds = load_dataset(frame, loaded, target=target)
        np.testing.assert_array_equal(ds.y.astype(int), y)
    with pytest.raises(InputError, match=r"^target has 119 values but the data has 120 rows: pass one per row$"):
        load_dataset(frame, loaded, target=series.iloc[:-1])
    with pytest.raises(InputError, match="not both"):
        load_dataset(frame, loaded, target=series, y=y)
    config = OptimizeConfig(precisions=("fp32",), batch_sizes=(1,), budget_s=0.5)
    report = optimize(model, frame, config, target=series)
    assert report.native.metrics and "accuracy" in report.native.metrics
    assert report.data["target"] == "y"
    with pytest.raises(InputError, match=r"^target has 60 values but the data has 120 rows") as e:
        optimize(model, frame, config, target=y[:60])
    assert "\n" not in str(e.value)
    frame["label"] = y
    assert optimize(model, frame, config, target="label").native.metrics  # a column name still works
    with pytest.raises(ConfigError, match=r"'target' is not a config field: pass it to optimize\(\) itself"):
        optimize(model, frame, {"target": "label"})
