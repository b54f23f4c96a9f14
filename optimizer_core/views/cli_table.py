"""The CLI's plain-text table of a run: one row per variant, and per native configuration ("native t1") under
native (provider, size, p50 per batch size, drift, label flips; the trees kept, the primary metric's delta and
each metric when the run has them), then what is not applicable or fell back, why variants are slower, the
recommendation and the notes.

``inference-optimizer run`` prints it after a run, ``inference-optimizer history show ID`` for a stored one.
"""

from __future__ import annotations

import math


def format_summary(report) -> str:
    """Plain-text table: one row per variant (and per native configuration: "native t1"), p50 per batch size,
    drift, size and, when the run had a target column, the variant's metrics."""
    from optimizer_core.summary import is_native_configuration, listed_variants

    listed = listed_variants(report)
    batches = sorted({row.batch_size for v in listed for row in v.latency})
    relative = any(v.drift and v.drift.metric == "max_rel" for v in report.variants)
    metric_names = list(dict.fromkeys(k for v in report.variants for k in (v.metrics or {})))
    header = ["variant", "provider", "size", *[f"p50@{b} µs" for b in batches],
              "max drift (rel)" if relative else "max drift", "flips"]
    trees = any(v.trees_kept is not None for v in report.variants)
    metric = _delta_column(report)
    extra = (["trees"] if trees else []) + ([f"Δ {metric}"] if metric else []) + metric_names
    header += extra
    rows = []
    noisy = False
    for v in listed:
        configuration = is_native_configuration(report, v)  # "native t1": the native model on other threads
        tail = (([_trees_cell(v)] if trees else []) + ([_delta_cell(v, configuration)] if metric else [])
                + [_metric((v.metrics or {}).get(name)) for name in metric_names])
        if not v.applicable:
            rows.append([v.name, "-", "n/a", *["-" for _ in batches], "-", "-", *tail])
            continue
        provider = (v.provider_used or "-").replace("ExecutionProvider", "")
        name = v.name + (" (tensor graph)" if v.graph == "tensor" and v.precision != "tensor" else "")
        cells = [name, provider + (" (fallback)" if v.fell_back else ""), _size(v.size_bytes)]
        for b in batches:
            row = v.latency_at(b)
            cells.append(f"{row.p50_us:,.1f}" + ("*" if row.noisy else "") if row else "-")
            noisy = noisy or bool(row and row.noisy)
        cells.append(("unbounded" if math.isinf(v.drift.value) else f"{v.drift.value:.2e}") if v.drift else "-")
        cells.append(str(v.drift.label_flips) if v.drift and v.drift.label_flips is not None else "-")
        rows.append(cells + tail)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    model = report.model
    task = f"{model['task']}, decision scores" if model.get("scores") == "decision" else model["task"]
    title = (f"{model['estimator']} ({model['family']}, {task}, {model['n_features']} features) on "
             f"{report.data['rows']:,} row{'' if report.data['rows'] == 1 else 's'}")
    out = [title, *lines]
    drift_kind = ("largest difference from the native prediction relative to its size" if relative
                  else "largest absolute difference from the native model's scores")
    out.append(f"  max drift = {drift_kind}")
    if metric_names:
        target = report.data.get("target")
        out.append(f"  {', '.join(metric_names)} = each variant's predictions scored against the target column"
                   + (f" {target!r}" if target else ""))
    if noisy:
        out.append("  * noisy: the calls' timings spread widely (a busy machine or too few calls); ratios that use "
                   "them are unreliable: re-run on a quiet machine or with a larger --budget-s")
    for v in report.variants:
        if not v.applicable:
            out.append(f"  {v.name}: not applicable: {'; '.join(v.notes)}")
        elif v.fell_back:
            out.append(f"  {v.name}: asked for {v.provider_wanted}, which could not run here: ran on {v.provider_used}")
    from optimizer_core.summary import truncation_headline, variant_explanations

    out += [f"  {line}" for line in variant_explanations(report)]
    trees_line = truncation_headline(report)
    if trees_line:
        out.append(trees_line)
    if report.recommendation:
        out.append(f"recommendation: {report.recommendation.reason}")
    out += [f"note: {n}" for n in report.notes]
    return "\n".join(out)


def _delta_column(report) -> str | None:
    """The primary metric's name when some variant has a delta against native (a target was given)."""
    from optimizer_core.metric_tolerance import PRIMARY_METRICS

    if not any(v.metric_delta is not None for v in report.variants):
        return None
    return PRIMARY_METRICS.get(report.model.get("task") or "")


def _trees_cell(v) -> str:
    if v.trees_kept is not None and v.trees_total:
        return f"{v.trees_kept}/{v.trees_total}"
    return "all" if v.applicable else "-"


def _delta_cell(v, configuration: bool = False) -> str:
    if configuration:
        return "-"  # the native model's predictions, only timed on other threads
    if v.precision == "native":
        return "reference"
    from optimizer_core.units import fmt_delta

    return fmt_delta(v.metric_delta, missing="-")


def _metric(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.1f}"


def _size(size_bytes: int | None) -> str:
    from optimizer_core.units import fmt_size

    return fmt_size(size_bytes, missing="-")
