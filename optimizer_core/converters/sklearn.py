"""scikit-learn -> ONNX through skl2onnx, with the compatibility fixes skl2onnx 1.20 needs.

Three skl2onnx 1.20 tree bugs are patched for the duration of a conversion (``_skl2onnx_tree_fixes``):

* HistGradientBoosting fails with ``TypeError: Field onnx.AttributeProto.ints: Expected an int, got a
  boolean``: leaves pass ``nodes_missing_value_tracks_true=False`` (a Python bool), which recent
  protobuf refuses in an int list. The flag is cast to ``int``.
* DecisionTree / RandomForest / ExtraTrees / GradientBoosting converters drop the per-node NaN routing
  that scikit-learn learns (``tree_.missing_go_to_left``), so every NaN takes the false branch in
  ONNX Runtime and predictions on rows with missing values diverge (onnx/sklearn-onnx#1253, fixed
  upstream by the still-open #1254). The flags are copied from the fitted tree.
* Building a float64 tree graph loops forever on the infinite thresholds scikit-learn uses for splits
  that only separate NaNs (its float32->float64 threshold search never converges): non-finite
  thresholds are passed through unchanged.

Double-precision graphs: skl2onnx 1.20 keeps tree thresholds in float32 and declares double outputs that
ONNX Runtime's tree operators do not produce, so trees are float32 only (scikit-learn's own trees compare
as float32 anyway; HistGradientBoosting compares in float64). Everything else is tried in double and
offered if ONNX Runtime runs it.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import onnx

from optimizer_core.converters import RawConversion
from optimizer_core.converters.contract import find_scores_tensor
from optimizer_core.errors import UnsupportedModelError
from optimizer_core.models.base import LoadedModel

# ai.onnx 18 / ai.onnx.ml 3: what skl2onnx 1.20 emits tested against onnxruntime 1.32.
TARGET_OPSET = {"": 18, "ai.onnx.ml": 3}

_TREE_MODULE_PREFIXES = (
    "sklearn.tree.",
    "sklearn.ensemble._forest.",
    "sklearn.ensemble._gb.",
    "sklearn.ensemble._hist_gradient_boosting.",
)
_MISSING_CONVERTER = re.compile(r"(?:type|alias) '(?:<class ')?([\w.]+)")
_PATCH_LOCK = threading.Lock()


def to_onnx(model: LoadedModel, *, double: bool) -> RawConversion:
    """Convert ``model.native`` with skl2onnx (probabilities without ZipMap for classifiers)."""
    _refuse_categorical_splits(model.native)
    if double:
        ok, reason = _static_double_support(model)
        if not ok:
            raise UnsupportedModelError(reason)
    proto = _convert(model, double=double)
    scores = find_scores_tensor(proto.graph, regression=model.task == "regression")
    notes = [f"converted with skl2onnx {_skl2onnx_version()}"]
    if _tree_steps(model.native):
        notes.append(
            "skl2onnx 1.20 tree fixes applied: scikit-learn's NaN routing kept, missing-value flags as ints"
        )
    return RawConversion(model=proto, scores_tensor=scores, notes=tuple(notes))


def supports_double(model: LoadedModel) -> tuple[bool, str]:
    """Whether a float64 graph can be built and run by ONNX Runtime; the reason when it cannot."""
    ok, reason = _static_double_support(model)
    if not ok:
        return ok, reason
    try:
        proto = _convert(model, double=True)
        _ort_session(proto)
    except UnsupportedModelError as e:
        return False, str(e)
    except Exception as e:
        return False, f"the float64 graph for {model.estimator} does not run in ONNX Runtime: {_reason(e)}"
    return True, "skl2onnx emits this estimator in float64 and ONNX Runtime runs it"


def _static_double_support(model: LoadedModel) -> tuple[bool, str]:
    svms = _steps_from(model.native, "sklearn.svm.")
    if svms:
        return False, (
            f"{svms[0]} is float32 only: the ONNX SVMClassifier/SVMRegressor operators store support vectors and "
            "coefficients as float32 attributes, so a float64 graph would round like the fp32 variant"
        )
    trees = _tree_steps(model.native)
    if not trees:
        return True, ""
    if trees[0].startswith("HistGradientBoosting"):
        return False, (
            f"{trees[0]} is float32 only: skl2onnx 1.20 stores tree thresholds as float32, so no float64 "
            "graph would compare like scikit-learn (which splits HistGradientBoosting in float64); the fp32 "
            "variant may differ on values within float32 rounding of a threshold"
        )
    return False, (
        f"{trees[0]} is float32 only: scikit-learn trees compare features as float32 themselves, so the "
        "fp32 variant already reproduces their splits"
    )


def _convert(model: LoadedModel, *, double: bool) -> onnx.ModelProto:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
    from skl2onnx.common.exceptions import MissingConverter, MissingShapeCalculator

    tensor_type = DoubleTensorType if double else FloatTensorType
    initial_types = [("input", tensor_type([None, model.n_features]))]
    try:
        with _skl2onnx_tree_fixes(), warnings.catch_warnings():
            # skl2onnx reads SVC.probA_/probB_, deprecated in scikit-learn 1.9: not the user's concern.
            warnings.filterwarnings(
                "ignore", message="Attribute `prob[AB]_` was deprecated", category=FutureWarning
            )
            return convert_sklearn(
                model.native,
                initial_types=initial_types,
                options=_options(model),
                target_opset=TARGET_OPSET,
            )
    except (MissingShapeCalculator, MissingConverter) as e:
        raise _unsupported(model, e) from e
    except RuntimeError as e:
        if "Unable to find a shape calculator" in str(e) or "Unable to find a converter" in str(e):
            raise _unsupported(model, e) from e
        raise


def _options(model: LoadedModel) -> dict[int, dict[str, Any]] | None:
    if model.task == "regression":
        return None
    from optimizer_core.models.sklearn import final_estimator

    # Probabilities as a plain [N, C] tensor: ZipMap's sequence of maps breaks the output contract.
    return {id(final_estimator(model.native)): {"zipmap": False}}


def _unsupported(model: LoadedModel, error: Exception) -> UnsupportedModelError:
    found = _MISSING_CONVERTER.search(str(error))
    culprit = found.group(1).rsplit(".", 1)[-1] if found else model.estimator
    where = "" if culprit == model.estimator else f" (in {model.estimator})"
    return UnsupportedModelError(
        f"{culprit}{where} has no ONNX converter in skl2onnx: use a supported estimator "
        "(trees, boosting, linear models, MLP, SVM, k-NN) or export it to ONNX yourself"
    )


def _refuse_categorical_splits(obj: Any) -> None:
    """skl2onnx drops HistGradientBoosting's categorical (bitset) splits without a word, and the graph it
    emits then disagrees with scikit-learn by up to ~0.6 in probability: refuse rather than hand it out."""
    steps = getattr(obj, "steps", None)
    if steps is not None:
        for _, step in steps:
            _refuse_categorical_splits(step)
        return
    categorical = getattr(obj, "is_categorical_", None)
    if categorical is not None and np.any(categorical):
        raise UnsupportedModelError(
            f"{type(obj).__name__} with categorical_features has no faithful ONNX conversion (skl2onnx "
            f"{_skl2onnx_version()} ignores categorical splits): refit it with the categories one-hot encoded "
            "(a OneHotEncoder in a pipeline) and categorical_features=None"
        )


def _steps_from(obj: Any, module_prefix: str) -> list[str]:
    """Class names of the steps in ``obj`` (a pipeline is searched step by step) defined under ``module_prefix``."""
    steps = getattr(obj, "steps", None)
    if steps is not None:
        return [name for _, step in steps for name in _steps_from(step, module_prefix)]
    return [type(obj).__name__] if (type(obj).__module__ + ".").startswith(module_prefix) else []


def _tree_steps(obj: Any) -> list[str]:
    """Class names of the tree-based steps in ``obj`` (a pipeline is searched step by step)."""
    steps = getattr(obj, "steps", None)
    if steps is not None:
        return [name for _, step in steps for name in _tree_steps(step)]
    module = type(obj).__module__ + "."
    return [type(obj).__name__] if module.startswith(_TREE_MODULE_PREFIXES) else []


def _skl2onnx_version() -> str:
    import skl2onnx

    return str(skl2onnx.__version__)


def _ort_session(proto: onnx.ModelProto) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    line = text[0] if text else type(e).__name__
    # ORT prefixes messages with "[ONNXRuntimeError] : 9 : NOT_IMPLEMENTED : "; the tail is the useful part.
    return line.rsplit(" : ", 1)[-1][:200]


# --- skl2onnx 1.20 compatibility (see the module docstring) -------------------------------------------


def _int_missing_flag(original: Callable[..., Any]) -> Callable[..., Any]:
    def add_node(*args: Any, nodes_missing_value_tracks_true: Any = 0, **kwargs: Any) -> Any:
        return original(*args, nodes_missing_value_tracks_true=int(nodes_missing_value_tracks_true), **kwargs)

    return add_node


def _with_missing_routing(original: Callable[..., Any]) -> Callable[..., Any]:
    def add_tree_to_attribute_pairs(
        attr_pairs: dict[str, list[Any]], is_classifier: bool, tree: Any, *args: Any, **kwargs: Any
    ) -> None:
        flags = attr_pairs["nodes_missing_value_tracks_true"]
        start = len(flags)
        original(attr_pairs, is_classifier, tree, *args, **kwargs)
        go_left = getattr(tree, "missing_go_to_left", None)
        # One flag per node in node order; the true branch of BRANCH_LEQ is scikit-learn's left child.
        if go_left is not None and len(flags) - start == len(go_left):
            flags[start:] = [int(v) for v in go_left]

    return add_tree_to_attribute_pairs


def _finite_threshold_only(original: Callable[..., Any]) -> Callable[..., Any]:
    def sklearn_threshold(dy: Any, dtype: Any, mode: str) -> Any:
        return original(dy, dtype, mode) if np.isfinite(dy) else np.float64(dy)

    return sklearn_threshold


@contextmanager
def _skl2onnx_tree_fixes() -> Iterator[None]:
    """Patch the skl2onnx tree bugs while one conversion runs (conversions are serialized)."""
    from skl2onnx.common import tree_ensemble
    from skl2onnx.operator_converters import decision_tree, gradient_boosting, random_forest

    patches: list[tuple[Any, str, Callable[[Callable[..., Any]], Callable[..., Any]]]] = [
        (tree_ensemble, "add_node", _int_missing_flag),
        (tree_ensemble, "sklearn_threshold", _finite_threshold_only),
    ]
    # The converters imported add_tree_to_attribute_pairs by name: patch each module's reference.
    patches += [
        (m, "add_tree_to_attribute_pairs", _with_missing_routing)
        for m in (decision_tree, gradient_boosting, random_forest)
    ]
    with _PATCH_LOCK:
        originals = [(module, attr, getattr(module, attr)) for module, attr, _ in patches]
        for (module, attr, wrap), (_, _, original) in zip(patches, originals, strict=True):
            setattr(module, attr, wrap(original))
        try:
            yield
        finally:
            for module, attr, original in originals:
                setattr(module, attr, original)
