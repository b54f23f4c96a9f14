"""The CLI contract: exit codes 0/1/2, one-line errors without tracebacks, nothing half-written."""

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from optimizer_core.cli import main

FAST = ["--budget-s", "1", "--batch-sizes", "1,8", "--quiet"]


@pytest.fixture(scope="module")
def xgb_files(tmp_path_factory):
    import xgboost as xgb

    folder = tmp_path_factory.mktemp("cli")
    data = load_breast_cancer(as_frame=True)
    X = data.data.rename(columns=lambda c: c.replace(" ", "_")).iloc[:, :8]
    y = data.target
    model = xgb.XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1).fit(X, y)
    model_path = folder / "model.json"
    model.save_model(model_path)
    csv_path = folder / "test.csv"
    X.iloc[:60].assign(label=y.iloc[:60].to_numpy()).to_csv(csv_path, index=False)
    pickle_path = folder / "model.pkl"
    pickle_path.write_bytes(pickle.dumps(model))
    return {"model": model_path, "csv": csv_path, "pickle": pickle_path, "folder": folder, "X": X}


def _run(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def _assert_one_line_error(err: str, fragment: str):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in err


def test_run_writes_report_and_artifacts(xgb_files, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", str(xgb_files["model"]), str(xgb_files["csv"]), "--target", "label",
                 "--precision", "fp32,int8", "--out", str(out), "--save-ort-optimized", *FAST])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    names = [v["name"] for v in report["variants"]]
    assert names == ["native", "fp32", "int8"]
    fp32 = report["variants"][1]
    assert fp32["drift"]["max_abs"] <= 1e-5
    assert fp32["metrics"]["accuracy"] > 0.8
    assert {row["batch_size"] for row in fp32["latency"]} == {1, 8}
    int8 = report["variants"][2]
    assert int8["applicable"] is False and int8["artifact"] is None
    assert (out / "fp32.onnx").is_file() and (out / "report.html").is_file()
    assert not (out / "int8.onnx").exists()
    import onnx

    onnx.checker.check_model(onnx.load(out / "fp32.ort-optimized.onnx"))  # ONNX Runtime's optimized graph
    assert fp32["session_settings"]["optimized_model_path"] == "fp32.ort-optimized.onnx"  # not a temp path
    assert any("fp32.ort-optimized.onnx: ONNX Runtime's own optimized graph" in n for n in fp32["notes"])
    printed = capsys.readouterr().out
    assert "fp32" in printed
    written = printed.rsplit("wrote to ", 1)[1]
    for name in ("report.json", "report.html", "fp32.onnx", "fp32.ort-optimized.onnx", "drift.csv"):
        assert name in written and (out / name).is_file()


def _bad_csv(folder, name, content):
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@pytest.mark.parametrize(
    ("csv_content", "fragment"),
    [
        ("", "is empty"),
        ("mean_radius,mean_texture\n", "no data rows"),
        ("mean_radius,mean_texture,label\n1,2,0\n", "missing 6 of the model's feature columns"),
        (None, "non-numeric value"),
        ("a,b\n1,2\n3,4,5\n", "not a well-formed CSV"),
        (b"\x00\x01\x02binary", "binary"),
        (b"mean_radius\n\xff\xfe\n", "not UTF-8"),
    ],
)
def test_bad_csv_exits_2_with_one_line_and_no_report(xgb_files, tmp_path, capsys, csv_content, fragment):
    if csv_content is None:
        frame = xgb_files["X"].iloc[:5].astype(object)
        frame.iloc[2, 3] = "twelve"
        csv_content = frame.to_csv(index=False)
    path = _bad_csv(tmp_path, "bad.csv", csv_content)
    out = tmp_path / "out"
    code, _, err = _run(["run", str(xgb_files["model"]), str(path), "--out", str(out), *FAST], capsys)
    assert code == 2
    _assert_one_line_error(err, fragment)
    assert not out.exists()
    assert not list(tmp_path.glob(".out*")), "temporary output left behind"


