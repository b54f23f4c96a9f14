"""The classic ``InferenceOptimizer`` benchmarks: the original model against an ONNX file, side by side.

Both are timed by the core harness (``bench.benchmark``: warm-up, interleaved blocks, noise flags) in one
run, the ONNX file on a session with the pipeline's timing settings, exactly as ``optimize`` times native
against a variant. The drift between them is measured on every row given. Nothing is timed a second way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from optimizer_core.errors import InputError

__all__ = ["CLASSIC_CALLS", "PERCENTILE_BATCH_SIZES", "PERCENTILE_CALLS", "check_budget", "compare", "latency_dict",
           "time_budget"]

CLASSIC_CALLS = 100  # benchmark_inference: timed calls per side (the classic num_iterations default)
PERCENTILE_CALLS = 1000  # benchmark_with_percentiles: enough for a p99 (460 or more calls)
PERCENTILE_BATCH_SIZES = (1, 16, 256)
ORIGINAL, ONNX = "original", "onnx"
_MIN_BUDGET_S = 1.0  # the harness warms up for >= 0.2 s within 30% of a batch size's share
_BUDGET_HEADROOM = 3.0  # budget = headroom x the estimated cost of the requested calls, + warm-up


def time_budget(runners: Sequence[Any], rows: np.ndarray, n_runs: int, batch_sizes: Sequence[int]) -> float:
    """Time budget for the harness: enough for ``n_runs`` calls of every runner per batch size plus warm-up.

    The core harness is budget-driven; a rough cost per call (three untimed calls) sizes the budget so
    that ``n_runs`` calls are timed, the harness stopping as soon as they are.
    """
    total = 0.0
    for b in batch_sizes:
        per_call = 0.0
        for runner in runners:
            batch = runner.prepare(np.ascontiguousarray(rows[np.arange(b) % rows.shape[0]]))
            runner.predict(batch)
            start = time.perf_counter()
            for _ in range(3):
                runner.predict(batch)
            per_call += (time.perf_counter() - start) / 3
        total += max(_MIN_BUDGET_S * len(runners), _BUDGET_HEADROOM * n_runs * per_call + 0.5 * len(runners))
    return math.ceil(total * 10) / 10


def check_budget(budget_s: Any) -> None:
    if budget_s is not None and (isinstance(budget_s, bool) or not isinstance(budget_s, int | float)
                                 or not 0 < budget_s <= 24 * 3600):
        raise InputError(f"budget_s is {budget_s!r}: give seconds above 0 (or None to size it from the number of calls)")


def latency_dict(stats: Any, notes: Sequence[str], name: str, runs_arg: str = "num_iterations") -> dict[str, Any]:
    """One side's ``LatencyStats`` in milliseconds (``*_ms``) and microseconds (``*_us``), with its notes.

    ``notes``: the harness's notes; those about runner ``name`` at this batch size are kept. ``runs_arg``: the
    argument that sets the number of calls, as the p99 note names it.
    """
    from optimizer_core.report import P99_MIN_CALLS

    out: dict[str, Any] = {"batch_size": stats.batch_size, "calls": stats.calls}
    for key in ("mean", "std", "min", "max", "p50", "p90", "p95", "p99"):
        us = getattr(stats, f"{key}_us")
        out[f"{key}_ms"] = None if us is None else us / 1000.0
        out[f"{key}_us"] = us
    out["p50_ci_us"] = (stats.p50_ci_low_us, stats.p50_ci_high_us)
    out["throughput_rows_per_s"] = stats.rows_per_s
    out["throughput_rows_per_s_p50"] = stats.rows_per_s_p50
    out["noisy"] = stats.noisy
    prefix = f"{name} at batch {stats.batch_size}:"
    mine = [n[len(name) + 1:] for n in notes if n.startswith(prefix)]
    mine += [f"noisy: {r}" for r in stats.noise_reasons]
    if stats.p99_us is None:
        mine.append(f"p99 not reported: {stats.calls:,} timed calls, fewer than the {P99_MIN_CALLS} needed for a "
                    f"meaningful p99 (insufficient samples); use {runs_arg} >= {P99_MIN_CALLS}")
    out["notes"] = list(dict.fromkeys(mine))
    return out


def compare(original: Any, proto: Any, onnx_model: Any, test_features: Any, *, batch_sizes: Any,
            n_runs: int, budget_s: float | None) -> dict[int, dict[str, Any]]:
    """``{batch_size: result}``: the original model (a LoadedModel) against ``proto`` (the ONNX file in the
    output contract; ``onnx_model`` its LoadedModel) on ``test_features``.

    Each result holds ``speedup`` (original p50 / ONNX p50), the ``original`` and ``onnx`` latency dicts,
    ``provider_used``, ``max_drift`` (and the full ``drift``), ``notes``, and the classic flat keys.
    """
    from optimizer_core import bench, drift
    from optimizer_core.bench_lock import benchmark_lock
    from optimizer_core.config import OptimizeConfig
    from optimizer_core.data import load_dataset
    from optimizer_core.environment import physical_cores
    from optimizer_core.pipeline import bench_sample, predict_native, predict_onnx, timing_settings
    from optimizer_core.runtime import create_session

    if n_runs < 1:
        raise InputError(f"num_iterations must be at least 1 (got {n_runs})")
    check_budget(budget_s)
    config = OptimizeConfig(batch_sizes=batch_sizes)  # the core's validation of the batch sizes
    _check_pair(original, onnx_model)
    rows = load_dataset(test_features, original, name="test_features").X
    if rows.shape[0] == 0:
        raise InputError("test_features has no rows to benchmark with")
    session, info = create_session(proto.SerializeToString(), timing_settings(config, physical_cores()))
    dtype = np.float64 if session.get_inputs()[0].type == "tensor(double)" else np.float32

    native_scores = predict_native(original, rows)
    onnx_scores = predict_onnx(session, rows, dtype)
    stats = drift.compute_drift(native_scores, onnx_scores, original.task)
    run_notes = [f"drift: the ONNX model differs from the original by up to {stats.describe()} on "
                 f"{stats.rows:,} row{'' if stats.rows == 1 else 's'} of test_features"]
    if original.task != "regression" and stats.label_flips:
        run_notes.append(f"drift: {stats.label_flips:,} predicted label(s) differ from the original's")
    run_notes += drift.non_finite_notes(native_scores, {ONNX: onnx_scores})
    run_notes += list(info.notes)

    native_predict = original.predictor
    if original.family == "onnx":  # an ONNX original is timed with the same session settings as the file
        from optimizer_core.models.onnx import timing_predictor

        native_predict = timing_predictor(original, timing_settings(config, physical_cores()))
    runners = [bench.native_runner(ORIGINAL, native_predict), bench.onnx_runner(ONNX, session, dtype)]
    X = bench_sample(rows, config.bench_rows, config.seed)
    budget = budget_s if budget_s is not None else time_budget(runners, X, n_runs, config.batch_sizes)
    with benchmark_lock():
        result = bench.benchmark(runners, X, config.batch_sizes, budget_s=budget, min_calls=n_runs,
                                 max_calls=n_runs, seed=config.seed)
    out = {}
    for native, onnx_stats in zip(result.latency[ORIGINAL], result.latency[ONNX], strict=True):
        repeated = [n for n in result.notes if n.startswith(bench.REPEATED_ROWS)
                    and n.endswith(f"batch size {native.batch_size:,}, so rows are repeated to fill each batch")]
        out[native.batch_size] = _result(native, onnx_stats, result.notes, run_notes + repeated, stats,
                                         info.provider_used)
    return out


def _check_pair(original: Any, onnx_model: Any) -> None:
    if onnx_model.n_features != original.n_features:
        raise InputError(f"the ONNX model takes {onnx_model.n_features} features but the original model "
                         f"{original.estimator} takes {original.n_features}: pass the ONNX file converted from it")
    if onnx_model.n_outputs != original.n_outputs or (onnx_model.task == "regression") != (original.task == "regression"):
        raise InputError(f"the ONNX model predicts {onnx_model.n_outputs} column(s) ({onnx_model.task}) but the "
                         f"original model {original.estimator} {original.n_outputs} ({original.task}): pass the ONNX "
                         "file converted from it")


def _result(native: Any, onnx_stats: Any, harness_notes: Sequence[str], run_notes: list[str], stats: Any,
            provider_used: str) -> dict[str, Any]:
    b = native.batch_size
    original_side, onnx_side = latency_dict(native, harness_notes, ORIGINAL), latency_dict(onnx_stats, harness_notes, ONNX)
    speedup = native.p50_us / onnx_stats.p50_us if onnx_stats.p50_us > 0 else math.inf
    notes = list(run_notes)
    notes += [f"original: {n}" for n in original_side["notes"]] + [f"onnx: {n}" for n in onnx_side["notes"]]
    if native.p50_ci_low_us <= onnx_stats.p50_ci_high_us and onnx_stats.p50_ci_low_us <= native.p50_ci_high_us:
        notes.append(f"at batch {b}: the p50s' 95% confidence intervals overlap, so the speedup of {speedup:.2f}x "
                     "is within the measurement noise")
    elif speedup < 1:
        notes.append(f"at batch {b}: the ONNX model is slower than the original ({1 / speedup:.2f}x the time)")
    return {
        "batch_size": b,
        "speedup": float(speedup),
        "original": original_side,
        "onnx": onnx_side,
        "provider_used": provider_used,
        "max_drift": stats.value,
        "drift_metric": stats.metric,
        "drift": {"rows": stats.rows, "max_abs": stats.max_abs, "mean_abs": stats.mean_abs, "p99_abs": stats.p99_abs,
                  "max_rel": stats.max_rel, "label_flips": stats.label_flips},
        "calls": min(native.calls, onnx_stats.calls),
        "noisy": native.noisy or onnx_stats.noisy,
        "notes": list(dict.fromkeys(notes)),
        # the classic keys: mean time per call and rows per second of each side; the ONNX side's percentiles
        "original_time_ms": original_side["mean_ms"],
        "onnx_time_ms": onnx_side["mean_ms"],
        "original_throughput": original_side["throughput_rows_per_s"],
        "onnx_throughput": onnx_side["throughput_rows_per_s"],
        **{f"{k}_ms": onnx_side[f"{k}_ms"] for k in ("mean", "std", "p50", "p95", "p99")},
    }
