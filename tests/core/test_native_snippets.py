"""QA round 1, item 6: every deploy snippet with native code runs on its own. A truncated ensemble's native
equivalent loads the model from its file (named as the user gave it) with the library's own loader, then predicts;
executed here in a folder holding only the model file, it gives the native cut model's scores."""

from __future__ import annotations

import json
import os
import pickle

import lightgbm as lgb
import numpy as np
import pytest
import skops.io as sio
import xgboost as xgb
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingRegressor, RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from optimizer_core.cli import main
from optimizer_core.models import load_model, model_from_object
from optimizer_core.models.trees import ensemble_of, truncate


def _binary():
    X, y = load_breast_cancer(return_X_y=True)
    return X[:, :6].astype(np.float32), y


def _multiclass():
    X, y = load_iris(return_X_y=True)
    return X.astype(np.float32), y


def _xgb_wrapper(folder):
    X, y = _binary()
    xgb.XGBClassifier(n_estimators=8, max_depth=2, n_jobs=1).fit(X, y).save_model(folder / "wrapper.json")
    return "wrapper.json", X


def _xgb_booster_ubj(folder):
    X, y = _binary()
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2, "nthread": 1}, xgb.DMatrix(X, y), 8)
    booster.save_model(folder / "booster.ubj")
    (folder / "booster.bin").write_bytes((folder / "booster.ubj").read_bytes())  # UBJ bytes under another name
    return "booster.bin", X


def _xgb_softmax(folder):
    X, y = _multiclass()
    booster = xgb.train({"objective": "multi:softmax", "num_class": 3, "max_depth": 2, "nthread": 1},
                        xgb.DMatrix(X, y), 6)
    booster.save_model(folder / "softmax.json")
    return "softmax.json", X


def _lgb_booster(folder):
    X, y = _binary()
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 4, "num_threads": 1},
                        lgb.Dataset(X, y), 8)
    booster.save_model(folder / "lgb.txt")
    return "lgb.txt", X


def _lgb_multiclass(folder):
    X, y = _multiclass()
    booster = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1, "num_leaves": 4,
                         "min_data_in_leaf": 5, "num_threads": 1}, lgb.Dataset(X, y), 6)
    booster.save_model(folder / "lgb_multi.txt")
    return "lgb_multi.txt", X


def _skops_pipeline(folder):
    X, y = _binary()
    model = make_pipeline(StandardScaler(), GradientBoostingClassifier(n_estimators=6, max_depth=2, random_state=0))
    sio.dump(model.fit(X, y), folder / "gb.skops")
    return "gb.skops", X


def _skops_forest(folder):
    X, y = _binary()
    sio.dump(RandomForestClassifier(n_estimators=6, max_depth=3, random_state=0).fit(X, y), folder / "rf.skops")
    return "rf.skops", X


def _skops_hist_regressor(folder):
    X, _ = _binary()
    y = X[:, 0] * 2 + X[:, 1]
    sio.dump(HistGradientBoostingRegressor(max_iter=6, random_state=0).fit(X, y), folder / "hgbr.skops")
    return "hgbr.skops", X


def _pickled_lgbm(folder):
    X, y = _binary()
    model = lgb.LGBMClassifier(n_estimators=6, num_leaves=4, verbose=-1, n_jobs=1).fit(X, y)
    with open(folder / "lgbm.pkl", "wb") as f:
        pickle.dump(model, f)
    return "lgbm.pkl", X


CASES = {"xgboost-wrapper": _xgb_wrapper, "xgboost-booster-ubj": _xgb_booster_ubj, "xgboost-softmax": _xgb_softmax,
         "lightgbm-booster": _lgb_booster, "lightgbm-multiclass": _lgb_multiclass, "skops-pipeline": _skops_pipeline,
         "skops-forest": _skops_forest, "skops-hist-regressor": _skops_hist_regressor, "pickled-lgbm": _pickled_lgbm}


def _execute(code: str, folder, X: np.ndarray, **names) -> np.ndarray:
    """Run ``code`` in ``folder`` (the model file is there, nothing else is defined but X) and return its scores."""
    namespace = {"X": X, **names}
    before = os.getcwd()
    os.chdir(folder)
    try:
        exec(compile(code, "<snippet>", "exec"), namespace)  # noqa: S102 - the snippet under test
    finally:
        os.chdir(before)
    return np.asarray(namespace["scores"], dtype=np.float64)


def _same(scores: np.ndarray, reference: np.ndarray) -> None:
    if scores.ndim == 1 and reference.shape[1] == 2:
        reference = reference[:, 1]  # a Booster's binary prediction: the second class's probability
    np.testing.assert_allclose(scores.reshape(reference.shape[0], -1), reference.reshape(reference.shape[0], -1),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", list(CASES))
def test_native_snippet_loads_the_file_and_predicts_as_the_cut_model(case, tmp_path, monkeypatch):
    name, X = CASES[case](tmp_path)
    monkeypatch.chdir(tmp_path)
    model = load_model(name, allow_pickle=name.endswith(".pkl"))  # the file as a user names it
    assert model.source_name == name
    cut = truncate(model, ensemble_of(model), 3)
    code = cut.native_code
    assert f"{name!r}" in code  # loaded from the file, not from a variable the snippet never defines
    _same(_execute(code, tmp_path, X), cut.loaded.predict_scores(X))


def test_a_model_from_memory_gets_a_snippet_naming_the_object(tmp_path):
    X, y = _binary()
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 4, "num_threads": 1},
                        lgb.Dataset(X, y), 6)
    model = model_from_object(booster)
    assert model.source_name is None
    cut = truncate(model, ensemble_of(model), 2)
    assert "# booster: the fitted Booster(binary) passed to optimize()" in cut.native_code
    _same(_execute(cut.native_code, tmp_path, X, booster=booster), cut.loaded.predict_scores(X))


def test_the_runs_native_snippet_loads_the_model_named_on_the_command_line(tmp_path, monkeypatch, capsys):
    """QA: `run model.txt ... --trees` wrote a LightGBM snippet predicting with an undefined `booster`."""
    name, X = _lgb_booster(tmp_path)
    import pandas as pd

    pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])]).to_csv(tmp_path / "data.csv", index=False)
    monkeypatch.chdir(tmp_path)
    assert main(["run", name, "data.csv", "--precision", "fp32", "--trees", "50%", "--batch-sizes", "1",
                 "--budget-s", "1", "--no-history", "--quiet", "--out", "out"]) == 0
    variants = {v["name"]: v for v in json.loads((tmp_path / "out" / "report.json").read_text())["variants"]}
    code = variants["rounds-4"]["deploy"]["native"]
    assert "booster = lightgbm.Booster(model_file='lgb.txt')" in code
    expected = lgb.Booster(model_file=str(tmp_path / name)).predict(X, num_iteration=4)
    np.testing.assert_allclose(_execute(code, tmp_path, X), expected, rtol=1e-9, atol=1e-12)
