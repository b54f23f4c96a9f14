"""optimize(): the one pipeline the CLI, the dashboard and notebooks call.

load (``models``) -> dataset (``data``, ``csv_reader``) -> convert (``converters``, verified fp32) ->
variant passes (``variants``) -> sessions per provider (``runtime``) -> drift and metrics on all rows
(``drift``) -> benchmark (``bench``: native and every variant, same harness) + runtime floor ->
recommendation (``tune``) -> Report (``report``). Views of the Report (``views``, via ``summary``) are
not this module's business: ``Report.write_out`` and the faces render them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from optimizer_core import bench, drift, machine_load, native_threads
from optimizer_core.config import OptimizeConfig
from optimizer_core.converters import convert
from optimizer_core.data import Dataset, load_dataset
from optimizer_core.data_hints import sparse_zeros_note
from optimizer_core.environment import describe_environment, physical_cores
from optimizer_core.errors import ConfigError, InputError, OptimizerError
from optimizer_core.models import LoadedModel, load_model, model_from_object
from optimizer_core.report import SCHEMA_VERSION, DriftStats, Report, VariantResult
from optimizer_core.runtime import SessionSettings, create_session
from optimizer_core.variants import build_variant
from optimizer_core.variants.base import PrecisionVariant

Progress = Callable[[str, float], None]
PREDICT_CHUNK_ROWS = 65_536
FP32_VERIFY_TOLERANCE = 1e-5

# share of the run's progress bar per stage (the benchmark dominates the wall time)
_STAGES = {"load": (0.0, 0.08), "convert": (0.08, 0.1), "variants": (0.1, 0.15), "sessions": (0.15, 0.2),
           "drift": (0.2, 0.3), "benchmark": (0.3, 0.97), "report": (0.97, 1.0)}


@dataclass
class _Prepared:
    """One ONNX variant on one provider, ready to be measured."""

    name: str
    variant: PrecisionVariant
    provider: str
    result: VariantResult
    session: Any = None
    input_dtype: Any = np.float32
    scores: np.ndarray | None = None
    ort_optimized: bytes | None = None  # ONNX Runtime's graph-optimized model, when asked for


def _noop(stage: str, fraction: float) -> None:
    return None


def _stage(progress: Progress, stage: str, within: float = 0.0, label: str | None = None) -> None:
    lo, hi = _STAGES[stage]
    progress(label or stage, lo + (hi - lo) * min(max(within, 0.0), 1.0))


def _as_config(config: Any) -> OptimizeConfig:
    """``config`` as an OptimizeConfig: None is the defaults, a dict its fields."""
    if config is None:
        return OptimizeConfig()
    if isinstance(config, OptimizeConfig):
        return config
    if isinstance(config, dict):
        unknown = sorted(set(config) - {f.name for f in dataclasses.fields(OptimizeConfig)})
        if unknown and unknown[0] in ("target", "y"):
            raise ConfigError(f"{unknown[0]!r} is not a config field: pass it to optimize() itself, "
                              f"optimize(model, data, config, {unknown[0]}=...)")
        if unknown:
            raise ConfigError(f"unknown config field {unknown[0]!r}: see OptimizeConfig for the fields")
        return OptimizeConfig(**config)
    raise ConfigError(f"config is a {type(config).__name__}: pass an OptimizeConfig (or a dict of its fields)")


def optimize(
    model: Any,
    data: Any,
    config: OptimizeConfig | None = None,
    progress: Progress | None = None,
    *,
    target: Any = None,
    y: Any = None,
    allow_pickle: bool = False,
    model_name: str | None = None,
    data_name: str | None = None,
) -> Report:
    """Convert ``model``, build the requested precision variants, measure them against the native
    model on ``data``, and return the Report.

    ``model``: a path or bytes of a model file, a fitted estimator/booster, an ONNX ModelProto, or a
    ``LoadedModel``. ``data``: a CSV path or bytes, a DataFrame, a numpy array or a ``Dataset``.
    ``progress(stage, fraction)`` is called as the run advances. ``target``: the target column's name, or
    the target values themselves (a Series, array or list, one per row), as ``y``.
    """
    config = _as_config(config)
    if progress is not None and not callable(progress):
        raise ConfigError(f"progress is a {type(progress).__name__}: pass a function progress(stage, fraction), "
                          "or None")
    progress = progress or _noop
    from optimizer_core.runtime import resolve_provider

    for provider in config.providers:
        resolve_provider(provider)  # an unknown name fails here, before any work
    started = time.perf_counter()
    _stage(progress, "load", 0.0, "loading model")
    load_started = time.perf_counter()
    loaded = _as_loaded(model, allow_pickle=allow_pickle, name=model_name)
    load_ms = (time.perf_counter() - load_started) * 1e3
    _stage(progress, "load", 0.5, "reading data")
    dataset = data if isinstance(data, Dataset) else load_dataset(
        data, loaded, target=target, y=y, name=data_name,
        progress=lambda stage, fraction: _stage(progress, "load", 0.1 + 0.9 * fraction, f"reading data {fraction:.0%}"),
    )
    from optimizer_core.categories import without_repeated_notes

    notes: list[str] = without_repeated_notes(loaded.notes, dataset.notes)
    if zeros := sparse_zeros_note(dataset.X, loaded):  # measured on a sample: a run's note, not the reader's
        notes.append(zeros)
    if config.max_metric_loss is not None and dataset.y is None:
        raise ConfigError("--max-metric-loss compares each variant's metric with the native model's, which needs "
                          "the true values: name the target column (--target), or leave out --max-metric-loss")

    _stage(progress, "convert", 0.0, "converting to ONNX")
    fp32_model = convert(loaded)
    _stage(progress, "convert", 0.6, "predicting natively")
    native_scores = predict_native(loaded, dataset.X)

    _stage(progress, "variants", 0.0, "building precision variants")
    built = _build_variants(loaded, fp32_model, dataset, config, progress)
    if config.trees:
        from optimizer_core.variants.truncation import build_truncated

        _stage(progress, "variants", 0.9, "building truncated ensembles")
        truncated, truncation_notes = build_truncated(loaded, config.trees)
        built += truncated
        notes += truncation_notes

    _stage(progress, "sessions", 0.0, "creating ONNX Runtime sessions")
    threads = config.threads or physical_cores()
    prepared = _prepare_sessions(built, config, threads)

    _stage(progress, "drift", 0.0, "measuring drift on all rows")
    for i, item in enumerate(prepared):
        if item.session is not None:
            item.scores = predict_onnx(item.session, dataset.X, item.input_dtype)
        _stage(progress, "drift", (i + 1) / max(len(prepared), 1), f"drift: {item.name}")
    metric_notes: list[str] = []  # filled by _metrics: rows left out, metrics undefined on this data
    native_result = VariantResult(
        name="native", precision="native", provider_requested=None, provider_used=loaded.family,
        applicable=True, notes=_native_notes(loaded, config, threads),
        size_bytes=loaded.source_bytes or None, load_ms=load_ms,
        artifact_sha256=loaded.source_sha256 or None,
        metrics=_metrics(native_scores, dataset, loaded, "native", metric_notes),
    )
    peers, peer_results = _native_peers(loaded, dataset, native_scores, config, notes, metric_notes)
    variants = [native_result, *peer_results] + [_with_drift(item, native_scores, dataset, loaded, config,
                                                             metric_notes) for item in prepared]
    variants = _with_metric_deltas(variants, loaded.task)
    notes += drift.non_finite_notes(native_scores, {i.name: i.scores for i in prepared if i.scores is not None})
    notes += dict.fromkeys(metric_notes)
    notes += _verification_notes(variants, native_scores)
    if config.trees:
        from optimizer_core.variants.truncation import finish_results

        variants, truncation_notes = finish_results(prepared, variants, dataset.X, loaded.task, predict_native,
                                                    _timing_dict(config, threads))
        notes += truncation_notes

    _stage(progress, "benchmark", 0.0, "benchmarking")
    cpu_before = machine_load.snapshot()
    variants, native_configurations, floor, bench_info, explanations, tuning = _benchmark(
        loaded, dataset, prepared, variants, config, threads, progress, peers)
    others_busy = machine_load.other_cores_busy(cpu_before, machine_load.snapshot())
    bench_info["other_processes_cores_busy"] = None if others_busy is None else round(others_busy, 2)
    if busy := machine_load.busy_note(others_busy, os.cpu_count() or 1):
        notes.append(busy)
    # batch sizes the CSV is too short for are timed on repeated rows: say so where every reader looks
    notes += [n for n in bench_info["notes"] if n.startswith(bench.REPEATED_ROWS)]

    _stage(progress, "report", 0.0, "writing report")
    from optimizer_core.tune import mark_recommended, recommend

    report = Report(
        schema_version=SCHEMA_VERSION,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        run_id=uuid.uuid4().hex[:12],
        environment=describe_environment(),
        model=loaded.describe(),
        data=dataset.describe(),
        config=config.to_dict() | {"intra_op_threads": threads},
        variants=tuple(variants),
        runtime_floor=floor,
        explanations=explanations,
        notes=tuple(notes),
        benchmark=bench_info,
        tuning=tuning,
        wall_s=round(time.perf_counter() - started, 3),
        native_configurations=native_configurations,
        artifacts=_artifacts(prepared, native_scores, loaded.task),
    )
    recommendation = recommend(report, tolerance=config.tolerance, source=config.tolerance_source,
                               max_metric_loss=config.max_metric_loss,
                               snippets=None if report.tuning else _untuned_snippets(loaded, prepared, variants,
                                                                                    config, threads))
    report = replace(report, recommendation=recommendation)
    if report.tuning:
        mark_recommended(report.tuning["candidates"], recommendation)
    if recommendation is not None and recommendation.snippet:
        from optimizer_core.tune import deploy_script

        report.artifacts["deploy.py"] = deploy_script(recommendation.snippet).encode()
    _stage(progress, "report", 1.0, "done")
    return report


def _untuned_snippets(loaded: LoadedModel, prepared: list[_Prepared], variants: list[VariantResult],
                      config: OptimizeConfig, threads: int) -> dict[str, str]:
    """Each timed ONNX variant's deploy snippet: its file, the session settings it was timed with, on the provider
    it ran on (what a tuned run's snippets recreate for its candidates)."""
    from optimizer_core.categories import snippet_lines
    from optimizer_core.tune import variant_snippets

    ran_on = {v.name: v.provider_used for v in variants if v.provider_used}
    settings = {p.name: {**_timing_dict(config, threads), "provider": ran_on.get(p.name) or p.provider}
                for p in prepared if p.session is not None}
    return variant_snippets(variants, settings, snippet_lines(loaded.stored_categories, loaded.feature_names))


def _as_loaded(model: Any, *, allow_pickle: bool, name: str | None = None) -> LoadedModel:
    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, str | bytes | bytearray | memoryview) or hasattr(model, "__fspath__"):
        return load_model(model, allow_pickle=allow_pickle, name=name)
    return model_from_object(model)


