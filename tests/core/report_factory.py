"""A realistic synthetic Report for tests of every view (figures, HTML, CLI table, dashboard, history).

``make_report()`` builds native, fp32, fp16 (not applicable) and int8 (with visible drift) variants
with latency samples, drift samples, worst rows, metrics, a runtime floor and a recommendation.
Latency follows ``p50 = overhead + per_row * batch``: ONNX has the lower overhead, and with
``native_wins_large_batch`` native has the lower per-row cost, so the two cross between batch 64
and 1024.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from optimizer_core.report import (
    SCHEMA_VERSION,
    DriftDetail,
    DriftStats,
    FloorRow,
    LatencyStats,
    Recommendation,
    Report,
    VariantResult,
    WorstRow,
)

FEATURES = ("age", "income", "score", "tenure")
ALL_VARIANTS = ("native", "fp32", "fp16", "int8")
# (overhead µs, µs per row) per variant
_COST_NATIVE = (200.0, 0.5)
_COST_ONNX_FAST = {"fp32": (20.0, 0.3), "int8": (25.0, 0.28)}
_COST_ONNX_CROSS = {"fp32": (20.0, 1.0), "int8": (25.0, 0.9)}
_SIZES = {"native": 2_400_000, "fp32": 1_000_000, "fp16": 520_000, "int8": 260_000}
_DRIFT_SCALE = {"fp32": 1e-8, "int8": 1e-2}


def make_latency(
    batch_size: int, p50: float, *, calls: int, seed: int = 0, samples: bool = True
) -> LatencyStats:
    """LatencyStats from log-normal samples around ``p50`` (p99 is None below 460 calls)."""
    rng = np.random.default_rng(seed)
    s = p50 * rng.lognormal(0.0, 0.15, size=calls)
    s = s * (p50 / float(np.median(s)))
    ci = 1.96 * 1.2533 * float(np.std(s)) / np.sqrt(calls)
    return LatencyStats(
        batch_size=batch_size,
        calls=calls,
        mean_us=float(s.mean()),
        std_us=float(s.std()),
        min_us=float(s.min()),
        max_us=float(s.max()),
        p50_us=float(np.median(s)),
        p90_us=float(np.percentile(s, 90)),
        p95_us=float(np.percentile(s, 95)),
        p99_us=float(np.percentile(s, 99)) if calls >= 460 else None,
        p999_us=None,
        rows_per_s=batch_size / (float(np.median(s)) * 1e-6),
        p50_ci_low_us=float(np.median(s)) - ci,
        p50_ci_high_us=float(np.median(s)) + ci,
        samples_us=tuple(float(v) for v in s) if samples else (),
    )


def _scores(task: str, rows: int, rng: np.random.Generator) -> np.ndarray:
    if task == "regression":
        return rng.normal(50.0, 15.0, size=(rows, 1))
    n_classes = 2 if task == "binary" else 3
    logits = rng.normal(0.0, 2.0, size=(rows, n_classes))
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _perturb(native: np.ndarray, scale: float, task: str, rng: np.random.Generator) -> np.ndarray:
    noise = rng.normal(0.0, scale, size=native.shape)
    noise[rng.random(native.shape[0]) < 0.3] = 0.0  # some rows identical: zeros in the histogram
    if task == "regression":
        return native + noise * 100.0
    out = np.clip(native + noise, 0.0, 1.0)
    out = out / out.sum(axis=1, keepdims=True)
    if scale >= 1e-3:  # visible drift flips the labels of the closest calls
        top2 = np.sort(native, axis=1)[:, -2:]
        for row in np.argsort(top2[:, 1] - top2[:, 0])[:3]:
            top = np.argsort(native[row])[-2:]
            out[row, top] = out[row, top[::-1]]
    return out


def _drift(
    task: str, native: np.ndarray, variant: np.ndarray, X: np.ndarray
) -> tuple[DriftStats, DriftDetail]:
    diff = np.abs(native - variant).max(axis=1)
    flips = None if task == "regression" else int(np.count_nonzero(native.argmax(1) != variant.argmax(1)))
    stats = DriftStats(
        rows=int(diff.size),
        max_abs=float(diff.max()),
        mean_abs=float(diff.mean()),
        p99_abs=float(np.percentile(diff, 99)),
        max_rel=float((diff / np.maximum(np.abs(native).max(axis=1), 1e-12)).max()),
        label_flips=flips,
        label_flip_rate=None if flips is None else flips / diff.size,
        above_thresholds={f"{t:g}": int(np.count_nonzero(diff > t)) for t in (1e-6, 1e-4, 1e-2)},
        tolerance=1e-2,
        passed=bool(diff.max() <= 1e-2),
        metric="max_rel" if task == "regression" else "max_abs",  # as drift.compute_drift sets it
    )
    col = native.shape[1] - 1
    worst = tuple(
        WorstRow(
            int(i),
            float(diff[i]),
            tuple(map(float, native[i])),
            tuple(map(float, variant[i])),
            tuple(map(float, X[i])),
        )
        for i in np.argsort(-diff)[:10]
    )
    detail = DriftDetail(
        abs_diff_sample=tuple(map(float, diff)),
        native_score_sample=tuple(map(float, native[:, col])),
        variant_score_sample=tuple(map(float, variant[:, col])),
        worst=worst,
    )
    return stats, detail


def _metrics(task: str, shift: float) -> dict[str, float]:
    if task == "regression":
        return {"rmse": 4.2 + shift * 10, "mae": 3.1 + shift * 10, "r2": 0.91 - shift}
    return {
        "accuracy": 0.912 - shift,
        "f1": 0.884 - shift,
        "roc_auc": 0.955 - shift,
        "log_loss": 0.231 + shift,
    }


def make_report(
    task: str = "binary",
    with_latency: bool = True,
    *,
    variants: Sequence[str] = ALL_VARIANTS,
    batch_sizes: Sequence[int] = (1, 64, 1024),
    native_wins_large_batch: bool = True,
    with_samples: bool = True,
    with_drift: bool = True,
    with_floor: bool = True,
    with_recommendation: bool = True,
    with_tuning: bool = False,
    estimator: str | None = None,
    rows: int = 400,
    seed: int = 0,
) -> Report:
    """A synthetic Report; every piece can be switched off to exercise partial reports."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, len(FEATURES))) * np.array([10.0, 1e4, 1.0, 3.0]) + np.array(
        [40.0, 5e4, 0.0, 5.0]
    )
    native_scores = _scores(task, rows, rng)
    costs = _COST_ONNX_CROSS if native_wins_large_batch else _COST_ONNX_FAST
    built = []
    for i, name in enumerate(variants):
        built.append(
            _variant(
                name,
                i,
                task,
                with_latency,
                with_samples,
                with_drift,
                batch_sizes,
                costs,
                native_scores,
                X,
                rng,
            )
        )
    n_classes = None if task == "regression" else (2 if task == "binary" else 3)
    default_estimator = {
        "binary": "XGBClassifier",
        "multiclass": "RandomForestClassifier",
        "regression": "LGBMRegressor",
    }[task]
    floor = (
        tuple(FloorRow(b, 4.0 + 0.01 * b, 500) for b in batch_sizes) if with_floor and with_latency else ()
    )
    return Report(
        schema_version=SCHEMA_VERSION,
        created_at="2025-01-01T00:00:00+00:00",
        run_id=f"synthetic-{task}-{seed}",
        environment={
            "onnxruntime": "1.20.1",
            "python": "3.12.3",
            "cpu": "Synthetic CPU @ 3.0GHz",
            "cores": 8,
            "logical_cores": 16,
            "available_providers": ["CPUExecutionProvider"],
        },
        model={
            "family": "xgboost",
            "estimator": estimator or default_estimator,
            "task": task,
            "n_features": len(FEATURES),
            "n_classes": n_classes,
            "feature_names": list(FEATURES),
            "classes": None if n_classes is None else list(range(n_classes)),
            "source_bytes": _SIZES["native"],
        },
        data={"path": "synthetic.csv", "rows": rows, "target": "label" if task != "regression" else "price"},
        config={"batch_sizes": list(batch_sizes), "precisions": [v for v in variants if v != "native"]},
        variants=tuple(built),
        runtime_floor=floor,
        recommendation=_recommendation(built, batch_sizes) if with_recommendation and with_latency else None,
        explanations=(
            "native is faster than fp32 at batch 1024: the tree traversal in ONNX Runtime costs "
            "more per row than XGBoost's own predictor",
        )
        if native_wins_large_batch
        else (),
        notes=("synthetic report for tests",),
        tuning=_tuning(batch_sizes) if with_tuning else None,
        wall_s=12.5,
        artifacts={v.artifact: b"synthetic onnx bytes" for v in built if v.artifact},
    )


