"""The Optimize page through Streamlit's AppTest: demo and uploads run end to end in the job worker,
mistakes are one-line st.error messages, never exceptions."""

from __future__ import annotations

import time

import pyarrow
import pytest

from optimizer_core import jobs
from optimizer_core.history import HistoryStore
from optimizer_core.views.tables import tuning_table
from tests.dashboard.conftest import (
    JOB_TIMEOUT_S,
    assert_clean,
    new_app,
    start_run,
    texts,
    upload,
    wait_for_job,
    widget,
)

HEADLINE = ["Speedup at batch 1", "Best throughput", "Size reduction", "Largest drift", "Label flips"]
TABS = ["Latency", "Throughput", "Size", "Drift", "Trade-offs", "Details"]


def _poll_until_done(at, job_id: str, timeout_s: float = JOB_TIMEOUT_S):
    """Rerun the page while the worker runs, as the st.fragment poller does in a browser."""
    deadline = time.monotonic() + timeout_s
    saw_progress = False
    while time.monotonic() < deadline:
        status = jobs.get_manager().get(job_id)
        if status.state in ("done", "failed"):
            return wait_for_job(at, job_id), saw_progress
        at.run()
        assert_clean(at)
        saw_progress |= any(
            s.label.startswith(("Running", "Waiting")) and s.icon == "spinner" for s in at.get("status")
        )
        time.sleep(1.0)
    pytest.fail(f"job {job_id} did not finish within {timeout_s} s")


def _assert_results(at, variants: list[str], configurations: tuple = ()):
    assert [m.label for m in at.metric] == HEADLINE
    assert all(m.value for m in at.metric)
    assert [t.label for t in at.tabs] == TABS
    downloads = [b.label for b in at.get("download_button")]
    assert {"report.html", "report.json", "drift.csv"} <= set(downloads), downloads
    for name in variants:
        assert f"{name}.onnx" in downloads, downloads
    # The variant table lists every variant (the native configurations, "native t1", right under native), with
    # what each one is below it
    frames = [df.value for df in at.dataframe]
    table = next(f for f in frames if "precision" in f.columns and "applies" in f.columns)
    assert list(table["variant"]) == ["native", *[c.name for c in configurations], *variants]
    assert any(m.startswith("- **native**: ") for m in texts(at.markdown))


def test_opens_ready_to_run_the_demo(history_db):
    at = new_app().run()
    assert_clean(at)
    assert not at.error, texts(at.error)
    assert any("Demo ready" in s for s in texts(at.success))
    run = at.button(key="run")
    assert run.label == "Run" and not run.disabled
    assert widget(at.selectbox, "Target column").value == "target"
    assert any("Pickle/joblib files are refused" in c for c in texts(at.caption))
    # precision applicability is explained before the run, for this model
    assert any(c.startswith("Applies to this model: **fp32**") for c in texts(at.caption))
    not_applicable = [e for e in at.expander if e.label.startswith("Not applicable to this model")]
    assert not_applicable and "int8" in not_applicable[0].label
    assert "- **int8**: not applicable — " in "\n".join(texts(not_applicable[0].markdown))


def test_demo_runs_end_to_end_and_is_saved_to_history(history_db):
    at = new_app().run()
    job_id = start_run(at)
    status, saw_progress = _poll_until_done(at, job_id)
    assert status.state == "done", status.message
    assert saw_progress
    applicable = [v.name for v in status.report.variants if v.applicable and v.precision != "native"]
    _assert_results(at, applicable, status.report.native_configurations)
    from optimizer_core.tradeoffs import tradeoff_points

    # the XGBoost demo is a tree ensemble: the default "trees kept" sweep gives its Trade-offs tab a frontier
    assert [v.trees_kept for v in status.report.variants if v.trees_kept] == [50, 100, 150]
    for batch in (1, 16):
        assert len(tradeoff_points(status.report, batch)) >= 4
    assert any("Recommendation" in m for m in texts(at.markdown))
    runs = HistoryStore(history_db).list_runs()
    assert [r.run_id for r in runs] == [status.report.run_id]
    assert runs[0].model_name.startswith("xgboost-breast-cancer")
    # a widget click afterwards keeps the results on the page (they live in session state)
    at.selectbox(key=f"job-{job_id}-lat-batch").set_value(16)
    at.run()
    assert_clean(at)
    assert [m.label for m in at.metric] == HEADLINE
    assert len(HistoryStore(history_db).list_runs()) == 1  # saved once
    saved = f"Saved to History as run `{runs[0].run_id}` · [shareable link](./run?run={runs[0].run_id})"
    assert saved in texts(at.caption)
    # a reload (a new session on the same address, ?job=ID) shows the finished job's results again
    assert at.query_params["job"] == job_id
    reloaded = new_app()
    reloaded.query_params["job"] = job_id
    reloaded.run()
    assert_clean(reloaded)
    assert [m.label for m in reloaded.metric] == HEADLINE
    assert saved in texts(reloaded.caption)
    assert len(HistoryStore(history_db).list_runs()) == 1


def test_demo_button_switches_demo(history_db):
    at = new_app().run()
    at.button(key="demo-mlp").click()
    at.run()
    assert_clean(at)
    assert any("MLP" in s for s in texts(at.success))


