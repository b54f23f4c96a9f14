"""The trade-off frontier of a run, computed once for every view: per batch size, each measured variant's
latency, drift and primary metric, whether the run's tolerance lets it be recommended, which variants are on the
Pareto fronts, and the "how many trees" curve of a tree ensemble's truncated variants.

Views (figures, the dashboard, report.html, the CLI) read these values; they never recompute a measurement.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from optimizer_core.metric_tolerance import METRIC_WORDS, PRIMARY_METRICS
from optimizer_core.report import Report, VariantResult
from optimizer_core.tune import fallback_duplicates, pareto_front, variant_within


@dataclass(frozen=True)
class TradeoffPoint:
    """One variant at one batch size."""

    name: str
    precision: str
    p50_us: float
    drift: float  # DriftStats.value; 0 for the native model
    metric: float | None  # the primary metric on the target, None without one
    metric_delta: float | None
    trees_kept: int | None  # None: every tree (full variants and native)
    trees_total: int | None
    size_bytes: int | None
    passes: bool  # within the run's drift tolerance, or its metric tolerance
    recommended: bool  # the run's pick at this batch size
    front_drift: bool = False  # no other point has lower latency and lower drift
    front_metric: bool = False  # no other point has lower latency and a higher metric
    native_configuration: bool = False  # the native model on other threads ("native t1"): native's drift and metric


def has_truncation(report: Report) -> bool:
    """Whether the run measured truncated-ensemble variants (the tree trade-off views apply)."""
    return any(v.trees_kept is not None and v.applicable for v in report.variants)


def primary_metric(report: Report) -> str | None:
    """The primary metric's key ("roc_auc", "accuracy", "r2") when the native model has it, else None."""
    key = PRIMARY_METRICS.get(report.model.get("task") or "")
    native = report.native
    return key if key and native and native.metrics and native.metrics.get(key) is not None else None


def metric_label(key: str | None) -> str:
    return METRIC_WORDS.get(key or "", key or "metric")


def drift_tolerance(report: Report) -> float:
    """The drift tolerance a run's recommendation used (older reports: --max-drift, else the default)."""
    from optimizer_core.config import DEFAULT_MAX_DRIFT

    rec = report.recommendation
    if rec is not None and rec.tolerance is not None:
        return rec.tolerance
    for key in ("recommend_tolerance", "max_drift"):  # what an older report's recommendation used
        if report.config.get(key) is not None:
            return report.config[key]
    return DEFAULT_MAX_DRIFT


def metric_tolerance(report: Report) -> float | None:
    """The metric tolerance (--max-metric-loss) the run's recommendation used, None when it used drift alone."""
    rec = report.recommendation
    if rec is not None and rec.max_metric_loss is not None:
        return rec.max_metric_loss
    value = report.config.get("max_metric_loss")
    return float(value) if value is not None else None


def tradeoff_points(report: Report, batch_size: int) -> list[TradeoffPoint]:
    """Every applicable variant timed at ``batch_size`` with a known drift (native: 0), fronts marked. The native
    model's other thread settings ("native t1", ``native_configurations``) are points too, with native's drift
    and metric (the same predictions, timed on other threads); the recommended point is the recommended
    configuration ("native t1") when it is one of them."""
    key = primary_metric(report)
    duplicates = fallback_duplicates(report.variants)
    tolerance, metric_loss = drift_tolerance(report), metric_tolerance(report)
    native = report.native
    configurations = [replace(c, metrics=native.metrics if native else c.metrics)
                      for c in report.native_configurations]
    measured = [*report.variants, *configurations]
    rec = report.recommendation
    pick = rec.by_batch_size.get(str(batch_size)) if rec else None
    configuration = rec.configuration(batch_size) if rec else None
    if configuration in {v.name for v in measured if v.latency_at(batch_size) is not None}:
        pick = configuration
    points = []
    for v in measured:
        row = v.latency_at(batch_size)
        if not v.applicable or v.name in duplicates or row is None or not row.p50_us > 0:
            continue
        if v.precision != "native" and v.drift is None:
            continue
        points.append(TradeoffPoint(
            name=v.name, precision=v.precision, p50_us=row.p50_us,
            drift=0.0 if v.precision == "native" else v.drift.value,  # type: ignore[union-attr]
            metric=_metric(v, key), metric_delta=v.metric_delta, trees_kept=v.trees_kept, trees_total=v.trees_total,
            size_bytes=v.size_bytes, passes=variant_within(v, tolerance, metric_loss), recommended=v.name == pick,
            native_configuration=any(v is c for c in configurations),
        ))
    return _with_fronts(points)


def trees_curve(report: Report, batch_size: int) -> list[TradeoffPoint]:
    """The truncated variants and the full fp32 conversion (at every tree), by trees kept: how many trees the
    metric needs and what each costs. Only float32 graphs, so the curve measures the trees, not the precision."""
    curve = [p for p in tradeoff_points(report, batch_size)
             if p.trees_kept is not None or (p.precision == "fp32" and p.name.split("@")[0] == "fp32")]
    total = next((p.trees_total for p in curve if p.trees_total), None)
    if total is None:
        return []
    # one provider's curve (the first truncated variant's): fp32@cpu and fp32@cuda are two curves, not one
    provider = next(p.name.partition("@")[2] for p in curve if p.trees_kept is not None)
    curve = [p for p in curve if p.name.partition("@")[2] == provider]
    return sorted(curve, key=lambda p: p.trees_kept if p.trees_kept is not None else total)


def trees_of(point: TradeoffPoint, curve: list[TradeoffPoint]) -> int:
    """The trees a curve point keeps (the full model's total for the fp32 conversion)."""
    if point.trees_kept is not None:
        return point.trees_kept
    return next(p.trees_total for p in curve if p.trees_total) or 0


def _metric(v: VariantResult, key: str | None) -> float | None:
    if key is None or not v.metrics:
        return None
    value = v.metrics.get(key)
    return float(value) if value is not None else None


def _with_fronts(points: list[TradeoffPoint]) -> list[TradeoffPoint]:
    by_drift = set(pareto_front([{"p50": p.p50_us, "drift": p.drift} for p in points], ("p50", "drift")))
    scored = [i for i, p in enumerate(points) if p.metric is not None]
    by_metric = {scored[i] for i in pareto_front([{"p50": points[j].p50_us, "loss": -points[j].metric}  # type: ignore[operator]
                                                  for j in scored], ("p50", "loss"))}
    return [replace(p, front_drift=i in by_drift, front_metric=i in by_metric) for i, p in enumerate(points)]


__all__ = ["TradeoffPoint", "has_truncation", "primary_metric", "tradeoff_points", "trees_curve", "drift_tolerance",
           "metric_tolerance"]
