"""XGBoost -> ONNX through onnxmltools, with the rough edges handled here."""

from __future__ import annotations

from optimizer_core.convert import RawConversion
from optimizer_core.convert.contract import find_scores_tensor
from optimizer_core.errors import UnsupportedModelError
from optimizer_core.models.base import LoadedModel
from optimizer_core.models.xgboost import booster_info, booster_of, prediction_rounds

# onnxmltools' XGBoost converter emits ai.onnx opset 15 graphs at most.
TARGET_OPSET = 15


def supports_double(model: LoadedModel) -> tuple[bool, str]:
    return False, ("onnxmltools' XGBoost converter only emits float32 graphs; XGBoost itself compares "
                   "features in float32, so fp32 is already exact")


def to_onnx(model: LoadedModel, *, double: bool) -> RawConversion:
    if double:
        raise UnsupportedModelError(supports_double(model)[1])
    from onnxmltools.convert import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    booster = booster_of(model.native)
    info = booster_info(booster)
    if info.booster_type != "gbtree" and info.booster_type != "dart":
        raise UnsupportedModelError(
            f"{model.estimator} uses booster {info.booster_type!r}: only tree boosters (gbtree, dart) convert to ONNX"
        )
    if info.categorical:
        raise UnsupportedModelError(
            f"{model.estimator} has categorical features (enable_categorical=True), which onnxmltools cannot "
            "convert: one-hot or ordinal-encode them before training"
        )
    rounds = prediction_rounds(model.native)
    notes = []
    # Wrappers trained with early stopping predict with the best iteration only: convert the same trees.
    if rounds < booster.num_boosted_rounds():
        booster = booster[:rounds]
        notes.append(f"converted the first {rounds} boosting rounds (best_iteration), as predict uses")
    else:
        booster = booster.copy()
    # onnxmltools reads feature indices from names of the form f0, f1, ...: drop user names on the copy.
    booster.feature_names = None
    booster.feature_types = None
    proto = convert_xgboost(
        booster,
        initial_types=[("input", FloatTensorType([None, model.n_features]))],
        target_opset=TARGET_OPSET,
    )
    scores = find_scores_tensor(proto.graph, regression=model.task == "regression")
    return RawConversion(model=proto, scores_tensor=scores, notes=tuple(notes))
