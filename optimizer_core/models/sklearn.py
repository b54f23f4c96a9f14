"""scikit-learn estimators and pipelines: safe skops loading and native prediction.

skops files are loaded with an explicit allowlist: only types from scikit-learn itself (plus a few inert
numpy/builtin helpers) are trusted. Anything else could run code when the model is loaded or used, so
the file is refused with ``UnsafeModelError`` naming the types.

``functools.partial`` is the one wrapper trusted conditionally: scikit-learn stores
``partial(check_array, ...)`` inside HistGradientBoosting's categorical preprocessor, and skops reports
the partial itself as untrusted. It is trusted only when every partial in the file wraps a function
(or class) named by its import path that is trusted in its own right; skops audits that name, the
partial's arguments and its ``__dict__`` as separate nodes, so they still go through the allowlist.
A partial of ``os.system``, of a bound method or of a callable object is refused.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from optimizer_core.errors import ModelLoadError, UnsafeModelError, UnsupportedModelError
from optimizer_core.models.base import LoadedModel, Task

if TYPE_CHECKING:
    from optimizer_core.models import SourceInfo

# Types skops reports as "untrusted" although loading them cannot run code.
_SAFE_EXTRA_TYPES = frozenset({"numpy.dtype", "builtins.slice", "collections.OrderedDict"})
# scikit-learn modules whose functions do I/O (downloads, files): never trusted inside a model.
_DENIED_SKLEARN_PREFIXES = ("sklearn.datasets.", "sklearn.utils._testing.")
_PARTIAL = "functools.partial"
# skops node kinds that name a callable by its import path (functions, numpy ufuncs, builtins, classes):
# skops audits that name, so a partial wrapping one is exactly as trusted as the name itself.
_NAMED_CALLABLE_LOADERS = frozenset({"FunctionNode", "TypeNode"})


def is_trusted_type(name: str) -> bool:
    """Whether a type name reported by ``skops.io.get_untrusted_types`` is safe to load."""
    if name in _SAFE_EXTRA_TYPES:
        return True
    return name.startswith("sklearn.") and not name.startswith(_DENIED_SKLEARN_PREFIXES)


def _untrusted_partials(data: bytes, reported: Sequence[str]) -> set[str]:
    """``functools.partial(...)`` descriptions of the partials in a skops file that do not wrap a trusted
    named callable (empty when every partial does). A name is trusted when the allowlist trusts it, or
    when skops itself does (it is then absent from ``reported``, e.g. numpy ufuncs and builtin types)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read("schema.json"))
    except Exception:  # unreadable here although skops read it: trust nothing
        return {f"{_PARTIAL}(unreadable)"}
    bad: set[str] = set()
    for node in _schema_nodes(schema):
        # skops picks the node class from "__loader__"; the reported type comes from module and class.
        is_partial = node.get("__module__") == "functools" and node.get("__class__") == "partial"
        if node.get("__loader__") != "PartialNode" and not is_partial:
            continue
        if node.get("__loader__") != "PartialNode" or not is_partial:  # a crafted, inconsistent node
            bad.add(f"{_PARTIAL}(<{_printable_loader(node.get('__loader__'))}>)")
            continue
        content = node.get("content")
        func = content.get("func") if isinstance(content, dict) else None
        loader = func.get("__loader__") if isinstance(func, dict) else None
        if loader not in _NAMED_CALLABLE_LOADERS:
            # A bound method, a callable object, another partial...: not a function named by its import path.
            bad.add(f"{_PARTIAL}(<{_printable_loader(loader)}>)")
            continue
        wrapped = f"{func.get('__module__')}.{func.get('__class__')}"
        if wrapped in reported and not is_trusted_type(wrapped):
            bad.add(f"{_PARTIAL}({wrapped})")
    return bad


def _printable_loader(loader: Any) -> str:
    """A skops node kind for an error message (the file is untrusted: keep it short and printable)."""
    text = str(loader) if isinstance(loader, str) else "unknown callable"
    return "".join(c for c in text if c.isalnum())[:40] or "unknown callable"


