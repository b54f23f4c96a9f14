"""Derived numbers, computed once from a Report and read by every view (the CLI, the dashboard, report.html,
the notebook display, the run history): the headline values and their one-line texts, the native/ONNX
crossover, the latency-vs-drift Pareto front, the worst rows and the metric deltas.

Figures draw these; they do not decide them. Every function takes a :class:`Report` and copes with partial
ones (variants that do not apply, no latency, regression without label flips): None or an empty result
where the report does not have the data. The headline follows the run's recommendation: it quotes only
variants within the drift tolerance the recommendation used (or its metric tolerance, ``--max-metric-loss``;
``tradeoffs`` reads both), and a tuned run's finalists measured side by side (``tune`` holds the rules:
``row_within``, ``variant_within``, ``fallback_duplicates``). A tree ensemble's trade-off frontier is derived
next door, in ``optimizer_core.tradeoffs``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from optimizer_core.data import METRICS_SKIPPED
from optimizer_core.drift import METRICS_OF
from optimizer_core.machine_load import BUSY_NOTE
from optimizer_core.report import FloorRow, LatencyStats, Report, VariantResult
from optimizer_core.tradeoffs import drift_tolerance, metric_tolerance
from optimizer_core.tune import fallback_duplicates, fastest_native, measured_rows, row_within, variant_within
from optimizer_core.units import clean_delta, fmt_diff, fmt_mb, fmt_pct, fmt_rows_per_s

HEADLINE_LABELS = {
    "speedup": "Speedup at batch 1",
    "throughput": "Best throughput",
    "size": "Size reduction",
    "drift": "Largest drift",
    "flips": "Label flips",
}


# --------------------------------------------------------------------------- selections


def measured_variants(report: Report, *, with_configurations: bool = False) -> list[VariantResult]:
    """Applicable variants that have latency rows (the native model included; with ``with_configurations``, its
    other thread settings too, in :func:`listed_variants`' order)."""
    listed = listed_variants(report) if with_configurations else report.variants
    return [v for v in listed if v.applicable and timed_rows(v)]


def listed_variants(report: Report) -> list[VariantResult]:
    """The rows of a variants table: the report's variants in order, with the native model's other thread settings
    (``native_configurations``: "native t1") right under the native variant they are configurations of."""
    listed: list[VariantResult] = []
    for v in report.variants:
        listed.append(v)
        if v.precision == "native":
            listed += report.native_configurations
    return listed


def is_native_configuration(report: Report, variant: VariantResult) -> bool:
    """Whether ``variant`` is one of the native model's other thread settings ("native t1") rather than a variant:
    the native model's predictions, timed only, so it has no drift or metrics of its own."""
    return any(variant is c for c in report.native_configurations)


def batch_sizes(report: Report) -> list[int]:
    return sorted({row.batch_size for v in report.variants for row in v.latency})


def p50_rows_per_s(row: LatencyStats) -> float:
    """Rows per second at the median call (batch / p50): the throughput the recommendation's p50 implies.
    ``rows_per_s`` in report.json is batch / mean call time, which a few slow calls pull down."""
    if row.rows_per_s_p50 is not None:
        return row.rows_per_s_p50
    return row.batch_size / (row.p50_us * 1e-6) if row.p50_us > 0 else math.inf  # reports older than the field


def timed_rows(v: VariantResult) -> list[LatencyStats]:
    """Latency rows with a usable p50 and throughput, by batch size."""
    ok = [
        r
        for r in v.latency
        if _finite(r.p50_us) and r.p50_us > 0 and _finite(r.rows_per_s) and r.rows_per_s > 0
    ]
    return sorted(ok, key=lambda r: r.batch_size)


def floor_rows(report: Report) -> list[FloorRow]:
    """The ORT runtime floor rows with a usable p50, by batch size."""
    return sorted(
        (r for r in report.runtime_floor if _finite(r.p50_us) and r.p50_us > 0), key=lambda r: r.batch_size
    )


def _onnx(report: Report) -> list[VariantResult]:
    return [v for v in report.variants if v.precision != "native" and v.applicable]


def is_truncated(v: VariantResult) -> bool:
    """A truncated ensemble (``--trees``: fewer trees than the model, a different model on purpose)."""
    return v.trees_kept is not None


def full_model_variants(report: Report) -> list[VariantResult]:
    """The applicable ONNX variants of the whole model (the precision variants: fp32, fp64, fp16, int8,
    int8-static, tensor): what the headline compares. Truncated ensembles are summarized apart
    (:func:`truncation_headline`)."""
    return [v for v in _onnx(report) if not is_truncated(v)]


def _truncated_names(report: Report) -> set[str]:
    return {v.name for v in report.variants if is_truncated(v)}


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _at(v: VariantResult, batch_size: int) -> LatencyStats | None:
    return next((r for r in timed_rows(v) if r.batch_size == batch_size), None)


def _drift_max(v: VariantResult) -> float:
    # A JSON round trip turns an infinite max_abs (NaN on one side only) into None: keep it the worst.
    return math.inf if v.drift is None or v.drift.max_abs is None else float(v.drift.max_abs)


def _drift_value(v: VariantResult) -> float:
    """The drift the gate and the recommendation compare (relative for regressors); None counts as the worst."""
    if v.drift is None or v.drift.value is None:
        return math.inf
    return float(v.drift.value)


# --------------------------------------------------------------------------- headline


def headline_values(report: Report) -> dict[str, Any]:
    """The headline numbers, raw; None wherever the report does not have the data."""
    out: dict[str, Any] = {}
    out.update(_speedup(report))
    out.update(_best_throughput(report))
    out.update(_size_reduction(report))
    out.update(_largest_drift(report))
    out.update(_worst_flips(report))
    out.update(_noise_flags(report, out))
    return out


def _tuned_finals(report: Report, batch: int | None = None) -> list[dict[str, Any]]:
    """The tuner's finalists (measured side by side), at ``batch`` when given, without the fallen-back
    duplicates the recommendation leaves out; [] for an untuned run."""
    duplicates = fallback_duplicates(report.variants)
    rows = [r for r in (report.tuning or {}).get("candidates") or [] if isinstance(r, dict) and r.get("final")
            and _finite(r.get("p50_us")) and r.get("variant") not in duplicates]
    return [r for r in rows if batch is None or int(r["batch_size"]) == batch]


def _speedup(report: Report) -> dict[str, Any]:
    """Batch 1: the fastest ONNX variant within tolerance against the fastest native configuration, as the
    recommendation compares them: a tuned run's finalists (measured side by side), else the run's variants and
    the native model's other thread settings ("native t1"). The default threads can be far slower."""
    tolerance = report_tolerance(report)  # the headline never quotes a variant the recommendation rejects
    loss = metric_tolerance(report)
    cut = _truncated_names(report)  # the headline compares the whole model's variants only
    untuned = [r for r in measured_rows(report) if int(r["batch_size"]) == 1 and _finite(r["p50_us"])
               and r["p50_us"] > 0 and r.get("variant") not in cut]
    tuned_rows = [r for r in _tuned_finals(report, 1) if r.get("variant") not in cut]
    for rows, tuned in ((tuned_rows, True), (untuned, False)):
        base = fastest_native(rows)
        onnx = [r for r in rows if r.get("precision") != "native" and row_within(r, tolerance, loss)]
        if base is not None and onnx:
            best = min(onnx, key=lambda r: r["p50_us"])
            return {"speedup_batch1": base["p50_us"] / best["p50_us"], "speedup_variant": best["variant"],
                    "speedup_configuration": best["name"], "speedup_baseline": base["name"], "speedup_tuned": tuned}
    return {"speedup_batch1": None, "speedup_variant": None, "speedup_configuration": None,
            "speedup_baseline": None, "speedup_tuned": False}


def report_tolerance(report: Report) -> float:
    """The drift tolerance a run's recommendation used (older reports: --max-drift, else the default)."""
    return drift_tolerance(report)


def _best_throughput(report: Report) -> dict[str, Any]:
    """Highest rows/s at p50 among the variants within the drift tolerance the recommendation used (native
    always counts)."""
    tolerance = report_tolerance(report)
    cut = _truncated_names(report)  # the headline compares the whole model's variants only
    finals = [r for r in _tuned_finals(report) if row_within(r, tolerance, metric_tolerance(report))
              and r.get("variant") not in cut]
    if finals:  # a tuned run: the same side-by-side measurements its recommendation compares
        best = max(finals, key=lambda r: int(r["batch_size"]) / r["p50_us"])
        return {"best_rows_per_s": int(best["batch_size"]) / best["p50_us"] * 1e6,
                "best_throughput_variant": best["variant"], "best_throughput_batch": int(best["batch_size"]),
                "best_throughput_configuration": best["name"]}
    # the native model's other thread settings ("native t1") count, as the recommendation counts them
    rows = [(v, r) for v in measured_variants(report, with_configurations=True) for r in timed_rows(v)
            if variant_within(v, tolerance, metric_tolerance(report)) and not is_truncated(v)]
    if not rows:
        return {"best_rows_per_s": None, "best_throughput_variant": None, "best_throughput_batch": None,
                "best_throughput_configuration": None}
    v, row = max(rows, key=lambda t: p50_rows_per_s(t[1]))
    native_name = report.native.name if report.native else v.name
    return {
        "best_rows_per_s": p50_rows_per_s(row),
        "best_throughput_variant": native_name if is_native_configuration(report, v) else v.name,
        "best_throughput_batch": row.batch_size,
        "best_throughput_configuration": v.name,
    }


def _size_baseline(report: Report) -> VariantResult | None:
    fp32 = next((v for v in report.variants if v.precision == "fp32" and v.size_bytes), None)
    return fp32 or next((v for v in report.variants if v.precision == "native" and v.size_bytes), None)


def _size_reduction(report: Report) -> dict[str, Any]:
    none = {
        "size_reduction": None,
        "size_variant": None,
        "size_baseline": None,
        "size_bytes": None,
        "size_baseline_bytes": None,
    }
    base = _size_baseline(report)
    if base is None:
        return none
    others = [v for v in full_model_variants(report) if v.size_bytes and v.name != base.name]
    smaller = [v for v in others if (v.size_bytes or 0) < (base.size_bytes or 0)]
    # nothing smaller than fp32 (only fp32, or fp64 and fp16 graphs that grew): fp32 against the native file,
    # the same answer whichever larger precisions were ticked
    if not smaller and base.precision != "native" and report.native and report.native.size_bytes:
        base, others = report.native, [base]
    if not others:
        return none
    small = min(others, key=lambda v: v.size_bytes or 0)
    return {
        "size_reduction": base.size_bytes / small.size_bytes,
        "size_variant": small.name,  # type: ignore[operator]
        "size_baseline": base.name,
        "size_bytes": small.size_bytes,
        "size_baseline_bytes": base.size_bytes,
    }


def _largest_drift(report: Report) -> dict[str, Any]:
    drifted = [v for v in full_model_variants(report) if v.drift is not None]
    if not drifted:
        return {"max_drift": None, "max_drift_variant": None, "max_drift_metric": None, "max_drift_abs": None}
    worst = max(drifted, key=_drift_value)
    metric = "relative" if worst.drift.metric == "max_rel" else "absolute"  # type: ignore[union-attr]
    return {"max_drift": _drift_value(worst), "max_drift_variant": worst.name, "max_drift_metric": metric,
            "max_drift_abs": _drift_max(worst)}


def _worst_flips(report: Report) -> dict[str, Any]:
    flipped = [v for v in full_model_variants(report) if v.drift is not None and v.drift.label_flips is not None]
    if not flipped:
        return {"label_flips": None, "label_flip_rate": None, "label_flip_variant": None}
    worst = max(flipped, key=lambda v: (v.drift.label_flips, _drift_max(v)))  # type: ignore[union-attr]
    return {
        "label_flips": worst.drift.label_flips,
        "label_flip_rate": worst.drift.label_flip_rate,  # type: ignore[union-attr]
        "label_flip_variant": worst.name,
    }


# the notes that change how a run reads, by how their writers start them
WARNING_NOTE_PREFIXES = (BUSY_NOTE, METRICS_SKIPPED, f"{METRICS_OF} ")


def warning_notes(report: Report) -> list[str]:
    """The run's notes that change how its numbers read: shown next to the headline, not only at the bottom."""
    return [n for n in report.notes if n.startswith(WARNING_NOTE_PREFIXES)]


def _cell_noisy(report: Report, variant: str | None, batch_size: int | None) -> bool:
    v = report.measured(variant) if variant else None
    row = v.latency_at(batch_size) if v is not None and batch_size is not None else None
    return bool(row is not None and row.noisy)


def _noise_flags(report: Report, h: dict[str, Any]) -> dict[str, bool]:
    """Whether the speedup and throughput headlines rest on a measurement flagged noisy (tuned runs: on fewer
    than STABLE_MIN_CALLS timed calls, the tuner's rows carrying call counts rather than noise flags)."""
    from optimizer_core.bench import STABLE_MIN_CALLS

    def thin(name: str | None, batch: int | None) -> bool:  # tuning rows carry call counts, not noise flags
        return any(r["name"] == name and int(r["batch_size"]) == batch and int(r.get("calls") or 0) < STABLE_MIN_CALLS
                   for r in _tuned_finals(report))

    if _tuned_finals(report, 1):
        speedup = h["speedup_batch1"] is not None and (thin(h["speedup_baseline"], 1)
                                                        or thin(h["speedup_configuration"], 1))
    else:
        speedup = h["speedup_batch1"] is not None and (
            _cell_noisy(report, h["speedup_baseline"], 1) or _cell_noisy(report, h["speedup_configuration"], 1))
    if _tuned_finals(report):
        throughput = thin(h["best_throughput_configuration"], h["best_throughput_batch"])
    else:
        throughput = h["best_rows_per_s"] is not None and _cell_noisy(
            report, h["best_throughput_configuration"], h["best_throughput_batch"])
    return {"speedup_noisy": bool(speedup), "throughput_noisy": bool(throughput)}


def headline(report: Report, h: dict[str, Any] | None = None) -> dict[str, str]:
    """The headline metrics as display strings, keyed by :data:`HEADLINE_LABELS` values; "n/a" if missing.
    ``h``: :func:`headline_values` when the caller has it already."""
    h = h if h is not None else headline_values(report)
    speedup = throughput = size = drift = flips = "n/a"
    if h["speedup_batch1"] is not None:
        faster = " (native is faster)" if h["speedup_batch1"] < 1 else ""
        speedup = f"{h['speedup_batch1']:.2f}× ({h['speedup_configuration']} vs {h['speedup_baseline']}){faster}"
    if h["best_rows_per_s"] is not None:
        throughput = (
            f"{fmt_rows_per_s(h['best_rows_per_s'])} at p50 ({h['best_throughput_configuration']}, "
            f"batch {h['best_throughput_batch']:,})"
        )
    if h["size_reduction"] is not None and h["size_reduction"] < 1:
        size = (f"none: no variant is smaller than {h['size_baseline']} {fmt_mb(h['size_baseline_bytes'])} "
                f"(the smallest, {h['size_variant']}, is {1 / h['size_reduction']:.2f}× larger)")
    elif h["size_reduction"] is not None:
        size = (
            f"{h['size_reduction']:.2f}× ({h['size_variant']} {fmt_mb(h['size_bytes'])} vs "
            f"{h['size_baseline']} {fmt_mb(h['size_baseline_bytes'])})"
        )
    if h["max_drift"] is not None:
        kind = " relative" if h["max_drift_metric"] == "relative" else ""
        drift = f"{fmt_diff(h['max_drift'])}{kind} ({h['max_drift_variant']})"
    if h["label_flips"] is not None:
        flips = f"{h['label_flips']:,} rows, {fmt_pct(h['label_flip_rate'])} ({h['label_flip_variant']})"
    elif report.model.get("task") == "regression":
        flips = "n/a (regression)"
    values = {"speedup": speedup, "throughput": throughput, "size": size, "drift": drift, "flips": flips}
    return {HEADLINE_LABELS[k]: v for k, v in values.items()}


# --------------------------------------------------------------------------- truncated ensembles


def _metric_key(report: Report) -> str | None:
    from optimizer_core.tradeoffs import primary_metric

    return primary_metric(report)


def _cut_words(report: Report, v: VariantResult) -> str:
    """'loses 0.0039 ROC AUC (tolerance 0.001) and drifts 0.35 (tolerance 0.0001)': what a truncated variant costs
    against each tolerance the run used (the metric one only when it was set)."""
    from optimizer_core.tradeoffs import metric_label
    from optimizer_core.units import clean_delta

    parts = []
    delta = clean_delta(v.metric_delta)
    loss_tol = metric_tolerance(report)
    if delta is not None:
        name = metric_label(_metric_key(report))
        said = f"loses {-delta:.2g} {name}" if delta < 0 else (
            f"gains {delta:.2g} {name}" if delta > 0 else f"keeps the {name} of the full model")
        parts.append(said + (f" (tolerance {loss_tol:g})" if loss_tol is not None else ""))
    drift = _drift_value(v)
    parts.append(f"drifts {fmt_diff(drift) if not math.isfinite(drift) else f'{drift:.2g}'}"
                 f" (tolerance {report_tolerance(report):g})")
    return " and ".join(parts)


def truncation_within(report: Report, v: VariantResult) -> bool:
    """Whether a truncated variant is within the run's drift tolerance or its metric tolerance."""
    return variant_within(v, report_tolerance(report), metric_tolerance(report))


def truncation_headline(report: Report) -> str | None:
    """One line on the truncated ensembles (``--trees``), apart from the headline's whole-model numbers: the one
    with the fewest trees within the run's tolerance (drift, or metric with ``--max-metric-loss``), its cost and
    its speed against the full fp32 model at the largest batch size both were timed at; otherwise that none is
    within it, with the closest one's cost. None when the run has no truncated variant."""
    from optimizer_core.tradeoffs import metric_label

    cut = [v for v in _onnx(report) if is_truncated(v) and v.name not in fallback_duplicates(report.variants)]
    if not cut:
        return None
    within = [v for v in cut if truncation_within(report, v)]
    if within:
        v = min(within, key=lambda c: (c.trees_kept, c.name))
        delta = v.metric_delta
        if delta is not None and _metric_key(report):
            from optimizer_core.units import clean_delta

            loss = -(clean_delta(delta) or 0.0)
            cost = (f"keeps {metric_label(_metric_key(report))} within {max(loss, 0.0):.2g}"
                    if loss > 0 else f"keeps the full model's {metric_label(_metric_key(report))}")
            cost += f", drifts {_drift_value(v):.2g}"
        else:
            cost = f"drifts {_drift_value(v):.2g}"
        line = f"Fewer trees: {v.name} ({v.trees_kept} of {v.trees_total} trees) {cost}"
        speed = _speed_against_fp32(report, v)
        return line + (f", {speed}" if speed else "") + " (within the run's tolerance)"
    metric = _metric_key(report)
    if metric and any(c.metric_delta is not None for c in cut):
        closest = max(cut, key=lambda c: (c.metric_delta if c.metric_delta is not None else -math.inf))
    else:
        closest = min(cut, key=_drift_value)
    return (f"Fewer trees: none of the {len(cut)} truncated variant{'s' if len(cut) != 1 else ''} is within the "
            f"run's tolerance; the closest, {closest.name} ({closest.trees_kept} of {closest.trees_total} trees), "
            f"{_cut_words(report, closest)}")


def _speed_against_fp32(report: Report, v: VariantResult) -> str | None:
    """'1.9× faster than fp32 at 4,096 rows': p50 against the full float32 graph on the same provider, at the
    largest batch size both were timed at."""
    provider = v.name.partition("@")[2]
    fp32 = next((f for f in full_model_variants(report) if f.precision == "fp32"
                 and f.name.partition("@")[2] == provider and timed_rows(f)), None)
    if fp32 is None:
        return None
    common = sorted({r.batch_size for r in timed_rows(v)} & {r.batch_size for r in timed_rows(fp32)})
    if not common:
        return None
    b = common[-1]
    ratio = _at(fp32, b).p50_us / _at(v, b).p50_us  # type: ignore[union-attr]
    words = f"{ratio:.1f}× faster than" if ratio >= 1 else f"{1 / ratio:.1f}× slower than"
    return f"{words} {fp32.name} at {b:,} rows"


_SUBJECT = re.compile(r"^batch (\d+): ")


def variant_explanations(report: Report) -> list[str]:
    """The run's "where each variant wins and why some are slower" lines by batch size, the whole model's variants
    first within one: a line about a truncated ensemble comes after them, marked with what it costs and whether it
    is within the run's tolerance; a comparison that mirrors a "slower" line is said once (:func:`_by_batch`). Where the run's comparison at a batch size named a truncated variant (older reports), the
    whole model's best variant is compared with native there too."""
    cut = {v.name: v for v in report.variants if is_truncated(v)}
    if not cut:
        return _by_batch(list(report.explanations), [])
    names = sorted(cut, key=len, reverse=True)
    pattern = re.compile("|".join(rf"(?<![\w@-]){re.escape(n)}(?![\w@-])" for n in names))
    full_lines: list[str] = []
    cut_lines: list[str] = []
    compared: set[int] = set()
    for line in report.explanations:
        about = list(dict.fromkeys(pattern.findall(line)))
        match = _SUBJECT.match(line)
        if not about:
            full_lines.append(line)
            if match and " faster than " in line and " slower than " not in line:
                compared.add(int(match.group(1)))
            continue
        marks = "; ".join(f"{n} has fewer trees ({cut[n].trees_kept} of {cut[n].trees_total}): "
                          f"{_cut_words(report, cut[n])}, "
                          + ("within the run's tolerance" if truncation_within(report, cut[n])
                             else "over the run's tolerance, not recommended")
                          for n in about)
        cut_lines.append(f"{line} [{marks}]")
    full_lines += _full_comparisons(report, exclude=compared)
    return _by_batch(full_lines, cut_lines)


_SLOWER = re.compile(r"^batch (\d+): (.+?) is (\S+x) slower than (.+?); likely cause")
_FASTER = re.compile(r"^batch (\d+): (.+?) is (\S+x) faster than (.+?)(?:, the fastest ONNX variant)? \(p50 ")


def _by_batch(full_lines: list[str], cut_lines: list[str]) -> list[str]:
    """The lines by batch size (the whole model's first within one; a line naming no batch size stays first),
    without a comparison that only mirrors a "slower" line of the same batch size ("native t1 is 1.05x faster
    than fp32" next to "fp32 is 1.05x slower than native t1; likely cause: ..." says it once, with the cause)."""
    def batch(line: str) -> int:
        match = _SUBJECT.match(line)
        return int(match.group(1)) if match else -1

    slower = {(m.group(1), m.group(4), m.group(3), m.group(2)) for line in full_lines + cut_lines
              if (m := _SLOWER.match(line))}
    def kind(line: str) -> int:  # within a batch size: the native note, the comparison, then the causes
        return 2 if _SLOWER.match(line) else 1 if _FASTER.match(line) else 0

    keyed = [(batch(line), group, kind(line), line) for group, lines in enumerate((full_lines, cut_lines))
             for line in lines if not ((m := _FASTER.match(line)) and tuple(m.groups()) in slower)]
    return [t[3] for t in sorted(keyed, key=lambda t: t[:3])]


def _full_comparisons(report: Report, *, exclude: set[int]) -> list[str]:
    """The comparison line of :func:`bench.explain` over the whole model's variants, at the batch sizes the
    report's own lines compared a truncated variant instead."""
    from optimizer_core.bench import _comparison_line

    native = report.native
    if native is None:
        return []
    natives = [native, *report.native_configurations]
    full = [v for v in full_model_variants(report) if v.name not in fallback_duplicates(report.variants)]
    lines = []
    for b in batch_sizes(report):
        if b in exclude:
            continue
        bases = [(n.name, row) for n in natives if (row := _at(n, b)) is not None]
        variants = {v.name: row for v in full if (row := _at(v, b)) is not None}
        if not bases or not variants:
            continue
        base_name, base = min(bases, key=lambda t: t[1].p50_us)
        lines.append(_comparison_line(b, base_name, base, variants))
    return lines


# --------------------------------------------------------------------------- throughput crossover


@dataclass(frozen=True)
class Crossover:
    """Where the faster side changes between the native model and the best ONNX variant. The native side at each
    batch size is its fastest configuration there (``tune.fastest_native``: "native" or "native t1")."""

    native: str  # the native configuration compared ("native t1"), or "native / native t1" when it changes by batch
    onnx: str
    batch_sizes: tuple[float, ...]  # estimated (log-log interpolation) batch sizes of each change
    faster_first: str  # faster at the smallest common batch size (the native configuration's own name)
    faster_last: str  # faster at the largest common batch size
    native_by_batch: tuple[tuple[int, str], ...] = ()  # (batch size, fastest native configuration there)

    @property
    def winner_throughout(self) -> str | None:
        if self.batch_sizes:
            return None
        return self.onnx if self.faster_first == self.onnx else self.native


def fastest_native_rows(report: Report) -> dict[int, tuple[str, LatencyStats]]:
    """Per batch size, the fastest native configuration timed there (``tune.fastest_native``'s rule: the native
    variant and its other thread settings, "native t1"): its name and its latency row."""
    natives = [n for n in (report.native, *report.native_configurations) if n is not None and n.applicable]
    out: dict[int, tuple[str, LatencyStats]] = {}
    for b in sorted({r.batch_size for n in natives for r in timed_rows(n)}):
        rows = {n.name: row for n in natives if (row := _at(n, b)) is not None}
        best = fastest_native([{"name": name, "precision": "native", "p50_us": row.p50_us}
                               for name, row in rows.items()])
        if best is not None:
            out[b] = (best["name"], rows[best["name"]])
    return out


def crossover(report: Report) -> Crossover | None:
    """Compare the native model, at each batch size its fastest configuration, with the ONNX variant of the whole
    model that beats it most, over their common batch sizes (a truncated ensemble is another model: it is
    summarized by :func:`truncation_headline`)."""
    native = report.native
    if native is None or not native.applicable:
        return None
    natives = fastest_native_rows(report)
    if not natives:
        return None
    best: tuple[float, VariantResult, list[int]] | None = None
    for v in full_model_variants(report):
        common = sorted({r.batch_size for r in timed_rows(v)} & set(natives))
        if not common:
            continue
        ratios = [math.log(natives[b][1].p50_us / _at(v, b).p50_us) for b in common]  # type: ignore[union-attr]
        score = float(np.mean(ratios))
        if best is None or (len(common), score) > (len(best[2]), best[0]):
            best = (score, v, common)
    if best is None:
        return None
    _, v, common = best
    logs = [math.log(natives[b][1].p50_us / _at(v, b).p50_us) for b in common]  # type: ignore[union-attr]
    changes = []
    for i in range(len(common) - 1):
        r0, r1 = logs[i], logs[i + 1]
        if (r0 > 0) != (r1 > 0):
            t = r0 / (r0 - r1) if r0 != r1 else 0.5
            lo, hi = math.log(common[i]), math.log(common[i + 1])
            changes.append(math.exp(lo + t * (hi - lo)))
    by_batch = tuple((b, natives[b][0]) for b in common)
    names = list(dict.fromkeys(name for _, name in by_batch))
    return Crossover(
        native=" / ".join(names),
        onnx=v.name,
        batch_sizes=tuple(changes),
        faster_first=v.name if logs[0] > 0 else by_batch[0][1],
        faster_last=v.name if logs[-1] > 0 else by_batch[-1][1],
        native_by_batch=by_batch,
    )


# --------------------------------------------------------------------------- latency vs drift (Pareto)


def _pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points no other point beats on both (lower latency and lower drift), by latency."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    front, best = [], math.inf
    for i in order:
        if points[i][1] < best:
            front.append(i)
            best = points[i][1]
    return front


def _candidate_drift(c: dict[str, Any]) -> float:
    """A candidate's max |diff|: 0 for native; None on an ONNX row read back from JSON means unbounded."""
    if c.get("precision") == "native":
        return 0.0
    value = c.get("max_abs")
    return math.inf if value is None else float(value)


def _tuning_candidates(report: Report, b: int) -> list[dict[str, Any]]:
    raw = (report.tuning or {}).get("candidates") or []
    out = []
    for c in raw:
        if not isinstance(c, dict) or c.get("batch_size", b) != b:
            continue
        if _finite(c.get("p50_us")) and math.isfinite(_candidate_drift(c)):  # unbounded drift has no place here
            out.append(c)
    return out


def drift_points(report: Report, batch_size: int) -> list[tuple[VariantResult, LatencyStats, float]]:
    """The variants the latency-vs-drift chart places at ``batch_size``: (variant, its latency row, max |diff|),
    0 for native and its other thread settings ("native t1": the native model's own predictions, no drift of
    their own); variants without latency there, without drift or with an unbounded drift are left out."""
    pts: list[tuple[VariantResult, LatencyStats, float]] = []
    for v in measured_variants(report, with_configurations=True):
        row = _at(v, batch_size)
        if row is None or (v.precision != "native" and v.drift is None):
            continue
        drift = 0.0 if v.precision == "native" else _drift_max(v)
        if math.isfinite(drift):
            pts.append((v, row, drift))
    return pts


def recommended_name(report: Report, batch_size: int, names: Sequence[str]) -> str | None:
    """The name a chart marks as the recommendation at ``batch_size`` among the points it drew (``names``): the
    recommended configuration ("native t1") when it is drawn, else the recommended variant; None without one."""
    rec = report.recommendation
    if rec is None:
        return None
    configuration = rec.configuration(batch_size)
    return configuration if configuration in names else rec.by_batch_size.get(str(batch_size))


def pareto_front_points(report: Report, batch_size: int) -> list[tuple[float, float]]:
    """(p50 µs, max |diff|) of the points on the latency-vs-drift Pareto front at ``batch_size``, by latency: the
    front runs through every plotted point, the variants and, in a tuned run, its candidates; [] below two."""
    plotted = [(r.p50_us, d) for _, r, d in drift_points(report, batch_size)]
    plotted += [(float(c["p50_us"]), _candidate_drift(c)) for c in _tuning_candidates(report, batch_size)]
    if len(plotted) <= 1:
        return []
    return [plotted[i] for i in _pareto_front(plotted)]


# --------------------------------------------------------------------------- drift and metrics


def drift_variants(report: Report) -> list[str]:
    """Names of variants with score samples for the drift scatter, largest drift first."""
    named = [v for v in _onnx(report) if v.drift_detail and v.drift_detail.native_score_sample]
    return [v.name for v in sorted(named, key=_drift_max, reverse=True)]


def worst_samples_table(
    report: Report, variant: str, feature_names: Sequence[str] | None = None
) -> pd.DataFrame:
    """The rows that drift most: row index, |diff|, both scores, label flip (classifiers), feature values.

    Scores are P(last class) for binary models (its decision score when the scores are not probabilities),
    the prediction for regressors, and for multiclass the class whose score moved most (named in the
    ``class`` column).
    """
    v = report.variant(variant)
    worst = v.drift_detail.worst if v and v.drift_detail else ()
    n_features = max((len(w.features) for w in worst), default=int(report.model.get("n_features") or 0))
    names = list(feature_names or report.model.get("feature_names") or [])
    if len(names) != n_features:
        names = [f"f{i}" for i in range(n_features)]
    classifier = report.model.get("task") in ("binary", "multiclass")
    multiclass = any(len(w.native) > 2 for w in worst)
    records = []
    for w in worst:
        # counted as the CSV's readers and the tool's errors count: 1 = the first row after the header
        rec: dict[str, Any] = {"data row": w.row + 1, "abs diff": w.abs_diff}
        col = _worst_column(w.native, w.variant, multiclass)
        if multiclass:
            rec["class"] = col
        rec["native score"] = w.native[col] if w.native else None
        rec["variant score"] = w.variant[col] if w.variant else None
        if classifier and w.native and w.variant:
            finite = np.isfinite(w.native).all() and np.isfinite(w.variant).all()
            rec["label flip"] = (int(np.argmax(w.native)) != int(np.argmax(w.variant))) if finite else None
        rec.update({n: (w.features[i] if i < len(w.features) else None) for i, n in enumerate(names)})
        records.append(rec)
    head = [
        "data row",
        "abs diff",
        *(["class"] if multiclass else []),
        "native score",
        "variant score",
        *(["label flip"] if classifier else []),
    ]
    return pd.DataFrame.from_records(records, columns=[*head, *[n for n in names if n not in head]])


def _worst_column(native: Sequence[float], variant: Sequence[float], multiclass: bool) -> int:
    if not native:
        return 0
    if not multiclass or len(native) != len(variant):
        return len(native) - 1
    return int(np.argmax(np.abs(np.asarray(native, dtype=float) - np.asarray(variant, dtype=float))))


_METRIC_ORDER = ("accuracy", "f1", "roc_auc", "log_loss", "rmse", "mae", "r2")


def metric_deltas(report: Report) -> pd.DataFrame:
    """One row per variant with metrics: each metric and its delta vs the native model (``Δ name``)."""
    with_metrics = [v for v in report.variants if v.applicable and v.metrics]
    keys = sorted(
        {k for v in with_metrics for k in v.metrics or {}},
        key=lambda k: (_METRIC_ORDER.index(k) if k in _METRIC_ORDER else len(_METRIC_ORDER), k),
    )
    native = report.native.metrics if report.native and report.native.metrics else {}
    records = []
    for v in with_metrics:
        rec: dict[str, Any] = {"variant": v.name}
        for k in keys:
            value = (v.metrics or {}).get(k)
            rec[k] = value
            rec[f"Δ {k}"] = clean_delta(value - native[k]) if value is not None and native.get(k) is not None else None
        records.append(rec)
    columns = ["variant", *[c for k in keys for c in (k, f"Δ {k}")]]
    return pd.DataFrame.from_records(records, columns=columns)
