"""QA round 1, item 3: LightGBM's training rename (spaces -> '_') and the case/space-insensitive match combine:
a CSV with 'MEAN RADIUS' feeds a LightGBM model whose feature is 'mean_radius', with a note naming both rules;
two columns that become one feature that way are refused."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from optimizer_core.cli import main
from optimizer_core.data import check_columns, load_dataset
from optimizer_core.errors import InputError
from optimizer_core.feature_names import RENAMED_IGNORING_CASE_MAPPING
from optimizer_core.models import load_model


@pytest.fixture(scope="module")
def upper(tmp_path_factory):
    folder = tmp_path_factory.mktemp("names-case")
    data = load_breast_cancer(as_frame=True)
    features = data.frame.iloc[:, :6]  # 'mean radius', 'mean texture', ...
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 8, "num_threads": 1},
                        lgb.Dataset(features, data.target), 10)
    assert booster.feature_name()[0] == "mean_radius"
    booster.save_model(folder / "model.txt")
    shouting = features.rename(columns=str.upper)[list(reversed(features.columns.str.upper()))]  # other order too
    shouting.assign(target=data.target).to_csv(folder / "upper.csv", index=False)
    return {"model": folder / "model.txt", "csv": folder / "upper.csv", "features": features, "booster": booster,
            "shouting": shouting}


def test_renamed_then_case_insensitive_names_match_with_a_note_naming_both_rules(upper):
    model = load_model(upper["model"])
    ds = load_dataset(upper["csv"], model, target="target")
    assert ds.column_mapping == RENAMED_IGNORING_CASE_MAPPING
    assert ds.feature_names[:2] == ("MEAN RADIUS", "MEAN TEXTURE")
    np.testing.assert_allclose(model.predict_scores(ds.X)[:, 1], upper["booster"].predict(upper["features"]),
                               atol=1e-9, rtol=0)
    assert any(n.startswith("columns matched to the model's feature names as LightGBM renamed them in training "
                            "(spaces become '_'), then ignoring case and surrounding spaces: 'MEAN RADIUS' as "
                            "'mean_radius'") for n in ds.notes), ds.notes
    assert check_columns(list(upper["shouting"].columns) + ["target"], model.feature_names, model.n_features,
                         "target", "upper.csv", family="lightgbm") is None


def test_the_cli_runs_the_upper_case_names(upper, capsys):
    code = main(["run", str(upper["model"]), str(upper["csv"]), "--target", "target", "--precision", "fp32",
                 "--budget-s", "1", "--batch-sizes", "1", "--quiet", "--no-history"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "then ignoring case and surrounding spaces" in captured.out


def test_two_columns_that_become_one_feature_under_both_rules_are_refused(upper, tmp_path):
    path = tmp_path / "both.csv"
    upper["shouting"].assign(**{"Mean Radius": 1.0}).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"columns 'MEAN RADIUS' and 'Mean Radius' both match the model's feature "
                                         r"'mean_radius' \(LightGBM renames feature names in training: spaces become "
                                         r"'_'; then matched ignoring case\), so which one it was trained on is "
                                         r"unknown: keep one"):
        load_dataset(path, load_model(upper["model"]))


def test_missing_columns_count_those_present_under_both_rules(upper, tmp_path):
    path = tmp_path / "part.csv"
    upper["shouting"].drop(columns="MEAN AREA").to_csv(path, index=False)
    # named as the file spells names (spaces, not LightGBM's underscores), with the model's own name beside it
    with pytest.raises(InputError, match=r"missing 1 of the model's feature columns: 'mean area' \(the model's "
                                         r"'mean_area'\)"):
        load_dataset(path, load_model(upper["model"]))
