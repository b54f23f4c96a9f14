"""Print one native-vs-ONNX table for the reference models, measured in one run.

    python -m benchmarks.run [--models xgboost,lightgbm,random_forest,mlp,logistic] [--budget-s 20]
                             [--batch-sizes 1,16,256,4096] [--threads N] [--isolation-budget-s 3]

Every model is converted to ONNX, run by ONNX Runtime on CPU (intra-op threads = physical cores, spinning
off) and timed against its own ``predict_proba`` by the same harness, interleaved, plus the runtime floor
(ORT on a trivial graph of the same input shape). Then each candidate (native, fp32) is timed at batch 1
alone in a process of its own (``benchmarks.isolation``), and its p50 compared with the interleaved one.
The whole run holds the machine-wide benchmark lock.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from benchmarks.cli_args import DEFAULT_BATCH_SIZES, batch_sizes, model_keys
from benchmarks.reference_models import REFERENCE_MODELS, Reference
from optimizer_core import bench
from optimizer_core.bench_lock import benchmark_lock
from optimizer_core.report import FloorRow, LatencyStats

FLOOR_SHARE = 0.15  # of each model's budget
REPEAT_BUDGET_S = 1.5  # each of the two back-to-back XGBoost batch-1 measurements
TREES = {"xgboost": 200, "lightgbm": 200, "random_forest": 100}
TARGET_SPEEDUP = 20.0
TARGET_FLOOR_RATIO = 2.5
TARGET_REPEAT = 0.15
TARGET_OVERHEAD_NS = 1000.0
TARGET_ISOLATION = 1.2  # a candidate's batch-1 p50 in the interleaved run within this factor of it timed alone


@dataclass(frozen=True)
class ModelResult:
    ref: Reference
    native: tuple[LatencyStats, ...]
    fp32: tuple[LatencyStats, ...]
    floor: tuple[FloorRow, ...]
    max_abs_diff: float
    converter: str
    explanations: tuple[str, ...]
    notes: tuple[str, ...]
    onnx_model: bytes = field(default=b"", repr=False)  # the fp32 model, for the candidate timed alone


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=model_keys, default=list(REFERENCE_MODELS),
                        help=f"comma-separated, from {', '.join(REFERENCE_MODELS)}")
    parser.add_argument("--budget-s", type=float, default=20.0, help="timing budget per model (seconds)")
    parser.add_argument("--batch-sizes", type=batch_sizes, default=batch_sizes(DEFAULT_BATCH_SIZES))
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (default: cores)")
    parser.add_argument("--spinning", choices=("off", "on"), default="off",
                        help="ONNX Runtime's intra-op thread spinning, for the fp32 session and the floor alike "
                             "(off: no stolen cores in the interleave; on: ORT's own default)")
    parser.add_argument("--native-threads", type=int, default=None,
                        help="limit the native libraries' threads (n_jobs, OpenMP, BLAS); default: their own")
    parser.add_argument("--isolation-budget-s", type=float, default=3.0,
                        help="timing budget of each candidate timed alone in its own process, at batch 1 "
                             "(0: skip the isolation check)")
    args = parser.parse_args(argv)
    if args.budget_s <= 0:
        parser.error("--budget-s must be positive")
    if args.isolation_budget_s < 0:
        parser.error("--isolation-budget-s must be 0 (skip) or positive")
    return args


def physical_cores() -> int:
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def convert_model(estimator: Any) -> bytes:
    """The ONNX bytes the product itself makes for ``estimator`` (its scores output is SCORES_NAME)."""
    from optimizer_core.converters import convert
    from optimizer_core.models import model_from_object

    return convert(model_from_object(estimator)).SerializeToString()


def make_session(model: bytes, threads: int, spinning: bool = False) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    spin = "1" if spinning else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", spin)
    options.add_session_config_entry("session.inter_op.allow_spinning", spin)
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def measure_model(ref: Reference, batch_sizes: tuple[int, ...], budget_s: float, threads: int,
                  native_threads: int | None = None, spinning: bool = False) -> tuple[ModelResult, Any, np.ndarray]:
    log(f"{ref.title}: training")
    estimator, X = ref.build()
    if native_threads is not None and "n_jobs" in estimator.get_params():
        estimator.set_params(n_jobs=native_threads)
    model, output, converter = convert_model(estimator), bench.SCORES_NAME, "optimizer_core.converters"
    session = make_session(model, threads, spinning)
    fp32 = bench.onnx_runner("fp32", session, output=output)
    scores = fp32.predict(fp32.prepare(X))[0]
    max_abs_diff = float(np.max(np.abs(scores - estimator.predict_proba(X))))
    runners = [bench.native_runner("native", estimator.predict_proba), fp32]
    log(f"{ref.title}: measuring ({budget_s:g} s)")
    result = bench.benchmark(runners, X, batch_sizes, budget_s=budget_s * (1 - FLOOR_SHARE))
    floor = bench.measure_floor(X.shape[1], batch_sizes, budget_s=budget_s * FLOOR_SHARE, intra_op_threads=threads,
                                 allow_spinning=spinning)
    context = {"intra_op_threads": threads, "cores": physical_cores(), "tree_model": ref.key in TREES,
               "n_trees": TREES.get(ref.key)}
    explanations = bench.explain("native", result.latency, floor, context)
    return (ModelResult(ref, result.latency["native"], result.latency["fp32"], floor, max_abs_diff, converter,
                        explanations, result.notes, model), session, X)


def repeatability(session: Any, X: np.ndarray) -> tuple[float, float]:
    """XGBoost batch-1 fp32 p50 measured twice, back to back."""
    runner = bench.onnx_runner("fp32", session, output=_probabilities(session))

    def p50() -> float:
        return bench.benchmark([runner], X, (1,), budget_s=REPEAT_BUDGET_S).latency["fp32"][0].p50_us

    first = p50()
    return first, p50()


def _probabilities(session: Any) -> str:
    names = [o.name for o in session.get_outputs()]
    return "scores" if "scores" in names else "probabilities"


def fmt_us(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _overlap(a: LatencyStats, b: LatencyStats) -> bool:
    return a.p50_ci_low_us <= b.p50_ci_high_us and b.p50_ci_low_us <= a.p50_ci_high_us


def table(results: Sequence[ModelResult]) -> list[str]:
    header = ("model", "batch", "native p50 µs", "fp32 p50 µs", "speedup (native/fp32)", "floor p50 µs",
              "fp32/floor", "faster", "calls (native/fp32)")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in results:
        floors = {f.batch_size: f for f in r.floor}
        for native, fp32 in zip(r.native, r.fp32, strict=True):
            floor = floors.get(native.batch_size)
            speedup = native.p50_us / fp32.p50_us
            winner = f"fp32 {speedup:.1f}x" if speedup >= 1 else f"native {1 / speedup:.1f}x"
            if _overlap(native, fp32):
                winner += " (within noise)"
            cells = (r.ref.title, f"{native.batch_size:,}", fmt_us(native.p50_us), fmt_us(fp32.p50_us),
                     f"{speedup:.2f}", fmt_us(floor.p50_us) if floor else "-",
                     f"{fp32.p50_us / floor.p50_us:.1f}" if floor else "-", winner,
                     f"{native.calls:,}/{fp32.calls:,}")
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def target_lines(results: Sequence[ModelResult], overhead_ns: float,
                 repeat: tuple[float, float] | None) -> list[str]:
    lines = [f"Harness overhead: {overhead_ns:.0f} ns per timed call around a no-op "
             f"(target <= {TARGET_OVERHEAD_NS:.0f} ns): {_met(overhead_ns <= TARGET_OVERHEAD_NS)}"]
    stats = [s for r in results for s in (*r.native, *r.fp32)]
    noisy = sum(s.noisy for s in stats)
    lines.append(f"Noise: {noisy} of {len(stats)} measurements flagged noisy (pyperf's rules on per-call "
                 "timings: std > 10% of the mean, min or max > 50% from it, or a median CI wider than 20%)")
    xgb = next((r for r in results if r.ref.key == "xgboost"), None)
    if repeat is not None:
        ratio = max(repeat) / min(repeat)
        lines.append(f"Repeatability: XGBoost batch-1 fp32 p50 measured twice back to back: {fmt_us(repeat[0])} µs "
                     f"and {fmt_us(repeat[1])} µs, ratio {ratio:.3f} (target within {TARGET_REPEAT:.0%}): "
                     f"{_met(ratio <= 1 + TARGET_REPEAT)}")
    if xgb is not None:
        native, fp32 = _at(xgb.native, 1), _at(xgb.fp32, 1)
        floor = next((f for f in xgb.floor if f.batch_size == 1), None)
        if native and fp32:
            speedup = native.p50_us / fp32.p50_us
            lines.append(f"XGBoost batch 1: fp32 is {speedup:.2f}x faster than native predict_proba "
                         f"(target >= {TARGET_SPEEDUP:.0f}x): {_met(speedup >= TARGET_SPEEDUP)}")
        if fp32 and floor:
            ratio = fp32.p50_us / floor.p50_us
            lines.append(f"XGBoost batch 1: fp32 is within {ratio:.2f}x of the ORT floor "
                         f"(target <= {TARGET_FLOOR_RATIO}x): {_met(ratio <= TARGET_FLOOR_RATIO)}")
    return lines


def time_alone(results: Sequence[ModelResult], args: argparse.Namespace, threads: int) -> dict[tuple[str, str], Any]:
    """Each model's candidates at batch 1, each alone in a process of its own (``benchmarks.isolation``)."""
    import tempfile
    from pathlib import Path

    from benchmarks.isolation import CANDIDATES, alone_in_subprocess

    alone = {}
    with tempfile.TemporaryDirectory(prefix="io-bench-alone-") as folder:
        for r in results:
            onnx_path = Path(folder) / f"{r.ref.key}.onnx"
            onnx_path.write_bytes(r.onnx_model)
            for candidate in CANDIDATES:
                log(f"{r.ref.title}: {candidate} alone in its own process ({args.isolation_budget_s:g} s)")
                alone[(r.ref.key, candidate)] = alone_in_subprocess(
                    r.ref.key, candidate, budget_s=args.isolation_budget_s, threads=threads,
                    spinning=args.spinning == "on", native_threads=args.native_threads,
                    onnx_path=str(onnx_path) if candidate == "fp32" and r.onnx_model else None)
    return alone


