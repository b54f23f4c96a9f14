"""How much latency a tree ensemble's truncated variants buy, and what they cost in ROC AUC, measured in one run.

    python -m benchmarks.trees [--budget-s 30] [--batch-sizes 1,16,256,4096] [--threads N]
                               [--trees 25%,50%,75%]

The reference XGBoost model (200 rounds, depth 6, 25 features) is converted by the product (fp32) and cut by the
product's truncation pass (the first k rounds, verified against XGBoost's own ``iteration_range``); every graph
runs in ONNX Runtime on CPU with the same session settings and is timed by the product's harness, interleaved,
so the ratios come from one run. Targets, at 4,096 rows: the 50% variant's p50 at most 0.65x the full fp32
model's, the 25% variant's at most 0.4x. The whole run holds the machine-wide benchmark lock.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from benchmarks.cli_args import DEFAULT_BATCH_SIZES, batch_sizes
from benchmarks.reference_models import REFERENCE_MODELS, synthetic_test_labels
from benchmarks.run import _load, fmt_us, log, make_session, physical_cores
from optimizer_core import bench
from optimizer_core.bench_lock import benchmark_lock
from optimizer_core.report import LatencyStats

TARGET_BATCH = 4096
TARGETS = {"50%": 0.65, "25%": 0.4}  # share kept -> largest p50 ratio vs the full fp32 model at TARGET_BATCH
VERIFY_TOLERANCE = 1e-5


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    from optimizer_core.config import parse_trees

    parser = argparse.ArgumentParser(prog="python -m benchmarks.trees", description=__doc__.splitlines()[0])
    parser.add_argument("--budget-s", type=float, default=30.0, help="timing budget (seconds)")
    parser.add_argument("--batch-sizes", type=batch_sizes, default=batch_sizes(DEFAULT_BATCH_SIZES))
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (default: cores)")
    parser.add_argument("--trees", type=parse_trees, default=parse_trees("25%,50%,75%"),
                        help="truncated variants to time besides 25%% and 50%% (default: 25%%,50%%,75%%)")
    args = parser.parse_args(argv)
    if args.budget_s <= 0:
        parser.error("--budget-s must be positive")
    args.trees = tuple(dict.fromkeys((*args.trees, *TARGETS)))  # the targets' variants are always measured
    if TARGET_BATCH not in args.batch_sizes:
        args.batch_sizes = tuple(sorted({*args.batch_sizes, TARGET_BATCH}))
    return args


def build(trees: tuple[Any, ...]) -> tuple[dict[str, Any], dict[str, str], Any, np.ndarray, np.ndarray]:
    """The fp32 graph and the truncated ones (name -> ONNX model), which request each came from, the native model,
    the test rows and their labels."""
    from optimizer_core.converters import convert
    from optimizer_core.models import model_from_object
    from optimizer_core.variants.truncation import build_truncated

    log("XGBoost reference model: training")
    estimator, X = REFERENCE_MODELS["xgboost"].build()
    loaded = model_from_object(estimator)
    log("converting and cutting")
    models = {"fp32": convert(loaded)}
    asked = {"fp32": "100%"}
    variants, notes = build_truncated(loaded, trees)
    for line in notes:
        log(line)
    for v in variants:
        if v.model is None:
            raise SystemExit(f"{v.name} could not be built: {'; '.join(v.notes)}")
        scores = _scores(make_session(v.model.SerializeToString(), 1), X)
        worst = float(np.abs(scores - v.reference.predict_scores(X)).max())
        if worst > VERIFY_TOLERANCE:
            raise SystemExit(f"{v.name} differs from XGBoost's iteration_range by {worst:.2g}: not measured")
        models[v.name] = v.model
        asked[v.name] = v.config["requested"]
    return models, asked, estimator, X, synthetic_test_labels()


def _scores(session: Any, X: np.ndarray) -> np.ndarray:
    return np.asarray(session.run(["scores"], {"input": X})[0], dtype=np.float64)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import onnxruntime as ort
    from sklearn.metrics import roc_auc_score

    threads = args.threads or physical_cores()
    started = time.perf_counter()
    load_before = _load()
    models, asked, estimator, X, y = build(args.trees)
    sessions = {name: make_session(model.SerializeToString(), threads) for name, model in models.items()}
    native = estimator.predict_proba(X)
    auc_native = roc_auc_score(y, native[:, 1])
    quality = {}
    for name, session in sessions.items():
        scores = _scores(session, X)
        quality[name] = (roc_auc_score(y, scores[:, 1]) - auc_native, float(np.abs(scores - native).max()))
    order = sorted(sessions, key=lambda n: -1 if n == "fp32" else int(n.split("-")[1]), reverse=False)
    runners = [bench.onnx_runner(name, sessions[name]) for name in order]
    with benchmark_lock(on_wait=log):
        log(f"measuring {len(runners)} graphs ({args.budget_s:g} s)")
        result = bench.benchmark(runners, X, args.batch_sizes, budget_s=args.budget_s)
    print(f"inference-optimizer trees benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: onnxruntime {ort.__version__}, "
          f"{physical_cores()} cores, intra-op threads {threads}, spinning off, budget {args.budget_s:g} s, wall "
          f"{time.perf_counter() - started:.0f} s, load average {load_before} before / {_load()} after")
    print(f"XGBoost 200 rounds depth 6, 25 features, {X.shape[0]:,} test rows; native ROC AUC {auc_native:.4f}; "
          "every graph is the product's float32 ONNX, timed interleaved in ONNX Runtime")
    print()
    print("\n".join(table(order, asked, result.latency, quality, args.batch_sizes)))
    print()
    print("* noisy: the calls' timings spread widely (a busy machine or too few calls)")
    print()
    print("\n".join(target_lines(asked, result.latency)))
    for line in result.notes:
        print(f"note: {line}")
    return 0


def table(order: list[str], asked: dict[str, str], latency: dict[str, tuple[LatencyStats, ...]],
          quality: dict[str, tuple[float, float]], sizes: Sequence[int]) -> list[str]:
    header = ("variant", "rounds kept", *[f"p50 @{b:,}" for b in sizes], f"p50 vs fp32 @{sizes[-1]:,}",
              "ROC AUC delta vs native", "max drift vs native")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    full = _at(latency["fp32"], sizes[-1])
    for name in order:
        rows = {s.batch_size: s for s in latency[name]}
        last = rows.get(sizes[-1])
        ratio = f"{last.p50_us / full.p50_us:.2f}x" if last and full else "-"
        delta, drift = quality[name]
        kept = "200 (all)" if name == "fp32" else f"{name.split('-')[1]} ({asked[name]})"
        cells = (name, kept, *[_cell(rows.get(b)) for b in sizes], ratio, f"{delta:+.4f}",
                 f"{drift:.2g}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _cell(row: LatencyStats | None) -> str:
    """A p50 in µs, starred when the harness flagged the measurement noisy."""
    return "-" if row is None else fmt_us(row.p50_us) + ("*" if row.noisy else "")


def target_lines(asked: dict[str, str], latency: dict[str, tuple[LatencyStats, ...]]) -> list[str]:
    full = _at(latency["fp32"], TARGET_BATCH)
    lines = []
    for share, limit in TARGETS.items():
        name = next((n for n, a in asked.items() if a == share), None)
        cut = _at(latency[name], TARGET_BATCH) if name else None
        if full is None or cut is None:
            lines.append(f"{share} variant at batch {TARGET_BATCH:,}: not measured: NOT met")
            continue
        ratio = cut.p50_us / full.p50_us
        noisy = " (noisy measurement)" if cut.noisy or full.noisy else ""
        lines.append(f"{share} variant ({name}) p50 at batch {TARGET_BATCH:,} is {ratio:.2f}x the full fp32 model's "
                     f"(target <= {limit}x){noisy}: {'met' if ratio <= limit else 'NOT met'}")
    return lines


def _at(rows: tuple[LatencyStats, ...], batch_size: int) -> LatencyStats | None:
    return next((s for s in rows if s.batch_size == batch_size), None)


if __name__ == "__main__":
    sys.exit(main())
