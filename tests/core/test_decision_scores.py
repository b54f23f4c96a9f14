"""Classifiers whose scores are not probabilities (SVMs, linear models): read as decision scores, their
columns mapped so that the argmax is the model's own class, through the ONNX-file path and the skops path.

Regression: a binary SVC exported by skl2onnx with default options has a ``label`` output and decision
values (ZipMap'd as "probabilities") in the order ``[d, -d]``; the tool kept them as probabilities, the
argmax named the opposite class to the file's label on every row, and the report showed drift 0, 0 flips,
ROC AUC 0.0 and a log loss on raw scores.
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from collections.abc import Callable

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import skops.io as sio
from onnx import TensorProto, helper
from skl2onnx import to_onnx
from sklearn.datasets import load_iris, make_classification
from sklearn.linear_model import SGDClassifier
from sklearn.svm import SVC, LinearSVC

from optimizer_core import drift
from optimizer_core.cli import main
from optimizer_core.config import OptimizeConfig
from optimizer_core.converters import convert
from optimizer_core.converters.verify import verify_conversion
from optimizer_core.errors import UnsupportedModelError
from optimizer_core.models import LoadedModel, load_model
from optimizer_core.pipeline import optimize, predict_native

Factory = Callable[[], object]
ESTIMATORS: dict[str, tuple[Factory, str]] = {
    "svc-binary": (lambda: SVC(kernel="rbf"), "binary"),
    "linear-svc-binary": (lambda: LinearSVC(), "binary"),
    "sgd-hinge-binary": (lambda: SGDClassifier(loss="hinge", random_state=0), "binary"),
    "svc-multiclass": (lambda: SVC(kernel="rbf", break_ties=True), "multiclass"),
    "linear-svc-multiclass": (lambda: LinearSVC(), "multiclass"),
}


@pytest.fixture(scope="module")
def datasets() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    X, y = make_classification(300, 5, n_informative=3, random_state=0)
    Xi, yi = load_iris(return_X_y=True)
    Xi = (Xi - Xi.mean(axis=0)) / Xi.std(axis=0)  # scaled, as an SVC wants its input
    return {"binary": (X.astype(np.float32), y), "multiclass": (Xi.astype(np.float32), yi)}


@pytest.fixture(scope="module")
def fitted(datasets) -> dict[str, object]:
    out = {}
    for name, (factory, kind) in ESTIMATORS.items():
        X, y = datasets[kind]
        out[name] = factory().fit(X, y)
    return out


def _onnx_file(estimator: object, X: np.ndarray) -> bytes:
    """Exported the way users do: skl2onnx with default options (a ZipMap where the converter has one)."""
    return to_onnx(estimator, X[:1]).SerializeToString()


def _file_outputs(data: bytes, X: np.ndarray) -> tuple[np.ndarray, object]:
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    labels, scores = session.run(None, {session.get_inputs()[0].name: X})
    return np.asarray(labels), scores


def _argmax_classes(model: LoadedModel, scores: np.ndarray) -> np.ndarray:
    return np.asarray(model.classes)[np.asarray(scores).argmax(axis=1)]


VOTE_TIES = "breaks ties between one-vs-one votes"


def _converted_scores(model: LoadedModel, X: np.ndarray) -> np.ndarray:
    proto = convert(model)
    warnings_ = verify_conversion(model, proto)
    # skl2onnx ignores break_ties: the file's label takes the first class where its votes tie, which synthetic
    # rows far from the data often do; the warning says so (the run checks the data's rows)
    assert all(VOTE_TIES in w and "synthetic rows" in w for w in warnings_), warnings_
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["scores"], {"input": X})[0]


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_onnx_file_decision_scores_imply_the_files_own_label(name, fitted, datasets) -> None:
    X, _ = datasets[ESTIMATORS[name][1]]
    data = _onnx_file(fitted[name], X)
    model = load_model(data, name=f"{name}.onnx")
    assert model.scores_kind == "decision" and model.describe()["scores"] == "decision"
    labels, _ = _file_outputs(data, X)
    scores = predict_native(model, X)  # also runs the label check over every row
    assert scores.shape == (len(X), len(model.classes))
    np.testing.assert_array_equal(_argmax_classes(model, scores), labels)
    converted = _converted_scores(model, X)  # convert's self-check on synthetic rows passes too
    np.testing.assert_array_equal(_argmax_classes(model, converted), labels)
    np.testing.assert_allclose(converted, scores, rtol=1e-6, atol=1e-6)


def test_binary_svc_file_reads_its_swapped_columns_and_says_what_became_of_its_outputs(fitted, datasets) -> None:
    X, _ = datasets["binary"]
    data = _onnx_file(fitted["svc-binary"], X)
    _, zipmapped = _file_outputs(data, X[:5])
    raw = np.array([[row[0], row[1]] for row in zipmapped])
    decision = fitted["svc-binary"].decision_function(X[:5])
    np.testing.assert_allclose(raw[:, 1], -decision, rtol=1e-5)  # the file's own order: [d, -d]
    model = load_model(data, name="svc.onnx")
    assert model.score_columns == "swapped"
    np.testing.assert_allclose(model.predict_scores(X[:5]), np.column_stack([-decision, decision]), rtol=1e-5)
    notes = " ".join(model.notes)
    assert "'output_label'" in notes and "left out of the ONNX variants" in notes and "swapped" in notes
    assert "ZipMap" in convert(model).doc_string and "'output_label' dropped" in convert(model).doc_string


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_skops_decision_scores_match_predict_and_the_conversion(name, fitted, datasets, tmp_path) -> None:
    X, _ = datasets[ESTIMATORS[name][1]]
    estimator = fitted[name]
    path = tmp_path / f"{name}.skops"
    sio.dump(estimator, path)
    model = load_model(path)
    assert model.scores_kind == "decision"
    scores = predict_native(model, X)
    decision = estimator.decision_function(X)
    expected = np.column_stack([-decision, decision]) if decision.ndim == 1 else decision
    np.testing.assert_allclose(scores, expected)
    np.testing.assert_array_equal(_argmax_classes(model, scores), estimator.predict(X))
    converted = _converted_scores(model, X)
    np.testing.assert_array_equal(_argmax_classes(model, converted), estimator.predict(X))


def test_run_on_binary_svc_file_reports_decision_scores_and_no_log_loss(fitted, datasets) -> None:
    X, y = datasets["binary"]
    data = _onnx_file(fitted["svc-binary"], X)
    config = OptimizeConfig(precisions=("fp32",), batch_sizes=(1,), budget_s=1.0)
    report = optimize(data, X, config, y=y, model_name="svc.onnx")
    assert report.model["scores"] == "decision"
    native = report.native.metrics
    assert "log_loss" not in native and native["roc_auc"] > 0.9 and native["accuracy"] > 0.9
    assert drift.DECISION_LOG_LOSS_NOTE in report.notes
    fp32 = report.variant("fp32")
    assert fp32.drift.label_flips == 0 and fp32.metrics["accuracy"] == native["accuracy"]


def test_multiclass_decision_metrics_rank_each_class_and_leave_log_loss_out() -> None:
    scores = np.array([[2.0, 0.5, -1.0], [0.1, 1.5, -0.3], [-2.0, 0.0, 3.0], [1.0, 0.2, 0.1]])
    metrics, notes = drift.metrics_with_notes(scores, np.array([0, 1, 2, 0]), "multiclass", (0, 1, 2),
                                              decision=True)
    assert "log_loss" not in metrics and metrics["roc_auc"] == 1.0 and metrics["accuracy"] == 1.0
    assert drift.DECISION_LOG_LOSS_NOTE in notes


def test_one_vs_one_svc_is_refused_in_both_paths(datasets) -> None:
    X, y = datasets["multiclass"]
    estimator = SVC(decision_function_shape="ovo").fit(X, y)
    with pytest.raises(UnsupportedModelError, match=r"one decision value per pair of classes.*'ovr'"):
        load_model(_onnx_file(estimator, X), name="ovo.onnx")
    with pytest.raises(UnsupportedModelError, match=r"decision_function_shape='ovo'.*'ovr'"):
        load_model(sio.dumps(estimator))


def test_svc_whose_predict_breaks_vote_ties_by_class_order_gets_a_convert_warning_with_the_fix(datasets) -> None:
    """Rows with tied one-vs-one votes get the first class from predict() and the most confident one from the
    argmax of decision_function: a converted file would imply other classes than the model there."""
    X, y = datasets["multiclass"]
    model = load_model(sio.dumps(SVC().fit(X * 3, y)))  # wide synthetic rows fall where the votes tie
    (warning,) = verify_conversion(model, convert(model))
    assert "differs from its predict()" in warning and "break_ties=True" in warning
    fixed = load_model(sio.dumps(SVC(break_ties=True).fit(X * 3, y)))
    assert verify_conversion(fixed, convert(fixed)) == []


def test_platt_scaled_svc_file_whose_label_disagrees_on_data_rows_is_refused_in_the_run() -> None:
    X, y = make_classification(2000, 5, random_state=0, flip_y=0.2)
    X = X.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # scikit-learn 1.9 deprecates probability=True
        estimator = SVC(probability=True, random_state=0).fit(X, y)
    data = _onnx_file(estimator, X)
    labels, zipmapped = _file_outputs(data, X)
    probabilities = np.array([[row[0], row[1]] for row in zipmapped])
    assert (labels != probabilities.argmax(axis=1)).any()  # the file itself disagrees on some rows
    model = load_model(data, name="svc-platt.onnx")
    assert model.scores_kind == "probabilities"
    with pytest.raises(UnsupportedModelError, match=r"differs from its label output .*data row \d+.*Platt"):
        predict_native(model, X)


def _scores_unrelated_to_label() -> bytes:
    """Two decision columns [x0, -x0] beside a label computed from x1: no column order makes them agree."""
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 2])
    nodes = [
        helper.make_node("Gather", ["X", "i0"], ["c0"], axis=1),
        helper.make_node("Neg", ["c0"], ["c1"]),
        helper.make_node("Concat", ["c0", "c1"], ["scores"], axis=1),
        helper.make_node("Gather", ["X", "i1"], ["x1"], axis=1),
        helper.make_node("Greater", ["x1", "zero"], ["positive"]),
        helper.make_node("Cast", ["positive"], ["label_2d"], to=TensorProto.INT64),
        helper.make_node("Reshape", ["label_2d", "flat"], ["label"]),
    ]
    inits = [helper.make_tensor("i0", TensorProto.INT64, [1], [0]), helper.make_tensor("i1", TensorProto.INT64, [1], [1]),
             helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]), helper.make_tensor("flat", TensorProto.INT64, [1], [-1])]
    outputs = [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
               helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, 2])]
    graph = helper.make_graph(nodes, "unmapped", [x], outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_decision_scores_that_cannot_be_mapped_to_the_label_exit_2_with_one_line(tmp_path, capsys) -> None:
    path = tmp_path / "unmapped.onnx"
    path.write_bytes(_scores_unrelated_to_label())
    with pytest.raises(UnsupportedModelError, match="cannot be mapped to its label output"):
        load_model(path)
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", str(path), "--out", str(tmp_path / "out.onnx")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot be mapped to its label output" in lines[0] and "Traceback" not in err
    assert not (tmp_path / "out.onnx").exists()


def test_convert_cli_names_decision_scores(fitted, datasets, tmp_path, capsys) -> None:
    X, _ = datasets["binary"]
    path = tmp_path / "svc.onnx"
    path.write_bytes(_onnx_file(fitted["svc-binary"], X))
    assert main(["convert", str(path), "--out", str(tmp_path / "out.onnx")]) == 0
    assert "decision scores (not probabilities) [N, 2]" in capsys.readouterr().out
    written = onnx.load(tmp_path / "out.onnx")
    assert {p.key: p.value for p in written.metadata_props}["inference_optimizer.scores"] == "decision"
    assert load_model(tmp_path / "out.onnx").scores_kind == "decision"  # read back as what it is


def _with_schema(data: bytes, edit: Callable[[dict], None]) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.namelist():
            content = source.read(item)
            if item == "schema.json":
                schema = json.loads(content)
                edit(schema)
                content = json.dumps(schema).encode()
            target.writestr(item, content)
    return out.getvalue()


def test_skops_version_problems_name_both_versions(fitted) -> None:
    import sklearn

    data = sio.dumps(fitted["svc-binary"])

    def older(schema: dict) -> None:
        schema["content"]["content"]["_sklearn_version"]["content"] = '"1.2.0"'

    def older_and_moved(schema: dict) -> None:
        older(schema)
        schema["__module__"] = "sklearn.svm.classes"  # where scikit-learn 0.2x kept SVC

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's InconsistentVersionWarning
        model = load_model(_with_schema(data, older), name="old.skops")
    assert any("saved with scikit-learn 1.2.0 (skops" in n and f"scikit-learn {sklearn.__version__} is installed"
               in n for n in model.notes)
    with pytest.raises(Exception, match=rf"saved with scikit-learn 1\.2\.0.*scikit-learn {sklearn.__version__}"):
        load_model(_with_schema(data, older_and_moved), name="moved.skops")


def test_pickle_that_fails_to_load_names_the_version_that_pickled_it(fitted) -> None:
    import pickle

    import sklearn

    from optimizer_core.errors import ModelLoadError

    data = pickle.dumps(fitted["svc-binary"])
    version = sklearn.__version__.encode()
    older = (b"1.2." + b"0" * len(version))[: len(version)]  # same length: the pickle's frames stay intact
    key = b"_sklearn_version\x94\x8c" + bytes([len(version)])
    assert key + version in data and b"sklearn.svm._classes" in data
    broken = data.replace(key + version, key + older).replace(b"sklearn.svm._classes", b"sklearn.svm._classez")
    with pytest.raises(ModelLoadError, match=rf"saved with scikit-learn {older.decode()} and scikit-learn "
                                             rf"{sklearn.__version__} is installed here"):
        load_model(broken, allow_pickle=True, name="old.pkl")


def test_run_exits_2_with_one_line_where_predict_and_the_argmax_differ_on_data_rows(tmp_path, capsys) -> None:
    """A 4-class SVC (break_ties=False, the default) puts rows whose one-vs-one votes tie in the first tied class;
    its decision_function's argmax picks another: the run refuses, naming the rows and the fix."""
    import pandas as pd

    X, y = make_classification(1500, 6, n_informative=4, n_classes=4, random_state=0)
    estimator = SVC().fit(X, y)
    assert (estimator.predict(X) != estimator.decision_function(X).argmax(axis=1)).any()
    model_path, csv_path = tmp_path / "svc.skops", tmp_path / "data.csv"
    sio.dump(estimator, model_path)
    pd.DataFrame(X, columns=[f"f{i}" for i in range(6)]).assign(label=y).to_csv(csv_path, index=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(model_path), str(csv_path), "--target", "label", "--budget-s", "1", "--batch-sizes", "1",
              "--precision", "fp32", "--no-history", "--quiet", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert exit_info.value.code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "differs from its predict() on" in lines[0] and "data row" in lines[0] and "break_ties=True" in lines[0]
    assert not (tmp_path / "out").exists()
