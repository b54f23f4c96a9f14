"""LightGBM -> ONNX with onnxmltools, working around its rough edges in one place.

Workarounds (each has a regression test in tests/core/test_lightgbm_family.py):

* Random forests (``boosting='rf'``) average their trees, but onnxmltools either sums them (raw
  Boosters) or divides by a hard-coded 100 (wrappers): the leaf values are divided by the number of
  iterations instead.
* ``multiclassova`` scores each class with its own sigmoid, but onnxmltools applies a softmax: the
  post-transform is set to LOGISTIC. A ``sigmoid:k`` parameter other than 1 (binary, multiclassova)
  is ignored by onnxmltools: the leaf values are multiplied by k.
* ``fair`` and ``mape`` (identity link, like ``regression``) are refused by onnxmltools: they are
  converted as ``regression``. ``cross_entropy`` (sigmoid link) is converted as ``binary`` and its
  positive column kept.
* The text model is cut at the best iteration, as ``predict`` does after early stopping.

Refused with a reason: linear trees, zero-as-missing splits, ``reg_sqrt``, ``cross_entropy_lambda``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import onnx
from onnx import helper

from optimizer_core.converters import RawConversion
from optimizer_core.converters.contract import find_scores_tensor, take_column
from optimizer_core.errors import ConversionError, UnsupportedModelError
from optimizer_core.models import lightgbm as lgb_family
from optimizer_core.models.base import LoadedModel

TARGET_OPSET = 15  # the newest ai.onnx opset onnxmltools 1.16 accepts
_DECISION_TYPE = re.compile(r"^decision_type=(.*)$", re.MULTILINE)
_MISSING_ZERO = 1  # LightGBM keeps a split's missing type in bits 2-3 of decision_type: 0 none, 1 zero, 2 NaN


@dataclass(frozen=True)
class _Plan:
    classifier: bool
    objective: str | None = None  # replaces the model's objective (e.g. "binary sigmoid:1") before converting
    keep_column: int | None = None  # take one column of the probabilities (cross_entropy)
    post_transform: str | None = None  # replaces onnxmltools' TreeEnsembleClassifier post-transform
    leaf_scale: float = 1.0  # multiplies every leaf value


def supports_double(model: LoadedModel) -> tuple[bool, str]:
    from optimizer_core.converters.lightgbm_double import double_support

    return double_support(model)


def to_onnx(model: LoadedModel, *, double: bool) -> RawConversion:
    if double:  # onnxmltools writes float32 only: a float64 graph built from LightGBM's own trees
        from optimizer_core.converters.lightgbm_double import to_onnx_double

        proto, scores = to_onnx_double(model)
        return RawConversion(model=proto, scores_tensor=scores, notes=_notes(lgb_family.header_of(model.native)))
    text = lgb_family.model_text(model.native)
    header = lgb_family.read_header(text)
    _check_convertible(model.estimator, header, text)
    plan = _plan(header)
    booster = _conversion_booster(text, plan)
    if header.average_output:
        plan = _with_scale(plan, 1.0 / booster.current_iteration())
    proto = _convert(booster, model.n_features)
    _adjust_tree_ensemble(proto, plan)
    scores = find_scores_tensor(proto.graph, regression=not plan.classifier)
    if plan.keep_column is not None:
        scores = take_column(proto, scores, plan.keep_column)
    return RawConversion(model=proto, scores_tensor=scores, notes=_notes(header))


def _check_convertible(name: str, header: lgb_family.ModelHeader, text: str) -> None:
    if "\nis_linear=1" in text:
        raise UnsupportedModelError(
            f"{name} uses linear trees (linear_tree=True), which onnxmltools cannot convert "
            "(it would drop the linear models in the leaves): retrain without linear_tree"
        )
    if any((int(d) >> 2) & 3 == _MISSING_ZERO for line in _DECISION_TYPE.findall(text) for d in line.split()):
        raise UnsupportedModelError(
            f"{name} treats zeros as missing (zero_as_missing=True) but ONNX tree ensembles only treat NaN "
            "as missing: retrain with zero_as_missing=False (NaN for missing values)"
        )
    if "sqrt" in header.objective_flags:
        raise UnsupportedModelError(
            f"{name} was trained with reg_sqrt=True, whose squared output onnxmltools does not convert: "
            "retrain without reg_sqrt"
        )
    if header.objective == "cross_entropy_lambda":
        raise UnsupportedModelError(
            f"{name} uses objective 'cross_entropy_lambda', which onnxmltools cannot convert: "
            "retrain with 'cross_entropy' or 'binary'"
        )


def _plan(header: lgb_family.ModelHeader) -> _Plan:
    objective = header.objective or ""
    sigmoid = float(header.objective_params.get("sigmoid", "1"))
    if objective == "binary":
        return _Plan(classifier=True, leaf_scale=sigmoid)
    if objective == "multiclassova":
        return _Plan(classifier=True, post_transform="LOGISTIC", leaf_scale=sigmoid)
    if objective == "multiclass":
        return _Plan(classifier=True)
    if objective == "cross_entropy":
        return _Plan(classifier=True, objective="binary sigmoid:1", keep_column=1)
    if objective in ("fair", "mape"):
        return _Plan(classifier=False, objective="regression")
    if objective in lgb_family.REGRESSION_OBJECTIVES:
        return _Plan(classifier=False)
    raise UnsupportedModelError(f"LightGBM objective {objective!r} cannot be converted to ONNX")


def _with_scale(plan: _Plan, factor: float) -> _Plan:
    return _Plan(plan.classifier, plan.objective, plan.keep_column, plan.post_transform,
                 plan.leaf_scale * factor)


def _conversion_booster(text: str, plan: _Plan) -> Any:
    import lightgbm

    if plan.objective is not None:
        # onnxmltools reads the objective from the parameters section, LightGBM from the header line.
        name = plan.objective.split()[0]
        text = re.sub(r"^objective=.*$", f"objective={plan.objective}", text, count=1, flags=re.MULTILINE)
        text = re.sub(r"^\[objective: .*\]$", f"[objective: {name}]", text, count=1, flags=re.MULTILINE)
    return lightgbm.Booster(model_str=text)


def _convert(booster: Any, n_features: int) -> onnx.ModelProto:
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType
    from onnxmltools.convert.lightgbm._parse import WrappedBooster

    wrapped = WrappedBooster(booster)
    wrapped.boosting_type = "gbdt"  # random forests are averaged by _adjust_tree_ensemble, exactly
    return onnxmltools.convert_lightgbm(
        wrapped,
        initial_types=[("input", FloatTensorType([None, n_features]))],
        target_opset=TARGET_OPSET,
        zipmap=False,
    )


def _adjust_tree_ensemble(proto: onnx.ModelProto, plan: _Plan) -> None:
    if plan.leaf_scale == 1.0 and plan.post_transform is None:
        return
    kinds = ("TreeEnsembleClassifier", "TreeEnsembleRegressor")
    ensembles = [n for n in proto.graph.node if n.op_type in kinds]
    if len(ensembles) != 1:
        raise ConversionError(
            f"expected one tree ensemble in onnxmltools' LightGBM graph, found {len(ensembles)}"
        )
    node = ensembles[0]
    for attr in node.attribute:
        if attr.name in ("class_weights", "target_weights") and plan.leaf_scale != 1.0:
            scaled = [w * plan.leaf_scale for w in attr.floats]
            del attr.floats[:]
            attr.floats.extend(scaled)
    if plan.post_transform is not None:
        kept = [a for a in node.attribute if a.name != "post_transform"]
        del node.attribute[:]
        node.attribute.extend([*kept, helper.make_attribute("post_transform", plan.post_transform)])


def _notes(header: lgb_family.ModelHeader) -> tuple[str, ...]:
    if not header.categorical_features:
        return ()
    return (f"{len(header.categorical_features)} categorical feature(s) converted as equality splits; "
            "pass them as integer category codes",)
