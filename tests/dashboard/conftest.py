"""Fixtures for the dashboard tests: tiny models of every family, CSVs, and AppTest helpers."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
JOB_TIMEOUT_S = 180
FAST = {"budget": 5, "batch_sizes": [1, 16]}


@pytest.fixture(scope="session")
def breast_cancer():
    data = load_breast_cancer(as_frame=True)
    X = data.data.iloc[:, :6].rename(columns=lambda c: c.replace(" ", "_"))
    return X, data.target


@pytest.fixture(scope="session")
def csv_bytes(breast_cancer) -> bytes:
    X, y = breast_cancer
    return X.iloc[:80].assign(label=y.iloc[:80].to_numpy()).to_csv(index=False).encode()


@pytest.fixture(scope="session")
def model_files(breast_cancer, tmp_path_factory) -> dict[str, tuple[str, bytes]]:
    """One tiny model per family, as (file name, bytes) the way a user would upload it."""
    import lightgbm as lgb
    import skops.io as sio
    import xgboost as xgb
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = breast_cancer
    folder = tmp_path_factory.mktemp("dashboard-models")
    files: dict[str, tuple[str, bytes]] = {}

    xgb.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1, random_state=0).fit(X, y).save_model(
        folder / "m.json"
    )
    files["xgboost"] = ("model.json", (folder / "m.json").read_bytes())

    booster = lgb.LGBMRegressor(n_estimators=5, num_leaves=4, verbose=-1, random_state=0).fit(
        X, y.astype(float)
    )
    booster.booster_.save_model(str(folder / "m.txt"))
    files["lightgbm"] = ("model.txt", (folder / "m.txt").read_bytes())

    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    files["sklearn"] = ("model.skops", sio.dumps(pipe))

    logreg = LogisticRegression(max_iter=2000).fit(X.to_numpy(np.float32), y)
    onnx_model = to_onnx(logreg, X.to_numpy(np.float32)[:1], options={"zipmap": False}, target_opset=17)
    files["onnx"] = ("model.onnx", onnx_model.SerializeToString())

    buffer = io.BytesIO()
    pickle.dump(logreg, buffer)
    files["pickle"] = ("model.pkl", buffer.getvalue())
    return files


@pytest.fixture
def history_db(tmp_path, monkeypatch) -> Path:
    """A fresh history database for one test (the app reads the variable on every run)."""
    path = tmp_path / "history.db"
    monkeypatch.setenv("INFERENCE_OPTIMIZER_HISTORY_DB", str(path))
    monkeypatch.setenv("INFERENCE_OPTIMIZER_ALLOW_PICKLE", "0")
    return path


def new_app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(APP, default_timeout=90)


def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def assert_clean(at) -> None:
    """The run raised nothing: no st.exception element, no traceback text anywhere."""
    assert not at.exception, [e.value for e in at.exception]
    for element in (*at.error, *at.markdown, *at.caption):
        assert "Traceback" not in str(element.value)


def widget(collection, label: str):
    """The widget whose label starts with ``label`` (keys of some widgets depend on the file hash)."""
    found = [w for w in collection if str(w.label).startswith(label)]
    assert found, f"no widget labelled {label!r}: {[w.label for w in collection]}"
    return found[0]


def upload(at, model: tuple[str, bytes] | None, csv: tuple[str, bytes] | None):
    if model is not None:
        widget(at.file_uploader, "Model file").upload(model[0], model[1])
    if csv is not None:
        widget(at.file_uploader, "Test data").upload(csv[0], csv[1], "text/csv")
    return at.run()


def start_run(
    at,
    *,
    precisions: list[str] | None = None,
    budget: int = FAST["budget"],
    batch_sizes: list[int] = FAST["batch_sizes"],
) -> str:
    """Set a small run up, press Run, and return the job id the page submitted."""
    if precisions is not None:
        widget(at.multiselect, "Precisions").set_value(precisions)
    at.slider(key="budget").set_value(budget)
    at.text_input(key="batch-sizes").input(", ".join(str(b) for b in batch_sizes))
    at.button(key="run").click()
    at.run()
    assert_clean(at)
    assert not at.error, texts(at.error)
    job_id = at.session_state["io_active_job"]
    assert job_id
    return job_id


def wait_for_job(at, job_id: str, timeout_s: float = JOB_TIMEOUT_S):
    """Poll as the page does (the job runs in a worker process), then rerun to render the outcome."""
    from optimizer_core import jobs

    status = jobs.get_manager().wait(job_id, timeout_s)
    at.run()
    assert_clean(at)
    return status


class InstantJobs:
    """A stand-in for the worker pool: every submitted job is done at once, with a synthetic report. For
    what the page shows around results; the real runs are tested in test_optimize_page.py."""

    def __init__(self) -> None:
        self.requests: dict[str, object] = {}
        self._done: dict[str, object] = {}

    def submit(self, request) -> str:
        import dataclasses
        import uuid

        from optimizer_core.jobs import JobStatus
        from tests.core.report_factory import make_report

        job_id = uuid.uuid4().hex[:12]
        self.requests[job_id] = request
        report = dataclasses.replace(make_report("binary"), run_id=job_id)
        self._done[job_id] = JobStatus(job_id, "done", stage="done", fraction=1.0, report=report)
        return job_id

    def get(self, job_id: str):
        return self._done.get(job_id)

    def cancel(self, job_id: str) -> None:
        pass


@pytest.fixture
def instant_jobs(monkeypatch, history_db) -> InstantJobs:
    from optimizer_core import jobs

    manager = InstantJobs()
    monkeypatch.setattr(jobs, "get_manager", lambda: manager)
    return manager