def isolation_lines(results: Sequence[ModelResult], alone: dict[tuple[str, str], Any]) -> list[str]:
    """Each candidate's batch-1 p50 in the interleaved run against the same candidate timed alone in its own
    process: the interleaving is fair only if one runner does not slow the other."""
    if not alone:
        return []
    lines = [f"Isolation: each candidate's batch-1 p50 in the interleaved run against the same candidate timed alone "
             f"in a process of its own (target within {TARGET_ISOLATION}x either way):"]
    for r in results:
        for candidate, rows in (("native", r.native), ("fp32", r.fp32)):
            measured, single = _at(rows, 1), alone.get((r.ref.key, candidate))
            if measured is None or single is None:
                continue
            if single.p50_us is None:
                lines.append(f"- {r.ref.title} {candidate}: not measured alone ({single.error}): NOT met")
                continue
            ratio = measured.p50_us / single.p50_us
            lines.append(f"- {r.ref.title} {candidate}: {fmt_us(measured.p50_us)} µs in the run"
                         f"{' (noisy)' if measured.noisy else ''}, {fmt_us(single.p50_us)} µs alone"
                         f"{' (noisy)' if single.noisy else ''}, ratio {ratio:.2f}: "
                         f"{_met(max(ratio, 1 / ratio) <= TARGET_ISOLATION)}")
    if any(" (noisy)" in line for line in lines):
        lines.append("  (noisy: the harness flagged the measurement's own spread, so its p50 moves between runs too)")
    return lines


