"""The pre-run model inspection runs in a child process: results come back, crashes and hangs are reported."""

from __future__ import annotations

import subprocess

from dashboard import model_check
from optimizer_core import jobs


def test_inspection_in_a_child_process_explains_each_precision(model_files, breast_cancer):
    name, data = model_files["xgboost"]
    found = model_check.inspect_isolated(data, name)
    assert found["summary"] == "XGBClassifier (xgboost), binary, 6 features"
    # the feature names let the page check the CSV's columns and the target before a run
    assert found["feature_names"] == [str(c) for c in breast_cancer[0].columns] and found["n_features"] == 6
    rows = {p: (ok, reason) for p, ok, reason in found["applicability"]}
    assert rows["fp32"][0] is True
    assert rows["int8"][0] is False and "TreeEnsemble" in rows["int8"][1]


def test_a_broken_model_is_a_one_line_error(model_files):
    found = model_check.inspect_isolated(b'{"learner": {"broken": true}}', "model.json")
    assert set(found) == {"error"} and "model.json" in found["error"] and "\n" not in found["error"]


def test_a_parser_crash_ends_only_the_child(monkeypatch):
    def crashed(*args, **kwargs):
        return subprocess.CompletedProcess(args[0], -11, stdout="", stderr="")

    monkeypatch.setattr(jobs.subprocess, "run", crashed)
    found = model_check.inspect_isolated(b"\x08\x07", "evil.onnx")
    assert "crashed the model parser (SIGSEGV)" in found["error"]


def test_a_hang_is_stopped_and_marked_transient(model_files):
    name, data = model_files["xgboost"]
    found = model_check.inspect_isolated(data, name, timeout_s=0.01)
    assert found["transient"] is True and "took longer" in found["error"]
