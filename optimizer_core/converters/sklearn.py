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

Other skl2onnx 1.20 defects, each with its regression test: a binary LinearDiscriminantAnalysis, a soft
VotingClassifier and GradientBoostingClassifier(init='zero') are adjusted (``_estimator_fixes``,
``_fix_zero_init_base_values``); a ColumnTransformer selecting columns by name gets one input per column,
merged back into one (``_merge_column_inputs``); calibrations it converts wrong are refused
(``_refuse_unfaithful_calibration``).

Double-precision graphs: skl2onnx 1.20 keeps tree thresholds in float32 and declares double outputs that
ONNX Runtime's tree operators do not produce, so trees are float32 only (scikit-learn's own trees compare
as float32 anyway). HistGradientBoosting compares in float64: alone, it gets a float64 graph built from its own
predictors (``sklearn_hgb_double``). Everything else is tried in double and offered if ONNX Runtime runs it.
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
from optimizer_core.converters.contract import arrange_scores, find_scores_tensor
from optimizer_core.converters.sklearn_hgb_double import (
    double_support,
    is_bare_hist_gradient_boosting,
    to_onnx_double,
)
from optimizer_core.errors import ConversionError, UnsupportedModelError, describe_ort_error
from optimizer_core.models.base import LoadedModel
from optimizer_core.models.sklearn import iter_estimators

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
    _refuse_unfaithful_calibration(model.native)
    if double and is_bare_hist_gradient_boosting(model.native):  # skl2onnx rounds its float64 thresholds
        proto, scores = to_onnx_double(model)
        return RawConversion(model=proto, scores_tensor=scores, notes=("float64 graph from HistGradientBoosting's "
                                                                       "own predictors",))
    if double:
        ok, reason = _static_double_support(model)
        if not ok:
            raise UnsupportedModelError(reason)
    proto = _convert(model, double=double)
    _fix_zero_init_base_values(proto, model.native)
    scores = find_scores_tensor(proto.graph, regression=model.task == "regression")
    notes = [f"converted with skl2onnx {_skl2onnx_version()}"]
    if model.decision_scores and model.task == "binary":
        columns = decision_columns(model, proto, scores)
        scores = arrange_scores(proto, scores, columns)
        if columns != "as-is":
            notes.append(f"skl2onnx's binary decision scores rearranged ({columns}) to [-d, d], as decision_function "
                         "d is read natively")
    if _tree_steps(model.native):
        notes.append(
            "skl2onnx 1.20 tree fixes applied: scikit-learn's NaN routing kept, missing-value flags as ints"
        )
    return RawConversion(model=proto, scores_tensor=scores, notes=tuple(notes))


def decision_columns(model: LoadedModel, proto: onnx.ModelProto, scores: str) -> str:
    """How skl2onnx's binary decision scores become ``[-d, d]``: it writes ``[d, -d]`` for an SVC, one column
    for a LinearSVC or RidgeClassifier, ``[-d, d]`` for an SGDClassifier. Found from the graph's own label
    output on synthetic rows (``models.labels.binary_columns``), not from a table of estimators."""
    from optimizer_core.converters.verify import synthetic_rows
    from optimizer_core.models.labels import binary_columns, label_indices
    from optimizer_core.models.onnx_outputs import label_output

    label = label_output(proto.graph)
    if label is None:
        raise ConversionError(f"skl2onnx wrote no label output for {model.estimator}: its decision scores cannot be "
                              "mapped to the classes; export the model to ONNX yourself")
    session = _ort_session(proto)
    feed = session.get_inputs()[0]
    dtype = np.float64 if "double" in feed.type else np.float32
    labels, raw = [], []
    for X in synthetic_rows(model, 64):
        got_labels, got_scores = session.run([label, scores], {feed.name: X.astype(dtype)})
        labels.append(np.asarray(got_labels).reshape(-1))
        raw.append(np.asarray(got_scores, dtype=np.float64).reshape(len(X), -1))
    columns = binary_columns(label_indices(np.concatenate(labels), model.classes or ()), np.vstack(raw))
    if columns is None:
        raise ConversionError(
            f"skl2onnx's decision scores for {model.estimator} do not map to its label output on synthetic rows: the "
            "graph is not usable as written; report it, or export the model to ONNX yourself"
        )
    return columns


