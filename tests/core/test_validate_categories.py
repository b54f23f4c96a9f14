"""QA round 1, item 5: validate and models that store their categories. Data whose categorical columns hold the
integer codes is validated (a note says so) with the run's numbers; data holding the category values is refused
in one line that says how to write the codes; a model whose stored categories are numbers (a number could be a
category or a code) is refused before any work, as are blocks a run would refuse."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from optimizer_core import convert, load_model, validate
from optimizer_core.cli import main
from optimizer_core.errors import InputError, UnsupportedModelError


def _frame(n: int = 600, seed: int = 0, grades: tuple = ("red", "green", "blue", "zz")) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"color": pd.Categorical(rng.choice(list(grades), n)),
                          "size": pd.Categorical(rng.choice(["S", "M", "L"], n)),
                          "x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    y = (frame["color"].isin(list(grades[:2])) ^ (frame["x1"] > 0.3) | (frame["size"] == "L")).astype(int).to_numpy()
    return frame, y


@pytest.fixture(scope="module")
def cat(tmp_path_factory):
    folder = tmp_path_factory.mktemp("validate-categories")
    frame, y = _frame()
    model = lgb.LGBMClassifier(n_estimators=20, verbose=-1, min_child_samples=5, n_jobs=1).fit(frame, y)
    paths = {"model": folder / "model.txt", "onnx": folder / "model.onnx"}
    model.booster_.save_model(paths["model"])
    paths["onnx"].write_bytes(convert(load_model(paths["model"])).SerializeToString())
    codes = frame.assign(color=frame["color"].cat.codes, size=frame["size"].cat.codes, label=y)
    codes.loc[5, "color"] = -1  # pandas' code for a missing value: NaN in a CSV, as LightGBM reads it
    codes["color"] = codes["color"].astype(float).where(codes["color"] >= 0)
    paths["codes_csv"] = folder / "codes.csv"
    codes.to_csv(paths["codes_csv"], index=False)
    paths["codes_parquet"] = folder / "codes.parquet"
    codes.to_parquet(paths["codes_parquet"], row_group_size=100, index=False)
    raw = frame.astype({"color": str, "size": str}).assign(label=y)
    paths["raw_csv"] = folder / "raw.csv"
    raw.to_csv(paths["raw_csv"], index=False)
    late = codes.astype({"color": object})
    late.loc[450, "color"] = "green"  # a value in the fourth block of 128 rows, codes elsewhere
    paths["late_csv"] = folder / "late.csv"
    late.to_csv(paths["late_csv"], index=False)
    paths["late_parquet"] = folder / "late.parquet"
    late.astype({"color": str}).replace({"nan": None}).to_parquet(paths["late_parquet"], row_group_size=100,
                                                                  index=False)
    paths.update(frame=frame, y=y, model_object=model, categories=list(frame["color"].cat.categories))
    return paths


@pytest.mark.parametrize("data", ["codes_csv", "codes_parquet"])
def test_codes_are_validated_with_a_note_and_the_native_models_numbers(cat, data):
    result = validate(cat["model"], cat["onnx"], [cat[data]], target="label", engine="local", batch_rows=128)
    assert result.rows == 600 and result.drift.max_abs < 1e-5
    assert any("categorical columns 'color', 'size' are read as integer category codes" in n for n in result.notes)
    frame = cat["frame"].copy()
    frame.loc[5, "color"] = np.nan
    expected = roc_auc_score(cat["y"], cat["model_object"].predict_proba(frame)[:, 1])
    assert result.metrics["native"]["roc_auc"] == pytest.approx(expected, abs=1e-4)


def test_category_values_are_refused_with_the_codes_to_write(cat, capsys):
    code = None
    try:
        code = main(["validate", str(cat["model"]), str(cat["onnx"]), str(cat["raw_csv"]), "--engine", "local",
                     "--quiet"])
    except SystemExit as e:
        code = e.code
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, lines
    line = lines[0]
    first = cat["frame"]["color"].astype(str)[0]
    assert f"categorical column 'color' holds category values (e.g. {first!r} at data row 1)" in line
    listing = ", ".join(f"{c!r}={i}" for i, c in enumerate(cat["categories"]))
    assert f"write each value as its code, its position in the model's stored list ({listing}" in line
    assert "inference_optimizer.categories" in line and "inference-optimizer run" in line


@pytest.mark.parametrize("data", ["late_csv", "late_parquet"])
def test_a_block_with_values_among_codes_is_refused_naming_its_row_in_the_file(cat, data):
    """Row 451 of the file (in the fourth block) holds 'green' where the other rows hold codes: a run refuses the
    mix, and so does validate, naming the row counted from the file's start."""
    with pytest.raises(InputError) as refused:
        validate(cat["model"], cat["onnx"], [cat[data]], target="label", engine="local", batch_rows=128)
    message = str(refused.value)
    assert "'color'" in message and "data row 451" in message, message
    assert "validate takes integer codes only" in message or "holds category values" in message


def test_numeric_stored_categories_are_refused_before_any_work(tmp_path):
    frame, y = _frame(grades=(10, 20, 30, 40))
    model = lgb.LGBMClassifier(n_estimators=5, verbose=-1, min_child_samples=5, n_jobs=1).fit(frame, y)
    model.booster_.save_model(tmp_path / "num.txt")
    loaded = load_model(tmp_path / "num.txt")
    (tmp_path / "num.onnx").write_bytes(convert(loaded).SerializeToString())
    with pytest.raises(UnsupportedModelError, match=r"stores categories of 'color' that are numbers \(10, 20, 30, "
                                                    r"\.\.\.\): a number in the data could be one of those categories "
                                                    r"or a category code.*inference-optimizer run"):
        validate(tmp_path / "num.txt", tmp_path / "num.onnx", [tmp_path / "missing.csv"], engine="local")
