"""One rule on every path (issue 13, QA round 1): the class a classifier's scores imply (argmax) must be the
model's own label (scikit-learn's ``predict``, an ONNX file's label output) on every data row, else `run` and
`validate` refuse in one line naming the cause. Classifiers whose predict is the argmax of predict_proba pass,
exact ties included; tied rows are never counted as disagreements, and the message says how many there were."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from skl2onnx import to_onnx
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_iris, make_classification
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier

from optimizer_core.cli import main
from optimizer_core.errors import UnsupportedModelError
from optimizer_core.models import load_model, model_from_object
from optimizer_core.models.labels import check_agreement, disagreements, label_indices, tied_elsewhere
from optimizer_core.pipeline import predict_native


@pytest.fixture(scope="module")
def platt(tmp_path_factory) -> dict:
    """QA's case: an SVC(probability=True) whose predict and the argmax of its Platt-scaled probabilities differ
    on some of the data's rows, saved as skops and as skl2onnx writes it (label output and ZipMap), with a
    logistic regression on the same features (whose predict is the argmax) and the data as a CSV."""
    folder = tmp_path_factory.mktemp("platt")
    X, y = make_classification(n_samples=400, n_features=6, n_informative=4, random_state=0)
    X = X.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # scikit-learn 1.9 deprecates probability=True
        svc = SVC(probability=True, random_state=0).fit(X, y)
    lr = LogisticRegression().fit(X, y)
    data = X[:200]
    disagree = np.flatnonzero(svc.predict(data) != svc.predict_proba(data).argmax(axis=1))
    assert disagree.size, "the fixture must reproduce the disagreement"
    paths = {"svc": folder / "svcp.skops", "svc_onnx": folder / "svcp.onnx", "lr": folder / "lr.skops",
             "lr_onnx": folder / "lr.onnx", "csv": folder / "bin.csv"}
    sio.dump(svc, paths["svc"])
    sio.dump(lr, paths["lr"])
    paths["svc_onnx"].write_bytes(to_onnx(svc, X[:1]).SerializeToString())
    paths["lr_onnx"].write_bytes(to_onnx(lr, X[:1]).SerializeToString())
    pd.DataFrame(data, columns=[f"f{i}" for i in range(6)]).assign(label=y[:200]).to_csv(paths["csv"], index=False)
    proba = svc.predict_proba(data)
    labels = svc.predict(data)
    paths["first_row"] = int(disagree[0]) + 1  # 1-based data row
    paths["ties"] = int(tied_elsewhere(label_indices(labels, svc.classes_), proba).size)
    paths["counted"] = int(disagreements(label_indices(labels, svc.classes_), proba).size)
    return paths


def _cli(args: list[str], capsys) -> tuple[int, list[str]]:
    try:
        code = main(args)
    except SystemExit as exit_info:
        code = exit_info.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, [line for line in err.splitlines() if line.strip()]


def test_skops_svc_with_platt_probabilities_is_refused_by_run_like_its_onnx_file(platt, capsys) -> None:
    """QA: `run svcp_bin.skops` exited 0 with accuracy 0.915 where predict() gives 0.905; the ONNX file of the
    same model exits 2. Both now refuse, naming the first row."""
    for model, label_source in ((platt["svc"], "its predict()"), (platt["svc_onnx"], "its label output")):
        code, lines = _cli(["run", str(model), str(platt["csv"]), "--target", "label", "--precision", "fp32",
                            "--batch-sizes", "1", "--budget-s", "1", "--no-history", "--quiet"], capsys)
        assert code == 2 and len(lines) == 1, lines
        assert f"differs from {label_source}" in lines[0] and f"data row {platt['first_row']}," in lines[0]
        assert "Platt" in lines[0]
    assert "CalibratedClassifierCV" in lines[0] or "drop the label output" in lines[0]


def test_the_refusal_counts_disagreeing_rows_and_names_exact_ties_apart(platt) -> None:
    """The count is the rows where the label is not a top class; rows tied exactly between the label and another
    class are not refused but said, since the argmax (the first tied class) differs from the label there."""
    model = load_model(platt["svc"])
    X = pd.read_csv(platt["csv"]).drop(columns="label").to_numpy(np.float32)
    with pytest.raises(UnsupportedModelError) as refused:
        predict_native(model, X)
    message = str(refused.value)
    assert f"on {platt['counted']} of 200 rows" in message
    if platt["ties"]:
        assert f"{platt['ties']} more row{' ties' if platt['ties'] == 1 else 's tie'} exactly" in message
    else:
        assert "ties exactly" not in message


def test_ties_are_not_refused_and_are_named_apart_from_disagreements() -> None:
    classes = (0, 1)
    scores = np.array([[0.5, 0.5], [0.5, 0.5], [0.9, 0.1], [0.2, 0.8]])
    check_agreement(np.array([1, 0, 0, 1]), scores, classes, name="m", label_source="its predict()")  # ties agree
    assert tied_elsewhere(np.array([1, 0, 0, 1]), scores).tolist() == [0]
    with pytest.raises(UnsupportedModelError, match=r"on 1 of 4 rows \(first: data row 3, label 1, scores favour "
                                                    r"0; 1 more row ties exactly between the label and another class"):
        check_agreement(np.array([1, 0, 1, 1]), scores, classes, name="m", label_source="its predict()")
    with pytest.raises(UnsupportedModelError, match=r"on 1 of 4 rows \(first: data row 3, label 1, scores favour "
                                                    r"0\):"):
        check_agreement(np.array([0, 0, 1, 1]), scores, classes, name="m", label_source="its predict()")


def _zero_lr(X, y):
    """A logistic regression whose every row is an exact 0.5/0.5 tie (predict: the first class)."""
    model = LogisticRegression().fit(X, y)
    model.coef_[:] = 0.0
    model.intercept_[:] = 0.0
    return model


ARGMAX_CLASSIFIERS = {
    "forest-2-trees": lambda: RandomForestClassifier(n_estimators=2, max_depth=3, random_state=0),
    "tree": lambda: DecisionTreeClassifier(max_depth=4, random_state=0),
    "knn-2": lambda: KNeighborsClassifier(n_neighbors=2),
    "knn-4": lambda: KNeighborsClassifier(n_neighbors=4),
    "logistic": lambda: LogisticRegression(max_iter=500),
    "pipeline-mlp": lambda: make_pipeline(StandardScaler(), MLPClassifier((8,), max_iter=300, random_state=0)),
    "naive-bayes": GaussianNB,
    "calibrated-linear-svc": lambda: CalibratedClassifierCV(LinearSVC(), ensemble=False),
    "gradient-boosting": lambda: GradientBoostingClassifier(n_estimators=10, random_state=0),
    "hist-gradient-boosting": lambda: HistGradientBoostingClassifier(max_iter=10, random_state=0),
}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind", ["binary", "multiclass"])
@pytest.mark.parametrize("name", [*ARGMAX_CLASSIFIERS, "all-ties"])
def test_classifiers_whose_predict_is_the_argmax_pass_the_check_ties_included(name, kind) -> None:
    if kind == "binary":
        X, y = make_classification(300, 5, n_informative=3, random_state=1)
    else:
        X, y = load_iris(return_X_y=True)
    X = X.astype(np.float32)
    estimator = _zero_lr(X, y) if name == "all-ties" else ARGMAX_CLASSIFIERS[name]().fit(X, y)
    model = model_from_object(estimator)
    assert model.label_predictor is not None and model.label_source == "its predict()"
    scores = predict_native(model, X)  # runs the check on every row
    top = scores.max(axis=1, keepdims=True)
    if name in ("forest-2-trees", "knn-2", "knn-4", "all-ties") and kind == "binary":
        assert ((scores == top).sum(axis=1) > 1).any(), "the case must hold exact ties"


def test_validate_applies_the_label_check_to_the_native_model_per_batch(platt, capsys) -> None:
    """QA: `validate svcp_bin.skops svcp_bin.onnx` exited 0. Now exit 2, one line naming the model file, the
    data file and the row (counted from the file's start, whatever the batch)."""
    code, lines = _cli(["validate", str(platt["svc"]), str(platt["svc_onnx"]), str(platt["csv"]), "--target",
                        "label", "--engine", "local", "--batch-rows", "50", "--quiet"], capsys)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"error: {platt['svc']} on {platt['csv']}: SVC: ")
    assert "differs from its predict()" in lines[0] and f"data row {platt['first_row']}," in lines[0]


def test_validate_checks_the_onnx_files_label_output_as_run_does(platt, capsys) -> None:
    """A native model that passes, against an ONNX file (same features and classes) whose label output and the
    argmax of its probabilities differ: refused, naming the ONNX file, the data file and the row."""
    code, lines = _cli(["validate", str(platt["lr"]), str(platt["svc_onnx"]), str(platt["csv"]), "--target",
                        "label", "--engine", "local", "--batch-rows", "64", "--quiet"], capsys)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"error: {platt['svc_onnx']} on {platt['csv']}: ")
    assert "differs from its label output" in lines[0] and f"data row {platt['first_row']}," in lines[0]


def test_validate_passes_files_whose_label_output_is_the_argmax(platt, capsys) -> None:
    code, _ = _cli(["validate", str(platt["lr"]), str(platt["lr_onnx"]), str(platt["csv"]), "--target", "label",
                    "--engine", "local", "--quiet"], capsys)
    assert code == 0
