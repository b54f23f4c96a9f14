"""XGBoost -> ONNX with onnxmltools, working around its rough edges in one place.

Workarounds (each has a regression test in tests/core/test_xgboost_family.py):

* The converter reads split features as ``f<i>``: a Booster with real feature names fails, so a copy
  with the names cleared is converted (the ONNX input is positional anyway).
* onnxmltools guesses classifier-vs-regressor for raw Boosters from the trees' cover statistics (all
  integer covers mean "regression"), which misfires on small or degenerate classifiers; and it reads the
  binary ``base_score`` as a margin when the first tree is a single zero leaf. The objective and class
  count are handed over explicitly instead, and the binary base margin is written as logit(base_score).
* Wrappers predict with ``best_iteration`` after early stopping: the trees past it are sliced off.
* Multiclass random forests (``num_parallel_tree`` > 1, XGBRFClassifier) lay their trees out per class,
  but onnxmltools gives tree i to class i % n_classes: the class of each tree is rewritten.
* ``reg:logistic`` is converted as a binary classifier (sigmoid link) and its positive column kept;
  ``multi:softmax`` as ``multi:softprob``, whose probabilities XGBClassifier.predict_proba returns for it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import helper

from optimizer_core.converters import RawConversion
from optimizer_core.converters.contract import find_scores_tensor, take_column
from optimizer_core.errors import UnsupportedModelError
from optimizer_core.models import xgboost as xgb_family
from optimizer_core.models.base import LoadedModel

TARGET_OPSET = 15  # the newest ai.onnx opset onnxmltools 1.16 accepts
_FLOAT_ONLY = "onnxmltools' XGBoost converter emits float32 tree ensembles only"


@dataclass(frozen=True)
class _Plan:
    """How to ask onnxmltools for a model: which operator, objective and class count to declare."""

    classifier: bool
    objective: str
    num_class: int  # 1 for binary (onnxmltools' convention), n for multiclass, 0 for regression
    keep_column: int | None = None  # take one column of the probabilities (reg:logistic)


def supports_double(model: LoadedModel) -> tuple[bool, str]:
    return False, _FLOAT_ONLY


def to_onnx(model: LoadedModel, *, double: bool) -> RawConversion:
    if double:
        raise UnsupportedModelError(f"{model.estimator} cannot be converted to float64: {_FLOAT_ONLY}")
    booster = xgb_family.booster_of(model.native)
    info = xgb_family.booster_info(booster)
    _check_convertible(model, booster, info)
    plan = _plan(info)
    proto = _convert(_conversion_booster(model.native), plan, model.n_features)
    if plan.classifier and plan.num_class == 1:
        _set_binary_base_margin(proto, _base_score(booster))
    if plan.num_class > 1:
        _set_tree_classes(proto, plan.num_class, _parallel_trees(booster))
    scores = find_scores_tensor(proto.graph, regression=not plan.classifier)
    if plan.keep_column is not None:
        scores = take_column(proto, scores, plan.keep_column)
    return RawConversion(model=proto, scores_tensor=scores, notes=_notes(model, booster))


def _check_convertible(model: LoadedModel, booster: Any, info: xgb_family.BoosterInfo) -> None:
    name = model.estimator
    if info.booster_type == "dart":
        raise UnsupportedModelError(
            f"{name} uses booster='dart', which onnxmltools cannot convert (DART weighs its trees at "
            "prediction time): retrain with booster='gbtree'"
        )
    if info.booster_type != "gbtree":
        raise UnsupportedModelError(
            f"{name} uses booster={info.booster_type!r}: only tree boosters (gbtree) convert to ONNX"
        )
    if _leaf_vector_size(booster) > 1:
        raise UnsupportedModelError(
            f"{name} grows vector-leaf trees (multi_strategy='multi_output_tree'), which onnxmltools cannot "
            "convert: retrain with the default multi_strategy='one_output_per_tree'"
        )
    missing = getattr(model.native, "missing", np.nan)
    if missing is not None and not (isinstance(missing, float) and math.isnan(missing)):
        raise UnsupportedModelError(
            f"{name} treats {missing!r} as missing but ONNX tree ensembles only treat NaN as missing: "
            "replace those values with NaN and refit with missing=np.nan"
        )


def _leaf_vector_size(booster: Any) -> int:
    # Not in the configuration once saved and reloaded; the first round's trees tell.
    model = json.loads(booster[:1].save_raw("json"))["learner"]["gradient_booster"]["model"]
    return max((int(tree["tree_param"].get("size_leaf_vector", 1)) for tree in model["trees"]), default=1)


def _plan(info: xgb_family.BoosterInfo) -> _Plan:
    objective = info.objective
    if objective in xgb_family.BINARY_OBJECTIVES:
        return _Plan(classifier=True, objective="binary:logistic", num_class=1)
    if objective in xgb_family.MULTICLASS_OBJECTIVES:
        return _Plan(classifier=True, objective="multi:softprob", num_class=info.num_class)
    if objective == "reg:logistic":
        return _Plan(classifier=True, objective="binary:logistic", num_class=1, keep_column=1)
    if objective in xgb_family.REGRESSION_OBJECTIVES:
        return _Plan(classifier=False, objective=objective, num_class=0)
    raise UnsupportedModelError(f"XGBoost objective {objective!r} cannot be converted to ONNX")


def _conversion_booster(native: Any) -> Any:
    """A copy of the booster holding the trees the native prediction uses, with feature names cleared."""
    booster = xgb_family.booster_of(native)
    copy = booster[: xgb_family.prediction_rounds(native)]
    copy.feature_names = None  # onnxmltools only understands f0, f1...; feature types are kept
    return copy


def _convert(booster: Any, plan: _Plan, n_features: int) -> onnx.ModelProto:
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    return onnxmltools.convert_xgboost(
        _declared_booster(booster, plan),
        initial_types=[("input", FloatTensorType([None, n_features]))],
        target_opset=TARGET_OPSET,
    )


def _declared_booster(booster: Any, plan: _Plan) -> Any:
    """onnxmltools' Booster adapter, told the objective and classes instead of guessing them."""
    from onnxmltools.convert.xgboost._parse import WrappedBooster

    class DeclaredBooster(WrappedBooster):
        def __init__(self) -> None:  # WrappedBooster.__init__ would guess; declare instead
            self.booster_ = booster
            self.kwargs = {
                "objective": plan.objective,
                "num_class": plan.num_class,
                "n_estimators": booster.num_boosted_rounds(),
            }
            if plan.classifier:
                self.operator_name = "XGBClassifier"
                self.classes_ = np.arange(max(plan.num_class, 2))
            else:
                self.operator_name = "XGBRegressor"

    return DeclaredBooster()


