"""``InferenceOptimizer``: the classic method-per-step API, as a thin facade over the core.

Each method is one call into the same code the CLI, the dashboard and :func:`optimizer_core.optimize`
use (convert, variants, runtime, bench); nothing is measured or converted a second way. Where the
core is stricter or more honest than a classic optimizer class, the method says so in its docstring:

* ``convert_to_onnx`` returns a model in the output contract: one float32 input ``input``
  ``[N, n_features]``, a float32 ``scores`` output (probabilities for every class, binary too; one
  column for regressors). No ZipMap, no label-first output.
* ``quantize_model`` never pretends: when a precision does not apply (INT8 dynamic quantization leaves
  tree-ensemble operators untouched) it returns the model unchanged and warns why.
* ``load_onnx_model(use_gpu=True)`` reports the provider that really ran the model, and warns when it
  fell back to the CPU.
* the benchmarks warm up, time with ``perf_counter_ns`` around the call alone and report p99 only
  when there are enough calls for it to mean something (``None`` otherwise, with a note).

For the whole comparison (native vs every variant, drift, figures, recommendation) use
:meth:`InferenceOptimizer.optimize`, i.e. :func:`optimizer_core.optimize`.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optimizer_core.errors import InputError

__all__ = ["InferenceOptimizer"]

_BENCH_NAME = "onnx"
_MIN_BUDGET_S = 1.0  # the harness warms up for >= 0.2 s within 30% of a batch size's share
_BUDGET_HEADROOM = 3.0  # budget = headroom x the estimated cost of the requested calls, + warm-up


class InferenceOptimizer:
    """Convert, quantize, load, predict and benchmark a model step by step.

    ``model``: a fitted estimator/booster, an ONNX ModelProto, or a path/bytes of a model file (format
    sniffed from the content; pickle/joblib only with ``allow_pickle=True``, because loading one runs
    code). It is optional when you start from an ONNX file with :meth:`load_onnx_model`.

    Attributes after the steps: ``loaded`` (the core ``LoadedModel``), ``onnx_model`` (last converted
    or quantized ModelProto), ``session`` (ONNX Runtime session), ``session_info`` (requested vs used
    provider, notes), ``provider_used`` (ORT provider name that really ran the model).
    """

    def __init__(self, model: Any = None, *, allow_pickle: bool = False):
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

        return _as_loaded(model, allow_pickle=self.allow_pickle)

    def _model_or_self(self, model: Any) -> Any:
        if model is not None:
            return self._load(model)
        if self.loaded is None:
            raise InputError("no model: pass one to InferenceOptimizer(model) or to this method")
        return self.loaded

    def _features(self, X: Any, *, what: str = "X") -> np.ndarray:
        """Rows aligned to the model's features by the core's data loader (by name for DataFrames)."""
        from optimizer_core.data import load_dataset

        reference = self._session_model or self.loaded
        if reference is None:
            raise InputError("no model loaded: call load_onnx_model(...) first")
        if isinstance(X, list | tuple):
            X = np.asarray(X, dtype=np.float64)
        if isinstance(X, np.ndarray) and X.ndim == 1:
            X = X.reshape(1, -1)  # one row
        if self._session_model is not None and self.loaded is not None and hasattr(X, "columns") \
                and self.loaded.feature_names and self.loaded.n_features == self._session_model.n_features:
            reference = self.loaded  # the original model knows the column names: align by name
        return load_dataset(X, reference, name=what).X

    def _require_session(self) -> None:
        if self.session is None:
            raise InputError("no ONNX session: call load_onnx_model(model_or_path) first "
                             "(e.g. load_onnx_model(opt.convert_to_onnx()))")

    @staticmethod
    def _write(proto: Any, output_path: str | os.PathLike[str] | None) -> None:
        if output_path is not None:
            path = Path(output_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(proto.SerializeToString())
            tmp.replace(path)

    # ------------------------------------------------------------------ the classic steps

    def convert_to_onnx(self, model: Any = None, output_path: str | os.PathLike[str] | None = None) -> Any:
        """Convert the model (or ``model``) with the core converter; write it to ``output_path`` if given.

        Differs from a classic skl2onnx/onnxmltools export: the result follows the output contract
        (input ``input`` float32 ``[N, n_features]``, output ``scores`` float32 ``[N, n_classes]`` or
        ``[N, 1]``; no ZipMap, the label output if any comes after the scores).
        """
        from optimizer_core.converters import convert

        loaded = self._model_or_self(model)
        if model is not None and self.loaded is None:
            self.loaded = loaded
        proto = convert(loaded)
        from optimizer_core.converters.verify import verify_conversion

        for problem in verify_conversion(loaded, proto):  # the same self-check as `inference-optimizer convert`
            warnings.warn(problem, UserWarning, stacklevel=2)
        self.onnx_model = self._converted = proto
        self._write(proto, output_path)
        return proto

    def quantize_model(self, onnx_model: Any = None, output_path: str | os.PathLike[str] | None = None,
                       precision: str = "int8", *, calibration_data: Any = None) -> Any:
        """Build a precision variant (``int8``, ``int8-static``, ``fp16``, ``fp64``, ``fp32``) with the core.

        ``onnx_model``: a ModelProto or path; default the fp32 model ``convert_to_onnx`` produced (converting
        now if needed), never an earlier ``quantize_model`` result, so precisions do not stack.
        ``calibration_data`` (rows like X) is used by ``int8-static``.

        Differs from the classic behaviour: when the precision does not apply to this model (INT8
        dynamic quantization leaves tree-ensemble operators untouched; fp16 has no tree kernels on
        CPU...), the model is returned UNCHANGED with a ``UserWarning`` giving the reason, instead of a
        "quantized" file that is the same model. Nothing is written then.
        """
        from optimizer_core.config import OptimizeConfig
        from optimizer_core.variants import build_variant

        OptimizeConfig(precisions=(precision,))  # the core's validation of the precision name
        if onnx_model is None:
            original = fp32 = self._converted if self._converted is not None else self.convert_to_onnx()
            loaded = self.loaded
        else:
            fp32, loaded = self._onnx_input(onnx_model)
            original = onnx_model if isinstance(onnx_model, onnx.ModelProto) else loaded.native
        calibration = None
        if calibration_data is not None:
            from optimizer_core.data import load_dataset

            calibration = load_dataset(calibration_data, loaded, name="calibration_data").X32
        defaults = OptimizeConfig()
        variant = build_variant(precision, fp32, loaded=loaded, calibration=calibration,
                                calibration_rows=defaults.calibration_rows, seed=defaults.seed)
        if not variant.applicable or variant.model is None:
            why = "; ".join(variant.notes) or f"{precision} does not apply to this model"
            warnings.warn(f"{precision} not applied, the model is returned unchanged: {why}", UserWarning,
                          stacklevel=2)
            return original
        self.onnx_model = variant.model
        self._write(variant.model, output_path)
        return variant.model

    def _onnx_input(self, onnx_model: Any) -> tuple[Any, Any]:
        """(contract ModelProto, its LoadedModel) for a ModelProto, path or bytes, via the core loaders."""
        from optimizer_core.converters import convert
        from optimizer_core.models import load_model, model_from_object

        if isinstance(onnx_model, str | bytes | bytearray | memoryview) or hasattr(onnx_model, "__fspath__"):
            loaded = load_model(onnx_model)
        else:
            loaded = model_from_object(onnx_model)
        if loaded.family != "onnx":
            raise InputError(f"expected an ONNX model, got a {loaded.family} model ({loaded.estimator}): "
                             "convert it first with convert_to_onnx()")
        return convert(loaded), loaded

    def load_onnx_model(self, path_or_model: Any, use_gpu: bool = False) -> Any:
        """Create an ONNX Runtime session (core ``runtime.create_session``) and keep it for predict/benchmark.

        ``path_or_model``: a path, bytes or ModelProto. It is checked like an uploaded file (no external
        data, no custom operator domains) and brought to the output contract. ``use_gpu`` requests the
        CUDA provider. Differs from the classic behaviour: ``provider_used`` is the provider that really
        ran the nodes (``session.get_providers()`` and the profiler, not the request), and a
        ``UserWarning`` says so when a GPU was requested and the model runs on the CPU (CUDA missing
        from this onnxruntime build, or no CUDA kernels for the model's operators, as for tree ensembles).
        Returns the session.
        """
        from optimizer_core.runtime import SessionSettings, create_session

        proto, session_model = self._onnx_input(path_or_model)
        session, info = create_session(proto.SerializeToString(),
                                       SessionSettings(provider="cuda" if use_gpu else "cpu"))
        self.session, self.session_info, self.provider_used = session, info, info.provider_used
        self._session_model = session_model
        self.onnx_model = proto
        inputs = session.get_inputs()
        self._input_dtype = np.float64 if inputs and inputs[0].type == "tensor(double)" else np.float32
        if use_gpu and (info.fell_back or info.provider_used == "CPUExecutionProvider"):
            why = "; ".join(info.notes) or "the session did not run on a GPU"
            warnings.warn(f"use_gpu=True, but the model runs on {info.provider_used}: {why}", UserWarning,
                          stacklevel=2)
        return session

    def predict_with_onnx(self, X: Any) -> np.ndarray:
        """Scores from the loaded session, in the output contract (float64 ``[N, n_classes]`` or ``[N, 1]``).

        ``X``: array ``[N, n_features]`` (a 1-D array is one row), list of rows or DataFrame (columns
        matched by name when the original model knows them). Differs from the classic behaviour: it
        returns class probabilities (binary too: two columns), never labels; take
        ``scores.argmax(axis=1)`` for the class index.
        """
        from optimizer_core.pipeline import predict_onnx

        self._require_session()
        return predict_onnx(self.session, self._features(X), self._input_dtype)

    # ------------------------------------------------------------------ benchmarks

    def benchmark_inference(self, X: Any, n_runs: int = 100, batch_size: int = 1) -> dict[str, Any]:
        """Latency of the loaded session at one batch size, with the core harness (``bench.benchmark``).

        Returns ``mean/std/min/max/p50/p90/p95/p99`` both in milliseconds (``*_ms``) and microseconds
        (``*_us``), ``throughput_rows_per_s``, ``calls`` (timed calls, ``n_runs`` unless the time ran
        out), ``provider_used`` and ``notes``. Differs from the classic loop: untimed warm-up first,
        distinct pre-built batches, ``perf_counter_ns`` around the call alone, garbage collector paused;
        ``p99`` is ``None`` below 460 timed calls (not enough samples to bound it), with a note.
        """
        return self._bench(X, n_runs, (batch_size,))[batch_size]

    def benchmark_with_percentiles(self, X: Any, n_runs: int = 1000,
                                   batch_sizes: Sequence[int] = (1,)) -> dict[int, dict[str, Any]]:
        """p50/p90/p95/p99 (ms and µs) per batch size via the core harness and ``bench.summarize``.

        Returns ``{batch_size: stats}`` with the keys of :meth:`benchmark_inference`. ``p99_ms`` /
        ``p99_us`` are ``None`` when fewer than 460 calls were timed (insufficient samples: even the
        slowest call would not bound the true p99), and ``notes`` says so: use ``n_runs >= 460``.
        """
        return self._bench(X, n_runs, tuple(batch_sizes))

    def _bench(self, X: Any, n_runs: int, batch_sizes: tuple[int, ...]) -> dict[int, dict[str, Any]]:
        from optimizer_core import bench
        from optimizer_core.bench_lock import benchmark_lock
        from optimizer_core.config import OptimizeConfig

        self._require_session()
        if n_runs < 1:
            raise InputError(f"n_runs must be at least 1 (got {n_runs})")
        batch_sizes = OptimizeConfig(batch_sizes=batch_sizes).batch_sizes  # validated and normalised by the core
        rows = np.ascontiguousarray(self._features(X), dtype=np.float32)
        if rows.shape[0] == 0:
            raise InputError("X has no rows to benchmark with")
        runner = bench.onnx_runner(_BENCH_NAME, self.session, self._input_dtype)
        budget = self._budget(runner, rows, n_runs, batch_sizes)
        with benchmark_lock():
            result = bench.benchmark([runner], rows, batch_sizes, budget_s=budget, min_calls=n_runs,
                                     max_calls=n_runs)
        notes = [n.replace(f"{_BENCH_NAME} at", "at") for n in result.notes]
        return {stats.batch_size: self._stats_dict(stats, n_runs, notes)
                for stats in result.latency[_BENCH_NAME]}

    @staticmethod
    def _budget(runner: Any, rows: np.ndarray, n_runs: int, batch_sizes: tuple[int, ...]) -> float:
        """Time budget for the harness: enough for ``n_runs`` calls per batch size plus warm-up.

        The core harness is budget-driven; a rough cost per call (three untimed calls) sizes the budget
        so that exactly ``n_runs`` calls are timed, the harness stopping as soon as they are.
        """
        total = 0.0
        for b in batch_sizes:
            batch = runner.prepare(np.ascontiguousarray(rows[np.arange(b) % rows.shape[0]]))
            runner.predict(batch)
            start = time.perf_counter()
            for _ in range(3):
                runner.predict(batch)
            per_call = (time.perf_counter() - start) / 3
            total += max(_MIN_BUDGET_S, _BUDGET_HEADROOM * n_runs * per_call + 0.5)
        return math.ceil(total * 10) / 10

    def _stats_dict(self, stats: Any, n_runs: int, notes: list[str]) -> dict[str, Any]:
        from optimizer_core.report import P99_MIN_CALLS

        out: dict[str, Any] = {"batch_size": stats.batch_size, "n_runs": n_runs, "calls": stats.calls,
                               "provider_used": self.provider_used}
        for key in ("mean", "std", "min", "max", "p50", "p90", "p95", "p99"):
            us = getattr(stats, f"{key}_us")
            out[f"{key}_ms"] = None if us is None else us / 1000.0
            out[f"{key}_us"] = us
        out["p50_ci_us"] = (stats.p50_ci_low_us, stats.p50_ci_high_us)
        out["throughput_rows_per_s"] = stats.rows_per_s
        out["noisy"] = stats.noisy
        mine = [n for n in notes if n.startswith(f"at batch {stats.batch_size}:")]
        mine += [f"noisy: {r}" for r in stats.noise_reasons]
        if stats.p99_us is None:
            mine.append(f"p99 not reported: {stats.calls:,} timed calls, fewer than the {P99_MIN_CALLS} "
                        "needed for a meaningful p99 (insufficient samples); use n_runs >= "
                        f"{P99_MIN_CALLS}")
        out["notes"] = list(dict.fromkeys(mine))
        return out

    # ------------------------------------------------------------------ the whole pipeline

    def optimize(self, data: Any, *, y: Any = None, target: str | None = None, config: Any = None,
                 progress: bool = True) -> Any:
        """The full comparison (``optimizer_core.optimize``) on ``data``, with a tqdm.auto progress bar.

        Returns the Report: native vs every precision variant, latency, drift, figures, recommendation.
        """
        from optimizer_core.pipeline import optimize
        from optimizer_core.views.notebook import notebook_progress

        model = self._model_or_self(None)
        if not progress:
            return optimize(model, data, config, target=target, y=y)
        with notebook_progress() as bar:
            return optimize(model, data, config, bar, target=target, y=y)
