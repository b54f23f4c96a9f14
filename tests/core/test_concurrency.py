"""Two dashboard jobs (isolated workers via JobManager) and one CLI run, all at the same time.

Each run gets a model with its own family or feature count and a CSV with its own row count, so a
report that mixed up models, data or outputs would show it. Afterwards nothing temporary is left:
no ``inference-optimizer-job-*`` folders, no ``.out.*`` siblings of the CLI's ``--out``.

Not asserted: that the benchmark windows do not overlap. ``bench_lock.benchmark_lock`` serialises the
timing with an flock, but neither the report nor the job status records when the lock was held
(``report.benchmark`` has ``wall_s`` but no start time; ``JobStatus.started_at``/``finished_at``
cover the whole job), so the windows cannot be compared after the fact. ``test_bench_lock.py``
covers the lock itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optimizer_core.config import OptimizeConfig
from optimizer_core.jobs import JobManager, JobRequest

CONFIG = OptimizeConfig(precisions=("fp32",), batch_sizes=(1, 8), budget_s=1.0)
ROOT = Path(__file__).resolve().parents[2]


def _frame(prefix: str, features: int, rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(rows, features)), columns=[f"{prefix}{i}" for i in range(features)])
    y = (X.iloc[:, 0] + X.iloc[:, 1] > 0).astype(int).to_numpy()
    return X, y


def _onnx_model(estimator, X: pd.DataFrame) -> bytes:
    from skl2onnx import to_onnx

    options = {id(estimator): {"zipmap": False}}
    return to_onnx(estimator, X.to_numpy(dtype=np.float32)[:1], options=options).SerializeToString()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, dict]:
    """Three families, feature counts and row counts: XGBoost classifier 4 features/30 rows, LightGBM
    regressor 6/50, ONNX logistic regression (skl2onnx) 5/70."""
    import lightgbm as lgb
    import xgboost as xgb
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("concurrency")
    specs = {}
    X, y = _frame("a", 4, 30, 1)
    xgb.XGBClassifier(n_estimators=3, max_depth=2, n_jobs=1).fit(X, y).save_model(folder / "a.json")
    specs["a"] = {"model": folder / "a.json", "family": "xgboost", "features": 4, "rows": 30,
                  "csv": X.assign(label=y).to_csv(index=False).encode()}

    X, y = _frame("b", 6, 50, 2)
    lgb.LGBMRegressor(n_estimators=3, verbose=-1).fit(X, y.astype(float)).booster_.save_model(str(folder / "b.txt"))
    specs["b"] = {"model": folder / "b.txt", "family": "lightgbm", "features": 6, "rows": 50,
                  "csv": X.assign(label=y).to_csv(index=False).encode()}

    X, y = _frame("c", 5, 70, 3)
    (folder / "c.onnx").write_bytes(_onnx_model(LogisticRegression().fit(X, y), X))
    (folder / "c.csv").write_bytes(X.assign(label=y).to_csv(index=False).encode())
    specs["c"] = {"model": folder / "c.onnx", "family": "onnx", "features": 5, "rows": 70,
                  "csv_path": folder / "c.csv"}
    return specs


def _request(spec: dict, name: str) -> JobRequest:
    return JobRequest(model_bytes=spec["model"].read_bytes(), model_name=spec["model"].name,
                      csv_bytes=spec["csv"], csv_name=f"{name}.csv", config=CONFIG, target="label")


def _check_report(report: dict, spec: dict) -> None:
    assert report["model"]["family"] == spec["family"]
    assert report["model"]["n_features"] == spec["features"]
    assert report["data"]["rows"] == spec["rows"]
    assert [v["name"] for v in report["variants"]] == ["native", "fp32"]
    fp32 = report["variants"][1]
    assert fp32["drift"]["rows"] == spec["rows"]
    assert fp32["drift"]["max_abs"] <= 1e-3  # its own native model, not another run's


def test_two_jobs_and_a_cli_run_at_once(runs, tmp_path, monkeypatch):
    job_tmp = tmp_path / "tmp"  # this test's own temp folder: other processes' job folders stay out of it
    job_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(job_tmp))
    assert tempfile.gettempdir() == str(job_tmp)
    cli_tmp = tmp_path / "cli-tmp"
    cli_tmp.mkdir()
    out = tmp_path / "results" / "out"

    manager = JobManager()
    job_a = manager.submit(_request(runs["a"], "a"))
    job_b = manager.submit(_request(runs["b"], "b"))
    env = dict(os.environ, TMPDIR=str(cli_tmp), PYTHONPATH=str(ROOT))
    cli = subprocess.Popen(
        [sys.executable, "-m", "optimizer_core.cli", "run", str(runs["c"]["model"]), str(runs["c"]["csv_path"]),
         "--target", "label", "--precision", "fp32", "--batch-sizes", "1,8", "--budget-s", "1",
         "--out", str(out)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )

    seen_job_dirs: set[str] = set()  # the job folders exist while the jobs run, in the temp folder
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        seen_job_dirs |= {p.name for p in job_tmp.glob("inference-optimizer-job-*")}
        states = [manager.get(j).state for j in (job_a, job_b)]
        if all(s in ("done", "failed") for s in states) and cli.poll() is not None:
            break
        time.sleep(0.05)
    stdout, stderr = cli.communicate(timeout=max(1.0, deadline - time.monotonic()))
    status_a, status_b = manager.wait(job_a, 1), manager.wait(job_b, 1)

    assert status_a.state == "done", status_a.message
    assert status_b.state == "done", status_b.message
    assert cli.returncode == 0, stderr[-2000:]
    # the two workers really ran side by side (two slots: both start at once)
    assert max(status_a.started_at, status_b.started_at) < min(status_a.finished_at, status_b.finished_at)

    report_a, report_b = json.loads(status_a.report.to_json()), json.loads(status_b.report.to_json())
    _check_report(report_a, runs["a"])
    _check_report(report_b, runs["b"])
    assert report_a["data"]["path"] == "a.csv" and report_b["data"]["path"] == "b.csv"
    assert len({report_a["run_id"], report_b["run_id"]}) == 2

    report_c = json.loads((out / "report.json").read_text(encoding="utf-8"))
    _check_report(report_c, runs["c"])
    assert report_c["run_id"] not in (report_a["run_id"], report_b["run_id"])
    assert {"report.json", "report.html", "fp32.onnx"} <= {p.name for p in out.iterdir()}
    assert f"wrote to {out}/: " in stdout and "report.json" in stdout

    # each job's artifacts are its own model's: the fp32 ONNX input has that model's feature count
    import onnx

    for status, spec in ((status_a, runs["a"]), (status_b, runs["b"])):
        proto = onnx.load_from_string(status.report.artifacts["fp32.onnx"])
        dims = proto.graph.input[0].type.tensor_type.shape.dim
        assert dims[1].dim_value == spec["features"]

    # nothing temporary left behind
    assert len(seen_job_dirs) == 2, seen_job_dirs
    assert not list(job_tmp.glob("inference-optimizer-job-*"))
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]
    # ONNX Runtime itself writes $TMPDIR/.ses (a session id) when imported; anything else is ours
    assert not [p.name for p in cli_tmp.iterdir() if p.name != ".ses"]
