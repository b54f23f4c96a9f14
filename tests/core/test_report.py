import dataclasses
import json

import pytest

from optimizer_core.report import Report
from tests.core.report_factory import make_report


def test_json_roundtrip_is_lossless():
    report = make_report()
    again = Report.from_json(report.to_json())
    assert again == report
    assert json.loads(report.to_json())["schema_version"] == report.schema_version


def test_unknown_schema_version_refused():
    data = make_report().to_dict()
    data["schema_version"] = 999
    with pytest.raises(ValueError, match="schema_version"):
        Report.from_dict(data)


def test_write_out_is_atomic(tmp_path):
    report = make_report()
    out = report.write_out(tmp_path / "out", html="<html></html>")
    assert (out / "report.json").is_file() and (out / "report.html").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_failed_write_leaves_nothing(tmp_path):
    report = make_report()
    report = Report(**{**report.__dict__, "artifacts": {**report.artifacts, "a.onnx": b"y", "../escape.onnx": b"x"}})
    with pytest.raises(ValueError, match="plain report or model file name"):
        report.write_out(tmp_path / "sub" / "out")
    assert not (tmp_path / "sub").exists()
    assert not (tmp_path / "escape.onnx").exists()


def test_write_out_replaces_previous_run(tmp_path):
    out = tmp_path / "out"
    make_report().write_out(out)
    (out / "stale.onnx").write_bytes(b"old")
    make_report().write_out(out)
    assert not (out / "stale.onnx").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_report_read_from_json_does_not_write_a_folder_naming_missing_model_files(tmp_path):
    from optimizer_core.errors import ConfigError

    report = Report.from_json(make_report().to_json())
    with pytest.raises(ConfigError, match="names model files it does not carry"):
        report.write_out(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_write_out_renders_report_html_by_default(tmp_path):
    """Regression: the API's write_out("out/") wrote no report.html although its docstring promised one."""
    out = make_report().write_out(tmp_path / "out")
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html") and make_report().run_id in html
    bare = make_report().write_out(tmp_path / "bare", html=False)
    assert not (bare / "report.html").exists()


def test_infinite_drift_survives_json_as_unbounded_not_none():
    """JSON has no infinity: drift from NaN on one side only came back as None and crashed every comparison."""
    import math

    from optimizer_core.report import DriftStats

    stats = DriftStats(rows=3, max_abs=math.inf, mean_abs=math.inf, p99_abs=math.inf, max_rel=math.inf,
                       label_flips=None, label_flip_rate=None, metric="max_rel")
    report = dataclasses.replace(make_report("regression"), variants=tuple(
        dataclasses.replace(v, drift=stats) if v.precision == "int8" else v for v in make_report("regression").variants))
    back = Report.from_json(report.to_json()).variant("int8").drift
    assert back.value == math.inf and back.value > 1e-4
    assert back.describe().startswith("unbounded (relative")


def test_write_out_renders_html_for_any_true_value_and_skips_it_only_for_false(tmp_path):
    """Regression: write_out(d, html=1) or html=None silently wrote no report.html."""
    for i, html in enumerate((None, 1, True)):
        assert (make_report().write_out(tmp_path / f"o{i}", html=html) / "report.html").exists()
    assert not (make_report().write_out(tmp_path / "none", html=False) / "report.html").exists()
