"""LightGBM -> ONNX through onnxmltools, with the rough edges handled here."""

from __future__ import annotations

from optimizer_core.convert import RawConversion
from optimizer_core.convert.contract import find_scores_tensor
from optimizer_core.errors import UnsupportedModelError
from optimizer_core.models.base import LoadedModel
from optimizer_core.models.lightgbm import booster_of, header_of

TARGET_OPSET = 15


def supports_double(model: LoadedModel) -> tuple[bool, str]:
    return False, "onnxmltools' LightGBM converter only emits float32 graphs"


def to_onnx(model: LoadedModel, *, double: bool) -> RawConversion:
    if double:
        raise UnsupportedModelError(supports_double(model)[1])
    from onnxmltools.convert import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    booster = booster_of(model.native)
    text = booster.model_to_string(num_iteration=1)
    if "is_linear=1" in text or "\nlinear_tree=1" in booster.model_to_string()[:4096]:
        raise UnsupportedModelError(
            f"{model.estimator} uses linear trees (linear_tree=True), which onnxmltools cannot convert: "
            "retrain without linear_tree"
        )
    header = header_of(model.native)
    proto = convert_lightgbm(
        booster,
        initial_types=[("input", FloatTensorType([None, model.n_features]))],
        target_opset=TARGET_OPSET,
        zipmap=False,
    )
    notes = []
    if header.categorical_features:
        notes.append(f"{len(header.categorical_features)} categorical feature(s) converted as equality splits")
    scores = find_scores_tensor(proto.graph, regression=model.task == "regression")
    return RawConversion(model=proto, scores_tensor=scores, notes=tuple(notes))
