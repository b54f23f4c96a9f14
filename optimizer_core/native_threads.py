"""The native model set to a number of threads, for the libraries that take one.

XGBoost (``nthread``), LightGBM (``num_threads``) and scikit-learn estimators with ``n_jobs`` predict on
thread pools. At their default (every core) they are at the mercy of the machine: with one core taken by
another process, each call waits for a thread that cannot run. On the 2-core reference machine under load,
the reference XGBoost model took 23-98 ms per batch-1 call at its default threads and 0.26-0.28 ms on one
thread, in the same runs. A run therefore also times the native model on one thread, and every speedup
over native is quoted against the faster of the two (``tune.fastest_native``). Pinned copies leave the
user's model untouched.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import numpy as np

from optimizer_core.errors import OptimizerError
from optimizer_core.models.base import LoadedModel

SINGLE_THREAD = "native t1"  # the name of the native model timed on one thread (as the tuner names it)
SETTING_WORDS = "n_jobs={n} for scikit-learn, nthread={n} for XGBoost, num_threads={n} for LightGBM"


def configuration_name(threads: int) -> str:
    return f"native t{threads}"


def _knobs(native: Any) -> list[tuple[Any, Any]]:
    """``(estimator, n_jobs)`` for a scikit-learn-style estimator and the steps of a Pipeline; [] without one.

    Only the estimators that predict are looked at: a meta-estimator's nested, unfitted parameters (a
    ColumnTransformer's ``transformers``) are not the fitted copies that run."""
    from sklearn.pipeline import Pipeline

    if isinstance(native, Pipeline):
        return [k for _, step in native.steps if hasattr(step, "get_params") for k in _knobs(step)]
    if not hasattr(native, "get_params"):
        return []
    try:
        params = native.get_params(deep=False)
    except Exception:  # an estimator whose get_params fails has no knob we can use
        return []
    return [(native, params["n_jobs"])] if "n_jobs" in params else []


def _is_xgboost_booster(native: Any) -> bool:
    return type(native).__module__.startswith("xgboost") and hasattr(native, "set_param") and not hasattr(
        native, "get_params")


def _pinned_estimator(native: Any, threads: int) -> Any:
    """A copy set to ``threads``: shallow for scikit-learn's own estimators (a forest's fitted trees are shared,
    not copied), deep for the XGBoost and LightGBM wrappers (their set_params writes into state the copy would
    share with the user's model)."""
    from sklearn.pipeline import Pipeline

    if isinstance(native, Pipeline):
        clone = copy.copy(native)
        clone.steps = [(name, _pinned_estimator(step, threads) if _knobs(step) else step)
                       for name, step in native.steps]
        return clone
    if type(native).__module__.startswith(("xgboost", "lightgbm")):
        return copy.deepcopy(native).set_params(n_jobs=threads)
    clone = copy.copy(native)
    clone.set_params(n_jobs=threads)
    return clone


def pinned_clone(native: Any, threads: int) -> Any | None:
    """A copy of the model set to ``threads`` threads, or None when it has no thread setting a copy can carry
    (a LightGBM Booster takes its thread count per call: :func:`pinned_predictor` handles it)."""
    if _knobs(native):
        return _pinned_estimator(native, threads)
    if _is_xgboost_booster(native):
        clone = native.copy()
        clone.set_param({"nthread": threads})
        return clone
    return None


def runs_single_threaded(native: Any) -> bool:
    """Whether the model already predicts on one thread as it is set, so timing it pinned to one adds nothing."""
    knobs = _knobs(native)
    if knobs:
        return all(_one_thread(owner, value) for owner, value in knobs)
    if _is_xgboost_booster(native):
        try:
            generic = json.loads(native.save_config())["learner"]["generic_param"]
            return int(generic.get("nthread", 0)) == 1
        except (KeyError, ValueError, TypeError):
            return False
    return False  # a LightGBM Booster predicts on OpenMP's default: every core


def _one_thread(owner: Any, value: Any) -> bool:
    if value == 1:
        return True
    # scikit-learn (joblib) reads n_jobs=None as one job; XGBoost and LightGBM read it as every core
    return value is None and not type(owner).__module__.startswith(("xgboost", "lightgbm"))


def pinned_predictor(loaded: LoadedModel, threads: int) -> Callable[[np.ndarray], np.ndarray] | None:
    """The loaded model's native predictor on ``threads`` threads, or None when its library takes no setting."""
    if loaded.family == "lightgbm":
        from optimizer_core.models import lightgbm as lightgbm_family

        return lightgbm_family.pinned_predictor(loaded.native, loaded.task, threads)
    if loaded.family == "onnx":
        return None  # timed on an ONNX Runtime session with the variants' settings
    clone = pinned_clone(loaded.native, threads)
    if clone is None:
        return None
    from optimizer_core.models import model_from_object

    try:
        return model_from_object(clone).predictor
    except OptimizerError:
        return None


def single_thread_predictor(loaded: LoadedModel, cores: int) -> Callable[[np.ndarray], np.ndarray] | None:
    """The native predictor on one thread, to time beside the default, or None when that would time the same
    configuration twice (one core, a model already set to one thread, a library without the setting)."""
    if cores <= 1 or loaded.family == "onnx" or runs_single_threaded(loaded.native):
        return None
    return pinned_predictor(loaded, 1)


def setting_words(threads: int) -> str:
    return SETTING_WORDS.format(n=threads)