def _base_score(booster: Any) -> float:
    raw = json.loads(booster.save_config())["learner"]["learner_model_param"]["base_score"]
    values = json.loads(raw) if raw.strip().startswith("[") else [float(raw)]
    return float(values[0])


def _parallel_trees(booster: Any) -> int:
    gbtree = json.loads(booster.save_config())["learner"]["gradient_booster"]
    return int(gbtree.get("gbtree_model_param", {}).get("num_parallel_tree", 1))


def _set_tree_classes(proto: onnx.ModelProto, num_class: int, parallel_trees: int) -> None:
    """Give each tree its class as XGBoost lays them out: per round, per class, ``parallel_trees`` trees.

    onnxmltools assumes tree i scores class i % num_class, wrong for random forests (num_parallel_tree > 1).
    """
    if parallel_trees == 1:
        return
    for node in proto.graph.node:
        if node.op_type != "TreeEnsembleClassifier":
            continue
        attrs = {a.name: a for a in node.attribute}
        class_ids = [(tree // parallel_trees) % num_class for tree in attrs["class_treeids"].ints]
        del attrs["class_ids"].ints[:]
        attrs["class_ids"].ints.extend(class_ids)


def _set_binary_base_margin(proto: onnx.ModelProto, base_score: float) -> None:
    """XGBoost starts every logistic margin at logit(base_score); make the tree ensemble do the same."""
    p = float(np.float32(base_score))
    margin = math.log(p / (1.0 - p))
    for node in proto.graph.node:
        if node.op_type == "TreeEnsembleClassifier":
            kept = [a for a in node.attribute if a.name not in ("base_values", "base_values_as_tensor")]
            del node.attribute[:]
            node.attribute.extend(kept)
            node.attribute.append(helper.make_attribute("base_values", [margin]))


def _notes(model: LoadedModel, booster: Any) -> tuple[str, ...]:
    notes = [n for n in model.notes if "categor" in n]
    rounds = xgb_family.prediction_rounds(model.native)
    if rounds < booster.num_boosted_rounds():
        notes.append(f"converted the first {rounds} boosting rounds (best_iteration), as predict uses")
    return tuple(notes)
