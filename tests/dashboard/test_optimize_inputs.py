"""The Optimize page's inputs through AppTest: what survives a page switch, how batch sizes are typed,
which choices the page refuses before a run (and says why), and reconnecting a reloaded tab to its job."""

from __future__ import annotations

import pytest

from dashboard import render, state
from optimizer_core import jobs
from tests.dashboard.conftest import assert_clean, new_app, start_run, texts, upload, widget

HISTORY = "views/history.py"
OPTIMIZE = "views/optimize.py"


@pytest.fixture
def submitted(monkeypatch) -> list:
    """Capture the job requests the page submits instead of starting workers."""
    requests: list = []

    def fake_submit(request, model_name, csv_name, demo, inputs=None):
        requests.append(request)
        return "0" * 12

    monkeypatch.setattr(state, "submit", fake_submit)
    return requests


def _captions(at) -> str:
    return "\n".join(texts(at.caption))


# --------------------------------------------------------------------------- #1 page switches


def test_uploads_and_settings_survive_switching_to_history_and_back(model_files, csv_bytes, history_db):
    at = upload(new_app().run(), model_files["xgboost"], ("holdout.csv", csv_bytes))
    widget(at.multiselect, "Precisions").set_value(["fp32"])
    widget(at.selectbox, "Target column").set_value("(none)")
    at.multiselect(key="providers").set_value(["cpu"])
    at.slider(key="budget").set_value(15)
    at.text_input(key="batch-sizes").input("1, 16, 256")
    at.toggle(key="tune").set_value(True)
    at.run()
    assert_clean(at)

    at.switch_page(HISTORY).run()
    assert_clean(at)
    assert at.title[0].value == "Run history"
    at.switch_page(OPTIMIZE).run()
    assert_clean(at)

    assert not any("Demo ready" in s for s in texts(at.success))
    # the uploaders are drawn empty again, the files are still the ones in use
    assert widget(at.file_uploader, "Model file").value is None
    assert "Using **model.json**" in _captions(at) and "Using **holdout.csv**" in _captions(at)
    assert any("XGBClassifier" in m for m in texts(at.markdown))
    assert widget(at.multiselect, "Precisions").value == ["fp32"]
    assert widget(at.selectbox, "Target column").value == "(none)"
    assert at.multiselect(key="providers").value == ["cpu"]
    assert at.slider(key="budget").value == 15
    assert at.text_input(key="batch-sizes").value == "1, 16, 256"
    assert at.toggle(key="tune").value is True
    assert not at.button(key="run").disabled


def test_a_kept_upload_can_be_removed(model_files, csv_bytes, history_db):
    at = upload(new_app().run(), model_files["xgboost"], ("holdout.csv", csv_bytes))
    at.switch_page(HISTORY).run()
    at.switch_page(OPTIMIZE).run()
    at.button(key="forget-model").click().run()
    assert_clean(at)
    assert any("Upload the model file as well" in i for i in texts(at.info))
    at.button(key="demo-xgboost").click().run()  # a demo forgets the other upload too
    assert_clean(at)
    assert any("Demo ready" in s for s in texts(at.success))
    assert "Using **holdout.csv**" not in _captions(at)


# --------------------------------------------------------------------------- #6 batch sizes


def test_a_typed_batch_size_is_timed_as_typed(submitted, history_db):
    at = new_app().run()
    at.text_input(key="batch-sizes").input("2").run()
    assert_clean(at)
    assert "Timed at 2 rows per call." in _captions(at)
    at.button(key="run").click().run()
    assert_clean(at)
    assert [r.config.batch_sizes for r in submitted] == [(2,)]


def test_bad_batch_sizes_are_an_error_and_disable_run(submitted, history_db):
    at = new_app().run()
    at.text_input(key="batch-sizes").input("1, lots").run()
    assert_clean(at)
    errors = texts(at.error)
    assert len(errors) == 1 and errors[0].startswith("Batch sizes: 'lots' is not a positive whole number"), errors
    assert at.button(key="run").disabled
    assert "Run is disabled: fix the batch sizes." in _captions(at)
    assert submitted == []


# --------------------------------------------------------------------------- #9 providers, #12 disabled Run


def test_auto_and_cpu_on_the_same_provider_are_measured_once(submitted, history_db):
    if state.resolved_provider("auto") != state.resolved_provider("cpu"):
        pytest.skip("'auto' is an accelerator on this machine")
    at = new_app().run()
    at.multiselect(key="providers").set_value(["auto", "cpu"]).run()
    assert_clean(at)
    assert "**cpu** and **auto** both run on CPU: it is measured once, as **auto**." in _captions(at)
    at.button(key="run").click().run()
    assert [r.config.providers for r in submitted] == [("auto",)]


