"""XGBoost: JSON/UBJ model files, live Boosters and scikit-learn wrappers (XGBClassifier, XGBRegressor...).

Native prediction follows the output contract: class probabilities ``[N, C]`` for classifiers (binary
too), predictions on the response scale for regressors. NaN is missing, as in XGBoost itself. A file
saved from a scikit-learn wrapper is loaded back into that wrapper, so that early stopping's
``best_iteration`` applies exactly as in the user's ``predict_proba``/``predict`` call.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from optimizer_core.categories import model_note, xgboost_categories
from optimizer_core.errors import ModelLoadError, UnsupportedModelError
from optimizer_core.models.base import LoadedModel, Task

if TYPE_CHECKING:
    from optimizer_core.models import SourceInfo

FORMATS = ("xgboost-json", "xgboost-ubj")

BINARY_OBJECTIVES = frozenset({"binary:logistic"})
MULTICLASS_OBJECTIVES = frozenset({"multi:softprob", "multi:softmax"})
IDENTITY_REGRESSION_OBJECTIVES = frozenset({
    "reg:squarederror", "reg:squaredlogerror", "reg:absoluteerror", "reg:pseudohubererror",
    "reg:quantileerror",
})
LOG_LINK_REGRESSION_OBJECTIVES = frozenset({"count:poisson", "reg:gamma", "reg:tweedie"})
REGRESSION_OBJECTIVES = IDENTITY_REGRESSION_OBJECTIVES | LOG_LINK_REGRESSION_OBJECTIVES | {"reg:logistic"}

_REFUSED_OBJECTIVES = {
    "binary:logitraw": "it predicts raw margins, not probabilities: call "
    "booster.set_param({'objective': 'binary:logistic'}) and save the model again",
    "binary:hinge": "it predicts hard 0/1 labels, not probabilities: "
    "retrain with objective='binary:logistic'",
}
_REFUSED_PREFIXES = {
    "rank:": "ranking models are not supported (this tool handles classifiers and regressors)",
    "survival:": "survival models are not supported (this tool handles classifiers and regressors)",
}

# UBJSON (https://ubjson.org) value markers: fixed-size scalars, and the integer types used for lengths.
_UBJ_FIXED_SIZES = {b"i": 1, b"U": 1, b"I": 2, b"l": 4, b"L": 8, b"d": 4, b"D": 8, b"C": 1}
_UBJ_INT_FORMATS = {b"i": ">b", b"U": ">B", b"I": ">h", b"l": ">i", b"L": ">q"}


@dataclass(frozen=True)
class BoosterInfo:
    """What the Booster's own configuration says about the model."""

    objective: str
    booster_type: str  # gbtree, dart or gblinear
    num_class: int
    num_target: int
    n_features: int
    feature_names: tuple[str, ...] | None
    categorical_features: tuple[int, ...]  # indices of the features typed "c" (category codes)

    @property
    def categorical(self) -> bool:
        return bool(self.categorical_features)


def matches(obj: Any) -> bool:
    """True for an XGBoost Booster or scikit-learn wrapper (without importing xgboost)."""
    if not any(cls.__module__.split(".")[0] == "xgboost" for cls in type(obj).__mro__):
        return False
    import xgboost

    return isinstance(obj, xgboost.Booster | xgboost.XGBModel)


def load(data: bytes, fmt: str, source: SourceInfo) -> LoadedModel:
    """Read an XGBoost JSON or UBJ model file (the bytes, whatever the file is named)."""
    import xgboost

    if fmt not in FORMATS:
        raise ModelLoadError(f"{source.name or 'the model'} is {fmt}, not an XGBoost JSON/UBJ model")
    if fmt == "xgboost-ubj":
        _require_complete_ubj(data, source.name or "the model")
    booster = xgboost.Booster()
    booster.load_model(bytearray(data))
    wrapper = _wrapper_from_meta(booster, data)
    return _build(wrapper if wrapper is not None else booster, source=source, fmt=fmt)


def from_object(obj: Any, *, source: SourceInfo, fmt: str) -> LoadedModel:
    """Wrap a live, fitted XGBoost Booster or scikit-learn wrapper."""
    import xgboost

    if isinstance(obj, xgboost.XGBModel) and not obj.__sklearn_is_fitted__():
        raise UnsupportedModelError(
            f"{type(obj).__name__} is not fitted: call fit() (or load_model()) before passing it"
        )
    return _build(obj, source=source, fmt=fmt)