def _schema_nodes(value: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in a skops schema, depth first (iterative: a crafted file cannot overflow)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def load(data: bytes, fmt: str, source: SourceInfo) -> LoadedModel:
    """Read a skops file, trusting only scikit-learn types."""
    if fmt != "skops":
        raise ModelLoadError(f"the scikit-learn loader cannot read {fmt!r} files: save the model with skops")
    import skops.io as sio

    name = source.name or "the model file"
    try:
        reported = sio.get_untrusted_types(data=data)
    except Exception as e:
        raise ModelLoadError(
            f"{name} looks like a skops file but cannot be read ({type(e).__name__}: {_first_line(e)}): "
            "it may be truncated; save it again with skops.io.dump"
        ) from e
    # functools.partial is judged by what it wraps (_untrusted_partials), every partial node included.
    rejected = sorted(
        {t for t in reported if not is_trusted_type(t) and t != _PARTIAL}
        | _untrusted_partials(data, reported)
    )
    if rejected:
        raise UnsafeModelError(
            f"{name} contains types outside scikit-learn that could run code when loaded "
            f"({', '.join(rejected[:8])}{', ...' if len(rejected) > 8 else ''}): refused; save a model "
            "built from scikit-learn estimators only (XGBoost/LightGBM: use their own save_model)"
        )
    trusted = [t for t in reported if is_trusted_type(t) or t == _PARTIAL]
    obj = sio.loads(data, trusted=trusted)
    if not matches(obj):
        raise UnsupportedModelError(
            f"{name} holds a {type(obj).__module__}.{type(obj).__name__}, not a scikit-learn estimator: "
            "save the fitted estimator or pipeline itself"
        )
    return from_object(obj, source=source, fmt=fmt)


def matches(obj: Any) -> bool:
    """True for scikit-learn estimators (including pipelines)."""
    from sklearn.base import BaseEstimator

    return isinstance(obj, BaseEstimator) and type(obj).__module__.startswith("sklearn.")


def from_object(obj: Any, *, source: SourceInfo, fmt: str) -> LoadedModel:
    """Describe a fitted scikit-learn estimator or pipeline and wrap its native prediction."""
    name = describe_estimator(obj)
    _check_fitted(obj, name)
    final = final_estimator(obj)
    task, classes = _task_and_classes(obj, final, name)
    n_features = getattr(obj, "n_features_in_", None)
    if n_features is None:
        raise UnsupportedModelError(
            f"{name} does not record its number of input features (n_features_in_): refit it on a "
            "2-D array or DataFrame with scikit-learn >= 1.0"
        )
    names = getattr(obj, "feature_names_in_", None)
    feature_names = tuple(str(c) for c in names) if names is not None else None
    return LoadedModel(
        family="sklearn",
        estimator=name,
        task=task,
        n_features=int(n_features),
        feature_names=feature_names,
        classes=classes,
        format=fmt,
        source_bytes=source.size,
        source_sha256=source.sha256,
        native=obj,
        predictor=_make_predictor(obj, task, feature_names),
    )


def final_estimator(obj: Any) -> Any:
    """The predicting step of a (possibly nested) pipeline, or ``obj`` itself."""
    from sklearn.pipeline import Pipeline

    while isinstance(obj, Pipeline):
        obj = obj.steps[-1][1]
    return obj


def describe_estimator(obj: Any) -> str:
    """Class name, or ``Pipeline(StandardScaler > MLPClassifier)`` for pipelines."""
    from sklearn.pipeline import Pipeline

    if isinstance(obj, Pipeline):
        steps = [describe_estimator(step) for _, step in obj.steps if step not in (None, "passthrough")]
        return f"Pipeline({' > '.join(steps)})"
    return type(obj).__name__


def _check_fitted(obj: Any, name: str) -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(obj)
    except NotFittedError as e:
        raise UnsupportedModelError(f"{name} is not fitted: fit it before saving") from e
    except TypeError as e:  # check_is_fitted refuses non-estimators such as a "passthrough" final step
        raise UnsupportedModelError(f"{name} has no final estimator to predict with: {_first_line(e)}") from e


def _task_and_classes(obj: Any, final: Any, name: str) -> tuple[Task, tuple[Any, ...] | None]:
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(final):
        return _classifier_task(obj, final, name)
    if is_regressor(final):
        if _n_regression_outputs(final) > 1:
            raise UnsupportedModelError(
                f"{name} predicts several targets at once: only single-output regressors are "
                "supported; fit one model per target"
            )
        return "regression", None
    raise UnsupportedModelError(
        f"{name} is neither a classifier nor a regressor: pass a fitted scikit-learn classifier, "
        "regressor or a pipeline ending in one"
    )


def _classifier_task(obj: Any, final: Any, name: str) -> tuple[Task, tuple[Any, ...]]:
    classes = getattr(final, "classes_", None)
    if classes is None or isinstance(classes, list) or np.ndim(classes) != 1:
        raise UnsupportedModelError(
            f"{name} is a multi-output classifier: only single-output classifiers are supported"
        )
    if len(classes) < 2:
        raise UnsupportedModelError(f"{name} was fitted on a single class: refit it on at least two classes")
    if not hasattr(obj, "predict_proba"):
        raise UnsupportedModelError(
            f"{name} cannot predict probabilities: retrain it with probability=True, or wrap it in "
            "CalibratedClassifierCV(..., ensemble=False)"
        )
    task: Task = "binary" if len(classes) == 2 else "multiclass"
    return task, tuple(classes.tolist())


def _n_regression_outputs(final: Any) -> int:
    n_outputs = getattr(final, "n_outputs_", None)
    if n_outputs is not None:
        return int(n_outputs)
    coef = getattr(final, "coef_", None)
    if coef is not None and np.ndim(coef) == 2:
        return int(np.shape(coef)[0])
    return 1


def _make_predictor(
    obj: Any, task: Task, feature_names: Sequence[str] | None
) -> Callable[[np.ndarray], np.ndarray]:
    # Estimators fitted on a DataFrame warn when given a bare array; hand them the same column names
    # so native predictions are exact and quiet.
    columns = list(feature_names) if feature_names is not None else None

    def as_input(X: np.ndarray) -> Any:
        if columns is None:
            return X
        import pandas as pd

        return pd.DataFrame(X, columns=columns, copy=False)

    if task == "regression":

        def predict(X: np.ndarray) -> np.ndarray:
            return np.asarray(obj.predict(as_input(X))).reshape(-1, 1)

    else:

        def predict(X: np.ndarray) -> np.ndarray:
            return np.asarray(obj.predict_proba(as_input(X)))

    return predict


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__
