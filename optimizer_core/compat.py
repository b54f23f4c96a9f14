"""``InferenceOptimizer``: the classic method-per-step API, as a thin facade over the core.

Code written against the classic class runs as written::

    optimizer = InferenceOptimizer(model_dir="data/models/onnx")       # relative paths are under model_dir
    onnx_path = optimizer.convert_to_onnx(model, "xgboost", "model.onnx")            # returns the path
    quantized_path = optimizer.quantize_model(onnx_path, "model_int8.onnx")          # returns the path
    results = optimizer.benchmark_inference(model, quantized_path, X_test)          # native vs ONNX
    session = optimizer.load_onnx_model(quantized_path)
    predictions = optimizer.predict_with_onnx(session, X_new)          # probabilities, as predict_proba

Each method is one call into the same code the CLI, the dashboard and :func:`optimizer_core.optimize`
use (convert, variants, runtime, bench, drift); nothing is measured or converted a second way. Where the
core is stricter or more honest than the classic class, the method says so in its docstring:

* ``convert_to_onnx`` writes a model in the output contract: one float32 input ``input``
  ``[N, n_features]``, a float32 ``scores`` output (probabilities for every class, binary too; one
  column for regressors). No ZipMap, no label-first output. ``model_type`` and ``input_shape`` are
  checked against the model.
* ``quantize_model`` never pretends: when a precision does not apply (INT8 dynamic quantization leaves
  tree-ensemble operators untouched) it writes nothing, warns why and returns the unchanged model's path.
* ``load_onnx_model(use_gpu=True)`` reports the provider that really ran the model, and warns when it
  fell back to the CPU.
* the benchmarks use the core harness (warm-up, interleaved blocks, noise flags) and report p99 only
  when there are enough calls for it to mean something (``None`` otherwise, with a note).

The richer forms of the earlier facade keep working where they do not collide with the classic
signatures (``predict_with_onnx(X)`` on the object's own session, ``benchmark_inference(X, n_runs=...)``,
``convert_to_onnx()`` returning the ModelProto when no ``output_path`` is given). For the whole
comparison (native vs every variant, drift, figures, recommendation) use :meth:`InferenceOptimizer.optimize`,
i.e. :func:`optimizer_core.optimize`.
"""

from __future__ import annotations

import numbers
import os
import warnings
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optimizer_core import compat_bench
from optimizer_core.compat_paths import ModelDir, is_path
from optimizer_core.errors import InputError

__all__ = ["MODEL_TYPES", "InferenceOptimizer"]

MODEL_TYPES = {"xgboost": "an XGBoost", "lightgbm": "a LightGBM", "sklearn": "a scikit-learn", "onnx": "an ONNX"}
_BENCH_NAME = "onnx"
# every session load_onnx_model made, with what predict_with_onnx(session, X) needs: (its LoadedModel, input dtype)
_SESSIONS: weakref.WeakKeyDictionary[Any, tuple[Any, Any]] = weakref.WeakKeyDictionary()