@pytest.mark.parametrize(
    ("widget_key", "reason"),
    [
        ("providers", "choose at least one execution provider"),
        ("precisions", "choose at least one precision"),
        ("batch-sizes", "fix the batch sizes"),  # empty text is an error naming the fix
    ],
)
def test_run_says_why_it_is_disabled(widget_key, reason, history_db):
    at = new_app().run()
    if widget_key == "batch-sizes":
        at.text_input(key=widget_key).input("")
    elif widget_key == "precisions":
        widget(at.multiselect, "Precisions").set_value([])
    else:
        at.multiselect(key=widget_key).set_value([])
    at.run()
    assert_clean(at)
    assert at.button(key="run").disabled
    assert f"Run is disabled: {reason}." in _captions(at)


# --------------------------------------------------------------------------- #10 target, #13 columns


def test_the_model_features_are_not_offered_as_target(model_files, csv_bytes, breast_cancer, history_db):
    at = upload(new_app().run(), model_files["xgboost"], ("holdout.csv", csv_bytes))
    assert_clean(at)
    assert widget(at.selectbox, "Target column").options == ["(none)", "label"]
    assert "The model's own feature columns are not offered as the target." in _captions(at)


def test_missing_feature_columns_are_reported_before_run(model_files, breast_cancer, history_db):
    X, _ = breast_cancer
    few = X.iloc[:20, :3].to_csv(index=False).encode()  # three of the model's six features
    at = upload(new_app().run(), model_files["xgboost"], ("few-columns.csv", few))
    assert_clean(at)
    errors = texts(at.error)
    assert len(errors) == 1, errors
    assert errors[0].startswith("few-columns.csv is missing 3 of the model's feature columns:"), errors
    assert render.md_escape(repr(str(X.columns[3]))) in errors[0]  # as Markdown shows it
    assert at.button(key="run").disabled
    assert "the CSV does not have the model's feature columns" in _captions(at)


def test_a_column_count_mismatch_is_reported_before_run(model_files, breast_cancer, history_db):
    X, y = breast_cancer
    extra = X.iloc[:20].assign(a=1.0, b=2.0).to_csv(index=False).encode()  # ONNX input: no feature names
    at = upload(new_app().run(), model_files["onnx"], ("wide.csv", extra))
    assert_clean(at)
    errors = texts(at.error)
    assert errors and errors[0].startswith("wide.csv has 8 feature columns but the model expects 6"), errors
    assert at.button(key="run").disabled


# --------------------------------------------------------------------------- #5 reload mid-run


def test_a_reloaded_tab_reconnects_to_its_running_job(model_files, csv_bytes, history_db):
    at = upload(new_app().run(), model_files["onnx"], ("test.csv", csv_bytes))
    job_id = start_run(at, precisions=["fp32"], budget=300)
    assert at.query_params.get("job") == job_id  # the address names the job

    reloaded = new_app()  # a reload is a new session opened on the same address
    reloaded.query_params["job"] = job_id
    reloaded.run()
    assert_clean(reloaded)
    assert reloaded.session_state["io_active_job"] == job_id
    assert any(s.label.startswith(("Running", "Waiting")) for s in reloaded.get("status"))
    assert reloaded.button(key="run").disabled
    assert any(i.startswith("Reconnected to the run started before this page was reloaded") for i in texts(reloaded.info))
    reloaded.switch_page(HISTORY).run()
    assert any("still in progress" in i for i in texts(reloaded.info))
    reloaded.switch_page(OPTIMIZE).run()

    reloaded.button(key=f"cancel-{job_id}").click().run()
    jobs.get_manager().wait(job_id, 60)
    reloaded.run()
    assert_clean(reloaded)
    assert texts(reloaded.warning) == ["The run was cancelled."]


def test_a_job_the_server_no_longer_has_is_explained(history_db):
    at = new_app()
    at.query_params["job"] = "abcdef012345"
    at.run()
    assert_clean(at)
    assert any("no longer on the server" in i for i in texts(at.info))
    assert "job" not in at.query_params
    assert not at.button(key="run").disabled


# --------------------------------------------------------------------------- QA 3 #5 stale results


def _stale(at) -> list[str]:
    return [w for w in texts(at.warning) if "from the previous run" in w]


