import time

import numpy as np
import pytest

from optimizer_core.config import OptimizeConfig
from optimizer_core.pipeline import optimize
from optimizer_core.report import DriftStats, VariantResult
from optimizer_core.tune import (
    candidate_grid,
    deployment_snippet,
    fastest_native,
    pareto_front,
    recommend_from_candidates,
)


def _variant(name, precision, max_abs=None, flips=None):
    drift = None
    if max_abs is not None:
        drift = DriftStats(rows=100, max_abs=max_abs, mean_abs=max_abs / 2, p99_abs=max_abs, max_rel=max_abs,
                           label_flips=flips, label_flip_rate=None if flips is None else flips / 100)
    return VariantResult(name=name, precision=precision, provider_requested="cpu", provider_used="CPU",
                         applicable=True, drift=drift, artifact=f"{name}.onnx", size_bytes=1000)


def _row(name, variant, precision, batch, p50, max_abs):
    return {"name": name, "variant": variant, "precision": precision, "batch_size": batch, "p50_us": p50,
            "max_abs": max_abs}


def test_pareto_front_keeps_only_non_dominated_points():
    rows = [
        {"p50_us": 10, "p99_us": 20, "max_abs": 0.0, "size_bytes": 100},  # native-like: exact, slow
        {"p50_us": 5, "p99_us": 9, "max_abs": 1e-6, "size_bytes": 100},  # faster, tiny drift
        {"p50_us": 6, "p99_us": 10, "max_abs": 1e-6, "size_bytes": 100},  # dominated by the one above
        {"p50_us": 4, "p99_us": None, "max_abs": 1e-2, "size_bytes": 30},  # fastest and smallest, drifts
    ]
    assert pareto_front(rows) == [0, 1, 3]


def test_recommendation_is_never_slower_than_native_and_respects_tolerance():
    variants = [_variant("native", "native"), _variant("fp32", "fp32", 1e-7), _variant("int8", "int8", 0.03, 4)]
    rows = [
        _row("native", "native", "native", 1, 100.0, 0.0),
        _row("fp32 t1", "fp32", "fp32", 1, 8.0, 1e-7),
        _row("int8 t1", "int8", "int8", 1, 6.0, 0.03),
        _row("native", "native", "native", 4096, 900.0, 0.0),
        _row("fp32 t1", "fp32", "fp32", 4096, 2000.0, 1e-7),
        _row("int8 t1", "int8", "int8", 4096, 1500.0, 0.03),
    ]
    rec = recommend_from_candidates(rows, variants, tolerance=1e-4)
    assert rec.configurations() == {"1": "fp32 t1", "4096": "native"}
    assert rec.by_batch_size == {"1": "fp32", "4096": "native"}  # variant names, as design.md's contract has them
    assert rec.tolerance == 1e-4
    assert "int8 would be faster" in rec.details["1"] and "flips 4.00% of labels" in rec.details["1"]
    assert "no ONNX configuration within tolerance is faster than the native model" in rec.details["4096"]
    loose = recommend_from_candidates(rows, variants, tolerance=0.1)
    assert loose.configuration(1) == "int8 t1" and loose.by_batch_size["1"] == "int8"


def test_onnx_picks_are_compared_with_the_fastest_native_configuration():
    """One rule (tune.fastest_native) for the recommendation's words, the headline's speedup and the tuning table:
    a tuned run measures native at several thread counts and compares with the fastest, not the first."""
    rows = [_row("native", "native", "native", 1, 300.0, 0.0), _row("native t1", "native", "native", 1, 100.0, 0.0),
            _row("fp32 t1", "fp32", "fp32", 1, 10.0, 1e-7)]
    assert fastest_native(rows)["name"] == "native t1"
    assert fastest_native([r for r in rows if r["precision"] != "native"]) is None
    rec = recommend_from_candidates(rows, [_variant("native", "native"), _variant("fp32", "fp32", 1e-7)],
                                    tolerance=1e-4)
    assert "10.0x faster than native" in rec.details["1"]  # 100 / 10, never 300 / 10


def test_unmeasured_drift_is_never_recommended():
    variants = [_variant("native", "native"), _variant("fp16", "fp16")]
    rows = [_row("native", "native", "native", 1, 50.0, 0.0), _row("fp16", "fp16", "fp16", 1, 5.0, None)]
    assert recommend_from_candidates(rows, variants, tolerance=1.0).by_batch_size == {"1": "native"}


