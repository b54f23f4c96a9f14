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
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from optimizer_core.errors import ModelLoadError, UnsafeModelError, UnsupportedModelError
from optimizer_core.models import saved_versions, sklearn_decision
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
    saved = saved_versions.skops_versions(data)
    try:
        obj = sio.loads(data, trusted=trusted)
    except Exception as e:
        raise ModelLoadError(
            f"{name} is a skops file that cannot be rebuilt here ({type(e).__name__}: {_first_line(e)}): "
            f"{saved_versions.saved_with(saved)}; load it with the scikit-learn version that saved it and save "
            "it again with skops.io.dump, or refit the model here"
        ) from e
    if not matches(obj):
        raise UnsupportedModelError(
            f"{name} holds a {type(obj).__module__}.{type(obj).__name__}, not a scikit-learn estimator: "
            "save the fitted estimator or pipeline itself"
        )
    return with_version_note(from_object(obj, source=source, fmt=fmt), saved)


def with_version_note(model: LoadedModel, saved: dict[str, str]) -> LoadedModel:
    """``model`` with a note when the file was saved by another scikit-learn than the installed one."""
    if not saved_versions.mismatch(saved):
        return model
    note = (f"{saved_versions.saved_with(saved)}: scikit-learn does not promise the same predictions across "
            "versions; native here is the model as this version rebuilds it")
    return replace(model, notes=(*model.notes, note))


def matches(obj: Any) -> bool:
    """True for scikit-learn estimators (including pipelines)."""
    from sklearn.base import BaseEstimator

    return isinstance(obj, BaseEstimator) and type(obj).__module__.startswith("sklearn.")