def _at(rows: tuple[LatencyStats, ...], batch_size: int) -> LatencyStats | None:
    return next((s for s in rows if s.batch_size == batch_size), None)


def _native_limits(native_threads: int | None) -> contextlib.AbstractContextManager[Any]:
    """Cap OpenMP and BLAS thread pools (ONNX Runtime has its own pool, which this leaves alone)."""
    if native_threads is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=native_threads)


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "n/a"


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import onnxruntime as ort

    threads = args.threads or physical_cores()
    started = time.perf_counter()
    load_before = _load()
    results: list[ModelResult] = []
    repeat = None
    with benchmark_lock(on_wait=log), _native_limits(args.native_threads):
        overhead = bench.harness_overhead_ns()
        for key in args.models:
            result, session, X = measure_model(REFERENCE_MODELS[key], args.batch_sizes, args.budget_s, threads,
                                               args.native_threads, args.spinning == "on")
            results.append(result)
            if key == "xgboost" and 1 in args.batch_sizes:
                repeat = repeatability(session, X)
        alone = {}
        if args.isolation_budget_s > 0 and 1 in args.batch_sizes:
            alone = time_alone(results, args, threads)
    print(f"inference-optimizer benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: onnxruntime {ort.__version__}, "
          f"{physical_cores()} cores, intra-op threads {threads}, spinning {args.spinning}, budget {args.budget_s:g} s per "
          f"model, wall {time.perf_counter() - started:.0f} s, load average {load_before} before / {_load()} after")
    native_threads = "library default" if args.native_threads is None else f"limited to {args.native_threads}"
    print(f"native = the estimator's own predict_proba (threads: {native_threads}; RandomForest trained with "
          "n_jobs=-1); fp32 = the ONNX model in ONNX Runtime; floor = ONNX Runtime on a "
          "ReduceSum graph of the same input shape")
    print()
    print("\n".join(table(results)))
    print()
    print("\n".join(target_lines(results, overhead, repeat)))
    print()
    if alone:
        print("\n".join(isolation_lines(results, alone)))
        print()
    for r in results:
        print(f"{r.ref.title}: {r.converter}; max |ONNX - native| = {r.max_abs_diff:.2g}")
        for line in (*r.explanations, *r.notes):
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
