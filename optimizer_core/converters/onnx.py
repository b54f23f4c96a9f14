"""An ONNX input is already ONNX: hand the user's graph to the contract normalizer.

The graph is used as given. Only its I/O types may change: when the requested precision differs from
the graph's, a Cast is added at the input and/or on the scores so that the contract's float32 (or
float64) I/O holds while the user's computation stays untouched.
"""

from __future__ import annotations

import onnx
from onnx import GraphProto, TensorProto, helper

from optimizer_core.converters import RawConversion
from optimizer_core.converters.contract import (
    arrange_scores,
    ensure_ai_onnx_opset,
    find_scores_tensor,
    unique_name,
)
from optimizer_core.errors import ConversionError
from optimizer_core.models.base import LoadedModel
from optimizer_core.models.onnx import input_spec, type_name

__all__ = ["to_onnx", "supports_double"]


def supports_double(model: LoadedModel) -> tuple[bool, str]:
    """fp64 applies only to a graph that already computes in float64 (its input is double)."""
    if _graph_input_type(model) == TensorProto.DOUBLE:
        return True, "the ONNX model takes float64 input: the fp64 variant is the graph as given"
    return False, "an ONNX input is used as given; fp64 needs the original model"


def to_onnx(model: LoadedModel, *, double: bool) -> RawConversion:
    """A copy of the user's graph and the name of its scores tensor (normalized by ``convert``)."""
    proto = onnx.ModelProto()
    proto.CopyFrom(_native_proto(model))
    graph = proto.graph
    scores = find_scores_tensor(graph, regression=model.task == "regression")
    want = TensorProto.DOUBLE if double else TensorProto.FLOAT
    notes: list[str] = list(_outputs_notes(model, graph, scores))
    scores = arrange_scores(proto, scores, model.score_columns)
    in_type = _graph_input_type(model)
    if in_type != want:
        ensure_ai_onnx_opset(proto)
        _cast_input(graph, model, want)
        notes.append(f"the graph computes in {type_name(in_type)}: a Cast from {type_name(want)} input was added")
    score_type = _scores_type(graph, scores)
    if score_type is not None and score_type != want:
        ensure_ai_onnx_opset(proto)
        scores = _cast_tensor(graph, scores, want)
        notes.append(f"the {type_name(score_type)} scores are cast to {type_name(want)}")
    return RawConversion(model=proto, scores_tensor=scores, notes=tuple(notes))


def _outputs_notes(model: LoadedModel, graph: GraphProto, scores: str) -> list[str]:
    """What became of the file's outputs besides the scores (a label output, a ZipMap)."""
    if model.task == "regression":
        return []
    kind = "decision scores" if model.decision_scores else "probabilities"
    notes = []
    zipmaps = [n.output[0] for n in graph.node if n.op_type == "ZipMap" and n.input and n.input[0] == scores]
    if zipmaps:
        notes.append(f"the ZipMap output {zipmaps[0]!r} is replaced by its input tensor of {kind}, one column per "
                     "class")
    dropped = [o.name for o in graph.output if o.name != scores and o.name not in zipmaps]
    if dropped:
        checked = " (its agreement with the argmax of the scores was checked)" if model.label_predictor else ""
        notes.append(f"output{'s' if len(dropped) > 1 else ''} {', '.join(repr(d) for d in dropped)} dropped: the "
                     f"contract keeps one scores output{checked}")
    if model.score_columns != "as-is":
        notes.append(f"the scores' columns were rearranged ({model.score_columns}) so that their argmax is the "
                     "file's label")
    return notes


def _native_proto(model: LoadedModel) -> onnx.ModelProto:
    if not isinstance(model.native, onnx.ModelProto):
        raise ConversionError(f"{model.estimator} was not loaded as an ONNX model: load it with load_model()")
    return model.native


def _graph_input_type(model: LoadedModel) -> int:
    return input_spec(_native_proto(model).graph, model.estimator).elem_type


def _cast_input(graph: GraphProto, model: LoadedModel, want: int) -> None:
    """Feed the graph's input from a new ``want``-typed input through a Cast (consumers stay untouched,
    subgraphs that read the input by name included)."""
    spec = input_spec(graph, model.estimator)
    declared = next(i for i in graph.input if i.name == spec.name)
    new_name = _unique(graph, spec.name + "_cast_input")
    declared.name = new_name
    declared.type.tensor_type.elem_type = want
    graph.node.insert(0, helper.make_node("Cast", [new_name], [spec.name], to=spec.elem_type,
                                          name=_unique(graph, "contract_cast_input")))


def _cast_tensor(graph: GraphProto, tensor: str, want: int) -> str:
    out = _unique(graph, tensor + "_cast")
    graph.node.append(helper.make_node("Cast", [tensor], [out], to=want, name=_unique(graph, "contract_cast_scores")))
    return out


def _scores_type(graph: GraphProto, scores: str) -> int | None:
    """Element type of the scores tensor: declared on a graph output, or float for a ZipMap's input."""
    for vi in list(graph.output) + list(graph.value_info):
        if vi.name == scores and vi.type.HasField("tensor_type"):
            return vi.type.tensor_type.elem_type
    if any(n.op_type == "ZipMap" and n.input and n.input[0] == scores for n in graph.node):
        return TensorProto.FLOAT  # ZipMap only accepts tensor(float)
    return None


def _unique(graph: GraphProto, base: str) -> str:
    """A name used by no tensor (subgraphs included) and no node of ``graph``."""
    return unique_name(graph, base, {n.name for n in graph.node})
