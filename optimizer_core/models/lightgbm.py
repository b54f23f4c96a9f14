"""LightGBM: text model files, live Boosters and scikit-learn wrappers (LGBMClassifier, LGBMRegressor).

Native prediction follows the output contract: class probabilities ``[N, C]`` for classifiers (binary
too), predictions on the response scale for regressors. NaN is missing, as in LightGBM itself.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from optimizer_core.categories import lightgbm_categories, model_note
from optimizer_core.errors import ModelLoadError, UnsupportedModelError
from optimizer_core.models.base import LoadedModel, Task

if TYPE_CHECKING:
    from optimizer_core.models import SourceInfo

FORMATS = ("lightgbm-text",)

BINARY_OBJECTIVES = frozenset({"binary"})
MULTICLASS_OBJECTIVES = frozenset({"multiclass", "multiclassova"})
IDENTITY_REGRESSION_OBJECTIVES = frozenset(
    {"regression", "regression_l1", "huber", "fair", "quantile", "mape"}
)
LOG_LINK_REGRESSION_OBJECTIVES = frozenset({"poisson", "gamma", "tweedie"})
# cross_entropy predicts sigmoid(score) in [0, 1]; cross_entropy_lambda log(1 + exp(score)).
CROSS_ENTROPY_OBJECTIVES = frozenset({"cross_entropy", "cross_entropy_lambda"})
REGRESSION_OBJECTIVES = (
    IDENTITY_REGRESSION_OBJECTIVES | LOG_LINK_REGRESSION_OBJECTIVES | CROSS_ENTROPY_OBJECTIVES
)
_RANKING_OBJECTIVES = frozenset({"lambdarank", "rank_xendcg"})

_AUTO_NAME = re.compile(r"Column_(\d+)")
_PARAM_LINE = re.compile(r"\[[^\]\[:\n]+: [^\n]*\]")
_CATEGORICAL_PARAM = re.compile(r"^\[categorical_feature: ([^\]\n]*)\]$", re.MULTILINE)

# Parses a model and its parameters, as lightgbm.Booster does, in a throw-away process that loads
# lib_lightgbm alone (no Python package import: ~50 ms).
_PARSE_PROBE = """
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
handle, iterations, size = ctypes.c_void_p(), ctypes.c_int(), ctypes.c_int64()
text = ctypes.c_char_p(sys.stdin.buffer.read())
if lib.LGBM_BoosterLoadModelFromString(text, ctypes.byref(iterations), ctypes.byref(handle)):
    sys.exit(3)