def test_results_of_other_inputs_are_marked_and_kept(instant_jobs, model_files, csv_bytes):
    at = new_app().run()
    start_run(at, batch_sizes=[1, 16])
    assert at.metric and not _stale(at)  # fresh results: nothing to mark

    at.text_input(key="batch-sizes").input("1, 16, 256").run()
    assert_clean(at)
    stale = _stale(at)
    assert len(stale) == 1, texts(at.warning)
    assert "batch sizes 1, 16)" in stale[0] and "Changed since: batch sizes." in stale[0]
    assert "Press **Run** to measure the current settings" in stale[0]
    assert "model xgboost-breast-cancer" in stale[0]  # what the results used
    assert at.metric  # still shown: users compare

    at.text_input(key="batch-sizes").input("1, 16").run()  # back to what was run
    assert not _stale(at)

    at.slider(key="budget").set_value(10).run()
    at.toggle(key="tune").set_value(True).run()
    assert "Changed since: timing budget, auto-tune." in _stale(at)[0]

    at = upload(at, model_files["onnx"], None)  # a model without its CSV: nothing runnable
    assert "Changed since: the model or the test data (one is missing or cannot run)." in _stale(at)[0]
    at = upload(at, None, ("holdout.csv", csv_bytes))
    changed = _stale(at)[0].split("Changed since: ")[1]
    assert changed.startswith("model, test data, target column,"), changed


def test_a_reconnected_job_is_not_marked_stale(instant_jobs):
    at = new_app().run()
    job_id = start_run(at, batch_sizes=[2])
    reloaded = new_app()  # a reload: the form is fresh, the job's inputs are not known
    reloaded.query_params["job"] = job_id
    reloaded.run()
    assert_clean(reloaded)
    assert reloaded.metric
    assert reloaded.text_input(key="batch-sizes").value != "2"
    assert not _stale(reloaded)


# --------------------------------------------------------------------------- QA 3 #9 upload limit


def test_the_upload_limit_and_what_a_larger_file_does_are_said(history_db):
    from streamlit import config

    before = config.get_option("server.maxUploadSize")
    config.set_option("server.maxUploadSize", 7)
    try:
        at = new_app().run()
        assert_clean(at)
        captions = _captions(at)
        assert "Files up to **7 MB** each" in captions
        assert "red '!'" in captions and "not uploaded" in captions and "sample" in captions
        for uploader in at.file_uploader:
            assert "Up to 7 MB: a larger file shows a red '!' and is not uploaded" in uploader.help
            assert "--server.maxUploadSize" in uploader.help
        widget(at.file_uploader, "Model file").upload("model.json", b"{}")
        at.run()
        info = [i for i in texts(at.info) if i.startswith("Upload the test CSV as well")]
        assert info and "red '!' was not uploaded: it is over the 7 MB limit" in info[0]
    finally:
        config.set_option("server.maxUploadSize", before)


def test_the_drift_tolerance_reaches_the_run_and_the_recommendation(submitted, history_db):
    """The recommendation's tolerance was a fixed 1e-4 in the dashboard, which had no way to set it."""
    at = new_app().run()
    at.selectbox(key="max-drift").set_value(0.01).run()
    assert_clean(at)
    at.button(key="run").click().run()
    assert_clean(at)
    assert [r.config.max_drift for r in submitted] == [0.01]
    assert [r.config.tolerance for r in submitted] == [0.01]


def test_uploads_are_hashed_once_not_on_every_rerun(model_files, csv_bytes, history_db, monkeypatch):
    """Review: a new Inputs per rerun hashed both uploads (0.3 s for two 200 MB files) on every click."""
    calls = []
    real = state._sha
    monkeypatch.setattr(state, "_sha", lambda data: calls.append(len(data)) or real(data))
    at = upload(new_app().run(), model_files["xgboost"], ("holdout.csv", csv_bytes))
    hashed = len(calls)
    for _ in range(3):
        at.run()
    assert_clean(at)
    assert hashed >= 2 and len(calls) == hashed


# --------------------------------------------------------------------------- tensor graphs for tree ensembles


def test_tree_models_are_offered_tensor_and_fp16_with_the_cpu_gpu_caveat(model_files, csv_bytes, submitted,
                                                                        history_db):
    at = upload(new_app().run(), model_files["xgboost"], ("holdout.csv", csv_bytes))
    assert_clean(at)
    picker = widget(at.multiselect, "Precisions")
    assert "tensor" in picker.options and "fp16" in picker.options  # no "(not applicable)" on either
    assert "tensor" not in picker.value and "fp16" in picker.value  # tensor is asked for by name
    assert "GPU" in picker.help and "slower" in picker.help
    assert "**tensor** (" in _captions(at) and "float16 tensor graph of the trees" in _captions(at)
    picker.set_value(["fp32", "tensor"]).run()
    at.button(key="run").click().run()
    assert_clean(at)
    assert [r.config.precisions for r in submitted] == [("fp32", "tensor")]


def test_a_model_without_trees_greys_tensor_out_with_the_reason(model_files, csv_bytes, history_db):
    at = upload(new_app().run(), model_files["onnx"], ("holdout.csv", csv_bytes))
    assert_clean(at)
    assert "tensor (not applicable)" in widget(at.multiselect, "Precisions").options
    not_applicable = next(e for e in at.expander if e.label.startswith("Not applicable to this model"))
    assert "- **tensor**: not applicable — this model has no tree ensemble" in "\n".join(
        texts(not_applicable.markdown))