def test_absent_files_exit_2(xgb_files, tmp_path, capsys):
    code, _, err = _run(["run", str(xgb_files["model"]), str(tmp_path / "nope.csv"), *FAST], capsys)
    assert code == 2
    _assert_one_line_error(err, "does not exist")
    code, _, err = _run(["run", str(tmp_path / "nope.json"), str(xgb_files["csv"]), *FAST], capsys)
    assert code == 2
    _assert_one_line_error(err, "does not exist")


def test_pickle_refused_without_opt_in(xgb_files, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = _run(["run", str(xgb_files["pickle"]), str(xgb_files["csv"]), "--out", str(out), *FAST], capsys)
    assert code == 2
    _assert_one_line_error(err, "pickle")
    assert "--allow-pickle" in err and "run arbitrary code" in err
    assert not out.exists()


def test_pickle_accepted_with_opt_in(xgb_files, capsys):
    code = main(["run", str(xgb_files["pickle"]), str(xgb_files["csv"]), "--allow-pickle", "--precision", "fp32",
                 *FAST])
    assert code == 0


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--precision", "fp8"], "unknown precision 'fp8'"),
        (["--provider", "warpdrive"], "warpdrive"),
        (["--batch-sizes", "1,x"], "--batch-sizes: 'x' is not a positive whole number"),
        (["--batch-sizes", "1,024"], "--batch-sizes: '1,024': write sizes without thousands separators"),
        (["--budget-s", "0"], "budget"),
        (["--target", "nope"], "target column 'nope'"),
    ],
)
def test_bad_options_exit_2(xgb_files, capsys, args, fragment):
    code, _, err = _run(["run", str(xgb_files["model"]), str(xgb_files["csv"]), *FAST, *args], capsys)
    assert code == 2
    _assert_one_line_error(err, fragment)


