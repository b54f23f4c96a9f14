"""Convert a loaded model to ONNX, honouring the output contract.

One module per family (``converters/<family>.py``) exposes ``to_onnx(model, *, double) -> RawConversion``:
the raw converter output plus the name of its scores tensor; this registry normalizes it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import onnx
from onnx import TensorProto

from optimizer_core.categories import CATEGORIES_METADATA_KEY, contract_note, metadata_entry
from optimizer_core.converters.contract import INPUT_NAME, SCORES_NAME, normalize
from optimizer_core.errors import ConversionError, OptimizerError, UnsupportedModelError, shorten
from optimizer_core.models.base import LoadedModel

__all__ = ["convert", "RawConversion", "INPUT_NAME", "SCORES_NAME", "supports_double"]

_CONVERTERS = {
    "xgboost": "optimizer_core.converters.xgboost",
    "lightgbm": "optimizer_core.converters.lightgbm",
    "sklearn": "optimizer_core.converters.sklearn",
    "onnx": "optimizer_core.converters.onnx",
}
_LIBRARIES = {"xgboost": "onnxmltools", "lightgbm": "onnxmltools", "sklearn": "skl2onnx"}


@dataclass(frozen=True)
class RawConversion:
    """What a family converter hands back before normalization."""

    model: onnx.ModelProto
    scores_tensor: str
    notes: tuple[str, ...] = ()


def _module(model: LoadedModel):
    try:
        return importlib.import_module(_CONVERTERS[model.family])
    except KeyError as e:
        raise UnsupportedModelError(f"no ONNX converter for model family {model.family!r}") from e


def supports_double(model: LoadedModel) -> tuple[bool, str]:
    """Whether the family converter can emit a double-precision graph, and why not if it cannot."""
    module = _module(model)
    check = getattr(module, "supports_double", None)
    if check is None:
        return False, f"the {model.family} converter only emits float32 graphs"
    return check(model)


def convert(model: LoadedModel, *, double: bool = False) -> onnx.ModelProto:
    """Convert ``model`` to an ONNX model honouring the output contract (float64 I/O if ``double``)."""
    module = _module(model)
    try:
        raw: RawConversion = module.to_onnx(model, double=double)
    except OptimizerError:
        raise
    except Exception as e:
        raise ConversionError(
            f"converting {model.estimator} ({model.family}) to ONNX failed ({type(e).__name__}: {_reason(e)}): "
            f"{_LIBRARIES.get(model.family, 'the converter')} does not support this model as configured; change "
            "the part named there, or export the model to ONNX yourself and pass the .onnx file"
        ) from e
    proto = normalize(
        raw.model,
        scores_tensor=raw.scores_tensor,
        n_features=model.n_features,
        n_outputs=model.n_outputs,
        elem_type=TensorProto.DOUBLE if double else TensorProto.FLOAT,
    )
    notes = list(raw.notes)
    if contract := contract_note(model.stored_categories, model.feature_names):
        notes.append(contract)
    if notes:
        proto.doc_string = "; ".join(notes)
    _describe(proto, model)
    return proto


def _reason(error: BaseException) -> str:
    """The converter's message on one line, cut after a sentence or at a word (never mid-word)."""
    lines = str(error).strip().splitlines()
    return shorten(lines[0].strip() if lines else type(error).__name__, 200)


def _describe(proto: onnx.ModelProto, model: LoadedModel) -> None:
    """What the graph alone cannot say, for reading the file back (models/onnx.py): the task, the class
    labels of the scores' columns, the feature names the input columns follow, and the categories whose
    codes categorical input columns take."""
    import json

    from optimizer_core.models.onnx import CLASSES_METADATA_KEY, FEATURES_METADATA_KEY, TASK_METADATA_KEY
    from optimizer_core.models.onnx_outputs import SCORES_METADATA_KEY

    entries = {TASK_METADATA_KEY: model.task}
    if model.task != "regression":
        entries[SCORES_METADATA_KEY] = model.scores_kind
    if model.classes is not None:
        entries[CLASSES_METADATA_KEY] = json.dumps([_plain(c) for c in model.classes])
    if model.feature_names:
        entries[FEATURES_METADATA_KEY] = json.dumps(list(model.feature_names))
    if categories := metadata_entry(model.stored_categories, model.feature_names):
        entries[CATEGORIES_METADATA_KEY] = categories  # the graph takes codes: what each code stands for
    kept = [p for p in proto.metadata_props if p.key not in entries]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for key, value in entries.items():
        proto.metadata_props.add(key=key, value=value)


def _plain(label: Any) -> Any:
    """A class label as JSON keeps it: numpy scalars become Python numbers, anything else its text."""
    if hasattr(label, "item"):
        label = label.item()
    return label if isinstance(label, bool | int | float | str) else str(label)
