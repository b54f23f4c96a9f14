"""Feature names LightGBM rewrote in training (spaces -> '_') match a CSV's original names, by that rule only;
True/False cells read as 1/0."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.datasets import load_breast_cancer
from sklearn.tree import DecisionTreeClassifier

from optimizer_core.cli import main
from optimizer_core.data import check_columns, load_dataset
from optimizer_core.errors import InputError
from optimizer_core.feature_names import RENAMED_MAPPING
from optimizer_core.models import load_model, model_from_object

FAST = ["--budget-s", "1", "--batch-sizes", "1,8", "--quiet", "--no-history"]


@pytest.fixture(scope="module")
def cancer(tmp_path_factory):
    folder = tmp_path_factory.mktemp("names")
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.iloc[:, :6].assign(target=data.target)  # 'mean radius', 'mean texture', ...
    features = frame.drop(columns="target")
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 8, "num_threads": 1},
                        lgb.Dataset(features, data.target), 10)
    assert booster.feature_name()[0] == "mean_radius"
    model = folder / "model.txt"
    booster.save_model(model)
    csv = folder / "cancer.csv"
    frame.to_csv(csv, index=False)
    return {"model": model, "csv": csv, "features": features, "booster": booster, "folder": folder}


def test_lightgbm_renamed_names_match_the_original_csv_columns_with_a_note(cancer):
    model = load_model(cancer["model"])
    ds = load_dataset(cancer["csv"], model, target="target")
    assert ds.column_mapping == RENAMED_MAPPING
    assert ds.feature_names[:2] == ("mean radius", "mean texture")
    np.testing.assert_allclose(model.predict_scores(ds.X)[:, 1], cancer["booster"].predict(cancer["features"]),
                               atol=1e-9, rtol=0)
    assert any(n.startswith("columns matched to the model's feature names as LightGBM renamed them in training "
                            "(spaces become '_'): 'mean radius' as 'mean_radius'") for n in ds.notes)
    header = list(pd.read_csv(cancer["csv"], nrows=0).columns)
    assert check_columns(header, model.feature_names, model.n_features, "target", "cancer.csv",
                         family="lightgbm") is None


def test_the_cli_runs_the_original_names(cancer, capsys):
    code = main(["run", str(cancer["model"]), str(cancer["csv"]), "--target", "target", "--precision", "fp32",
                 *FAST])
    assert code == 0, capsys.readouterr().err


def test_two_columns_for_one_renamed_name_are_refused(cancer, tmp_path):
    model = load_model(cancer["model"])
    path = tmp_path / "both.csv"
    cancer["features"].assign(mean_radius=0.0).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"columns 'mean radius' and 'mean_radius' both match the model's feature "
                                         r"'mean_radius' \(LightGBM renames feature names in training: spaces become "
                                         r"'_'\), so which one it was trained on is unknown: keep one"):
        load_dataset(path, model)


def test_missing_columns_count_those_present_under_the_rename(cancer, tmp_path):
    path = tmp_path / "part.csv"
    cancer["features"].drop(columns="mean area").to_csv(path, index=False)
    # named as the CSV spells its other columns (QA: "missing 'mean_radius'" while the file says 'mean radius')
    with pytest.raises(InputError, match=r"missing 1 of the model's feature columns: 'mean area' \(the model's "
                                         r"'mean_area'\); add them, spelled as the file's other columns are"):
        load_dataset(path, load_model(cancer["model"]))


def test_missing_columns_keep_the_models_names_when_the_csv_uses_them(cancer, tmp_path):
    path = tmp_path / "underscored.csv"
    renamed = cancer["features"].rename(columns=lambda c: c.replace(" ", "_"))
    renamed.drop(columns="mean_area").to_csv(path, index=False)
    with pytest.raises(InputError, match=r"missing 1 of the model's feature columns: 'mean_area'; add them \(named "
                                         r"exactly as in training\)"):
        load_dataset(path, load_model(cancer["model"]))


def test_the_rule_is_lightgbms_only(cancer, tmp_path):
    """XGBoost keeps names as given: a CSV spelling 'mean_radius' as 'mean radius' is not guessed."""
    renamed = cancer["features"].rename(columns=lambda c: c.replace(" ", "_"))
    clf = xgb.XGBClassifier(n_estimators=3, max_depth=2, n_jobs=1).fit(renamed, np.arange(len(renamed)) % 2)
    with pytest.raises(InputError, match="none of .* columns match the model's feature names"):
        load_dataset(cancer["csv"], model_from_object(clf), target="target")


def test_a_feature_name_with_a_tab_is_kept_whole():
    """LightGBM splits its feature_names line at spaces only (a tab may be part of a name)."""
    frame = pd.DataFrame({"tab\there": np.arange(60.0), "two words": np.arange(60.0) % 7})
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_threads": 1},
                        lgb.Dataset(frame, np.arange(60) % 2), 3)
    model = load_model(booster.model_to_string().encode())
    assert model.feature_names == ("tab\there", "two_words")
    ds = load_dataset(frame, model)
    np.testing.assert_allclose(model.predict_scores(ds.X)[:, 1], booster.predict(frame), atol=1e-12, rtol=0)


def test_true_and_false_cells_read_as_one_and_zero(tmp_path):
    """pandas writes boolean columns (get_dummies' among them) as True/False."""
    frame = pd.get_dummies(pd.DataFrame({"x": [0.5, 1.5, 2.5, 3.5], "kind": ["a", "b", "a", "c"]}))
    assert frame["kind_a"].dtype == bool
    y = np.array([0, 1, 0, 1])
    model = model_from_object(DecisionTreeClassifier(random_state=0).fit(frame, y))
    path = tmp_path / "dummies.csv"
    frame.to_csv(path, index=False)
    assert "True" in path.read_text()
    ds = load_dataset(path, model)
    np.testing.assert_array_equal(ds.X, frame.to_numpy(float))
    path.write_text("x,kind_a,kind_b,kind_c\n0.5,true,FALSE,\n")
    np.testing.assert_array_equal(load_dataset(path, model).X, [[0.5, 1, 0, np.nan]])
    with pytest.raises(InputError, match="non-numeric value 'yes'"):
        path.write_text("x,kind_a,kind_b,kind_c\n0.5,yes,False,False\n")
        load_dataset(path, model)
