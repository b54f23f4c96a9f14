"""Recommendation per batch size: the fastest measured candidate within the drift tolerance.

The native model is always a candidate, so the recommendation is never slower than keeping it.
"""

from __future__ import annotations

from optimizer_core.report import Recommendation, Report, VariantResult


def _within(variant: VariantResult, tolerance: float) -> bool:
    if variant.precision == "native":
        return True
    return variant.drift is not None and variant.drift.max_abs <= tolerance


def _drift_words(variant: VariantResult) -> str:
    d = variant.drift
    if d is None:
        return "drift not measured"
    words = f"drifts up to {d.max_abs:.2g}"
    if d.label_flip_rate:
        words += f" and flips {d.label_flip_rate:.2%} of labels"
    return words


def recommend(report: Report, *, tolerance: float) -> Recommendation | None:
    """Pick, for each measured batch size, the fastest variant whose drift is within ``tolerance``."""
    batch_sizes = sorted({row.batch_size for v in report.variants for row in v.latency})
    if not batch_sizes:
        return None
    by_batch: dict[str, str] = {}
    details: dict[str, str] = {}
    for batch in batch_sizes:
        timed = [(v, v.latency_at(batch)) for v in report.variants if v.latency_at(batch) is not None]
        eligible = [(v, row) for v, row in timed if _within(v, tolerance)]
        if not eligible:
            continue
        best, best_row = min(eligible, key=lambda pair: pair[1].p50_us)
        by_batch[str(batch)] = best.name
        native_row = next((row for v, row in timed if v.precision == "native"), None)
        text = f"{best.name}: p50 {best_row.p50_us:,.1f} µs"
        if native_row is not None and best.precision != "native":
            text += f", {native_row.p50_us / best_row.p50_us:.1f}x faster than native"
        elif best.precision == "native":
            text += ", no ONNX variant within tolerance is faster than the native model here"
        rejected = [(v, row) for v, row in timed if not _within(v, tolerance) and row.p50_us < best_row.p50_us]
        for v, row in rejected:
            text += f"; {v.name} would be faster ({row.p50_us:,.1f} µs) but {_drift_words(v)}, over your tolerance {tolerance:g}"
        details[str(batch)] = text
    picks = sorted(set(by_batch.values()))
    reason = (
        f"fastest measured variant within a drift tolerance of {tolerance:g} at each batch size "
        f"(native always a candidate): {', '.join(f'batch {b}: {n}' for b, n in by_batch.items())}"
    )
    if len(picks) == 1:
        reason = f"{picks[0]} is the fastest within a drift tolerance of {tolerance:g} at every measured batch size"
    return Recommendation(by_batch_size=by_batch, reason=reason, details=details)