def supports_double(model: LoadedModel) -> tuple[bool, str]:
    """Whether a float64 graph can be built and run by ONNX Runtime; the reason when it cannot."""
    if is_bare_hist_gradient_boosting(model.native):
        return double_support(model)
    ok, reason = _static_double_support(model)
    if not ok:
        return ok, reason
    try:
        proto = _convert(model, double=True)
        _ort_session(proto)
    except UnsupportedModelError as e:
        return False, str(e)
    except Exception as e:
        return False, f"the float64 graph for {model.estimator} does not run in ONNX Runtime: {describe_ort_error(e)}"
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
            f"{trees[0]} is float32 only inside a pipeline: skl2onnx 1.20 stores tree thresholds as float32, so no "
            "float64 graph would compare like scikit-learn (which splits HistGradientBoosting in float64); the fp32 "
            "variant may differ on values within float32 rounding of a threshold (pass the estimator alone for a "
            "float64 graph)"
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
    by_name = model.feature_names is not None and _selects_columns_by_name(model.native)
    if by_name:  # skl2onnx finds named columns only among inputs of those names: one input per column
        initial_types = [(name, tensor_type([None, 1])) for name in model.feature_names or ()]
    else:
        initial_types = [("input", tensor_type([None, model.n_features]))]
    try:
        with _skl2onnx_tree_fixes(), _estimator_fixes(model.native), warnings.catch_warnings():
            # skl2onnx reads SVC.probA_/probB_, deprecated in scikit-learn 1.9: not the user's concern.
            warnings.filterwarnings(
                "ignore", message="Attribute `prob[AB]_` was deprecated", category=FutureWarning
            )
            try:
                proto = convert_sklearn(
                    model.native, initial_types=initial_types, options=_options(model), target_opset=TARGET_OPSET
                )
            except NameError as e:  # no zipmap option (LinearSVC, RidgeClassifier): ZipMap is pruned anyway
                if "Option 'zipmap' not in" not in str(e):
                    raise
                proto = convert_sklearn(model.native, initial_types=initial_types, target_opset=TARGET_OPSET)
    except (MissingShapeCalculator, MissingConverter) as e:
        raise _unsupported(model, e) from e
    except RuntimeError as e:
        if "Unable to find a shape calculator" in str(e) or "Unable to find a converter" in str(e):
            raise _unsupported(model, e) from e
        raise
    if by_name:
        _merge_column_inputs(proto, model.n_features)
    return proto


def _selects_columns_by_name(obj: Any) -> bool:
    """Whether a ColumnTransformer in ``obj`` picks its columns by name (strings, or a selector that
    resolved to names when it was fitted)."""
    for step in iter_estimators(obj):
        for _, _, columns in getattr(step, "transformers_", []):
            spec = np.ravel(np.asarray(columns, dtype=object))
            if any(isinstance(c, str) for c in spec):
                return True
    return False


def _merge_column_inputs(proto: onnx.ModelProto, n_features: int) -> None:
    """Replace the one-column inputs (in feature order) with one ``[N, n_features]`` input split into them."""
    from onnx import TensorProto, helper

    from optimizer_core.converters.contract import unique_name

    graph = proto.graph
    columns = [i.name for i in graph.input]
    if len(columns) != n_features:
        raise ConversionError(
            f"skl2onnx kept {len(columns)} of the {n_features} column inputs: the columns cannot be mapped "
            "back to one input; select the ColumnTransformer's columns by position (integers) and refit"
        )
    elem_type = graph.input[0].type.tensor_type.elem_type
    merged = unique_name(graph, "input")
    name = unique_name(graph, "split_input")
    opset = max((op.version for op in proto.opset_import if op.domain in ("", "ai.onnx")), default=0)
    if opset >= 13:  # the split sizes moved from an attribute to an input in opset 13
        sizes = unique_name(graph, "input_column_sizes")
        graph.initializer.append(helper.make_tensor(sizes, TensorProto.INT64, [n_features], [1] * n_features))
        split = helper.make_node("Split", [merged, sizes], columns, axis=1, name=name)
    else:
        split = helper.make_node("Split", [merged], columns, axis=1, split=[1] * n_features, name=name)
    graph.node.insert(0, split)
    del graph.input[:]
    graph.input.append(helper.make_tensor_value_info(merged, elem_type, [None, n_features]))


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
    for step in iter_estimators(obj):  # also inside ensembles and calibrators, not only pipelines
        categorical = getattr(step, "is_categorical_", None)
        if categorical is None or not np.any(categorical):
            continue
        raise UnsupportedModelError(
            f"{type(step).__name__} with categorical_features has no faithful ONNX conversion (skl2onnx "
            f"{_skl2onnx_version()} ignores categorical splits): refit it with the categories one-hot encoded "
            "(a OneHotEncoder in a pipeline) and categorical_features=None"
        )


