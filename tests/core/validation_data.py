"""Small models and data files for the validate tests (local and Ray): trained here, nothing downloaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def _save_onnx(model_path: Path, onnx_path: Path) -> None:
    from optimizer_core import convert, load_model

    onnx_path.write_bytes(convert(load_model(model_path)).SerializeToString())


def classifier_files(folder: Path) -> dict:
    """An XGBoost binary classifier on 8 breast-cancer features, its ONNX file, and its 569 rows split into
    a Parquet file (row groups of 64), a CSV and a second Parquet file, plus all of them in one CSV."""
    import xgboost as xgb
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    X = data.data.rename(columns=lambda c: c.replace(" ", "_")).iloc[:, :8]
    y = data.target
    model = xgb.XGBClassifier(n_estimators=12, max_depth=3, n_jobs=1).fit(X, y)
    paths = {"model": folder / "model.json", "onnx": folder / "model.onnx"}
    model.save_model(paths["model"])
    _save_onnx(paths["model"], paths["onnx"])
    frame = X.assign(label=y.to_numpy())
    paths["a"] = folder / "a.parquet"
    frame.iloc[:300].to_parquet(paths["a"], row_group_size=64, index=False)
    paths["b"] = folder / "b.csv"
    frame.iloc[300:450][list(reversed(frame.columns))].to_csv(paths["b"], index=False)  # other column order
    paths["c"] = folder / "c.parquet"
    frame.iloc[450:].to_parquet(paths["c"], index=False)
    paths["all"] = folder / "all.csv"
    frame.to_csv(paths["all"], index=False)
    paths["frame"] = frame
    return paths


def regressor_files(folder: Path) -> dict:
    """An XGBoost regressor whose predictions span orders of magnitude (the relative drift's case), its ONNX
    file, the rows in two Parquet files and in one CSV."""
    import xgboost as xgb

    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(400, 5)), columns=[f"x{i}" for i in range(5)])
    y = np.exp(2.5 * X["x0"]) * 100 + X["x1"]
    model = xgb.XGBRegressor(n_estimators=20, max_depth=4, n_jobs=1).fit(X, y)
    paths = {"model": folder / "reg.json", "onnx": folder / "reg.onnx"}
    model.save_model(paths["model"])
    _save_onnx(paths["model"], paths["onnx"])
    frame = X.assign(y=y)
    paths["a"] = folder / "reg-a.parquet"
    frame.iloc[:250].to_parquet(paths["a"], row_group_size=50, index=False)
    paths["b"] = folder / "reg-b.parquet"
    frame.iloc[250:].to_parquet(paths["b"], index=False)
    paths["all"] = folder / "reg-all.csv"
    frame.to_csv(paths["all"], index=False, float_format="%.17g")
    return paths
