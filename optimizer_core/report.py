"""The Report: frozen dataclasses that every view (JSON, HTML, SQLite, CLI table, dashboard) reads.

``report.json`` is ``Report.to_dict()``; ``Report.from_dict`` reads it back (history, shared links).
Fields may be added freely; renaming one means bumping ``SCHEMA_VERSION``.

This module holds the dataclasses and their JSON form only, and imports nothing else from the package: the
measuring modules (bench, drift) build its parts. ``write_out``, the notebook display and ``figures`` are
views, reached by name through ``_VIEWS`` (see the comment there).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
P99_MIN_CALLS = 460  # below this not even the maximum bounds the true p99 (MLPerf LoadGen's floor)
P999_MIN_CALLS = 4600


@dataclass(frozen=True)
class LatencyStats:
    """Latency of one runner at one batch size; all times in microseconds per call."""

    batch_size: int
    calls: int
    mean_us: float
    std_us: float
    min_us: float
    max_us: float
    p50_us: float
    p90_us: float
    p95_us: float
    p99_us: float | None  # None: fewer than P99_MIN_CALLS timed calls ("insufficient samples")
    p999_us: float | None
    rows_per_s: float
    p50_ci_low_us: float
    p50_ci_high_us: float
    noisy: bool = False
    noise_reasons: tuple[str, ...] = ()
    samples_us: tuple[float, ...] = ()  # raw per-call timings, downsampled to at most 10,000
    # batch / p50, the throughput the headline and the charts show (summary.p50_rows_per_s reads it; rows_per_s
    # is batch / mean, which a few slow calls pull down); None in reports written before it existed
    rows_per_s_p50: float | None = None


@dataclass(frozen=True)
class DriftStats:
    """How far a variant's scores are from the native model's, over all rows."""

    rows: int
    max_abs: float
    mean_abs: float
    p99_abs: float
    max_rel: float
    label_flips: int | None  # classifiers only
    label_flip_rate: float | None
    above_thresholds: dict[str, int] = field(default_factory=dict)  # "1e-06" -> rows above it
    tolerance: float | None = None
    passed: bool | None = None
    # what tolerances are compared with: absolute score difference for classifiers (probabilities), relative
    # for regressors, whose float32 rounding grows with the size of the predictions
    metric: str = "max_abs"

    def __post_init__(self) -> None:
        # JSON has no infinity: a report read back carries None where a prediction was NaN or infinite on one
        # side only. That drift is unbounded, the worst there is, never "unknown" or zero.
        for name in ("max_abs", "mean_abs", "p99_abs", "max_rel"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, math.inf)

    @property
    def value(self) -> float:
        return self.max_rel if self.metric == "max_rel" else self.max_abs

    def describe(self) -> str:
        kind = "relative" if self.metric == "max_rel" else "absolute"
        if math.isinf(self.value):
            return f"unbounded ({kind}: NaN or infinity where the native model predicts a number, or the reverse)"
        return f"{self.value:.2g} ({kind})"


@dataclass(frozen=True)
class WorstRow:
    row: int
    abs_diff: float
    native: tuple[float, ...]
    variant: tuple[float, ...]
    features: tuple[float | None, ...]

    def __post_init__(self) -> None:
        # JSON has no NaN or infinity: read back, a non-finite score is None. A missing difference is the
        # unbounded one (NaN on one side only); a missing score is NaN, never a crash in the tables.
        if self.abs_diff is None:
            object.__setattr__(self, "abs_diff", math.inf)
        for name in ("native", "variant"):
            values = getattr(self, name)
            if any(v is None for v in values):
                object.__setattr__(self, name, tuple(math.nan if v is None else v for v in values))


@dataclass(frozen=True)
class DriftDetail:
    """Material for the drift plots: bounded samples, never the full per-row arrays."""

    abs_diff_sample: tuple[float, ...] = ()
    native_score_sample: tuple[float, ...] = ()
    variant_score_sample: tuple[float, ...] = ()
    worst: tuple[WorstRow, ...] = ()


@dataclass(frozen=True)
class VariantResult:
    name: str
    precision: str  # native | fp32 | fp64 | fp16 | int8 | int8-static | tensor
    provider_requested: str | None
    provider_used: str | None
    applicable: bool
    notes: tuple[str, ...] = ()
    artifact: str | None = None
    size_bytes: int | None = None
    artifact_sha256: str | None = None
    nodes_changed: tuple[str, ...] = ()
    graph: str | None = None  # "tree-ensemble" (ai.onnx.ml tree operators), "tensor" (trees as standard operators)
    node_placement: dict[str, list[str]] | None = None  # provider -> op types placed on it
    session_settings: dict[str, Any] | None = None
    session_init_ms: float | None = None
    load_ms: float | None = None
    rss_delta_mb: float | None = None
    latency: tuple[LatencyStats, ...] = ()
    drift: DriftStats | None = None
    metrics: dict[str, float] | None = None
    drift_detail: DriftDetail | None = None
    # truncated ensembles: boosting rounds (or forest trees) kept and the model's own; None for full variants
    trees_kept: int | None = None
    trees_total: int | None = None
    # the primary metric (ROC AUC binary, accuracy multiclass, R² regression) minus native's; None without both
    metric_delta: float | None = None
    # a truncated variant checked against the native model cut the same way: reference, max_abs|max_rel, passed
    verification: dict[str, Any] | None = None
    deploy: dict[str, str] | None = None  # "onnx" / "native": Python that deploys this variant

    def latency_at(self, batch_size: int) -> LatencyStats | None:
        return next((row for row in self.latency if row.batch_size == batch_size), None)

    @property
    def fell_back(self) -> bool:
        """The session ran on another provider than the one the request resolved to (e.g. CUDA -> CPU)."""
        if self.precision == "native" or not self.provider_used or not self.session_settings:
            return False
        resolved = self.session_settings.get("provider_resolved")
        return bool(resolved) and resolved != self.provider_used

    @property
    def provider_wanted(self) -> str | None:
        """The provider the user asked for, by name: what "auto" resolved to, else the name they gave."""
        resolved = (self.session_settings or {}).get("provider_resolved")
        req = self.provider_requested
        return req if req and req != "auto" else resolved or req


@dataclass(frozen=True)
class FloorRow:
    batch_size: int
    p50_us: float
    calls: int


@dataclass(frozen=True)
class Recommendation:
    """Per batch size, the variant to deploy (``by_batch_size``: "fp32", "native", ...) and, for a tuned run,
    the measured configuration of it (``configuration_by_batch_size``: "fp32 t1 spin all", "native t2")."""

    by_batch_size: dict[str, str]
    reason: str
    details: dict[str, str] = field(default_factory=dict)  # batch size -> reason in words
    snippet: str | None = None
    configuration_by_batch_size: dict[str, str] = field(default_factory=dict)
    tolerance: float | None = None  # the drift allowed for a pick (DriftStats.value)
    max_metric_loss: float | None = None  # a pick over ``tolerance`` may lose at most this much primary metric

    def configuration(self, batch_size: int | str) -> str | None:
        """The configuration picked at ``batch_size`` (the variant name when the run was not tuned)."""
        key = str(batch_size)
        return self.configuration_by_batch_size.get(key) or self.by_batch_size.get(key)

    def configurations(self) -> dict[str, str]:
        """Batch size -> configuration, for every batch size with a pick."""
        return {b: self.configuration_by_batch_size.get(b) or v for b, v in self.by_batch_size.items()}


@dataclass(frozen=True)
class Report:
    schema_version: int
    created_at: str
    run_id: str
    environment: dict[str, Any]
    model: dict[str, Any]
    data: dict[str, Any]
    config: dict[str, Any]
    variants: tuple[VariantResult, ...]
    runtime_floor: tuple[FloorRow, ...] = ()
    recommendation: Recommendation | None = None
    explanations: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    benchmark: dict[str, Any] = field(default_factory=dict)
    tuning: dict[str, Any] | None = None
    wall_s: float | None = None
    # the native model timed beside the native variant in other thread settings ("native t1": one thread), same
    # harness, same rounds; speedups over native are quoted against the fastest of them (tune.fastest_native)
    native_configurations: tuple[VariantResult, ...] = ()
    # file name -> bytes (one .onnx per variant, drift.csv); written by write_out, not part of JSON
    artifacts: dict[str, bytes] = field(default_factory=dict, repr=False, compare=False)

    def variant(self, name: str) -> VariantResult | None:
        return next((v for v in self.variants if v.name == name), None)

    @property
    def native(self) -> VariantResult | None:
        return next((v for v in self.variants if v.precision == "native"), None)

    def measured(self, name: str) -> VariantResult | None:
        """The variant or native configuration (``native_configurations``) called ``name``."""
        return self.variant(name) or next((v for v in self.native_configurations if v.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        data = _to_plain(self)
        data.pop("artifacts", None)
        return data

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False, default=str)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"report schema_version {version!r} is not supported (expected {SCHEMA_VERSION})")
        return _from_plain(cls, data)

    @classmethod
    def from_json(cls, text: str) -> Report:
        return cls.from_dict(json.loads(text))

    def write_out(self, out_dir: str | os.PathLike[str], *, html: str | bool | None = True) -> Path:
        """Write report.json, report.html and every artifact into ``out_dir``, all or nothing.

        ``html``: True (or None) renders report.html (``views.html.render_html``), a string is written as it is,
        False leaves it out.

        A new or empty folder receives the files; a folder holding an earlier run's output is replaced;
        a folder holding anything else is refused with ConfigError (see ``optimizer_core.out_dir``).
        The writer is ``optimizer_core.views.output.write_out`` (a view: it renders report.html).
        """
        return _view("write_out")(self, out_dir, html=html)

    def _repr_html_(self) -> str:
        """Rich display in Jupyter: headline, variants table and key figures (see optimizer_core.views.notebook)."""
        return _view("notebook_html")(self)

    @property
    def figures(self) -> dict[str, Any]:
        """Every plotly figure for this report, title -> figure (``views.figures.all_figures``)."""
        return _view("figures")(self)


# The Report's conveniences for people (write_out, the notebook display, figures) are views of it, above this
# module: they are registered here by name, as model families, converters and passes are, and imported on first
# use, so the dataclasses never import presentation and computing modules stay free of plotly
# (docs/architecture.md, "The Report's conveniences"). name -> (module, function taking the report)
_VIEWS = {
    "write_out": ("optimizer_core.views.output", "write_out"),
    "notebook_html": ("optimizer_core.views.notebook", "report_html"),
    "figures": ("optimizer_core.views.notebook", "report_figures"),
}


def _view(name: str) -> Any:
    module, function = _VIEWS[name]
    return getattr(importlib.import_module(module), function)


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_plain(v) for v in value]
    if isinstance(value, float):
        return _finite_or_none(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _to_plain(value.item())
    return value


def _finite_or_none(x: float) -> float | None:
    return x if x == x and x not in (float("inf"), float("-inf")) else None


def _from_plain(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _from_plain(args[0], value) if len(args) == 1 else value
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if f.name in value:
                kwargs[f.name] = _from_plain(hints[f.name], value[f.name])
        return tp(**kwargs)
    if origin is tuple:
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        return tuple(_from_plain(inner, v) for v in value)
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        return [_from_plain(inner, v) for v in value]
    if origin is dict:
        _, inner = typing.get_args(tp) or (Any, Any)
        return {k: _from_plain(inner, v) for k, v in value.items()}
    if tp is float and isinstance(value, int):
        return float(value)
    return value