def _refuse_unfaithful_calibration(obj: Any) -> None:
    """skl2onnx 1.20 converts two kinds of CalibratedClassifierCV wrong without a word (up to 0.5 in
    probability): isotonic calibration (it looks up the nearest calibration point instead of
    interpolating) and a calibrator around a pipeline whose last step has decision_function (the
    pipeline's probabilities get calibrated instead of its decision function, onnx/sklearn-onnx#1246)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.pipeline import Pipeline

    for step in iter_estimators(obj):
        if not isinstance(step, CalibratedClassifierCV):
            continue
        if step.method == "isotonic":
            raise UnsupportedModelError(
                f"CalibratedClassifierCV(method='isotonic') has no faithful ONNX conversion (skl2onnx "
                f"{_skl2onnx_version()} replaces its interpolation with a nearest-point lookup): refit it with "
                "method='sigmoid'"
            )
        bases = [c.estimator for c in getattr(step, "calibrated_classifiers_", [])]
        pipeline = next((b for b in bases if isinstance(b, Pipeline) and hasattr(b, "decision_function")), None)
        if pipeline is not None:
            from optimizer_core.models.sklearn import describe_estimator, final_estimator

            last = type(final_estimator(pipeline)).__name__
            raise UnsupportedModelError(
                f"CalibratedClassifierCV around {describe_estimator(pipeline)} has no faithful ONNX conversion "
                f"(skl2onnx {_skl2onnx_version()} calibrates the pipeline's probabilities, not its decision "
                f"function): make the calibrator the pipeline's last step, e.g. make_pipeline(<your steps>, "
                f"CalibratedClassifierCV({last}(...), ensemble=False))"
            )


@contextmanager
def _estimator_fixes(obj: Any) -> Iterator[None]:
    """Adjust the fitted estimators skl2onnx 1.20 misreads while one conversion runs, then restore them
    (the adjustments change nothing that predict_proba computes):

    * a binary LinearDiscriminantAnalysis gets coefficients [-w, w] and a softmax, i.e. sigmoid(2 x d)
      where scikit-learn computes sigmoid(d): w and the intercept are halved (exact in floating point);
    * a soft VotingClassifier with flatten_transform=True (the default) is refused although that flag only
      shapes transform(): it is set to False.
    """
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.ensemble import VotingClassifier

    saved: list[tuple[Any, str, Any]] = []
    for step in iter_estimators(obj):
        if isinstance(step, LinearDiscriminantAnalysis) and len(getattr(step, "classes_", ())) == 2:
            saved += [(step, "coef_", step.coef_), (step, "intercept_", step.intercept_)]
            step.coef_, step.intercept_ = step.coef_ * 0.5, step.intercept_ * 0.5
        elif isinstance(step, VotingClassifier) and step.voting == "soft" and step.flatten_transform:
            saved.append((step, "flatten_transform", True))
            step.flatten_transform = False
    try:
        yield
    finally:
        for step, attr, value in reversed(saved):
            setattr(step, attr, value)


def _fix_zero_init_base_values(proto: onnx.ModelProto, obj: Any) -> None:
    """GradientBoostingClassifier(init='zero') with 3+ classes: skl2onnx 1.20 writes one base value where
    ONNX Runtime needs one per class (it refuses to load the graph). All zeros either way."""
    from sklearn.ensemble import GradientBoostingClassifier

    if not any(isinstance(s, GradientBoostingClassifier) and s.init == "zero" for s in iter_estimators(obj)):
        return
    for node in proto.graph.node:
        if node.op_type != "TreeEnsembleClassifier":
            continue
        attrs = {a.name: a for a in node.attribute}
        n_classes = max(len(attrs[k].ints) if k == "classlabels_int64s" else len(attrs[k].strings)
                        for k in ("classlabels_int64s", "classlabels_strings") if k in attrs)
        base = attrs.get("base_values")
        if base is not None and n_classes > 2 and list(base.floats) == [0.0]:
            base.floats[:] = [0.0] * n_classes


def _steps_from(obj: Any, module_prefix: str | tuple[str, ...]) -> list[str]:
    """Class names of the steps in ``obj`` (a pipeline is searched step by step) defined under ``module_prefix``."""
    steps = getattr(obj, "steps", None)
    if steps is not None:
        return [name for _, step in steps for name in _steps_from(step, module_prefix)]
    return [type(obj).__name__] if (type(obj).__module__ + ".").startswith(module_prefix) else []


def _tree_steps(obj: Any) -> list[str]:
    """Class names of the tree-based steps in ``obj`` (a pipeline is searched step by step)."""
    return _steps_from(obj, _TREE_MODULE_PREFIXES)


def _skl2onnx_version() -> str:
    import skl2onnx

    return str(skl2onnx.__version__)


def _ort_session(proto: onnx.ModelProto) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


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
