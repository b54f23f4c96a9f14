"""Data that reads but may not mean what the model was trained on: mostly zeros for a model that may have been
trained on a sparse matrix, and numbers written with decimal commas."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import scipy.sparse
import xgboost as xgb

from optimizer_core import OptimizeConfig, optimize
from optimizer_core.data import load_dataset
from optimizer_core.data_hints import sparse_zeros_note
from optimizer_core.errors import InputError
from optimizer_core.models import model_from_object


def _sparse_data(rows: int = 400, columns: int = 6) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(0)
    dense = np.where(rng.random((rows, columns)) < 0.25, rng.normal(size=(rows, columns)), 0.0)
    y = (dense[:, 0] + (dense[:, 1] == 0) > 0.3).astype(int)
    return scipy.sparse.csr_matrix(dense), y


def _frame(matrix: scipy.sparse.csr_matrix) -> pd.DataFrame:
    return pd.DataFrame(matrix.toarray(), columns=[f"f{i}" for i in range(matrix.shape[1])])


def test_mostly_zeros_for_xgboost_notes_the_measured_effect_of_reading_them_as_missing(tmp_path):
    matrix, y = _sparse_data()
    booster = xgb.train({"max_depth": 3, "objective": "binary:logistic", "nthread": 1},
                        xgb.DMatrix(matrix, y, feature_names=[f"f{i}" for i in range(6)]), 10)
    model = model_from_object(booster)
    path = tmp_path / "dense.csv"
    _frame(matrix).to_csv(path, index=False)
    report = optimize(model, path, OptimizeConfig(precisions=("fp32",), batch_sizes=(1,), budget_s=1))
    note = next(n for n in report.notes if "exactly 0" in n)
    ds = load_dataset(path, model)
    assert note.startswith("75% of the feature cells are exactly 0: if the model was trained on a sparse matrix, "
                           "its absent entries meant missing there, not 0; read as missing, they would change the "
                           "scores by up to ")
    change = float(note.split("up to ")[1].split()[0])
    sparse_scores = booster.predict(xgb.DMatrix(matrix, feature_names=[f"f{i}" for i in range(6)]))
    dense_scores = model.predict_scores(ds.X)[:, 1]
    assert change == pytest.approx(np.abs(sparse_scores - dense_scores).max(), rel=1e-3)


def test_no_zeros_note_for_lightgbm_or_data_that_is_mostly_not_zero(tmp_path):
    matrix, y = _sparse_data()
    path = tmp_path / "dense.csv"
    _frame(matrix).to_csv(path, index=False)
    lightgbm = model_from_object(lgb.train({"objective": "binary", "verbose": -1, "num_threads": 1},
                                           lgb.Dataset(matrix.astype(np.float64), y), 5))  # absent = 0 for LightGBM
    assert sparse_zeros_note(load_dataset(path, lightgbm).X, lightgbm) is None
    dense = _frame(matrix) + 1.0
    booster = model_from_object(xgb.train({"max_depth": 3, "objective": "binary:logistic", "nthread": 1},
                                          xgb.DMatrix(dense, y), 5))
    assert sparse_zeros_note(load_dataset(dense, booster).X, booster) is None


def _model(names=("a", "b", "c")):
    from sklearn.tree import DecisionTreeRegressor

    frame = pd.DataFrame(np.arange(12.0).reshape(4, 3), columns=list(names))
    return model_from_object(DecisionTreeRegressor().fit(frame, np.arange(4.0)))


def test_decimal_commas_in_a_semicolon_csv_get_a_hint(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a;b;c\n0,645;1;2\n")
    with pytest.raises(InputError, match=r"column 'a' has a non-numeric value '0,645' at data row 1: .*; it looks "
                                         r"like a number with a decimal comma: write decimal points"):
        load_dataset(path, _model())
    path.write_text("a;b;c;y\n1;1;2;1.234,5\n")
    with pytest.raises(InputError, match=r"target column 'y' .*'1\.234,5'.*decimal comma"):
        load_dataset(path, _model(), target="y")


def test_decimal_commas_that_split_a_comma_separated_row_get_a_hint(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,c\n0,645,1,2,3\n")
    with pytest.raises(InputError, match=r"line 2 has 5 fields but the header has 3; .*decimal commas \(0,645\), "
                                         r"each one splits into two fields"):
        load_dataset(path, _model())


def test_text_that_is_not_a_decimal_comma_number_gets_no_hint(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a;b;c\nabc;1;2\n")
    with pytest.raises(InputError) as err:
        load_dataset(path, _model())
    assert "decimal" not in str(err.value)