class InferenceOptimizer:
    """Convert, quantize, load, predict and benchmark a model step by step.

    ``model_dir``: the folder relative paths are under (created if missing, as the classic class did);
    ``None`` (the default) means the working directory and creates nothing. A model given first instead
    of a folder (``InferenceOptimizer(fitted_model)``) is the ``model``, as in the earlier facade.

    ``model``: a fitted estimator/booster, an ONNX ModelProto, or a path/bytes of a model file (format
    sniffed from the content; pickle/joblib only with ``allow_pickle=True``, because loading one runs
    code). It is optional: the classic methods take the model as an argument.

    Attributes after the steps: ``model_dir`` (absolute Path or None), ``loaded`` (the core
    ``LoadedModel``), ``onnx_model`` (last converted, quantized or loaded ModelProto), ``session`` (ONNX
    Runtime session), ``session_info`` (requested vs used provider, notes), ``provider_used`` (ORT
    provider name that really ran the model).
    """

    def __init__(self, model_dir: Any = None, *, model: Any = None, allow_pickle: bool = False):
        if model_dir is not None and not is_path(model_dir):  # InferenceOptimizer(fitted_model)
            if model is not None:
                raise InputError("two models given: pass the model once (model=...) and model_dir= a folder")
            model, model_dir = model_dir, None
        self.paths = ModelDir.create(model_dir)
        self.model_dir: Path | None = self.paths.root
        self.allow_pickle = allow_pickle
        self.model = model
        self.loaded: Any = None
        self.onnx_model: Any = None
        self._converted: Any = None  # the fp32 model convert_to_onnx produced: every precision starts from it
        self.session: Any = None
        self.session_info: Any = None
        self.provider_used: str | None = None
        self._session_model: Any = None  # LoadedModel of the ONNX graph the session runs
        self._input_dtype: Any = np.float32
        if model is not None:
            self.loaded = self._load(model)

    # ------------------------------------------------------------------ helpers

    def _load(self, model: Any) -> Any:
        from optimizer_core.pipeline import _as_loaded

        if is_path(model):
            model = self.paths.resolve(model)
        return _as_loaded(model, allow_pickle=self.allow_pickle)

    def _model_or_self(self, model: Any) -> Any:
        if model is not None:
            return self._load(model)
        if self.loaded is None:
            raise InputError("no model: pass one to InferenceOptimizer(model=...) or to this method")
        return self.loaded

    def _features(self, X: Any, *, what: str = "X", reference: Any = None) -> np.ndarray:
        """Rows aligned to the model's features by the core's data loader (by name for DataFrames)."""
        from optimizer_core.data import load_dataset

        reference = reference or self._session_model or self.loaded
        if reference is None:
            raise InputError("no model loaded: call load_onnx_model(...) first")
        if isinstance(X, list | tuple):
            X = np.asarray(X, dtype=np.float64)
        if isinstance(X, np.ndarray) and X.ndim == 1:
            X = X.reshape(1, -1)  # one row
        if reference is self._session_model and self.loaded is not None and hasattr(X, "columns") \
                and self.loaded.feature_names and self.loaded.n_features == reference.n_features:
            reference = self.loaded  # the original model knows the column names: align by name
        return load_dataset(X, reference, name=what).X

    def _require_session(self) -> None:
        if self.session is None:
            raise InputError("no ONNX session: call load_onnx_model(path) first "
                             "(e.g. load_onnx_model(optimizer.convert_to_onnx(model, 'xgboost', 'model.onnx')))")

    def _onnx_input(self, onnx_model: Any) -> tuple[Any, Any]:
        """(contract ModelProto, its LoadedModel) for a ModelProto, path or bytes, via the core loaders."""
        from optimizer_core.converters import convert
        from optimizer_core.models import load_model, model_from_object

        if is_path(onnx_model):
            loaded = load_model(self.paths.existing(onnx_model))
        elif isinstance(onnx_model, bytes | bytearray | memoryview):
            loaded = load_model(onnx_model)
        else:
            loaded = model_from_object(onnx_model)
        if loaded.family != "onnx":
            raise InputError(f"expected an ONNX model, got a {loaded.family} model ({loaded.estimator}): "
                             "convert it first with convert_to_onnx()")
        return convert(loaded), loaded

    # ------------------------------------------------------------------ the classic steps

    def convert_to_onnx(self, model: Any = None, model_type: str | None = None,
                        output_path: str | os.PathLike[str] | None = None,
                        input_shape: Sequence[int | None] | None = None) -> Any:
        """Convert ``model`` (default: the optimizer's own) with the core converter and write it to ``output_path``.

        Returns the absolute path written (a ``str``), or the ModelProto when no ``output_path`` is given
        (nothing written; the ModelProto is also ``optimizer.onnx_model`` after every conversion).
        ``model_type`` (``"xgboost"``, ``"lightgbm"``, ``"sklearn"``, ``"onnx"``) is checked against the
        model given, ``input_shape`` (``(None, n_features)``) against its feature count: a mismatch or an
        unknown name is an ``InputError``. A relative ``output_path`` is under ``model_dir``.

        Differs from a classic skl2onnx/onnxmltools export: the result follows the output contract
        (input ``input`` float32 ``[N, n_features]``, output ``scores`` float32 ``[N, n_classes]`` or
        ``[N, 1]``; no ZipMap, the label output if any comes after the scores), and is checked against the
        model's own predictions (a ``UserWarning`` if they differ).
        """
        from optimizer_core.converters import convert
        from optimizer_core.converters.verify import verify_conversion

        if model_type is not None:
            _known_model_type(model_type, output_path)
        loaded = self._model_or_self(model)
        if model is not None and self.loaded is None:
            self.loaded = loaded
        if model_type is not None:
            _check_model_type(model_type, loaded)
        if input_shape is not None:
            _check_input_shape(input_shape, loaded)
        proto = convert(loaded)
        for problem in verify_conversion(loaded, proto):  # the same self-check as `inference-optimizer convert`
            warnings.warn(problem, UserWarning, stacklevel=2)
        self.onnx_model = self._converted = proto
        if output_path is None:
            return proto
        return str(self.paths.write(output_path, proto.SerializeToString()))

    def quantize_model(self, onnx_model: Any = None, output_path: str | os.PathLike[str] | None = None,
                       precision: str = "int8", *, calibration_data: Any = None,
                       onnx_model_path: str | os.PathLike[str] | None = None) -> Any:
        """Build a precision variant (``int8``, ``int8-static``, ``fp16``, ``fp64``, ``fp32``) with the core.

        Classic form ``quantize_model(onnx_model_path, output_path)``: reads the ONNX file (relative paths
        are under ``model_dir``), writes the variant to ``output_path`` and returns its absolute path.
        With a ModelProto (or ``None``: the fp32 model ``convert_to_onnx`` produced, never an earlier
        ``quantize_model`` result, so precisions do not stack) it returns the ModelProto, written to
        ``output_path`` if given. ``calibration_data`` (rows like X) is used by ``int8-static``.

        Differs from the classic behaviour: when the precision does not apply to this model (INT8
        dynamic quantization leaves tree-ensemble operators untouched; fp16 has no tree kernels on
        CPU...), nothing is written and a ``UserWarning`` gives the reason; the unchanged model is
        returned (its path in the classic form). In the classic form the name ``output_path`` is then
        recorded as standing for the unchanged model (in ``inference-optimizer-unchanged.json`` next to
        it), so ``load_onnx_model(output_path)`` later, in any process, loads the unchanged model with a
        warning; an earlier file at ``output_path`` is removed, since it is no longer what that name means.
        """
        from optimizer_core.config import OptimizeConfig
        from optimizer_core.variants import build_variant

        if onnx_model_path is not None:
            if onnx_model is not None:
                raise InputError("the ONNX model is given twice: pass onnx_model_path= (or onnx_model=) only")
            onnx_model = onnx_model_path
        OptimizeConfig(precisions=(precision,))  # the core's validation of the precision name
        source: Path | None = None
        if onnx_model is None:
            original = fp32 = self._converted if self._converted is not None else self.convert_to_onnx()
            loaded = self.loaded
        elif is_path(onnx_model):
            source = self.paths.existing(onnx_model)
            fp32, loaded = self._onnx_input(source)
            original = loaded.native
        else:
            fp32, loaded = self._onnx_input(onnx_model)
            original = onnx_model if isinstance(onnx_model, onnx.ModelProto) else loaded.native
        classic = source is not None and output_path is not None
        calibration = None
        if calibration_data is not None:
            from optimizer_core.data import load_dataset

            calibration = load_dataset(calibration_data, loaded, name="calibration_data").X32
        defaults = OptimizeConfig()
        variant = build_variant(precision, fp32, loaded=loaded, calibration=calibration,
                                calibration_rows=defaults.calibration_rows, seed=defaults.seed)
        if not variant.applicable or variant.model is None:
            why = "; ".join(variant.notes) or f"{precision} does not apply to this model"
            message = f"{precision} not applied, the model is returned unchanged: {why}"
            if source is not None and output_path is not None:  # the classic form
                target, removed = self.paths.record_unchanged(output_path, source, f"{precision} did not apply: {why}")
                if target != source:
                    message += (f"; nothing was written to {target.name}"
                                + (" (its earlier file was removed)" if removed else "")
                                + f", {source.name}'s path is returned, and loading {target.name} later loads "
                                  f"{source.name}")
            warnings.warn(message, UserWarning, stacklevel=2)
            return str(source) if classic else original
        self.onnx_model = variant.model
        if output_path is not None:
            written = self.paths.write(output_path, variant.model.SerializeToString())
            if classic:
                return str(written)
        return variant.model

    def load_onnx_model(self, path_or_model: Any = None, use_gpu: bool = False, *,
                        model_path: str | os.PathLike[str] | None = None) -> Any:
        """Create an ONNX Runtime session (core ``runtime.create_session``) and keep it for predict/benchmark.

        ``path_or_model`` (or ``model_path=``): a path (relative: under ``model_dir``), bytes or ModelProto.
        It is checked like an uploaded file (no external data, no custom operator domains) and brought to
        the output contract. A name ``quantize_model`` recorded as standing for an unchanged model loads
        that model, with a warning. ``use_gpu`` requests the CUDA provider. Differs from the classic
        behaviour: ``provider_used`` is the provider that really ran the nodes (``session.get_providers()``
        and the profiler, not the request), and a ``UserWarning`` says so when a GPU was requested and
        the model runs on the CPU (CUDA missing from this onnxruntime build, or no CUDA kernels for the
        model's operators, as for tree ensembles). Returns the session (an ``onnxruntime.InferenceSession``).
        """
        from optimizer_core.runtime import SessionSettings, create_session

        if model_path is not None:
            if path_or_model is not None:
                raise InputError("the ONNX model is given twice: pass model_path= (or path_or_model=) only")
            path_or_model = model_path
        if path_or_model is None:
            raise InputError("no ONNX model: pass its path, e.g. load_onnx_model('model.onnx')")
        if is_path(path_or_model):
            path_or_model = self.paths.existing(path_or_model)
        proto, session_model = self._onnx_input(path_or_model)
        session, info = create_session(proto.SerializeToString(),
                                       SessionSettings(provider="cuda" if use_gpu else "cpu"))
        self.session, self.session_info, self.provider_used = session, info, info.provider_used
        self._session_model = session_model
        self.onnx_model = proto
        inputs = session.get_inputs()
        self._input_dtype = np.float64 if inputs and inputs[0].type == "tensor(double)" else np.float32
        _SESSIONS[session] = (session_model, self._input_dtype)
        if use_gpu and (info.fell_back or info.provider_used == "CPUExecutionProvider"):
            why = "; ".join(info.notes) or "the session did not run on a GPU"
            warnings.warn(f"use_gpu=True, but the model runs on {info.provider_used}: {why}", UserWarning,
                          stacklevel=2)
        return session

    def predict_with_onnx(self, session: Any = None, features: Any = None, *, X: Any = None) -> np.ndarray:
        """Predictions of an ONNX session, as the original model's ``predict_proba`` (or ``predict``) gives them.

        Classic form ``predict_with_onnx(session, features)``: ``session`` is one ``load_onnx_model``
        returned (in this optimizer or another); returns class probabilities ``[N, n_classes]`` as
        ``predict_proba`` (binary too: two columns), or for a regressor the predictions ``[N]`` as ``predict``.
        Earlier form ``predict_with_onnx(X)``: the object's own session, the scores in the output contract
        (float64 ``[N, n_classes]``, or ``[N, 1]`` for a regressor).

        ``features``/``X``: array ``[N, n_features]`` (a 1-D array is one row), list of rows or DataFrame
        (columns matched by name when the model knows them). Differs from the classic behaviour: never
        labels and never only the positive class; take ``probabilities.argmax(axis=1)`` for the class index.
        """
        from optimizer_core.pipeline import predict_onnx

        if features is not None and X is not None:
            raise InputError("the rows are given twice: pass features (or X=) only")
        rows = features if features is not None else X
        if rows is None:  # one argument: predict_with_onnx(X) on the object's own session
            if session is None or _is_session(session):
                raise InputError("no rows to predict: pass them, predict_with_onnx(session, X)")
            self._require_session()
            return predict_onnx(self.session, self._features(session), self._input_dtype)
        if session is None:
            self._require_session()
            return predict_onnx(self.session, self._features(rows), self._input_dtype)
        if not _is_session(session):
            raise InputError(f"the first argument is a {type(session).__name__}, not an ONNX Runtime session: pass "
                             "the one load_onnx_model returned, predict_with_onnx(session, X)")
        entry = _SESSIONS.get(session)
        if entry is None:
            raise InputError("this session was not created by InferenceOptimizer.load_onnx_model: load the file "
                             "with optimizer.load_onnx_model(path), which checks it and brings it to the output "
                             "contract")
        session_model, dtype = entry
        scores = predict_onnx(session, self._features(rows, what="features", reference=session_model), dtype)
        return scores.reshape(-1) if session_model.task == "regression" else scores

    # ------------------------------------------------------------------ benchmarks

    def benchmark_inference(self, original_model: Any = None, onnx_model_path: Any = None, test_features: Any = None,
                            num_iterations: int | None = None, *, batch_size: int = 1, budget_s: float | None = None,
                            n_runs: int | None = None, X: Any = None) -> dict[str, Any]:
        """The original model against an ONNX file, timed side by side by the core harness at one batch size.

        Classic form ``benchmark_inference(original_model, onnx_model_path, test_features, num_iterations=100)``
        returns a dict with ``speedup`` (original p50 / ONNX p50 at ``batch_size``, default 1), ``original``
        and ``onnx`` (each ``mean/std/min/max/p50/p90/p95/p99`` in ``*_ms`` and ``*_us``,
        ``throughput_rows_per_s``, ``calls``, ``noisy``, ``notes``), ``provider_used``, ``max_drift`` (the
        largest difference between the two on ``test_features``: absolute for classifiers' probabilities,
        relative for regressors, as ``drift_metric`` says; ``drift`` holds the rest), ``notes``, and the
        classic keys ``original_time_ms``/``onnx_time_ms`` (mean per call) and
        ``original_throughput``/``onnx_throughput`` (rows per second).

        Differs from the classic loop: untimed warm-up, the two interleaved in blocks, distinct pre-built
        batches, ``perf_counter_ns`` around the call alone, garbage collector paused, noise flagged; the
        ONNX file runs on the CPU with the session settings ``optimize()`` times variants with. ``p99`` is
        ``None`` below 460 timed calls (not enough samples to bound it), with a note. ``budget_s`` caps the
        timing (default: sized for ``num_iterations`` calls per side).

        Earlier form ``benchmark_inference(X, n_runs=100, batch_size=1)`` (rows only, by keyword after
        them): the object's own session alone, the dict of one side plus ``n_runs`` and ``provider_used``.
        """
        if onnx_model_path is None and test_features is None:
            rows = _rows_only(original_model, X, "benchmark_inference")
            result = self._bench(rows, _runs(n_runs, num_iterations, 100), (batch_size,), budget_s)
            return next(iter(result.values()))
        runs = _runs(num_iterations, n_runs, compat_bench.CLASSIC_CALLS)
        result = self._compare(original_model, onnx_model_path, test_features, runs, (batch_size,), budget_s,
                               "benchmark_inference")
        return next(iter(result.values()))

    def benchmark_with_percentiles(self, original_model: Any = None, onnx_model_path: Any = None,
                                   test_features: Any = None, num_iterations: int | None = None, *,
                                   batch_sizes: Sequence[int] | None = None, budget_s: float | None = None,
                                   n_runs: int | None = None, X: Any = None) -> dict[int, dict[str, Any]]:
        """p50/p95/p99 of both sides per batch size: ``{batch_size: the dict of benchmark_inference}``.

        Classic form ``benchmark_with_percentiles(original_model, onnx_model_path, test_features,
        num_iterations=1000, *, batch_sizes=(1, 16, 256))``. ``p99_ms`` / ``p99_us`` are ``None`` when fewer
        than 460 calls were timed (insufficient samples: even the slowest call would not bound the true
        p99), and the notes say so. A batch larger than ``test_features`` repeats rows, with a note.

        Earlier form ``benchmark_with_percentiles(X, n_runs=1000, batch_sizes=(1,))`` (rows only): the
        object's own session alone, ``{batch_size: stats}`` as its ``benchmark_inference(X)``.
        """
        if onnx_model_path is None and test_features is None:
            rows = _rows_only(original_model, X, "benchmark_with_percentiles")
            return self._bench(rows, _runs(n_runs, num_iterations, 1000),
                               batch_sizes if batch_sizes is not None else (1,), budget_s)
        runs = _runs(num_iterations, n_runs, compat_bench.PERCENTILE_CALLS)
        sizes = batch_sizes if batch_sizes is not None else compat_bench.PERCENTILE_BATCH_SIZES
        return self._compare(original_model, onnx_model_path, test_features, runs, sizes, budget_s,
                             "benchmark_with_percentiles")

    def _compare(self, original_model: Any, onnx_model_path: Any, test_features: Any, runs: int,
                 batch_sizes: Any, budget_s: float | None, method: str) -> dict[int, dict[str, Any]]:
        if not (onnx_model_path is None or is_path(onnx_model_path)
                or isinstance(onnx_model_path, bytes | onnx.ModelProto)):
            raise InputError(f"{method}: onnx_model_path is a {type(onnx_model_path).__name__}: pass the ONNX file's "
                             "path (the earlier form takes the rows alone, then n_runs=... by keyword)")
        missing = [name for name, value in (("original_model", original_model), ("onnx_model_path", onnx_model_path),
                                            ("test_features", test_features)) if value is None]
        if missing:
            raise InputError(f"{method}(original_model, onnx_model_path, test_features): {' and '.join(missing)} "
                             f"{'is' if len(missing) == 1 else 'are'} missing")
        original = self._load(original_model)
        proto, onnx_loaded = self._onnx_input(onnx_model_path)
        return compat_bench.compare(original, proto, onnx_loaded, test_features, batch_sizes=batch_sizes,
                                    n_runs=runs, budget_s=budget_s)

    def _bench(self, X: Any, n_runs: int, batch_sizes: Any, budget_s: float | None = None) -> dict[int, dict[str, Any]]:
        from optimizer_core import bench
        from optimizer_core.bench_lock import benchmark_lock
        from optimizer_core.config import OptimizeConfig

        self._require_session()
        if not _is_whole(n_runs) or n_runs < 1:
            raise InputError(f"n_runs must be a whole number of at least 1 (got {n_runs!r})")
        batch_sizes = OptimizeConfig(batch_sizes=batch_sizes).batch_sizes  # validated and normalised by the core
        compat_bench.check_budget(budget_s)
        rows = np.ascontiguousarray(self._features(X), dtype=np.float32)
        if rows.shape[0] == 0:
            raise InputError("X has no rows to benchmark with")
        runner = bench.onnx_runner(_BENCH_NAME, self.session, self._input_dtype)
        budget = budget_s if budget_s is not None else compat_bench.time_budget([runner], rows, n_runs, batch_sizes)
        with benchmark_lock():
            result = bench.benchmark([runner], rows, batch_sizes, budget_s=budget, min_calls=n_runs,
                                     max_calls=n_runs)
        return {stats.batch_size: {"n_runs": n_runs, "provider_used": self.provider_used,
                                   **compat_bench.latency_dict(stats, result.notes, _BENCH_NAME, "n_runs")}
                for stats in result.latency[_BENCH_NAME]}

    # ------------------------------------------------------------------ the whole pipeline

    def optimize(self, data: Any, *, y: Any = None, target: Any = None, config: Any = None,
                 progress: bool = True) -> Any:
        """The full comparison (``optimizer_core.optimize``) on ``data``, with a tqdm.auto progress bar.

        ``target``: the target column's name, or the target values (as ``y``). Returns the Report: native
        vs every precision variant, latency, drift, figures, recommendation.
        """
        from optimizer_core.pipeline import optimize
        from optimizer_core.views.notebook import notebook_progress

        model = self._model_or_self(None)
        if not progress:
            return optimize(model, data, config, target=target, y=y)
        with notebook_progress() as bar:
            return optimize(model, data, config, bar, target=target, y=y)