def booster_of(native: Any) -> Any:
    """The xgboost.Booster behind a Booster or a scikit-learn wrapper."""
    import xgboost

    return native.get_booster() if isinstance(native, xgboost.XGBModel) else native


def booster_info(booster: Any) -> BoosterInfo:
    """Read objective, shape and booster type from the Booster's saved configuration."""
    learner = json.loads(booster.save_config())["learner"]
    params = learner["learner_model_param"]
    names = booster.feature_names
    types = booster.feature_types or ()
    return BoosterInfo(
        objective=learner["objective"]["name"],
        booster_type=learner["gradient_booster"]["name"],
        num_class=int(params.get("num_class", 0)),
        num_target=int(params.get("num_target", 1)),
        n_features=booster.num_features(),
        feature_names=tuple(names) if names else None,
        categorical_features=tuple(i for i, t in enumerate(types) if t == "c"),
    )


def prediction_rounds(native: Any) -> int:
    """Boosting rounds the native prediction uses: wrappers stop at ``best_iteration``."""
    import xgboost

    booster = booster_of(native)
    if isinstance(native, xgboost.XGBModel):
        try:
            return int(native.best_iteration) + 1
        except AttributeError:  # not trained with early stopping
            pass
    return booster.num_boosted_rounds()


def task_of(objective: str, estimator: str) -> Task:
    """Classify an objective, or refuse it with what to do instead."""
    if objective in BINARY_OBJECTIVES:
        return "binary"
    if objective in MULTICLASS_OBJECTIVES:
        return "multiclass"
    if objective in REGRESSION_OBJECTIVES:
        return "regression"
    reason = _REFUSED_OBJECTIVES.get(objective) or next(
        (why for prefix, why in _REFUSED_PREFIXES.items() if objective.startswith(prefix)), None
    )
    raise UnsupportedModelError(
        f"{estimator} uses objective {objective!r}: "
        + (reason or "this objective is not supported; use a binary:, multi: or reg: objective")
    )


def _require_complete_ubj(data: bytes, name: str) -> None:
    # XGBoost reads past the end of a truncated UBJ buffer (a segfault, not an error): check it first.
    try:
        complete = _ubj_skip_value(data, 0) == len(data)
    except (_UbjError, RecursionError):
        complete = False
    if not complete:
        raise ModelLoadError(
            f"{name} is an incomplete or damaged XGBoost UBJ model (its structure ends early or does not "
            "parse): the file may be truncated; save it again with save_model('model.ubj')"
        )


class _UbjError(Exception):
    pass


def _ubj_need(data: bytes, end: int) -> int:
    if end > len(data):
        raise _UbjError("truncated")
    return end


def _ubj_read_length(data: bytes, pos: int) -> tuple[int, int]:
    marker = data[pos : pos + 1]
    if marker not in _UBJ_INT_FORMATS:
        raise _UbjError(f"bad length marker {marker!r}")
    end = _ubj_need(data, pos + 1 + _UBJ_FIXED_SIZES[marker])
    (value,) = struct.unpack(_UBJ_INT_FORMATS[marker], data[pos + 1 : end])
    if value < 0:
        raise _UbjError("negative length")
    return value, end


def _ubj_skip_value(data: bytes, pos: int, marker: bytes | None = None) -> int:
    """Position just after the UBJSON value at ``pos`` (bounds-checked walk, no decoding)."""
    if marker is None:
        marker, pos = data[pos : pos + 1], pos + 1
    if marker in _UBJ_FIXED_SIZES:
        return _ubj_need(data, pos + _UBJ_FIXED_SIZES[marker])
    if marker in (b"Z", b"T", b"F", b"N"):
        return pos
    if marker in (b"S", b"H"):
        length, pos = _ubj_read_length(data, pos)
        return _ubj_need(data, pos + length)
    if marker in (b"[", b"{"):
        return _ubj_skip_container(data, pos, keyed=marker == b"{")
    raise _UbjError(f"bad value marker {marker!r}")