def test_usage_error_is_one_line(capsys):
    code, _, err = _run(["run", "--no-such-flag"], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def mlp_skops(tmp_path_factory, xgb_files):
    import skops.io as sio
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = xgb_files["X"]
    y = load_breast_cancer().target
    model = make_pipeline(StandardScaler(), MLPClassifier((64,), max_iter=200, random_state=0)).fit(X, y)
    path = tmp_path_factory.mktemp("mlp") / "mlp.skops"
    sio.dump(model, path)
    return path


def test_gate_exit_codes(xgb_files, mlp_skops, capsys):
    base = ["run", str(mlp_skops), str(xgb_files["csv"]), "--precision", "fp32,int8", *FAST]
    assert main([*base, "--max-drift", "0.5"]) == 0
    assert "gate passed" in capsys.readouterr().out
    # int8 quantization moves probabilities by far more than 1e-9: the gate names it and exits 1.
    assert main([*base, "--max-drift", "1e-9"]) == 1
    err = capsys.readouterr().err
    assert "gate failed" in err and "int8 drifts" in err


def test_convert_writes_contract_model(xgb_files, tmp_path, capsys):
    import onnx

    out = tmp_path / "m.onnx"
    assert main(["convert", str(xgb_files["model"]), "--out", str(out)]) == 0
    proto = onnx.load(out)
    assert [i.name for i in proto.graph.input] == ["input"]
    assert [o.name for o in proto.graph.output] == ["scores"]


def test_subprocess_bad_model_has_no_traceback(tmp_path):
    bad = tmp_path / "model.json"
    bad.write_text('{"not": "a model"}')
    csv = tmp_path / "d.csv"
    pd.DataFrame(np.ones((3, 2)), columns=["a", "b"]).to_csv(csv, index=False)
    proc = subprocess.run([sys.executable, "-m", "optimizer_core.cli", "run", str(bad), str(csv), "--quiet"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1


def test_model_that_rejects_missing_values_is_a_one_line_input_error(tmp_path, capsys):
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    X, y = load_breast_cancer(return_X_y=True)
    model_path = tmp_path / "lr.skops"
    sio.dump(LogisticRegression(max_iter=5000).fit(X[:, :4], y), model_path)
    frame = pd.DataFrame(X[:20, :4], columns=["a", "b", "c", "d"])
    frame.iloc[3, 1] = np.nan
    csv = tmp_path / "nan.csv"
    frame.to_csv(csv, index=False)
    code, _, err = _run(["run", str(model_path), str(csv), *FAST], capsys)
    assert code == 2
    _assert_one_line_error(err, "LogisticRegression could not predict on the data")
    assert "SimpleImputer" in err


def test_runs_are_stored_and_history_commands_work(xgb_files, tmp_path, capsys, monkeypatch):
    db = tmp_path / "history.db"
    monkeypatch.setenv("INFERENCE_OPTIMIZER_HISTORY_DB", str(db))
    assert main(["run", str(xgb_files["model"]), str(xgb_files["csv"]), "--precision", "fp32", *FAST]) == 0
    stored = capsys.readouterr().out
    run_id = stored.split("stored as run ")[1].split()[0]
    assert main(["history", "--db", str(db)]) == 0
    assert run_id in capsys.readouterr().out
    assert main(["history", "show", run_id, "--db", str(db)]) == 0
    assert "fp32" in capsys.readouterr().out
    out = tmp_path / "exported"
    assert main(["history", "export", run_id, "--db", str(db), "--out", str(out)]) == 0
    assert (out / "report.json").is_file() and (out / "fp32.onnx").is_file()
    assert main(["history", "delete", run_id, "--db", str(db)]) == 0
    code, _, err = _run(["history", "show", run_id, "--db", str(db)], capsys)
    assert code == 2 and err.startswith("error: ")
    assert main(["run", str(xgb_files["model"]), str(xgb_files["csv"]), "--precision", "fp32", "--no-history",
                 *FAST]) == 0
    assert "stored as run" not in capsys.readouterr().out


def test_run_refuses_an_out_folder_holding_other_files_before_any_work(xgb_files, tmp_path, capsys):
    project = tmp_path / "project"
    project.mkdir()
    model = project / "model.json"
    model.write_bytes(xgb_files["model"].read_bytes())
    (project / "notes.txt").write_text("keep me")
    code, _, err = _run(["run", str(model), str(xgb_files["csv"]), "--out", str(project), *FAST], capsys)
    assert code == 2
    assert "not an earlier inference-optimizer output" in err and err.count("\n") == 1
    assert sorted(p.name for p in project.iterdir()) == ["model.json", "notes.txt"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_sigterm_stops_the_run_kills_the_worker_and_leaves_nothing(xgb_files, tmp_path, signame):
    import signal
    import time

    job_tmp = tmp_path / "tmp"
    job_tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(job_tmp)}
    cli = subprocess.Popen([sys.executable, "-m", "optimizer_core.cli", "run", str(xgb_files["model"]),
                            str(xgb_files["csv"]), "--budget-s", "120", "--quiet", "--no-history"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(job_tmp.glob("inference-optimizer-job-*/request.json")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(job_tmp.glob("inference-optimizer-job-*")), "the worker never started"
    time.sleep(1)
    cli.send_signal(getattr(signal, signame))
    _, err = cli.communicate(timeout=30)
    assert cli.returncode == 130 and err.strip().endswith("interrupted")
    assert not list(job_tmp.glob("inference-optimizer-job-*"))
    worker_lines = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(job_tmp) not in worker_lines


def test_threads_beyond_what_the_machine_can_use_are_refused(xgb_files, capsys):
    code, _, err = _run(["run", str(xgb_files["model"]), str(xgb_files["csv"]), "--threads", "999", *FAST], capsys)
    assert code == 2 and "--threads 999 is more than this machine can use" in err


def _factory_report(task="binary"):
    try:
        from tests.core.report_factory import make_report
    except ImportError:
        from report_factory import make_report
    return make_report(task)


def test_summary_marks_noisy_cells_and_names_the_drift_it_shows():
    import dataclasses

    from optimizer_core.views.cli_table import format_summary

    report = _factory_report()
    fp32 = next(v for v in report.variants if v.precision == "fp32")
    noisy = tuple(dataclasses.replace(s, noisy=True, noise_reasons=("only 3 timed calls",)) for s in fp32.latency)
    report = dataclasses.replace(report, variants=tuple(dataclasses.replace(v, latency=noisy) if v is fp32 else v
                                                        for v in report.variants))
    text = format_summary(report)
    assert f"{noisy[0].p50_us:,.1f}*" in text and "* noisy:" in text
    assert "max drift = largest absolute difference" in text


def test_summary_shows_relative_drift_for_regressors_and_names_fallbacks():
    import dataclasses

    from optimizer_core.views.cli_table import format_summary

    report = _factory_report("regression")
    fp32 = next(v for v in report.variants if v.precision == "fp32")
    moved = dataclasses.replace(
        fp32, drift=dataclasses.replace(fp32.drift, metric="max_rel", max_abs=3.1e-5, max_rel=1.4e-7),
        provider_requested="cuda", provider_used="CPUExecutionProvider",
        session_settings={**(fp32.session_settings or {}), "provider_resolved": "CUDAExecutionProvider"})
    report = dataclasses.replace(report, variants=tuple(moved if v is fp32 else v for v in report.variants))
    text = format_summary(report)
    assert "max drift (rel)" in text and "1.40e-07" in text and "3.10e-05" not in text
    assert "relative to its size" in text
    assert "CPU (fallback)" in text
    assert f"{moved.name}: asked for cuda, which could not run here: ran on CPUExecutionProvider" in text


def test_summary_lists_the_native_configurations_under_native():
    import dataclasses

    from optimizer_core.cli import format_summary

    report = _factory_report()
    native = report.native
    single = dataclasses.replace(native, name="native t1", metrics=None,
                                 latency=tuple(dataclasses.replace(s, p50_us=123.4) for s in native.latency))
    lines = format_summary(dataclasses.replace(report, native_configurations=(single,))).splitlines()
    names = [line.split()[0] for line in lines[3:3 + len(report.variants) + 1]]
    assert names[:2] == ["native", "native"] and lines[4].startswith("native t1")
    assert "123.4" in lines[4]


def test_run_with_a_target_prints_each_variants_metrics(xgb_files, capsys):
    """Regression: the metrics per variant were only in report.json, not in the table the CLI prints."""
    code = main(["run", str(xgb_files["model"]), str(xgb_files["csv"]), "--target", "label", "--precision", "fp32",
                 "--no-history", *FAST])
    assert code == 0
    out = capsys.readouterr().out.splitlines()
    header = next(line for line in out if line.startswith("variant"))
    metrics = header.split()[-4:]
    assert sorted(metrics) == ["accuracy", "f1", "log_loss", "roc_auc"]
    fp32 = next(line for line in out if line.startswith("fp32 "))
    accuracy = float(fp32.split()[-4:][metrics.index("accuracy")])
    assert 0.5 < accuracy <= 1.0
    assert any("scored against the target column 'label'" in line for line in out)
    without = main(["run", str(xgb_files["model"]), str(xgb_files["csv"]), "--precision", "fp32", "--no-history",
                    *FAST])
    assert without == 0
    header = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("variant"))
    assert "accuracy" not in header


def test_gate_with_no_applicable_requested_variant_says_there_was_nothing_to_check(xgb_files, capsys):
    code = main(["run", str(xgb_files["model"]), str(xgb_files["csv"]), "--precision", "int8", "--max-drift", "1e-3",
                 *FAST])
    assert code == 0
    assert "gate: nothing to check: none of the requested precisions (int8) applies" in capsys.readouterr().out


def test_tensor_precision_writes_the_standard_operator_graph_and_says_which_graph(xgb_files, tmp_path, capsys):
    import onnx

    out = tmp_path / "out"
    code = main(["run", str(xgb_files["model"]), str(xgb_files["csv"]), "--precision", "fp32,tensor,fp16",
                 "--max-drift", "0.5", "--out", str(out), *FAST])
    assert code == 0
    text = capsys.readouterr().out
    assert "fp16 (tensor graph)" in text and "gate passed: fp32, tensor, fp16" in text
    report = json.loads((out / "report.json").read_text())
    graphs = {v["name"]: v["graph"] for v in report["variants"]}
    assert graphs == {"native": None, "fp32": "tree-ensemble", "tensor": "tensor", "fp16": "tensor"}
    tensor = next(v for v in report["variants"] if v["name"] == "tensor")
    assert tensor["precision"] == "tensor" and tensor["drift"]["max_abs"] <= 1e-5
    model = onnx.load(out / tensor["artifact"])
    assert not any(n.domain == "ai.onnx.ml" for n in model.graph.node)


def test_reading_a_history_that_does_not_exist_creates_nothing(tmp_path, capsys):
    db = tmp_path / "no" / "such" / "history.db"
    assert main(["history", "list", "--db", str(db)]) == 0
    assert "no stored runs" in capsys.readouterr().out
    code, _, err = _run(["history", "show", "abc", "--db", str(db)], capsys)
    assert code == 2 and "no run history at" in err
    assert not (tmp_path / "no").exists()


def test_a_missing_file_is_one_line_before_any_progress(tmp_path):
    """Regression: with stderr not a terminal (CI), progress lines came before the error about a missing file."""
    done = subprocess.run([sys.executable, "-m", "optimizer_core.cli", "run", str(tmp_path / "nope.json"),
                           str(tmp_path / "nope.csv"), "--no-history"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: model file {tmp_path / 'nope.json'} does not exist: "
                                                "check the path"]


def test_demo_with_own_files_is_refused(xgb_files, capsys):
    """Regression: --demo with MODEL and DATA quietly applied the demo's target column to the user's CSV."""
    code, _, err = _run(["run", str(xgb_files["model"]), str(xgb_files["csv"]), "--demo", "--no-history"], capsys)
    assert code == 2
    _assert_one_line_error(err, "--demo runs the bundled demo model and CSV")


def test_out_under_a_file_is_refused_before_the_run(xgb_files, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code, _, err = _run(["run", str(xgb_files["model"]), str(xgb_files["csv"]), "--no-history", "--quiet",
                         "--out", str(tmp_path / "afile" / "sub")], capsys)
    assert code == 2
    _assert_one_line_error(err, "is a file, not a folder")


def test_convert_to_a_path_under_a_file_is_one_line(xgb_files, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code, _, err = _run(["convert", str(xgb_files["model"]), "--out", str(tmp_path / "afile" / "m.onnx")], capsys)
    assert code == 2
    _assert_one_line_error(err, "afile is a file, not a folder")


def test_convert_never_writes_over_its_own_model_file(xgb_files, tmp_path, capsys):
    """Regression: `convert self.ubj --out self.ubj` replaced the user's only copy of the model with ONNX."""
    import shutil

    model = tmp_path / "self.json"
    shutil.copy(xgb_files["model"], model)
    before = model.read_bytes()
    link = tmp_path / "link.json"
    link.symlink_to(model)
    for out in (model, link):
        code, _, err = _run(["convert", str(model), "--out", str(out)], capsys)
        assert code == 2
        _assert_one_line_error(err, "is the model file itself")
    assert model.read_bytes() == before


def test_every_option_has_help_and_the_top_level_lists_exit_codes():
    from optimizer_core.cli import build_parser

    parser = build_parser()
    assert "Exit codes: 0" in parser.format_help() and "130" in parser.format_help()
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, sub in subparsers.choices.items():
        for action in sub._actions:
            if action.dest != "help":
                assert action.help, f"{name} {action.option_strings or action.dest} has no help text"


def test_convert_checks_the_file_before_writing_it(xgb_files, tmp_path, capsys, monkeypatch):
    """Regression: convert wrote files ONNX Runtime could not load, or that disagreed with the model, with exit 0."""
    import optimizer_core.converters.verify as verify
    from optimizer_core.errors import ConversionError

    monkeypatch.setattr(verify, "verify_conversion", lambda model, proto: ["the ONNX file differs by up to 0.15"])
    out = tmp_path / "m.onnx"
    code = main(["convert", str(xgb_files["model"]), "--out", str(out)])
    assert code == 0 and out.exists()
    assert "warning: the ONNX file differs by up to 0.15" in capsys.readouterr().err

    def unloadable(model, proto):
        raise ConversionError("ONNX Runtime cannot load the converted model (bad base values)")

    monkeypatch.setattr(verify, "verify_conversion", unloadable)
    bad = tmp_path / "bad.onnx"
    code, _, err = _run(["convert", str(xgb_files["model"]), "--out", str(bad)], capsys)
    assert code == 2 and not bad.exists()
    _assert_one_line_error(err, "cannot load the converted model")


def test_a_closed_output_pipe_ends_quietly(tmp_path, monkeypatch, capsys):
    """Regression: `inference-optimizer history list | head` ended with 'error: unexpected BrokenPipeError'."""
    import optimizer_core.cli as cli

    def closed_pipe(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "_history", closed_pipe)
    monkeypatch.setattr(os, "dup2", lambda *a: None)  # keep pytest's own stdout
    assert main(["history", "list", "--db", str(tmp_path / "h.db")]) == 0
    assert "error" not in capsys.readouterr().err


def test_repeated_list_options_add_up():
    """Regression: '--precision fp32 --precision int8' silently kept only int8."""
    from optimizer_core.cli import _joined, build_parser

    args = build_parser().parse_args(["run", "m.json", "d.csv", "--precision", "fp32", "--precision", "int8",
                                      "--batch-sizes", "1,16", "--batch-sizes", "256"])
    assert _joined(args, "precision") == "fp32, int8"
    assert _joined(args, "batch_sizes") == "1,16, 256"
    assert _joined(args, "provider") == "auto"
    defaults = build_parser().parse_args(["run", "m.json", "d.csv"])
    assert _joined(defaults, "precision") == "fp32,fp64,fp16,int8,int8-static"


def test_a_closed_pipe_during_run_still_writes_out_and_keeps_the_gate(xgb_files, tmp_path, monkeypatch):
    """Regression: `run ... --max-drift X | head` exited 0 with no --out written when stdout closed early."""
    import builtins

    import optimizer_core.cli as cli

    real_print = builtins.print

    def closed_stdout(*args, **kwargs):
        if kwargs.get("file") in (None, sys.stdout):
            raise BrokenPipeError(32, "Broken pipe")
        return real_print(*args, **kwargs)

    monkeypatch.setattr(cli, "print", closed_stdout, raising=False)
    out = tmp_path / "out"
    code = main(["run", str(xgb_files["model"]), str(xgb_files["csv"]), "--target", "label", "--precision", "fp32",
                 "--batch-sizes", "1", "--budget-s", "0.5", "--no-history", "--quiet", "--out", str(out),
                 "--max-drift", "0"])
    assert (out / "report.json").exists()
    drift = next(v for v in json.loads((out / "report.json").read_text())["variants"] if v["name"] == "fp32")["drift"]
    assert code == (1 if max(drift["max_abs"], 0) > 0 else 0)  # the gate decided it, not the closed pipe


def test_convert_to_a_name_without_onnx_says_what_the_file_is(xgb_files, tmp_path, capsys):
    code = main(["convert", str(xgb_files["model"]), "--out", str(tmp_path / "model.txt")])
    assert code == 0
    assert "model.txt holds an ONNX model" in capsys.readouterr().err
