"""Category values stored in model files (LightGBM pandas_categorical, XGBoost 3.1+ categories) applied to a
CSV of raw values exactly as the library does for a DataFrame with those categories; codes keep working."""

from __future__ import annotations

import json
import runpy
from functools import cache

import lightgbm as lgb
import numpy as np
import onnx
import pandas as pd
import pytest
import xgboost as xgb

from optimizer_core.categories import CATEGORIES_METADATA_KEY, snippet_lines
from optimizer_core.cli import main
from optimizer_core.converters import convert
from optimizer_core.data import load_dataset
from optimizer_core.errors import InputError
from optimizer_core.models import load_model, model_from_object

FAST = ["--budget-s", "1", "--batch-sizes", "1,8", "--quiet", "--no-history"]
PARAMS = {"objective": "binary", "verbose": -1, "num_leaves": 8, "min_data_per_group": 5, "cat_smooth": 1,
          "num_threads": 1}


def _frame(rows: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Raw values: a text category, a small-integer category (values 1..3, which look like codes) and a number."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"num": rng.normal(size=rows).round(3),
                          "color": rng.choice(["red", "green", "blue"], rows),
                          "size": rng.choice([1, 2, 3], rows)})
    y = ((frame.color == "red") ^ (frame.num > 0) ^ (frame["size"] == 3)).to_numpy().astype(int)
    return frame, y


def _categorical(frame: pd.DataFrame, categories: dict[str, list] | None = None) -> pd.DataFrame:
    out = frame.copy()
    for column in ("color", "size"):
        out[column] = pd.Categorical(out[column], categories=(categories or {}).get(column))
    return out


@cache
def _lightgbm_booster() -> lgb.Booster:
    frame, y = _frame()
    return lgb.train(PARAMS, lgb.Dataset(_categorical(frame), y), 20)


@pytest.fixture(scope="module")
def lgb_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("categories")
    booster = _lightgbm_booster()
    model = folder / "model.txt"
    booster.save_model(model)
    assert 'pandas_categorical:[["blue", "green", "red"], [1, 2, 3]]' in model.read_text()
    frame, y = _frame(200, seed=1)
    frame.loc[3, "color"] = "purple"  # never seen in training: LightGBM reads it as missing
    frame.loc[5, "color"] = None  # an empty cell
    csv = folder / "raw.csv"
    frame.assign(label=y).to_csv(csv, index=False)
    expected = booster.predict(_categorical(frame, {"color": ["red", "green", "blue", "purple"]}))
    return {"model": model, "csv": csv, "frame": frame, "y": y, "expected": expected, "folder": folder}


def test_lightgbm_raw_values_predict_as_the_booster_does_on_the_categorical_frame(lgb_files):
    model = load_model(lgb_files["model"])
    assert model.stored_categories.columns == ((1, ("blue", "green", "red")), (2, (1, 2, 3)))
    ds = load_dataset(lgb_files["csv"], model, target="label")
    np.testing.assert_allclose(model.predict_scores(ds.X)[:, 1], lgb_files["expected"], atol=1e-6, rtol=0)
    assert np.isnan(ds.X[3, 1]) and np.isnan(ds.X[5, 1])
    assert any("mapped to the codes" in n and "'color', 'size'" in n for n in ds.notes)
    assert any(n.startswith("1 of 200 rows holds a value of 'color' the model was not trained with (e.g. 'purple')")
               and "read as missing, as LightGBM does" in n for n in ds.notes)


def test_lightgbm_raw_values_through_a_run_match_the_booster_and_the_onnx_takes_codes(lgb_files, tmp_path):
    out = tmp_path / "out"
    code = main(["run", str(lgb_files["model"]), str(lgb_files["csv"]), "--target", "label", "--precision", "fp32",
                 "--out", str(out), *FAST])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    by_name = {v["name"]: v for v in report["variants"]}
    expected_accuracy = float(np.mean((lgb_files["expected"] > 0.5) == lgb_files["y"]))
    assert by_name["native"]["metrics"]["accuracy"] == pytest.approx(expected_accuracy)
    assert by_name["fp32"]["drift"]["max_abs"] < 1e-6  # the ONNX graph was fed the same codes
    assert any("mapped to the codes" in n for n in report["data"]["notes"])
    # QA: the model's note on what the columns may hold repeated the data's note on how they were read
    assert sum("categor" in n for n in report["notes"]) == 1, report["notes"]
    assert len(report["notes"]) == len(set(report["notes"]))
    onnx_model = onnx.load(out / "fp32.onnx")
    stored = {p.key: p.value for p in onnx_model.metadata_props}
    assert json.loads(stored[CATEGORIES_METADATA_KEY]) == [
        {"column": 1, "name": "color", "categories": ["blue", "green", "red"]},
        {"column": 2, "name": "size", "categories": [1, 2, 3]}]
    assert "'color', 'size' take category codes, not values" in onnx_model.doc_string