@pytest.mark.parametrize("family", ["xgboost", "lightgbm", "sklearn", "onnx"])
def test_upload_runs_each_model_family(family, model_files, csv_bytes, history_db):
    at = upload(new_app().run(), model_files[family], ("test.csv", csv_bytes))
    assert_clean(at)
    assert not at.error, texts(at.error)
    assert not any("Demo ready" in s for s in texts(at.success))
    assert widget(at.selectbox, "Target column").value == "label"
    job_id = start_run(at, precisions=["fp32"])
    status = wait_for_job(at, job_id)
    assert status.state == "done", status.message
    assert status.report.model["family"] == family
    truncated = [v.name for v in status.report.variants if v.trees_kept is not None]
    # tree ensembles get the "trees kept" default sweep (25/50/75% of the rounds); other families none
    assert bool(truncated) == (family in ("xgboost", "lightgbm"))
    _assert_results(at, ["fp32", *truncated], status.report.native_configurations)
    assert status.report.variant("fp32").drift.max_abs <= 1e-4


def test_a_running_job_can_be_cancelled(model_files, csv_bytes, history_db):
    at = upload(new_app().run(), model_files["onnx"], ("test.csv", csv_bytes))
    job_id = start_run(at, precisions=["fp32"], budget=300)
    assert at.button(key="run").disabled  # one run at a time per session
    at.button(key=f"cancel-{job_id}").click()
    at.run()
    status = wait_for_job(at, job_id, timeout_s=60)
    assert status.state == "failed" and status.message == "cancelled"
    assert texts(at.warning) == ["The run was cancelled."]
    assert not at.error and not at.button(key="run").disabled
    assert HistoryStore(history_db).list_runs() == []


def test_bad_model_file_is_one_line_error(csv_bytes, history_db):
    at = upload(new_app().run(), ("model.json", b"this is not a model"), ("test.csv", csv_bytes))
    assert_clean(at)
    errors = texts(at.error)
    assert len(errors) == 1 and errors[0].startswith("model.json is not a recognised model format"), errors
    assert "\n" not in errors[0]
    assert not [b for b in at.button if b.key == "run"]


def test_bad_csv_is_one_line_error(model_files, history_db):
    at = upload(new_app().run(), model_files["xgboost"], ("test.csv", b""))
    assert_clean(at)
    errors = texts(at.error)
    assert len(errors) == 1 and "empty" in errors[0], errors


def test_csv_that_fails_in_the_worker_is_one_line(model_files, breast_cancer, history_db):
    X, _ = breast_cancer
    frame = X.iloc[:20].astype(object)
    frame.iloc[5, 2] = "n/a?"  # a text cell in a feature column: only reading the whole file finds it
    at = upload(new_app().run(), model_files["xgboost"], ("text-cell.csv", frame.to_csv(index=False).encode()))
    assert not at.error, texts(at.error)
    job_id = start_run(at, precisions=["fp32"])
    status = wait_for_job(at, job_id)
    assert status.state == "failed"
    errors = texts(at.error)
    assert len(errors) == 1 and errors[0].startswith("The run failed:"), errors
    assert "text-cell.csv" in errors[0] and "\n" not in errors[0]
    assert HistoryStore(history_db).list_runs() == []


def test_pickle_is_refused_unless_the_server_allows_it(model_files, csv_bytes, history_db, monkeypatch):
    at = upload(new_app().run(), model_files["pickle"], ("test.csv", csv_bytes))
    assert_clean(at)
    errors = texts(at.error)
    assert len(errors) == 1 and "--allow-pickle" in errors[0], errors

    monkeypatch.setenv("INFERENCE_OPTIMIZER_ALLOW_PICKLE", "1")
    at = upload(new_app().run(), model_files["pickle"], ("test.csv", csv_bytes))
    assert_clean(at)
    assert not at.error, texts(at.error)
    assert any("started with --allow-pickle" in c for c in texts(at.caption))
    assert any("isolated worker" in c for c in texts(at.caption))
    assert not at.button(key="run").disabled


def test_unavailable_providers_are_listed_with_their_reason(history_db):
    at = new_app().run()
    assert_clean(at)
    providers = widget(at.multiselect, "Execution providers")
    assert "cuda" not in providers.options
    assert providers.value == ["auto"]
    listed = "\n".join(texts(at.markdown))
    assert "**cuda**: not in this onnxruntime build" in listed
    expanders = [e.label for e in at.expander]
    assert any(label.startswith("Not available in this install") for label in expanders)


def test_auto_tune_shows_the_per_batch_recommendation_and_snippet(history_db):
    at = new_app().run()
    at.toggle(key="tune").set_value(True)
    job_id = start_run(at, batch_sizes=[1, 16])
    status, _ = _poll_until_done(at, job_id)
    assert status.state == "done", status.message
    assert status.report.tuning and status.report.tuning["candidates"]
    tables = [df.value for df in at.dataframe]
    tuning = next(t for t in tables if "recommended" in t.columns)
    assert list(tuning["batch size"]) == [1, 16]
    # the settings columns are text: numbers mixed with "-" failed Arrow conversion (a server-log traceback)
    pyarrow.Table.from_pandas(tuning_table(status.report))
    assert any("ort.InferenceSession" in c.value for c in at.code)