# ---------------------------------------------------------------------- argument checks


def _is_session(value: Any) -> bool:
    return hasattr(value, "run") and hasattr(value, "get_inputs")


def _is_whole(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _known_model_type(model_type: Any, output_path: Any) -> None:
    if isinstance(model_type, str) and model_type.strip().lower() in MODEL_TYPES:
        return
    hint = ""
    if is_path(model_type) and output_path is None and (str(model_type).endswith(".onnx") or os.sep in str(model_type)):
        hint = " (the second argument is model_type: pass the file as output_path=...)"
    raise InputError(f"unknown model_type {model_type!r}: choose one of {', '.join(MODEL_TYPES)}{hint}")


def _check_model_type(model_type: str, loaded: Any) -> None:
    if model_type.strip().lower() != loaded.family:
        raise InputError(f"model_type={model_type!r} but the model is {MODEL_TYPES.get(loaded.family, loaded.family)} "
                         f"model ({loaded.estimator}): pass model_type={loaded.family!r}")


def _check_input_shape(input_shape: Any, loaded: Any) -> None:
    fix = f"pass (None, {loaded.n_features}): any number of rows of the model's {loaded.n_features} features"
    try:
        dims = tuple(input_shape)
    except TypeError:
        dims = ()
    if len(dims) != 2 or not _is_whole(dims[1]) or not (dims[0] is None or (_is_whole(dims[0]) and dims[0] >= 1)):
        raise InputError(f"input_shape is {input_shape!r}: {fix}")
    if dims[1] != loaded.n_features:
        raise InputError(f"input_shape {tuple(input_shape)!r} says {dims[1]} features but {loaded.estimator} takes "
                         f"{loaded.n_features}: {fix}")
    if dims[0] is not None:
        warnings.warn(f"input_shape's batch dimension {dims[0]} is not fixed in the ONNX model: it takes any number "
                      "of rows", UserWarning, stacklevel=3)


def _rows_only(first: Any, X: Any, method: str) -> Any:
    """The rows of an earlier-form call (``method(X, ...)``), refusing a classic call that lacks its arguments."""
    if first is not None and X is not None:
        raise InputError(f"{method}: the rows are given twice: pass them once")
    rows = first if first is not None else X
    if rows is None or hasattr(rows, "predict") or isinstance(rows, onnx.ModelProto):
        raise InputError(f"{method}(original_model, onnx_model_path, test_features): onnx_model_path and "
                         "test_features are missing")
    return rows


def _runs(primary: Any, alias: Any, default: int) -> int:
    if primary is not None and alias is not None:
        raise InputError("the number of timed calls is given twice: pass num_iterations (or n_runs) only")
    value = primary if primary is not None else alias if alias is not None else default
    if not _is_whole(value) or value < 1:
        raise InputError(f"the number of timed calls is {value!r}: give a whole number of at least 1")
    return int(value)