def test_a_csv_of_codes_keeps_working(lgb_files, tmp_path):
    model = load_model(lgb_files["model"])
    frame = lgb_files["frame"]
    codes = _categorical(frame, {"color": ["blue", "green", "red"], "size": [1, 2, 3]})
    coded = frame.assign(color=codes.color.cat.codes.replace(-1, np.nan), size=codes["size"].cat.codes)
    path = tmp_path / "codes.csv"
    coded.to_csv(path, index=False)
    ds = load_dataset(path, model)
    np.testing.assert_allclose(model.predict_scores(ds.X)[:, 1], lgb_files["expected"], atol=1e-6, rtol=0)
    assert any("'color', 'size' hold numbers, not category values: read as the integer category codes" in n
               for n in ds.notes)


def test_a_dataframe_with_category_dtype_gets_lightgbms_exact_rule(lgb_files):
    model = load_model(lgb_files["model"])
    frame = _categorical(lgb_files["frame"], {"color": ["purple", "red", "green", "blue"], "size": [2, 1, 3]})
    ds = load_dataset(frame, model)
    np.testing.assert_allclose(model.predict_scores(ds.X)[:, 1], _lightgbm_booster().predict(frame), atol=1e-6,
                               rtol=0)


def test_an_unused_category_column_still_takes_its_stored_categories(tmp_path):
    """A constant category column is not split on ('none' in feature_infos) but is in pandas_categorical and in
    the categorical_feature parameter: the lists are tied to the columns through that parameter."""
    frame, y = _frame()
    training = _categorical(frame).assign(const=pd.Categorical(["x"] * len(frame)))
    classifier = lgb.LGBMClassifier(n_estimators=10, num_leaves=8, min_data_per_group=5, cat_smooth=1, verbose=-1,
                                    n_jobs=1).fit(training, y)
    path = tmp_path / "model.txt"
    classifier.booster_.save_model(path)
    model = load_model(path)
    assert model.categorical_features == (1, 2)
    assert [i for i, _ in model.stored_categories.columns] == [1, 2, 3]
    raw = tmp_path / "raw.csv"
    frame.assign(const="x").to_csv(raw, index=False)
    ds = load_dataset(raw, model)
    np.testing.assert_allclose(model.predict_scores(ds.X)[:, 1], classifier.predict_proba(training)[:, 1],
                               atol=1e-6, rtol=0)


def test_small_integer_categories_are_values_when_a_cell_cannot_be_a_code(tmp_path):
    """Stored [1, 2, 3]: a column holding 3 cannot be codes (0..2), so 1, 2, 3 are the values (code 0, 1, 2)."""
    model = model_from_object(_lightgbm_booster())
    path = tmp_path / "d.csv"
    path.write_text("num,color,size\n0.5,red,1\n0.5,red,3\n")
    np.testing.assert_array_equal(load_dataset(path, model).X[:, 2], [0, 2])


@pytest.mark.parametrize(("rows", "fragment"), [
    ("0.5,red,1\n0.5,red,2\n", "holds numbers that are both among the model's categories and valid codes with another meaning, and no "
                           "cell settles which ('1' at data row 1 is category '1', whose code is 0)"),
    ("0.5,red,0\n0.5,red,3\n", "mixes the model's category values (e.g. '3' at data row 2) and category codes"),
    ("0.5,Red,1\n0.5,RED,3\n", "holds none of the model's categories ('blue', 'green', 'red'; e.g. 'Red' at data "
                               "row 1): check the spelling"),
    ("0.5,2,1\n0.5,purple,3\n", "holds category codes (numbers such as '2') and also text that is not one"),
])
def test_ambiguous_or_contradictory_category_columns_are_refused(tmp_path, rows, fragment):
    model = model_from_object(_lightgbm_booster())
    path = tmp_path / "d.csv"
    path.write_text("num,color,size\n" + rows)
    with pytest.raises(InputError, match="categorical column") as err:
        load_dataset(path, model)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_stored_categories_that_cannot_be_tied_to_columns_are_not_guessed(tmp_path):
    """An ordered category trains as a number but is in pandas_categorical too: the file cannot say which
    column each list belongs to, so raw text is refused with that reason (codes still work)."""
    frame, y = _frame()
    training = _categorical(frame).assign(grade=pd.Categorical(frame.color, ordered=True))
    model = model_from_object(lgb.train(PARAMS, lgb.Dataset(training, y), 5))
    assert model.stored_categories.unusable and not model.stored_categories.columns
    path = tmp_path / "d.csv"
    training.head(3).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"non-numeric value 'red'.*as category codes.*stores the categories of 3 "
                                         r"pandas category columns but splits 2 features"):
        load_dataset(path, model)


def _deploy(model, folder):
    """deploy.py as a tuned run writes it (one split-free fp32 configuration), next to its fp32.onnx."""
    from optimizer_core.report import VariantResult
    from optimizer_core.tune import Candidate, deploy_script, deployment_snippet

    (folder / "fp32.onnx").write_bytes(convert(model).SerializeToString())
    variant = VariantResult(name="fp32", precision="fp32", provider_requested="cpu", provider_used="CPU",
                            applicable=True, artifact="fp32.onnx")
    snippet = deployment_snippet(Candidate("fp32 t1", "fp32", "fp32", {"intra_op_threads": 1}), {"fp32": variant},
                                 snippet_lines(model.stored_categories, model.feature_names))
    script = folder / "deploy.py"
    script.write_text(deploy_script(snippet))
    return runpy.run_path(str(script))