def test_grid_has_defaults_threads_spinning_and_split():
    grid = candidate_grid([_variant("fp32", "fp32", 0.0)], cores=2, provider="cpu", batch_sizes=(1, 4096))
    names = [c.name for c in grid]
    assert "fp32 ORT defaults" in names and any(c.split_workers == 2 for c in grid)
    assert {c.settings["intra_op_threads"] for c in grid} == {1, 2}
    assert {c.settings["allow_spinning"] for c in grid} == {True, False}
    assert len(names) == len(set(names))


def test_the_parallel_candidate_really_runs_in_parallel_mode():
    """Regression: with one inter-op thread ONNX Runtime quietly ran the 'parallel' candidate sequentially, so
    it was the same session as its sequential twin under another name."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from optimizer_core.runtime import SessionSettings, create_session

    grid = candidate_grid([_variant("fp32", "fp32", 0.0)], cores=2, provider="cpu", batch_sizes=(1,))
    parallel = next(c for c in grid if c.settings["execution_mode"] == "parallel")
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session, _ = create_session(model.SerializeToString(), SessionSettings(**parallel.settings))
    assert session.get_session_options().execution_mode == ort.ExecutionMode.ORT_PARALLEL
    code = deployment_snippet(parallel, {"fp32": _variant("fp32", "fp32", 0.0)})
    assert "so.inter_op_num_threads = 2" in code and "ORT_PARALLEL" in code


def test_snippet_recreates_the_session():
    grid = candidate_grid([_variant("fp32", "fp32", 0.0)], cores=2, provider="cpu", batch_sizes=(1, 4096))
    split = next(c for c in grid if c.split_workers == 2)
    code = deployment_snippet(split, {"fp32": _variant("fp32", "fp32", 0.0)})
    assert 'ort.InferenceSession("fp32.onnx"' in code and "ThreadPoolExecutor(2)" in code
    compile(code, "snippet", "exec")


@pytest.mark.slow
def test_tuned_run_completes_within_its_budget():
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    X, y = load_breast_cancer(return_X_y=True)
    model = LogisticRegression(max_iter=3000).fit(X, y)
    budget = 4.0
    started = time.perf_counter()
    report = optimize(model, X, OptimizeConfig(precisions=("fp32",), batch_sizes=(1, 64), budget_s=budget,
                                               tune=True), y=y)
    elapsed = time.perf_counter() - started
    assert report.tuning and report.tuning["candidates"]
    assert report.benchmark["wall_s"] <= budget
    assert elapsed < budget * 1.5 + 15  # timing within budget; the rest is load, convert and session set-up
    rec = report.recommendation
    assert set(rec.by_batch_size) == {"1", "64"}
    # a Pareto front per batch size (batch-1 rows used to dominate every batch-64 row)
    assert {r["batch_size"] for r in report.tuning["candidates"] if r["pareto"]} == {1, 64}
    # the flags name exactly the recommendation's picks (set from it, not from a second recommendation)
    flagged = {(str(r["batch_size"]), r["name"]) for r in report.tuning["candidates"] if r["recommended"]}
    assert flagged == set(rec.configurations().items())
    finals = [r for r in report.tuning["candidates"] if r["final"] and r["batch_size"] == 1]
    native = next(r for r in finals if r["precision"] == "native")
    chosen = next(r for r in finals if r["name"] == rec.configuration(1))
    assert report.variant(rec.by_batch_size["1"]) is not None  # a variant name the report can look up
    assert chosen["p50_us"] <= native["p50_us"]
    assert np.isfinite(chosen["p50_us"])


def test_only_finalists_are_recommended():
    from optimizer_core.tune import finalist_rows

    variants = [_variant("native", "native"), _variant("fp32", "fp32", 1e-7)]
    rows = [
        {**_row("native", "native", "native", 16, 100.0, 0.0), "final": True},
        {**_row("fp32 t2", "fp32", "fp32", 16, 60.0, 1e-7), "final": True},
        {**_row("fp32 t1", "fp32", "fp32", 16, 40.0, 1e-7), "final": False},  # a lucky short first-round run
    ]
    rec = recommend_from_candidates(finalist_rows(rows), variants, tolerance=1e-4)
    assert rec.configurations() == {"16": "fp32 t2"}


def test_regression_tolerance_is_relative():
    """float32 rounding of predictions around 150 gives ~2e-4 absolute but ~1e-6 relative drift: fp32 must
    not be rejected by a 1e-4 tolerance for that."""
    from optimizer_core.drift import compute_drift
    from optimizer_core.report import Report
    from optimizer_core.tune import recommend

    native = np.array([[150.0], [20.0], [300.0]])
    fp32 = native.astype(np.float32).astype(np.float64) + np.array([[1.8e-4], [0.0], [0.0]])
    stats = compute_drift(native, fp32, "regression", tolerance=1e-4)
    assert stats.metric == "max_rel" and stats.value == stats.max_rel < 1e-4 < stats.max_abs
    assert stats.passed is True
    from tests.core.report_factory import make_latency

    variants = (
        VariantResult(name="native", precision="native", provider_requested=None, provider_used="xgboost",
                      applicable=True, latency=(make_latency(1, 100.0, calls=1000),)),
        VariantResult(name="fp32", precision="fp32", provider_requested="cpu", provider_used="CPU",
                      applicable=True, drift=stats, latency=(make_latency(1, 10.0, calls=1000),)),
    )
    report = Report(schema_version=1, created_at="", run_id="r", environment={}, model={"task": "regression"},
                    data={}, config={}, variants=variants)
    assert recommend(report, tolerance=1e-4).by_batch_size == {"1": "fp32"}


def test_a_variant_that_fell_back_onto_a_provider_already_measured_is_not_recommended():
    import dataclasses

    from optimizer_core.tune import fallback_duplicates, recommend

    try:
        from tests.core.report_factory import make_report
    except ImportError:
        from report_factory import make_report

    base = make_report(variants=("native", "fp32"), with_tuning=False)
    native, fp32 = base.variants
    fp32_cpu = dataclasses.replace(fp32, name="fp32@cpu", provider_requested="cpu", provider_used="CPUExecutionProvider",
                                   session_settings={"provider_resolved": "CPUExecutionProvider"})
    faster = tuple(dataclasses.replace(s, p50_us=s.p50_us / 2) for s in fp32.latency)
    fp32_cuda = dataclasses.replace(fp32_cpu, name="fp32@cuda", provider_requested="cuda", latency=faster,
                                    session_settings={"provider_resolved": "CUDAExecutionProvider"})
    assert fallback_duplicates([fp32_cpu, fp32_cuda]) == {"fp32@cuda"}
    assert fallback_duplicates([fp32_cuda]) == set()  # alone, it is simply the fp32 model on the CPU
    report = dataclasses.replace(base, variants=(native, fp32_cpu, fp32_cuda), tuning=None)
    assert "fp32@cuda" not in recommend(report, tolerance=1e-2).by_batch_size.values()


def test_the_snippet_says_which_batch_sizes_it_was_tuned_for():
    variants = [_variant("native", "native"), _variant("fp32", "fp32", 1e-7)]
    rows = [_row("native", "native", "native", 1, 100.0, 0.0), _row("fp32 t1", "fp32", "fp32", 1, 8.0, 1e-7),
            _row("native", "native", "native", 4096, 900.0, 0.0), _row("fp32 t1", "fp32", "fp32", 4096, 2e3, 1e-7)]
    rec = recommend_from_candidates(rows, variants, tolerance=1e-4, snippets={"fp32 t1": "import onnxruntime"})
    assert rec.snippet.splitlines()[:2] == ["# fp32 t1: the recommended configuration at batch size 1",
                                            "# other batch sizes were measured faster with: batch 4096: native"]
    assert rec.snippet.endswith("import onnxruntime")


def test_a_native_pick_with_a_thread_count_says_how_to_apply_it():
    variants = [_variant("native", "native"), _variant("fp32", "fp32", 1e-7)]
    rows = [_row("native t1", "native", "native", 1, 50.0, 0.0), _row("fp32 t1", "fp32", "fp32", 1, 80.0, 1e-7)]
    rec = recommend_from_candidates(rows, variants, tolerance=1e-4, snippets={"fp32 t1": "import onnxruntime"})
    assert rec.configurations() == {"1": "native t1"} and rec.by_batch_size == {"1": "native"}
    assert "set to 1 thread: n_jobs=1 for scikit-learn, nthread=1 for XGBoost" in rec.details["1"]
    assert "no deploy.py: the native model is the pick at every batch size" in rec.reason and rec.snippet is None


def test_recommendation_wording_names_where_the_tolerance_came_from():
    variants = [_variant("native", "native"), _variant("int8", "int8", 0.03, 4)]
    rows = [_row("native", "native", "native", 1, 100.0, 0.0), _row("int8 t1", "int8", "int8", 1, 6.0, 0.03)]
    default = recommend_from_candidates(rows, variants, tolerance=1e-4)
    assert "the default drift tolerance 0.0001 (set it with --max-drift, or 'Drift tolerance' in the dashboard)" in default.details["1"]
    assert "your" not in default.details["1"]
    gate = recommend_from_candidates(rows, variants, tolerance=0.01, source="--max-drift")
    assert "the drift tolerance 0.01 (--max-drift, or 'Drift tolerance' in the dashboard)" in gate.details["1"]


def test_deploy_script_loads_the_model_next_to_itself(tmp_path, monkeypatch):
    """Regression: deploy.py loaded "fp32.onnx" from the working directory, so it failed outside --out."""
    import subprocess
    import sys

    from onnx import TensorProto, helper

    from optimizer_core.tune import deploy_script

    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["scores"])], "g",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 3])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, 3])])
    out = tmp_path / "out"
    out.mkdir()
    (out / "fp32.onnx").write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
                                    .SerializeToString())
    grid = candidate_grid([_variant("fp32", "fp32", 0.0)], cores=2, provider="cpu", batch_sizes=(1,))
    snippet = deployment_snippet(grid[0], {"fp32": _variant("fp32", "fp32", 0.0)})
    (out / "deploy.py").write_text(deploy_script(snippet) + "print(predict([[-1.0, 0.0, 2.0]]).tolist())\n")
    done = subprocess.run([sys.executable, str(out / "deploy.py")], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[[0.0, 0.0, 2.0]]"


def test_a_pick_resting_on_a_handful_of_calls_says_it_is_noise():
    """Regression: --tune --budget-s 0.01 compared candidates on 1-15 calls and recommended one without a caveat."""
    variants = [_variant("native", "native"), _variant("fp32", "fp32", 1e-7)]
    rows = [{**_row("native", "native", "native", 1, 50.0, 0.0), "calls": 3},
            {**_row("fp32 t1", "fp32", "fp32", 1, 8.0, 1e-7), "calls": 4},
            {**_row("native", "native", "native", 16, 90.0, 0.0), "calls": 500},
            {**_row("fp32 t1", "fp32", "fp32", 16, 60.0, 1e-7), "calls": 500}]
    rec = recommend_from_candidates(rows, variants, tolerance=1e-4)
    assert "rests on 4 timed call(s)" in rec.details["1"] and "larger timing budget" in rec.details["1"]
    assert "rests on" not in rec.details["16"]
    assert "batch 1: fewer than 10 timed calls" in rec.reason



def test_untuned_run_recommends_with_a_deploy_snippet_that_runs(tmp_path, monkeypatch):
    """QA: only tuned runs said how to use the pick. An untuned run's recommendation carries the snippet of the
    session it timed, write_out saves it as deploy.py, and it scores rows as the fp32 variant did."""
    import runpy

    import onnxruntime as ort
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    X, y = load_breast_cancer(return_X_y=True)
    model = LogisticRegression(max_iter=3000).fit(X, y)
    report = optimize(model, X[:200], OptimizeConfig(precisions=("fp32",), batch_sizes=(1,), budget_s=1.0), y=y[:200])
    assert not report.tuning
    rec = report.recommendation
    assert rec.by_batch_size == {"1": "fp32"}  # ORT at batch 1 is far faster than scikit-learn's predict_proba
    threads = report.config["intra_op_threads"]
    assert rec.snippet.startswith("# fp32: the recommended configuration at batch size 1")
    assert f"so.intra_op_num_threads = {threads}" in rec.snippet and '"input"' in rec.snippet
    assert "ORT_ENABLE_ALL" in rec.snippet and '["scores"]' in rec.snippet
    assert report.to_dict()["recommendation"]["snippet"] == rec.snippet
    out = tmp_path / "out"
    report.write_out(out)
    monkeypatch.chdir(tmp_path)  # deploy.py finds fp32.onnx next to itself, from any working directory
    deploy = runpy.run_path(str(out / "deploy.py"))
    rows = X[:5]
    scores = np.asarray(deploy["predict"](rows))
    fp32 = next(v for v in report.variants if v.name == "fp32")
    direct = ort.InferenceSession(str(out / fp32.artifact)).run(["scores"], {"input": rows.astype(np.float32)})[0]
    np.testing.assert_array_equal(scores, direct)
    np.testing.assert_allclose(scores, model.predict_proba(rows), atol=fp32.drift.max_abs + 1e-7, rtol=0)


def test_untuned_run_picking_native_everywhere_has_no_snippet_and_says_so():
    variants = [_variant("native", "native"), _variant("fp32", "fp32", 1e-7)]
    rows = [{**_row("native", "native", "native", 1, 5.0, 0.0), "calls": 500},
            {**_row("fp32", "fp32", "fp32", 1, 8.0, 1e-7), "calls": 500}]
    rec = recommend_from_candidates(rows, variants, tolerance=1e-4, snippets={"fp32": "import onnxruntime\n"})
    assert rec.snippet is None and "no deploy.py: the native model is the pick" in rec.reason