def _ubj_skip_container(data: bytes, pos: int, *, keyed: bool) -> int:
    value_type: bytes | None = None
    count: int | None = None
    if data[pos : pos + 1] == b"$":
        value_type, pos = data[pos + 1 : pos + 2], pos + 2
        if data[pos : pos + 1] != b"#":
            raise _UbjError("typed container without a count")
    if data[pos : pos + 1] == b"#":
        count, pos = _ubj_read_length(data, pos + 1)
    if count is not None and not keyed and value_type in _UBJ_FIXED_SIZES:
        return _ubj_need(data, pos + count * _UBJ_FIXED_SIZES[value_type])
    close = b"}" if keyed else b"]"
    seen = 0
    while count is None or seen < count:
        if count is None:
            _ubj_need(data, pos + 1)
            if data[pos : pos + 1] == close:
                return pos + 1
        if keyed:
            length, pos = _ubj_read_length(data, pos)
            pos = _ubj_need(data, pos + length)
        pos = _ubj_skip_value(data, pos, value_type)
        seen += 1
    return pos


def _wrapper_from_meta(booster: Any, data: bytes) -> Any | None:
    """The scikit-learn wrapper a file was saved from (XGBoost records it), loaded back, or None."""
    import xgboost

    meta = booster.attr("scikit_learn")
    kind = json.loads(meta).get("_estimator_type") if meta else None
    wrapper_type = {"classifier": xgboost.XGBClassifier, "regressor": xgboost.XGBRegressor}.get(kind or "")
    if wrapper_type is None:
        return None
    wrapper = wrapper_type()
    wrapper.load_model(bytearray(data))
    return wrapper


def _build(native: Any, *, source: SourceInfo, fmt: str) -> LoadedModel:
    import xgboost

    booster = booster_of(native)
    is_wrapper = isinstance(native, xgboost.XGBModel)
    _require_trees(booster)
    info = booster_info(booster)
    estimator = type(native).__name__ if is_wrapper else f"Booster({info.objective})"
    task = task_of(info.objective, estimator)
    _check_wrapper_task(native, task, info.objective)
    if info.num_target > 1:
        raise UnsupportedModelError(
            f"{estimator} predicts {info.num_target} targets: only single-target models are supported"
        )
    notes: list[str] = []
    if info.objective == "multi:softmax":
        notes.append("multi:softmax predicts labels; probabilities are the softmax of the margins, "
                     "as XGBClassifier.predict_proba computes them")
    stored = xgboost_categories(booster, info.categorical_features)
    if note := model_note(stored, info.categorical_features, info.feature_names):
        notes.append(note)
    return LoadedModel(
        family="xgboost",
        estimator=estimator,
        task=task,
        n_features=info.n_features,
        feature_names=info.feature_names,
        classes=_classes(native, task, info),
        format=fmt,
        source_bytes=source.size,
        source_sha256=source.sha256,
        native=native,
        predictor=_predictor(native, task, info),
        notes=tuple(notes),
        categorical_features=info.categorical_features,
        stored_categories=stored,
    )


def _require_trees(booster: Any) -> None:
    import xgboost

    try:
        rounds = booster.num_boosted_rounds()
    except xgboost.core.XGBoostError:  # a bare xgboost.Booster() has no features at all
        rounds = 0
    if rounds == 0:
        raise UnsupportedModelError("the XGBoost Booster has no trees (0 boosting rounds): train it first")


def _check_wrapper_task(native: Any, task: Task, objective: str) -> None:
    import xgboost

    name = type(native).__name__
    if isinstance(native, xgboost.XGBClassifier) and task == "regression":
        raise UnsupportedModelError(
            f"{name} was trained with the regression objective {objective!r}: use XGBRegressor for it"
        )
    if isinstance(native, xgboost.XGBRegressor) and task != "regression":
        raise UnsupportedModelError(
            f"{name} was trained with the classification objective {objective!r}: use XGBClassifier for it"
        )


def _classes(native: Any, task: Task, info: BoosterInfo) -> tuple[Any, ...] | None:
    if task == "regression":
        return None
    wrapper_classes = getattr(native, "classes_", None) if not _is_booster(native) else None
    if wrapper_classes is not None:
        return tuple(c.item() if hasattr(c, "item") else c for c in wrapper_classes)
    return (0, 1) if task == "binary" else tuple(range(info.num_class))


def _is_booster(native: Any) -> bool:
    import xgboost

    return isinstance(native, xgboost.Booster)


def _predictor(native: Any, task: Task, info: BoosterInfo) -> Callable[[np.ndarray], np.ndarray]:
    if not _is_booster(native):  # the user's own production call
        return native.predict if task == "regression" else native.predict_proba
    predict = _booster_predict(native, linear=info.booster_type == "gblinear")
    if task == "binary":
        return lambda X: _two_columns(predict(X, False))
    if info.objective == "multi:softmax":
        return lambda X: _softmax(predict(X, True))
    return lambda X: predict(X, False)