def test_deploy_script_maps_values_to_codes_as_the_tool_does(lgb_files, tmp_path):
    deploy = _deploy(load_model(lgb_files["model"]), tmp_path)
    rows = lgb_files["frame"].astype(object).where(lgb_files["frame"].notna(), None).to_numpy().tolist()
    scores = deploy["predict"](deploy["encode"](rows))[:, 1]
    np.testing.assert_allclose(scores, lgb_files["expected"], atol=1e-6, rtol=0)


# --- XGBoost ---------------------------------------------------------------------------------------------


@cache
def _xgboost_classifier() -> xgb.XGBClassifier:
    frame, y = _frame()
    clf = xgb.XGBClassifier(n_estimators=10, max_depth=3, enable_categorical=True, max_cat_to_onehot=1, n_jobs=1)
    return clf.fit(_categorical(frame), y)


def test_xgboost_stored_categories_map_raw_values_as_its_dataframe_path(tmp_path):
    clf = _xgboost_classifier()
    clf.save_model(tmp_path / "model.json")
    model = load_model(tmp_path / "model.json")
    assert model.stored_categories.columns == ((1, ("blue", "green", "red")), (2, (1, 2, 3)))
    frame, _ = _frame(100, seed=2)
    frame.loc[4, "color"] = None
    path = tmp_path / "raw.csv"
    frame.to_csv(path, index=False)
    ds = load_dataset(path, model)
    expected = clf.predict_proba(_categorical(frame))[:, 1]
    np.testing.assert_allclose(model.predict_scores(ds.X)[:, 1], expected, atol=1e-6, rtol=0)
    assert any("as XGBoost does for a DataFrame" in n for n in ds.notes)


def test_xgboost_refuses_a_value_it_was_not_trained_with(tmp_path):
    model = model_from_object(_xgboost_classifier())
    path = tmp_path / "d.csv"
    path.write_text("num,color,size\n0.5,red,1\n0.5,purple,3\n")
    with pytest.raises(InputError, match=r"categorical column 'color' value 'purple' at data row 2 is not one of the "
                                         r"model's categories .*leave the cell empty"):
        load_dataset(path, model)


def test_xgboost_without_stored_categories_refuses_text_and_takes_codes(tmp_path):
    frame, y = _frame()
    codes = _categorical(frame).assign(color=lambda f: f.color.cat.codes, size=lambda f: f["size"].cat.codes)
    booster = xgb.train({"max_depth": 3, "objective": "binary:logistic", "max_cat_to_onehot": 1, "nthread": 1},
                        xgb.DMatrix(codes.to_numpy(float), y, feature_names=list(codes.columns),
                                    feature_types=["q", "c", "c"], enable_categorical=True), 5)
    model = model_from_object(booster)
    assert model.stored_categories.unusable and "stores no category values" in model.stored_categories.unusable
    raw = tmp_path / "raw.csv"
    frame.head(3).to_csv(raw, index=False)
    with pytest.raises(InputError, match=r"non-numeric value 'red'.*as category codes.*stores no category values"):
        load_dataset(raw, model)
    coded = tmp_path / "codes.csv"
    codes.to_csv(coded, index=False)
    ds = load_dataset(coded, model)
    np.testing.assert_array_equal(ds.X, codes.to_numpy(float))


def test_xgboost_deploy_script_refuses_a_value_it_was_not_trained_with(tmp_path):
    clf = _xgboost_classifier()
    deploy = _deploy(model_from_object(clf), tmp_path)
    frame, _ = _frame(20, seed=3)
    scores = deploy["predict"](deploy["encode"](frame.astype(object).to_numpy().tolist()))[:, 1]
    np.testing.assert_allclose(scores, clf.predict_proba(_categorical(frame))[:, 1], atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="'purple' is not one of the model's categories"):
        deploy["encode"]([[0.5, "purple", 1]])


def test_convert_says_the_onnx_takes_codes(lgb_files, tmp_path, capsys):
    out = tmp_path / "model.onnx"
    assert main(["convert", str(lgb_files["model"]), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "note: input columns 'color', 'size' take category codes, not values: code i is the i-th category " \
           "listed in the metadata 'inference_optimizer.categories'" in printed


def test_notes_on_stored_categories_are_said_once():
    from optimizer_core.categories import without_repeated_notes

    model = ["categorical features 'color': the model file stores their categories, so the data may hold the "
             "category values (mapped ...) or their integer category codes", "another model note"]
    data = ["category values mapped to the codes the model takes with the categories stored in the model file, "
            "as LightGBM does for a DataFrame with those categories: 'color'", "another model note"]
    assert without_repeated_notes(model, data) == ["another model note", data[0]]
    assert without_repeated_notes(model, []) == model  # nothing read from data yet: the model's note stays
