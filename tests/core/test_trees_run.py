"""Truncated ensembles through the whole run: API fields, verification, deploy snippets, the CLI flags, the
gate and the table."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from optimizer_core import OptimizeConfig, optimize
from optimizer_core.cli import main
from optimizer_core.errors import ConfigError

FAST = ["--budget-s", "1", "--batch-sizes", "1,8", "--quiet"]


@pytest.fixture(scope="module")
def xgb_case(tmp_path_factory):
    import xgboost as xgb

    data = load_breast_cancer(as_frame=True)
    X = data.data.rename(columns=lambda c: c.replace(" ", "_")).iloc[:, :10].astype(np.float32)
    X = X.mask(np.random.default_rng(0).random(X.shape) < 0.05)  # missing values, routed as XGBoost does
    y = data.target
    model = xgb.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1, random_state=0).fit(X, y)
    folder = tmp_path_factory.mktemp("trees")
    model.save_model(folder / "model.json")
    X.assign(label=y.to_numpy()).to_csv(folder / "test.csv", index=False)
    return model, X.assign(label=y.to_numpy()), folder


def test_api_builds_verified_truncated_variants_with_their_fields(xgb_case):
    model, frame, _ = xgb_case
    config = OptimizeConfig(precisions=("fp32",), trees=("25%", "50%"), batch_sizes=(1, 8), budget_s=1)
    report = optimize(model, frame, config, target="label")
    data = json.loads(report.to_json())
    by_name = {v["name"]: v for v in data["variants"]}
    assert list(by_name) == ["native", "fp32", "rounds-5", "rounds-10"]
    for full in ("native", "fp32"):
        assert by_name[full]["trees_kept"] is None and by_name[full]["trees_total"] is None
    # the cut ensembles are TreeEnsemble graphs, like the full fp32 one; the native model has no graph
    assert {name: v["graph"] for name, v in by_name.items()} == {
        "native": None, "fp32": "tree-ensemble", "rounds-5": "tree-ensemble", "rounds-10": "tree-ensemble"}
    cut = by_name["rounds-10"]
    assert (cut["trees_kept"], cut["trees_total"], cut["precision"]) == (10, 20, "fp32")
    assert cut["verification"]["passed"] is True and cut["verification"]["max_abs"] <= 1e-5
    assert cut["verification"]["reference"] == "XGBoost's own iteration_range=(0, 10)"
    # drift is against the full native model: a real difference, unlike fp32's rounding
    assert cut["drift"]["max_abs"] > 1e-3 > by_name["fp32"]["drift"]["max_abs"]
    assert cut["metrics"]["roc_auc"] > 0.9
    assert cut["metric_delta"] == pytest.approx(cut["metrics"]["roc_auc"] - by_name["native"]["metrics"]["roc_auc"])
    assert cut["latency"] and cut["size_bytes"] < by_name["fp32"]["size_bytes"]
    assert 'InferenceSession("rounds-10.onnx"' in cut["deploy"]["onnx"]
    assert "model.predict_proba(X, iteration_range=(0, 10))" in cut["deploy"]["native"]
    assert "rounds-10.onnx" in report.artifacts
    notes = report.notes
    assert any(n.startswith("verification: rounds-5 matches XGBoost's own iteration_range=(0, 5)") for n in notes)
    # the full fp32 variant is still verified against the full model, the cut ones are not held to it
    assert not any("rounds-" in n and "more than the expected" in n for n in notes)


def test_metric_tolerance_needs_a_target(xgb_case):
    model, frame, _ = xgb_case
    with pytest.raises(ConfigError, match="--max-metric-loss .* needs the true values"):
        optimize(model, frame.drop(columns="label"), OptimizeConfig(precisions=("fp32",), max_metric_loss=0.01,
                                                                    budget_s=1))


def test_a_model_without_trees_says_why_and_runs_the_rest():
    from sklearn.linear_model import LogisticRegression

    data = load_breast_cancer()
    X = data.data[:, :5]
    model = LogisticRegression(max_iter=5000).fit(X, data.target)
    report = optimize(model, X, OptimizeConfig(precisions=("fp32",), trees=("50%",), batch_sizes=(1,), budget_s=1))
    assert [v.name for v in report.variants] == ["native", "fp32"]
    assert [v.graph for v in report.variants] == [None, None]  # no tree ensemble in either graph
    assert any(n.startswith("trees: no truncated variants: ") for n in report.notes)


def test_cli_trees_gate_and_table(xgb_case, capsys):
    _, _, folder = xgb_case
    base = ["run", str(folder / "model.json"), str(folder / "test.csv"), "--target", "label", "--precision", "fp32",
            "--trees", "50%", "--max-drift", "1e-4", "--no-history", *FAST]
    assert main(base) == 1  # rounds-10 drifts from the full model far more than 1e-4
    captured = capsys.readouterr()
    assert "gate failed: rounds-10 drifts" in captured.err
    assert main([*base, "--max-metric-loss", "1"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("variant"))
    assert "trees" in header and "Δ roc_auc" in header
    row = next(line for line in out.splitlines() if line.startswith("rounds-10"))
    assert "10/20" in row
    assert "gate passed: fp32 within --max-drift 0.0001; rounds-10 (" in out
    assert "within --max-metric-loss 1 (roc_auc delta)" in out


@pytest.mark.parametrize("args, fragment", [(["--trees", "abc"], "--trees: 'abc' is not a whole number"),
                                            (["--trees", "0%"], "--trees: '0%' is out of range")])
def test_cli_bad_trees_is_one_line(xgb_case, capsys, args, fragment):
    _, _, folder = xgb_case
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(folder / "model.json"), str(folder / "test.csv"), *args, *FAST])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and fragment in err


def test_cli_metric_loss_without_target_is_one_line(xgb_case, capsys):
    _, _, folder = xgb_case
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(folder / "model.json"), str(folder / "test.csv"), "--max-metric-loss", "0.01",
              "--no-history", *FAST])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--max-metric-loss" in err and "--target" in err