def _booster_predict(booster: Any, *, linear: bool) -> Callable[[np.ndarray, bool], np.ndarray]:
    import xgboost

    def predict(X: np.ndarray, margin: bool) -> np.ndarray:
        if linear:  # inplace_predict does not serve gblinear
            return booster.predict(xgboost.DMatrix(X, missing=np.nan), output_margin=margin)
        return booster.inplace_predict(X, predict_type="margin" if margin else "value", missing=np.nan)

    return predict


def _two_columns(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p).reshape(-1)  # 1 - p in XGBoost's float32, as XGBClassifier.predict_proba does
    return np.column_stack([1 - p, p])


def _softmax(margin: np.ndarray) -> np.ndarray:
    z = np.asarray(margin, dtype=np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------- truncated ensembles (models.trees)

def ensemble(model: LoadedModel) -> Any:
    """Boosting rounds the native prediction uses, and the trees in each (one per class x parallel trees)."""
    from optimizer_core.models.trees import Ensemble

    booster = booster_of(model.native)
    info = booster_info(booster)
    if info.booster_type != "gbtree":
        raise UnsupportedModelError(
            f"{model.estimator} uses booster={info.booster_type!r}: only tree boosters (gbtree) can keep their "
            "first rounds exactly"
        )
    gbtree = json.loads(booster.save_config())["learner"]["gradient_booster"]
    parallel = int(gbtree.get("gbtree_model_param", {}).get("num_parallel_tree", 1))
    per_class = info.num_class if info.objective in MULTICLASS_OBJECTIVES else 1
    return Ensemble(total=prediction_rounds(model.native), unit="rounds", trees_per_unit=parallel * per_class,
                    library="XGBoost")


def truncate(model: LoadedModel, ensemble: Any, k: int) -> Any:
    """The first ``k`` rounds: XGBoost's own ``iteration_range=(0, k)`` on the user's model is the reference; the
    Booster sliced to those rounds (``booster[:k]``) is what the converter reads."""
    import dataclasses

    from optimizer_core.models.loader_code import loader_code
    from optimizer_core.models.trees import Truncated

    native = model.native
    booster = booster_of(native)
    sliced = booster[:k]
    wrapper = not _is_booster(native)
    if wrapper:
        method = native.predict if model.task == "regression" else native.predict_proba

        def reference(X: np.ndarray) -> np.ndarray:
            return method(X, iteration_range=(0, k))

        call = "predict" if model.task == "regression" else "predict_proba"
        code = (f"# XGBoost itself, with the first {k} boosting rounds:\n"
                f"scores = model.{call}(X, iteration_range=(0, {k}))\n"
                f"# or save a model that holds only them:\n"
                f"model.get_booster()[:{k}].save_model('model-{k}-rounds.json')\n")
        code = loader_code(model) + "\n" + code
    else:
        info = booster_info(booster)

        def value(X: np.ndarray, margin: bool) -> np.ndarray:
            return booster.inplace_predict(X, iteration_range=(0, k), missing=np.nan,
                                           predict_type="margin" if margin else "value")

        if model.task == "binary":
            def reference(X: np.ndarray) -> np.ndarray:
                return _two_columns(value(X, False))
        elif info.objective == "multi:softmax":
            def reference(X: np.ndarray) -> np.ndarray:
                return _softmax(value(X, True))
        else:
            def reference(X: np.ndarray) -> np.ndarray:
                return value(X, False)

        if info.objective == "multi:softmax":  # its predictions are classes: the probabilities from the margins
            predict = (f"margin = booster.inplace_predict(X, iteration_range=(0, {k}), predict_type='margin')\n"
                       "scores = np.exp(margin - margin.max(axis=1, keepdims=True))\n"
                       "scores /= scores.sum(axis=1, keepdims=True)\n")
        else:
            shape = "  # binary: the probability of the second class" if model.task == "binary" else ""
            predict = f"scores = booster.inplace_predict(X, iteration_range=(0, {k})){shape}\n"
        code = (loader_code(model) + f"\n# XGBoost itself, with the first {k} boosting rounds:\n" + predict +
                f"# or save a model that holds only them:\n"
                f"booster[:{k}].save_model('model-{k}-rounds.json')\n")
    loaded = dataclasses.replace(model, native=sliced, predictor=reference,
                                 estimator=f"{model.estimator}, first {k} rounds")
    return Truncated(loaded=loaded, kept=k, reference=f"XGBoost's own iteration_range=(0, {k})", native_code=code)