params = ctypes.create_string_buffer(1 << 20)
status = lib.LGBM_BoosterGetLoadedParam(handle, ctypes.c_int64(1 << 20), ctypes.byref(size), params)
sys.exit(3 if status else 0)
"""
_PROBE_TIMEOUT_S = 300


@dataclass(frozen=True)
class ModelHeader:
    """The key=value lines LightGBM writes before the first tree."""

    objective: str | None  # None: trained with a custom objective function
    objective_params: dict[str, str] = field(default_factory=dict)  # e.g. sigmoid:1, num_class:3
    objective_flags: frozenset[str] = frozenset()  # e.g. "sqrt" (regression with reg_sqrt)
    num_class: int = 1
    average_output: bool = False  # random-forest boosting averages its trees
    feature_names: tuple[str, ...] = ()
    categorical_features: tuple[int, ...] = ()  # indices of features split by category
    feature_infos: tuple[str, ...] = ()  # per feature: [min:max] (numerical) or the codes seen (categorical)
    categorical_param: tuple[int, ...] | None = None  # the categorical_feature parameter (unused features too)


def matches(obj: Any) -> bool:
    """True for a LightGBM Booster or scikit-learn wrapper (without importing lightgbm)."""
    if not any(cls.__module__.split(".")[0] == "lightgbm" for cls in type(obj).__mro__):
        return False
    import lightgbm

    return isinstance(obj, lightgbm.Booster | lightgbm.LGBMModel)


def load(data: bytes, fmt: str, source: SourceInfo) -> LoadedModel:
    """Read a LightGBM text model (the bytes, whatever the file is named)."""
    import lightgbm

    if fmt not in FORMATS:
        raise ModelLoadError(f"{source.name or 'the model'} is {fmt}, not a LightGBM text model")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ModelLoadError(
            f"{source.name or 'the model'} starts like a LightGBM text model but is not UTF-8 text: "
            "save it again with booster.save_model('model.txt')"
        ) from e
    _require_complete(text, source)
    _refuse_if_parser_crashes(data, source.name or "the model")
    return _build(lightgbm.Booster(model_str=text), source=source, fmt=fmt)


def from_object(obj: Any, *, source: SourceInfo, fmt: str) -> LoadedModel:
    """Wrap a live, fitted LightGBM Booster or scikit-learn wrapper."""
    import lightgbm

    if isinstance(obj, lightgbm.LGBMModel) and not obj.__sklearn_is_fitted__():
        raise UnsupportedModelError(f"{type(obj).__name__} is not fitted: call fit() before passing it")
    return _build(obj, source=source, fmt=fmt)


def booster_of(native: Any) -> Any:
    """The lightgbm.Booster behind a Booster or a scikit-learn wrapper."""
    import lightgbm

    return native.booster_ if isinstance(native, lightgbm.LGBMModel) else native


def model_text(native: Any) -> str:
    """The model as LightGBM text, cut at the best iteration when there is one (as predict does)."""
    return booster_of(native).model_to_string()


def read_header(text: str) -> ModelHeader:
    """Parse the header lines of a LightGBM text model."""
    values: dict[str, str] = {}
    flags: set[str] = set()
    for line in text.split("\nTree=", 1)[0].splitlines():
        key, sep, value = line.strip().partition("=")
        if sep:
            values[key] = value
        elif key:
            flags.add(key)
    objective_tokens = values.get("objective", "").split()
    params = dict(t.split(":", 1) for t in objective_tokens[1:] if ":" in t)
    return ModelHeader(
        objective=objective_tokens[0] if objective_tokens else None,
        objective_params=params,
        objective_flags=frozenset(t for t in objective_tokens[1:] if ":" not in t),
        num_class=int(values.get("num_class", "1")),
        average_output="average_output" in flags,
        # split at spaces only, as LightGBM does: a name may hold a tab (spaces became '_' in training)
        feature_names=tuple(values["feature_names"].split(" ")) if values.get("feature_names") else (),
        categorical_features=tuple(
            i for i, info in enumerate(values.get("feature_infos", "").split())
            if not info.startswith("[") and info != "none"  # numerical: [min:max]; categorical: 1:5:2
        ),
        feature_infos=tuple(values.get("feature_infos", "").split()),
        categorical_param=_categorical_param(text),
    )


def _categorical_param(text: str) -> tuple[int, ...] | None:
    """The ``[categorical_feature: 1,2]`` line of the parameters section as indices (None when absent or
    given by name)."""
    found = _CATEGORICAL_PARAM.search(text)
    if found is None:
        return None
    tokens = [t.strip() for t in found.group(1).split(",") if t.strip()]
    return tuple(int(t) for t in tokens) if all(t.isdigit() for t in tokens) else None


def header_of(native: Any) -> ModelHeader:
    # The header is the same for any number of trees: dump one iteration only.
    return read_header(booster_of(native).model_to_string(num_iteration=1))


def task_of(header: ModelHeader, estimator: str) -> Task:
    """Classify the objective, or refuse it with what to do instead."""
    objective = header.objective
    if objective is None:
        raise UnsupportedModelError(
            f"{estimator} was trained with a custom objective function, so its predictions are raw "
            "scores of unknown meaning: retrain with a built-in objective (binary, multiclass, regression...)"
        )
    if objective in BINARY_OBJECTIVES:
        return "binary"
    if objective in MULTICLASS_OBJECTIVES:
        return "multiclass"
    if objective in REGRESSION_OBJECTIVES:
        return "regression"
    if objective in _RANKING_OBJECTIVES:
        raise UnsupportedModelError(
            f"{estimator} uses the ranking objective {objective!r}: ranking models are not supported "
            "(this tool handles classifiers and regressors)"
        )
    raise UnsupportedModelError(f"{estimator} uses objective {objective!r}, which is not supported")


def _require_complete(text: str, source: SourceInfo) -> None:
    """Refuse a truncated or altered model before LightGBM parses it.

    LightGBM's parser aborts or segfaults the whole process (instead of raising) on many damaged
    files: one cut inside a tree or the parameters section, a parameter line without ': '.
    """
    name = source.name or "the model"
    header, has_trees, _ = text.partition("\nTree=")
    trees_end = text.find("\nend of trees")
    tail = text[trees_end:] if trees_end >= 0 else ""
    if not has_trees or trees_end < 0 or ("\nparameters:" in tail and "\nend of parameters" not in tail):
        raise ModelLoadError(
            f"{name} is an incomplete LightGBM model (it stops before the end of its trees or parameters): "
            "the file is truncated; save it again with booster.save_model('model.txt')"
        )
    sizes = re.search(r"^tree_sizes=([\d ]*)$", header, re.MULTILINE)
    trees = text[len(header) + 1 : trees_end + 1]
    if sizes and sum(int(n) for n in sizes.group(1).split()) != len(trees.encode("utf-8")):
        raise _damaged(name, "its trees do not add up to the sizes in its header; an editor may have "
                       "changed line endings")
    params = tail.partition("\nparameters:\n")[2].partition("\nend of parameters")[0]
    if any(not _PARAM_LINE.fullmatch(line) for line in params.splitlines()):
        raise _damaged(name, "a line of its parameters section is not '[name: value]'")


def _damaged(name: str, why: str) -> ModelLoadError:
    return ModelLoadError(f"{name} is a damaged LightGBM model ({why}): save it again with "
                          "booster.save_model('model.txt')")


def _refuse_if_parser_crashes(data: bytes, name: str) -> None:
    """Parse the model in a child process first: LightGBM aborts or segfaults on many damaged files.

    A parse error in the child is left for the in-process load to report; only a crash is refused here.
    """
    import lightgbm

    lib_path = getattr(lightgbm.basic._LIB, "_name", None)
    if not lib_path:
        return
    try:
        child = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _PARSE_PROBE, lib_path],
            input=data, capture_output=True, timeout=_PROBE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as e:
        raise ModelLoadError(
            f"{name}: LightGBM did not finish reading the model in {_PROBE_TIMEOUT_S} s; "
            "the file may be damaged"
        ) from e
    except OSError:  # cannot start a child here: load in-process as before
        return
    if child.returncode not in (0, 3):
        raise _damaged(name, "LightGBM crashes reading it")


def _build(native: Any, *, source: SourceInfo, fmt: str) -> LoadedModel:
    import lightgbm

    booster = booster_of(native)
    header = header_of(native)
    is_wrapper = isinstance(native, lightgbm.LGBMModel)
    estimator = type(native).__name__ if is_wrapper else f"Booster({header.objective or 'custom'})"
    task = task_of(header, estimator)
    _check_wrapper_task(native, task, header.objective or "custom")
    notes: list[str] = []
    if header.objective == "multiclassova":
        notes.append("multiclassova scores each class with its own sigmoid: the columns do not sum to 1")
    feature_names = _feature_names(header.feature_names)
    stored = lightgbm_categories(getattr(booster, "pandas_categorical", None), header.categorical_features,
                                 header.feature_infos, header.categorical_param)
    if note := model_note(stored, header.categorical_features, feature_names):
        notes.append(note)
    return LoadedModel(
        family="lightgbm",
        estimator=estimator,
        task=task,
        n_features=booster.num_feature(),
        feature_names=feature_names,
        classes=_classes(native, task, header),
        format=fmt,
        source_bytes=source.size,
        source_sha256=source.sha256,
        native=native,
        predictor=_predictor(native, task),
        notes=tuple(notes),
        categorical_features=header.categorical_features,
        stored_categories=stored,
    )


def _feature_names(names: tuple[str, ...]) -> tuple[str, ...] | None:
    """Real feature names, or None when LightGBM made up Column_0, Column_1... (numpy training data)."""
    if not names:
        return None
    auto = all((m := _AUTO_NAME.fullmatch(n)) and int(m.group(1)) == i for i, n in enumerate(names))
    return None if auto else names


def _check_wrapper_task(native: Any, task: Task, objective: str) -> None:
    import lightgbm

    name = type(native).__name__
    if isinstance(native, lightgbm.LGBMClassifier) and task == "regression":
        raise UnsupportedModelError(
            f"{name} was trained with the regression objective {objective!r}: use LGBMRegressor for it"
        )
    if isinstance(native, lightgbm.LGBMRegressor) and task != "regression":
        raise UnsupportedModelError(
            f"{name} was trained with the classification objective {objective!r}: use LGBMClassifier for it"
        )


def _classes(native: Any, task: Task, header: ModelHeader) -> tuple[Any, ...] | None:
    import lightgbm

    if task == "regression":
        return None
    if isinstance(native, lightgbm.LGBMClassifier):
        return tuple(c.item() if hasattr(c, "item") else c for c in native.classes_)
    return (0, 1) if task == "binary" else tuple(range(header.num_class))


def _predictor(native: Any, task: Task) -> Callable[[np.ndarray], np.ndarray]:
    import lightgbm

    if isinstance(native, lightgbm.LGBMModel):  # the user's own production call
        return native.predict if task == "regression" else native.predict_proba
    if task == "binary":
        return lambda X: _two_columns(native.predict(X))
    return native.predict


def _two_columns(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    return np.column_stack([1.0 - p, p])


# --------------------------------------------------------------------------- truncated ensembles (models.trees)

def prediction_iterations(native: Any) -> int:
    """Iterations the native prediction uses: the best iteration when early stopping recorded one."""
    booster = booster_of(native)
    best = int(getattr(booster, "best_iteration", 0) or 0)
    return best if best > 0 else int(booster.current_iteration())


def ensemble(model: LoadedModel) -> Any:
    """Boosting iterations the native prediction uses (random forests: trees, averaged), and trees per
    iteration (one per class for multiclass)."""
    from optimizer_core.models.trees import Ensemble

    booster = booster_of(model.native)
    header = header_of(model.native)
    return Ensemble(total=prediction_iterations(model.native), unit="trees" if header.average_output else "rounds",
                    trees_per_unit=int(booster.num_model_per_iteration()), library="LightGBM")


def truncate(model: LoadedModel, ensemble: Any, k: int) -> Any:
    """The first ``k`` iterations: LightGBM's own ``num_iteration=k`` on the user's model is the reference; a
    Booster read from ``model_to_string(num_iteration=k)`` is what the converter reads."""
    import dataclasses

    import lightgbm

    from optimizer_core.models.loader_code import loader_code
    from optimizer_core.models.trees import Truncated

    native = model.native
    booster = booster_of(native)
    cut = lightgbm.Booster(model_str=booster.model_to_string(num_iteration=k))
    if isinstance(native, lightgbm.LGBMModel):
        method = native.predict if model.task == "regression" else native.predict_proba

        def reference(X: np.ndarray) -> np.ndarray:
            return method(X, num_iteration=k)

        call = "predict" if model.task == "regression" else "predict_proba"
        code = (loader_code(model) + f"\n# LightGBM itself, with the first {k} iterations:\n"
                f"scores = model.{call}(X, num_iteration={k})\n"
                f"# or save a model that holds only them:\n"
                f"model.booster_.save_model('model-{k}.txt', num_iteration={k})\n")
    else:
        binary = model.task == "binary"

        def reference(X: np.ndarray) -> np.ndarray:
            out = native.predict(X, num_iteration=k)
            return _two_columns(out) if binary else out

        shape = "  # binary: the probability of the second class" if binary else ""
        code = (loader_code(model) + f"\n# LightGBM itself, with the first {k} iterations:\n"
                f"scores = booster.predict(X, num_iteration={k}){shape}\n"
                f"# or save a model that holds only them:\n"
                f"booster.save_model('model-{k}.txt', num_iteration={k})\n")
    loaded = dataclasses.replace(model, native=cut, predictor=reference,
                                 estimator=f"{model.estimator}, first {k} iterations")
    return Truncated(loaded=loaded, kept=k, reference=f"LightGBM's own num_iteration={k}", native_code=code)


class _PinnedBooster:
    """A Booster whose predictions run on a fixed number of threads (LightGBM takes ``num_threads`` per call)."""

    def __init__(self, booster: Any, threads: int):
        self._booster = booster
        self._threads = threads

    def predict(self, X: Any, **kwargs: Any) -> Any:
        return self._booster.predict(X, num_threads=self._threads, **kwargs)


def pinned_predictor(native: Any, task: Task, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    """The native predictor on ``threads`` threads: LightGBM takes ``num_threads`` per predict call, the
    scikit-learn wrappers too (over their ``n_jobs``), so the user's model is neither copied nor changed."""
    import functools

    import lightgbm

    if isinstance(native, lightgbm.LGBMModel):
        return functools.partial(_predictor(native, task), num_threads=threads)
    return _predictor(_PinnedBooster(native, threads), task)