def from_object(obj: Any, *, source: SourceInfo, fmt: str) -> LoadedModel:
    """Describe a fitted scikit-learn estimator or pipeline and wrap its native prediction."""
    name = describe_estimator(obj)
    _check_fitted(obj, name)
    _refuse_text_columns(obj, name)
    final = final_estimator(obj)
    n_features = getattr(obj, "n_features_in_", None)
    if n_features is None:
        raise UnsupportedModelError(
            f"{name} does not record its number of input features (n_features_in_): refit it on a "
            "2-D array or DataFrame with scikit-learn >= 1.0"
        )
    names = getattr(obj, "feature_names_in_", None)
    feature_names = tuple(str(c) for c in names) if names is not None else None
    task, classes = _task_and_classes(obj, final, name, lambda: _prediction_width(obj, int(n_features), feature_names))
    model = LoadedModel(
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
    if task == "regression":
        return model
    columns = list(feature_names) if feature_names is not None else None

    def as_input(X: np.ndarray) -> Any:
        return _as_input(X, columns)

    if hasattr(obj, "predict_proba"):
        # predict is the model's own class; most classifiers' predict is the argmax of predict_proba (ties
        # agree), an SVC(probability=True)'s is not (Platt scaling): checked on the data's rows (check_labels)
        return replace(model, label_predictor=sklearn_decision.label_predictor(obj, as_input),
                       label_source="its predict()", label_cause=sklearn_decision.label_cause(final, classes or ()))
    return replace(
        model,
        predictor=sklearn_decision.decision_predictor(obj, as_input),
        decision_scores=True,
        label_predictor=sklearn_decision.label_predictor(obj, as_input),
        label_source="its predict()",
        label_cause=sklearn_decision.label_cause(final, classes or ()),
        notes=(sklearn_decision.decision_note(final, probability_advice(obj, final)),),
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


def _task_and_classes(
    obj: Any, final: Any, name: str, measure_width: Callable[[], int | None]
) -> tuple[Task, tuple[Any, ...] | None]:
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(final):
        return _classifier_task(obj, final, name)
    if is_regressor(final):
        if _n_regression_outputs(final, measure_width) > 1:
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
            f"{name} is a multi-output classifier (several targets at once): only single-output classifiers "
            "are supported; fit one classifier per target"
        )
    if len(classes) < 2:
        raise UnsupportedModelError(f"{name} was fitted on a single class: refit it on at least two classes")
    if not hasattr(obj, "predict_proba"):
        if not hasattr(obj, "decision_function"):
            raise UnsupportedModelError(
                f"{name} predicts neither probabilities nor decision scores: {probability_advice(obj, final)}"
            )
        sklearn_decision.check_decision_shape(final, len(classes), name)  # else read as decision scores
    task: Task = "binary" if len(classes) == 2 else "multiclass"
    return task, tuple(classes.tolist())


def probability_advice(obj: Any, final: Any) -> str:
    """How to get probabilities from a classifier without predict_proba, in a form skl2onnx converts
    faithfully (checked in tests: CalibratedClassifierCV wrapping a whole pipeline does not convert, the
    calibrator has to be the pipeline's last step)."""
    from sklearn.ensemble import VotingClassifier
    from sklearn.linear_model import SGDClassifier
    from sklearn.svm import SVC, NuSVC

    cls = type(final).__name__
    if isinstance(final, VotingClassifier):
        return "refit it with voting='soft' (every member must predict probabilities)"
    if not hasattr(final, "decision_function"):
        return "use a classifier that has predict_proba"
    calibrate = f"CalibratedClassifierCV({cls}(...), ensemble=False)"
    if final is obj:
        calibrate = f"wrap it in {calibrate}"
    else:
        calibrate = (f"make {calibrate} the pipeline's last step (a calibrator around the whole pipeline has "
                     "no faithful ONNX conversion)")
    if isinstance(final, SVC | NuSVC):
        return f"retrain it with probability=True, or {calibrate}"
    if isinstance(final, SGDClassifier):
        return f"retrain it with loss='log_loss', or {calibrate}"
    return calibrate


def _prediction_width(obj: Any, n_features: int, feature_names: Sequence[str] | None) -> int | None:
    """Columns of ``obj.predict`` on two all-zero rows; None when the model refuses such rows."""
    import warnings

    X = _as_input(np.zeros((2, n_features)), feature_names)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = np.asarray(obj.predict(X))
    except Exception:  # noqa: BLE001 - e.g. a transformer that refuses zeros: no verdict
        return None
    return int(out.shape[1]) if out.ndim == 2 else 1


def _n_regression_outputs(final: Any, measure_width: Callable[[], int | None]) -> int:
    """Targets a regressor predicts: from its attributes when they say, else measured (meta estimators
    such as MultiOutputRegressor, or KNeighborsRegressor fitted on 2-D y, record it nowhere)."""
    n_outputs = getattr(final, "n_outputs_", None)
    if n_outputs is not None:
        return int(n_outputs)
    coef = getattr(final, "coef_", None)
    if coef is not None and np.ndim(coef) == 2:
        return int(np.shape(coef)[0])
    estimators = getattr(final, "estimators_", None)
    if type(final).__module__.startswith("sklearn.multioutput") and isinstance(estimators, list):
        return len(estimators)
    return measure_width() or 1


# Encoders whose fitted categories_ hold the raw category values.
_CATEGORY_ENCODERS = ("OneHotEncoder", "OrdinalEncoder", "TargetEncoder")


def _refuse_text_columns(obj: Any, name: str) -> None:
    """Refuse a model whose encoders were fitted on text categories: it needs text columns, and this tool
    (like the ONNX contract) feeds one float32 array, so the data would be blamed for holding text."""
    found = list(_text_encoders(obj))
    if not found:
        return
    encoder = found[0][0]
    columns = [c for _, cols in found for c in cols]
    shown = ", ".join(repr(c) for c in columns[:4]) + (", ..." if len(columns) > 4 else "")
    on = f" on {shown}" if columns else ""
    raise UnsupportedModelError(
        f"{name} takes text columns ({encoder}{on}): this tool feeds the model one float32 array, so it "
        "cannot pass text; encode the categories as numbers before the model (e.g. integer codes, then "
        "refit on them), or export the preprocessing separately and pass the estimator that follows it"
    )


def _text_encoders(obj: Any) -> Iterator[tuple[str, list[str]]]:
    """(encoder class, its input column names) for every category encoder in ``obj`` fitted on strings,
    wherever it sits (pipelines, column transformers, unions, ensembles, calibrators)."""
    for step in iter_estimators(obj):
        if type(step).__name__ in _CATEGORY_ENCODERS and type(step).__module__.startswith("sklearn."):
            categories = getattr(step, "categories_", None) or []
            if any(isinstance(value, str) for values in categories for value in np.ravel(values)):
                names = getattr(step, "feature_names_in_", None)
                yield type(step).__name__, [str(n) for n in names] if names is not None else []


def iter_estimators(obj: Any) -> Iterator[Any]:
    """``obj`` and every fitted estimator inside it (pipelines, column transformers, unions, ensembles,
    calibrators), depth first."""
    yield obj
    children: list[Any] = []
    if hasattr(obj, "steps"):
        children += [step for _, step in obj.steps]
    children += [step for _, step, _ in getattr(obj, "transformers_", [])]
    children += [step for _, step in getattr(obj, "transformer_list", [])]
    estimators = getattr(obj, "estimators_", None)
    if isinstance(estimators, list):
        children += estimators
    children += [c.estimator for c in getattr(obj, "calibrated_classifiers_", [])]
    for child in children:
        if hasattr(child, "get_params"):  # not "drop" / "passthrough"
            yield from iter_estimators(child)


def encoder_categories(obj: Any, n_features: int, feature_names: Sequence[str] | None) -> dict[int, np.ndarray]:
    """Input column -> the numeric categories known to the category encoder that reads that raw column
    (the model itself, its pipeline's first step, or a transformer of a ColumnTransformer there).
    Values between those categories are unknown categories, which scikit-learn and ONNX treat apart."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    first = obj.steps[0][1] if isinstance(obj, Pipeline) else obj
    readers = [(first, list(range(n_features)))]
    if isinstance(first, ColumnTransformer):
        names = {name: i for i, name in enumerate(feature_names or ())}
        readers = [(step, _column_indices(columns, names, n_features))
                   for _, step, columns in getattr(first, "transformers_", [])]
    found: dict[int, np.ndarray] = {}
    for step, columns in readers:
        step = step.steps[0][1] if isinstance(step, Pipeline) else step
        categories = getattr(step, "categories_", None)
        if type(step).__name__ not in _CATEGORY_ENCODERS or categories is None or len(categories) != len(columns):
            continue
        for column, values in zip(columns, categories, strict=True):
            values = np.asarray(values)
            if values.dtype.kind in "iuf":
                found[column] = values[np.isfinite(values)].astype(np.float64)
    return found


def _column_indices(columns: Any, names: dict[str, int], n_features: int) -> list[int]:
    """A ColumnTransformer column spec as input column indices ([] when it is not a plain list/slice)."""
    if isinstance(columns, slice):
        return list(range(n_features))[columns]
    spec = np.ravel(np.asarray(columns, dtype=object))
    if spec.size and all(isinstance(c, bool | np.bool_) for c in spec):
        return [i for i, keep in enumerate(spec) if keep]
    indices = [names.get(c) if isinstance(c, str) else c for c in spec]
    return [int(i) for i in indices] if all(isinstance(i, int | np.integer) for i in indices) else []


def _make_predictor(
    obj: Any, task: Task, feature_names: Sequence[str] | None
) -> Callable[[np.ndarray], np.ndarray]:
    columns = list(feature_names) if feature_names is not None else None
    if task == "regression":

        def predict(X: np.ndarray) -> np.ndarray:
            # one row per sample: a second target would show as a second column, never as extra rows
            return np.asarray(obj.predict(_as_input(X, columns))).reshape(len(X), -1)

    else:

        def predict(X: np.ndarray) -> np.ndarray:
            return np.asarray(obj.predict_proba(_as_input(X, columns)))

    return predict


def _as_input(X: np.ndarray, columns: Sequence[str] | None) -> Any:
    """Estimators fitted on a DataFrame warn when given a bare array: hand them the same column names
    so native predictions are exact and quiet."""
    if columns is None:
        return X
    import pandas as pd

    return pd.DataFrame(X, columns=columns, copy=False)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


# --------------------------------------------------------------------------- truncated ensembles (models.trees)

_BOOSTING = ("GradientBoostingClassifier", "GradientBoostingRegressor")
_HIST_BOOSTING = ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor")
_FORESTS = ("RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor")


def _ensemble_step(model: LoadedModel) -> Any:
    """The tree ensemble that predicts: the model itself or the last step of a (flat) pipeline."""
    from sklearn.pipeline import Pipeline

    obj = model.native
    step = obj.steps[-1][1] if isinstance(obj, Pipeline) else obj
    name = type(step).__name__
    known = type(step).__module__.startswith("sklearn.ensemble.") and name in (*_BOOSTING, *_HIST_BOOSTING, *_FORESTS)
    if not known:
        inner = " (inside a nested pipeline)" if isinstance(step, Pipeline) else ""
        raise UnsupportedModelError(
            f"{model.estimator} does not end in a tree ensemble that can keep its first trees{inner}: truncation "
            "applies to GradientBoosting, HistGradientBoosting, RandomForest and ExtraTrees (alone or as a "
            "pipeline's last step)"
        )
    return step


def ensemble(model: LoadedModel) -> Any:
    """Boosting rounds (one tree per class and round for multiclass) or forest trees."""
    from optimizer_core.models.trees import Ensemble

    step = _ensemble_step(model)
    name = type(step).__name__
    if name in _BOOSTING:
        rounds, per_round = np.shape(step.estimators_)
        return Ensemble(total=int(rounds), unit="rounds", trees_per_unit=int(per_round), library="scikit-learn")
    if name in _HIST_BOOSTING:
        return Ensemble(total=len(step._predictors), unit="rounds", trees_per_unit=len(step._predictors[0]),
                        library="scikit-learn")
    return Ensemble(total=len(step.estimators_), unit="trees", trees_per_unit=1, library="scikit-learn")


def truncate(model: LoadedModel, ensemble: Any, k: int) -> Any:
    """A shallow copy of the ensemble holding its first ``k`` rounds or trees (``estimators_[:k]``,
    ``_predictors[:k]``; the fitted trees are shared, not copied), in a copy of the pipeline when there is one.
    scikit-learn's own prediction with that copy is the reference."""
    import copy
    import dataclasses

    from sklearn.pipeline import Pipeline

    from optimizer_core.models.loader_code import loader_code
    from optimizer_core.models.trees import Truncated

    step = _ensemble_step(model)
    name = type(step).__name__
    cut = copy.copy(step)
    if name in _BOOSTING:
        cut.estimators_ = step.estimators_[:k]
        cut.n_estimators_ = k
        lines = [f"cut.estimators_ = final.estimators_[:{k}]", f"cut.n_estimators_ = {k}"]
        attribute = f"estimators_[:{k}]"
    elif name in _HIST_BOOSTING:
        cut._predictors = step._predictors[:k]
        lines = [f"cut._predictors = final._predictors[:{k}]  # n_iter_ follows"]
        attribute = f"_predictors[:{k}]"
    else:
        cut.estimators_ = step.estimators_[:k]
        cut.n_estimators = k
        lines = [f"cut.estimators_ = final.estimators_[:{k}]", f"cut.n_estimators = {k}"]
        attribute = f"estimators_[:{k}]"
    obj = model.native
    if isinstance(obj, Pipeline):
        whole = copy.copy(obj)
        whole.steps = [*obj.steps[:-1], (obj.steps[-1][0], cut)]
        head = ["final = model.steps[-1][1]"]
        tail = ["truncated = copy.copy(model)", "truncated.steps = [*model.steps[:-1], (model.steps[-1][0], cut)]"]
    else:
        whole = cut
        head = ["final = model"]
        tail = ["truncated = cut"]
    call = "predict" if model.task == "regression" else "predict_proba"
    code = loader_code(model) + "\n" + "\n".join([
        "import copy",
        "",
        f"# scikit-learn itself, with the first {k} {ensemble.unit} (the fitted trees are shared, not copied):",
        *head,
        "cut = copy.copy(final)",
        *lines,
        *tail,
        f"scores = truncated.{call}(X)",
    ]) + "\n"
    loaded = dataclasses.replace(model, native=whole, predictor=_make_predictor(whole, model.task, model.feature_names),
                                 estimator=f"{model.estimator}, first {k} {ensemble.unit}")
    return Truncated(loaded=loaded, kept=k, reference=f"scikit-learn's own prediction with {attribute}",
                     native_code=code)