def _variant(
    name: str,
    index: int,
    task: str,
    with_latency: bool,
    with_samples: bool,
    with_drift: bool,
    batch_sizes: Sequence[int],
    costs: dict[str, tuple[float, float]],
    native_scores: np.ndarray,
    X: np.ndarray,
    rng: np.random.Generator,
) -> VariantResult:
    precision = name
    if name == "fp16":
        return VariantResult(
            name=name,
            precision=precision,
            provider_requested="CPUExecutionProvider",
            provider_used=None,
            applicable=False,
            notes=("fp16 does not apply: TreeEnsemble has no float16 kernel on CPU",),
        )
    overhead, per_row = _COST_NATIVE if name == "native" else costs.get(name, (30.0, 0.4))
    latency: tuple[LatencyStats, ...] = ()
    if with_latency:
        latency = tuple(
            make_latency(
                b,
                overhead + per_row * b,
                calls=500 if b < 1000 else 200,
                seed=index * 100 + j,
                samples=with_samples,
            )
            for j, b in enumerate(batch_sizes)
        )
    drift = detail = None
    metrics = _metrics(task, 0.0)
    if name != "native" and with_drift:
        scale = _DRIFT_SCALE.get(name, 1e-5)
        drift, detail = _drift(task, native_scores, _perturb(native_scores, scale, task, rng), X)
        metrics = _metrics(task, scale * 2)
        if not with_samples:
            detail = DriftDetail()
    native = name == "native"
    return VariantResult(
        name=name,
        precision=precision,
        provider_requested=None if native else "CPUExecutionProvider",
        provider_used=None if native else "CPUExecutionProvider",
        applicable=True,
        notes=("int8 quantizes the MatMul weights; TreeEnsemble stays float32",) if name == "int8" else (),
        artifact=None if native else f"model.{name}.onnx",
        size_bytes=_SIZES.get(name, 500_000),
        session_init_ms=None if native else 12.0 + index,
        latency=latency,
        drift=drift,
        metrics=metrics,
        drift_detail=detail,
    )


def _recommendation(variants: list[VariantResult], batch_sizes: Sequence[int]) -> Recommendation | None:
    by_batch: dict[str, str] = {}
    for b in batch_sizes:
        timed = [(v.name, v.latency_at(b)) for v in variants if v.latency_at(b) is not None]
        if timed:
            by_batch[str(b)] = min(timed, key=lambda t: t[1].p50_us)[0]  # type: ignore[union-attr]
    if not by_batch:
        return None
    return Recommendation(
        by_batch_size=by_batch,
        reason="fastest measured variant within a drift tolerance of 0.01",
        details={b: f"{n} is fastest at batch {b}" for b, n in by_batch.items()},
        snippet="import onnxruntime as ort\nsess = ort.InferenceSession('model.fp32.onnx')",
    )


def _tuning(batch_sizes: Sequence[int]) -> dict[str, Any]:
    candidates = []
    for b in batch_sizes:
        for threads in (1, 2, 4):
            candidates.append(
                {
                    "name": f"fp32 t{threads}",
                    "batch_size": b,
                    "p50_us": (20 + b) / threads**0.5,
                    "max_abs": 1e-8,
                    "size_bytes": _SIZES["fp32"],
                    "recommended": threads == 4,
                }
            )
    return {"candidates": candidates}