def predict_native(loaded: LoadedModel, X: np.ndarray, *, first_row: int = 0) -> np.ndarray:
    """Native scores over all rows, in bounded chunks.

    A model that rejects the data (most often missing values in an estimator without an imputer)
    is the user's input problem, reported in one line naming the estimator.
    A classifier whose own label can differ from the argmax of its scores (``LoadedModel.check_labels``)
    is refused when it does on any row: the flips and accuracy would describe another decision. ``first_row``:
    the data row ``X[0]`` is (0-based), for that message.
    """
    try:
        parts = [loaded.predict_scores(X[i:i + PREDICT_CHUNK_ROWS])
                 for i in range(0, X.shape[0], PREDICT_CHUNK_ROWS)]
        scores = np.concatenate(parts, axis=0)
        loaded.check_labels(X, scores, first_row=first_row)
    except (ValueError, TypeError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        hint = (": the CSV has missing values and this model cannot take them; fill them, or put a SimpleImputer "
                "in front of the estimator" if np.isnan(X).any() and "nan" in first.lower() else "")
        raise InputError(f"{loaded.estimator} could not predict on the data ({first}){hint}") from e
    return scores


def predict_onnx(session: Any, X: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
    """ONNX scores over all rows, in bounded chunks (only the scores output is requested)."""
    parts = []
    for i in range(0, X.shape[0], PREDICT_CHUNK_ROWS):
        chunk = np.ascontiguousarray(X[i:i + PREDICT_CHUNK_ROWS], dtype=dtype)
        parts.append(np.asarray(session.run(["scores"], {"input": chunk})[0], dtype=np.float64))
    return np.concatenate(parts, axis=0)


def _build_variants(loaded: LoadedModel, fp32_model: Any, dataset: Dataset, config: OptimizeConfig,
                    progress: Progress) -> list[PrecisionVariant]:
    built = []
    for i, precision in enumerate(config.precisions):
        _stage(progress, "variants", i / len(config.precisions), f"building {precision}")
        try:
            calibration = dataset.X if precision == "int8-static" else None  # only it calibrates
            variant = build_variant(precision, fp32_model, loaded=loaded, calibration=calibration,
                                    calibration_rows=config.calibration_rows, seed=config.seed)
            if calibration is not None and variant.applicable:  # calibrated on rows the drift is measured on
                rows = variant.config.get("calibration_rows", 0)
                variant = replace(variant, notes=(*variant.notes, (
                    f"the drift is measured on the same CSV it was calibrated on, so on {rows:,} of its rows it is "
                    "in-sample (a model calibrated on them looks better there than on unseen rows)")))
            built.append(variant)
        except OptimizerError as e:
            built.append(PrecisionVariant(precision=precision, applicable=False, model=None,
                                          notes=(f"could not be built: {e}",), nodes_changed=(), config={}))
    return built


def _prepare_sessions(built: list[PrecisionVariant], config: OptimizeConfig, threads: int) -> list[_Prepared]:
    prepared = []
    multi_provider = len(config.providers) > 1
    for variant in built:
        for provider in config.providers:
            label = getattr(variant, "name", variant.precision)  # truncated ensembles are named, not by precision
            name = f"{label}@{provider}" if multi_provider else label
            base = VariantResult(
                name=name, precision=variant.precision, provider_requested=provider, provider_used=None,
                applicable=variant.applicable, notes=variant.notes, nodes_changed=variant.nodes_changed,
                trees_kept=getattr(variant, "trees_kept", None), trees_total=getattr(variant, "trees_total", None),
                graph=variant.graph,
            )
            if not variant.applicable or variant.model is None:
                prepared.append(_Prepared(name, variant, provider, base))
                continue
            blob = variant.model.SerializeToString()
            artifact = f"{name.replace('@', '-')}.onnx"
            with tempfile.TemporaryDirectory(prefix="inference-optimizer-ort-") as scratch:
                optimized_path = os.path.join(scratch, "optimized.onnx") if config.save_ort_optimized else None
                settings = replace(timing_settings(config, threads), provider=provider,
                                   optimized_model_path=optimized_path)
                session, info = create_session(blob, settings)
                optimized = Path(optimized_path).read_bytes() if optimized_path and os.path.exists(optimized_path) else None
            input_type = session.get_inputs()[0].type
            session_settings = dict(info.settings)
            extra_notes: tuple[str, ...] = ()
            if optimized_path:
                optimized_name = artifact.replace(".onnx", ".ort-optimized.onnx")
                session_settings["optimized_model_path"] = optimized_name if optimized else None
                if optimized:
                    extra_notes = (f"{optimized_name}: ONNX Runtime's own optimized graph (level "
                                   f"{config.graph_optimization}); it may use ONNX Runtime's internal operators, so "
                                   f"load it only with onnxruntime {_ort_version()} on this kind of machine",)
            result = replace(
                base,
                provider_used=info.provider_used,
                notes=tuple(variant.notes) + tuple(info.notes) + extra_notes,
                artifact=artifact,
                size_bytes=len(blob),
                artifact_sha256=hashlib.sha256(blob).hexdigest(),
                node_placement=info.node_placement,
                session_settings=session_settings,
                session_init_ms=info.init_ms,
                rss_delta_mb=info.rss_delta_mb,
            )
            prepared.append(_Prepared(name, variant, provider, result, session,
                                      np.float64 if "double" in input_type else np.float32, ort_optimized=optimized))
    return prepared


def _with_drift(item: _Prepared, native_scores: np.ndarray, dataset: Dataset, loaded: LoadedModel,
                config: OptimizeConfig, metric_notes: list[str]) -> VariantResult:
    if item.scores is None:
        return item.result
    tolerance = config.max_drift
    stats = drift.compute_drift(native_scores, item.scores, loaded.task, tolerance=tolerance)
    detail = drift.drift_detail(native_scores, item.scores, dataset.X, seed=config.seed)
    return replace(item.result, drift=stats, drift_detail=detail,
                   metrics=_metrics(item.scores, dataset, loaded, item.name, metric_notes))


def _metrics(scores: np.ndarray, dataset: Dataset, loaded: LoadedModel, name: str,
             notes: list[str]) -> dict[str, float] | None:
    """The target metrics of ``name``'s scores; what they leave out or cannot define goes to ``notes``."""
    if dataset.y is None:
        return None
    metrics, metric_notes = drift.metrics_with_notes(scores, dataset.y, loaded.task, loaded.classes, name=name,
                                                     decision=loaded.decision_scores)
    notes.extend(metric_notes)
    return metrics


def _with_metric_deltas(variants: list[VariantResult], task: str) -> list[VariantResult]:
    """Each ONNX variant's primary metric minus native's (the --max-metric-loss rule reads it)."""
    from optimizer_core.metric_tolerance import metric_delta

    native = variants[0].metrics
    return [v if v.precision == "native" else replace(v, metric_delta=metric_delta(v.metrics, native, task))
            for v in variants]


def _verification_notes(variants: list[VariantResult], native_scores: np.ndarray) -> list[str]:
    notes = []
    no_number = int(np.count_nonzero(~np.isfinite(native_scores.reshape(native_scores.shape[0], -1)).all(axis=1)))
    for v in variants:
        if v.precision != "fp32" or v.drift is None or v.trees_kept is not None:  # truncated: checked on their own
            continue
        if v.drift.value > FP32_VERIFY_TOLERANCE:
            notes.append(f"verification: {v.name} differs from the native model by up to {v.drift.describe()}, "
                         f"more than the expected {FP32_VERIFY_TOLERANCE:g}; see the drift section")
            continue
        compared = v.drift.rows - no_number
        where = f"{compared:,} row{'' if compared == 1 else 's'}"
        if no_number:  # rows both predict NaN on agree, but they show nothing about the conversion
            where = (f"the {where} where the native model predicts a number ({no_number:,} more are NaN or "
                     "infinite on both sides)")
        notes.append(f"verification: {v.name} matches the native model within {v.drift.describe()} on {where}")
    return notes


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def bench_sample(X: np.ndarray, rows: int, seed: int) -> np.ndarray:
    if X.shape[0] <= rows:
        return np.ascontiguousarray(X, dtype=np.float32)
    idx = np.sort(np.random.default_rng(seed).choice(X.shape[0], size=rows, replace=False))
    return np.ascontiguousarray(X[idx], dtype=np.float32)


def _native_peers(loaded: LoadedModel, dataset: Dataset, native_scores: np.ndarray, config: OptimizeConfig,
                  notes: list[str], metric_notes: list[str]) -> tuple[list[Any], list[VariantResult]]:
    """The native model on a GPU (XGBoost with CUDA, when a device is present), measured like a variant."""
    from optimizer_core.models import native_gpu

    peer, why_not = native_gpu.cuda_peer(loaded)
    if peer is None:
        gpu_asked = any(p.strip().lower() in ("cuda", "tensorrt") for p in config.providers)
        if gpu_asked and loaded.family == "xgboost":
            notes.append(why_not)
        return [], []
    try:
        scores = np.concatenate([np.asarray(peer.predictor(dataset.X[i:i + PREDICT_CHUNK_ROWS]), np.float64)
                                 for i in range(0, dataset.X.shape[0], PREDICT_CHUNK_ROWS)], axis=0)
    except Exception as e:  # a GPU predictor that fails is reported, never a crash of the run
        notes.append(f"{peer.name}: the native GPU predictor failed ({type(e).__name__}: "
                     f"{(str(e).strip().splitlines() or [''])[0][:200]}), so it is not timed")
        return [], []
    scores = scores.reshape(native_scores.shape)
    stats = drift.compute_drift(native_scores, scores, loaded.task, tolerance=None)
    result = VariantResult(name=peer.name, precision="native", provider_requested="cuda",
                           provider_used=f"{loaded.family} (cuda)", applicable=True,
                           notes=(peer.note, "its drift is measured against the native model on the CPU"),
                           size_bytes=loaded.source_bytes or None, drift=stats,
                           metrics=_metrics(scores, dataset, loaded, peer.name, metric_notes))
    return [peer], [result]


def _benchmark(loaded: LoadedModel, dataset: Dataset, prepared: list[_Prepared], variants: list[VariantResult],
               config: OptimizeConfig, threads: int, progress: Progress, peers: list[Any] | None = None):
    from optimizer_core.bench_lock import benchmark_lock

    X = bench_sample(dataset.X, config.bench_rows, config.seed)
    native_predict = loaded.predictor
    if loaded.family == "onnx":  # "native" is ONNX Runtime too: time it with the variants' session settings
        from optimizer_core.models.onnx import timing_predictor

        native_predict = timing_predictor(loaded, timing_settings(config, threads))
    runners = [bench.native_runner("native", native_predict)]
    runners += [bench.native_runner(peer.name, peer.predictor) for peer in peers or ()]
    single = native_threads.single_thread_predictor(loaded, physical_cores())
    if single is not None:  # the default threads can be far slower (a busy core): time one thread beside them
        runners.append(bench.native_runner(native_threads.SINGLE_THREAD, single))
    runners += [bench.onnx_runner(p.name, p.session, p.input_dtype) for p in prepared if p.session is not None]
    # Shares of the timing budget: variants side by side, the runtime floor, and the search when tuning.
    bench_share, floor_share = (0.45, 0.1) if config.tune else (0.85, 0.15)
    bench_budget, floor_budget = config.budget_s * bench_share, config.budget_s * floor_share

    def within(lo: float, hi: float) -> Progress:
        return lambda stage, fraction: _stage(progress, "benchmark", lo + (hi - lo) * fraction, stage)

    with benchmark_lock(on_wait=lambda msg: _stage(progress, "benchmark", 0.0, msg)):
        result = bench.benchmark(runners, X, config.batch_sizes, budget_s=bench_budget,
                                 progress=within(0.0, bench_share), seed=config.seed)
        floor = bench.measure_floor(loaded.n_features, config.batch_sizes, budget_s=floor_budget,
                                    intra_op_threads=threads, allow_spinning=False,
                                    progress=within(bench_share, bench_share + floor_share))
        measured = [replace(v, latency=result.latency.get(v.name, ())) for v in variants]
        tuning = None
        if config.tune:
            from optimizer_core.categories import snippet_lines
            from optimizer_core.tune import tune

            tuning = tune(
                native_predict=native_predict, native_threaded=_native_threaded(loaded), variants=measured,
                models={p.name: p.variant.model.SerializeToString() for p in prepared if p.session is not None},
                X=X, batch_sizes=config.batch_sizes, budget_s=config.budget_s - bench_budget - floor_budget,
                tolerance=config.tolerance, cores=physical_cores(), max_metric_loss=config.max_metric_loss,
                progress=within(bench_share + floor_share, 1.0), seed=config.seed,
                encode_lines=snippet_lines(loaded.stored_categories, loaded.feature_names),
            ).to_dict()
    configurations = ((_native_configuration(loaded, result.latency[native_threads.SINGLE_THREAD]),)
                      if single is not None else ())
    context = _explain_context(loaded, prepared, threads)
    from optimizer_core.tune import fallback_duplicates

    duplicates = fallback_duplicates(measured)  # the same session twice: comparisons would quote noise
    latency = {name: rows for name, rows in result.latency.items() if name not in duplicates}
    explanations = bench.explain("native", latency, floor, context,
                                 other_natives=tuple(c.name for c in configurations))
    info = {"settings": result.settings, "notes": list(result.notes), "wall_s": result.wall_s,
            "rows_sampled": int(X.shape[0])}
    return measured, configurations, floor, info, tuple(explanations), tuning


def _native_configuration(loaded: LoadedModel, latency: tuple[Any, ...]) -> VariantResult:
    """The native model timed on one thread beside the native variant (its default threads)."""
    return VariantResult(
        name=native_threads.SINGLE_THREAD, precision="native", provider_requested=None, provider_used=loaded.family,
        applicable=True, session_settings={"threads": 1}, latency=latency, size_bytes=loaded.source_bytes or None,
        notes=(f"the native model on one thread ({native_threads.setting_words(1)}), timed in the same rounds as "
               "the native variant at its default threads: speedups over native are quoted against the faster of "
               "the two",),
    )


def _timing_dict(config: OptimizeConfig, threads: int) -> dict[str, Any]:
    """The timing settings as a tuning candidate's settings (what a deploy snippet recreates)."""
    s = timing_settings(config, threads)
    return {"intra_op_threads": s.intra_op_threads, "inter_op_threads": 1, "execution_mode": "sequential",
            "graph_optimization": s.graph_optimization, "allow_spinning": s.allow_spinning}


def timing_settings(config: OptimizeConfig, threads: int) -> SessionSettings:
    """The session settings every ONNX session of a run is timed with (spinning off: ORT's spinning threads
    would steal the cores from whatever runs next in the interleave)."""
    return SessionSettings(intra_op_threads=threads, graph_optimization=config.graph_optimization,
                           allow_spinning=False)


def _native_notes(loaded: LoadedModel, config: OptimizeConfig, threads: int) -> tuple[str, ...]:
    notes = [f"{loaded.estimator} predicting with {loaded.family} itself"]
    if loaded.family == "onnx":
        s = timing_settings(config, threads)
        notes.append(f"timed on an ONNX Runtime CPU session with the variants' settings ({s.intra_op_threads} "
                     f"intra-op thread(s), spinning {'on' if s.allow_spinning else 'off'}, graph level "
                     f"{s.graph_optimization}), so native against fp32 measures the conversion, not a difference "
                     "in session options")
    return tuple(notes)


def _native_threaded(loaded: LoadedModel) -> list[tuple[str, Any]]:
    """Native predictors pinned to 1 and to all cores, for the tuner (empty when the family has no knob)."""
    out = []
    for threads in sorted({1, physical_cores()}):
        predict = native_threads.pinned_predictor(loaded, threads)
        if predict is not None:
            out.append((native_threads.configuration_name(threads), predict))
    return out


def _explain_context(loaded: LoadedModel, prepared: list[_Prepared], threads: int) -> dict[str, Any]:
    n_trees = next((n for p in prepared if (n := _count_trees(p.variant.model)) is not None), None)
    return {
        "ops": {p.name: [op for op, _ in Counter(n.op_type for n in p.variant.model.graph.node).most_common(4)]
                for p in prepared if p.variant.model is not None},
        "intra_op_threads": threads,
        "cores": physical_cores(),
        "tree_model": n_trees is not None,
        "n_trees": n_trees,
        # a truncated ensemble (--trees) has its own: its graph's trees, else the trees it kept
        "trees": {p.name: n for p in prepared
                  if (n := _count_trees(p.variant.model) or getattr(p.variant, "trees_kept", None)) is not None},
        "provider_fallback": {p.name: p.result.provider_used for p in prepared
                              if p.result.provider_used and p.provider not in ("cpu", "auto")
                              and p.result.provider_used == "CPUExecutionProvider"},
        "precisions": {p.name: p.variant.precision for p in prepared},
        "graphs": {p.name: p.result.graph for p in prepared if p.result.graph},
        "providers_used": {p.name: p.result.provider_used for p in prepared if p.result.provider_used},
    }


def _count_trees(model: Any) -> int | None:
    if model is None:
        return None
    for node in model.graph.node:
        if node.op_type.startswith("TreeEnsemble"):
            for attr in node.attribute:
                if attr.name in ("nodes_treeids", "class_treeids", "target_treeids"):
                    return len(set(attr.ints))
                if attr.name == "tree_roots":
                    return len(attr.ints)
    return None


def _artifacts(prepared: list[_Prepared], native_scores: np.ndarray, task: str) -> dict[str, bytes]:
    artifacts: dict[str, bytes] = {}
    for item in prepared:
        if item.result.artifact and item.variant.model is not None:
            artifacts[item.result.artifact] = item.variant.model.SerializeToString()
        if item.ort_optimized is not None and item.result.artifact:
            artifacts[item.result.artifact.replace(".onnx", ".ort-optimized.onnx")] = item.ort_optimized
    with_scores = [p for p in prepared if p.scores is not None]
    if with_scores:
        artifacts["drift.csv"] = per_sample_drift_csv(native_scores, with_scores, relative=task == "regression")
    return artifacts


def per_sample_drift_csv(native_scores: np.ndarray, prepared: list[_Prepared], *, relative: bool = False) -> bytes:
    """One row per CSV row: each variant's largest absolute score difference, and for regressors also the
    relative one (the metric the gate and the recommendation use)."""
    columns = {"data_row": np.arange(1, native_scores.shape[0] + 1)}  # 1 = the first row after the header
    scale = drift.relative_scale(native_scores.reshape(native_scores.shape[0], -1)) if relative else None
    for item in prepared:
        diff = drift.per_sample_abs_diff(native_scores, item.scores)
        columns[f"abs_diff_{item.name}"] = diff
        if scale is not None:
            columns[f"rel_diff_{item.name}"] = diff / scale
    import pandas as pd

    buffer = io.StringIO()
    pd.DataFrame(columns).to_csv(buffer, index=False, float_format="%.9g")
    return buffer.getvalue().encode()


def drift_failures(report: Report, max_drift: float, precisions: tuple[str, ...],
                   max_metric_loss: float | None = None) -> list[VariantResult]:
    """Requested ONNX variants (the precisions asked for, and every truncated ensemble) whose drift exceeds
    ``max_drift`` (the CI gate), except those within ``max_metric_loss`` of native's primary metric."""
    from optimizer_core.metric_tolerance import loss_within

    failing = []
    for v in report.variants:
        requested = v.precision in precisions or v.trees_kept is not None
        if v.precision == "native" or not requested or v.drift is None:
            continue
        if v.drift.value > max_drift and not loss_within(v.metric_delta, max_metric_loss):
            failing.append(v)
    return failing


__all__ = ["optimize", "predict_native", "predict_onnx", "drift_failures", "DriftStats"]
