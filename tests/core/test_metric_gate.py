"""QA round 1, item 2: `--max-metric-loss` on its own gates. Without `--max-drift` the drift tolerance is the
default the run uses; a variant that drifts more and loses more than the metric tolerance fails the gate (exit 1),
and the gate line names it and its metric loss."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from optimizer_core.cli import main


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    import xgboost as xgb

    data = load_breast_cancer(as_frame=True)
    X = data.data.rename(columns=lambda c: c.replace(" ", "_")).iloc[:, :8].astype(np.float32)
    y = data.target
    model = xgb.XGBClassifier(n_estimators=40, max_depth=2, learning_rate=0.1, n_jobs=1, random_state=0).fit(X, y)
    folder = tmp_path_factory.mktemp("metric-gate")
    model.save_model(folder / "model.json")
    X.assign(label=y.to_numpy()).to_csv(folder / "test.csv", index=False)
    return folder


def _base(folder) -> list[str]:
    return ["run", str(folder / "model.json"), str(folder / "test.csv"), "--target", "label", "--precision", "fp32",
            "--trees", "25%", "--batch-sizes", "1", "--budget-s", "1", "--no-history", "--quiet"]


def test_max_metric_loss_alone_fails_the_gate_naming_the_variant_and_its_loss(case, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([*_base(case), "--max-metric-loss", "0", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    variants = {v["name"]: v for v in json.loads((out / "report.json").read_text())["variants"]}
    loss = -variants["rounds-10"]["metric_delta"]
    assert loss > 0 and variants["rounds-10"]["drift"]["max_abs"] > 1e-4
    (line,) = [line for line in err.splitlines() if line.startswith("gate failed")]
    assert re.search(rf"rounds-10 drifts \S+ \(absolute\) and loses {loss:.4g} of ROC AUC", line), line
    assert line.endswith("(over the default drift tolerance 0.0001 and --max-metric-loss 0)")
    assert "fp32" not in line  # within the default drift tolerance


def test_max_metric_loss_alone_passes_within_the_tolerance(case, capsys):
    assert main([*_base(case), "--max-metric-loss", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "gate passed: fp32 within the default drift tolerance 0.0001; rounds-10 (" in out
    assert "within --max-metric-loss 0.5 (roc_auc delta)" in out


def test_without_either_tolerance_there_is_no_gate(case, capsys):
    assert main(_base(case)) == 0
    captured = capsys.readouterr()
    assert "gate" not in captured.out and "gate" not in captured.err
