"""What an ONNX classifier's outputs mean: probabilities or decision scores, and which class each column is.

A classifier exported by skl2onnx has a label output and a scores output, and the scores are not always
probabilities: an SVC without ``probability=True``, a LinearSVC, an SGDClassifier with hinge loss or a
RidgeClassifier export their decision values under the name ``probabilities`` (graph nodes with
``post_transform`` NONE). Worse, a binary SVC writes them as ``[d, -d]`` with ``d > 0`` meaning the second
class, so the argmax names the opposite class to the file's own label on every row; a binary LinearSVC
writes a single column. This module tells the kinds apart and finds, from the file's label output on
seeded test rows, how the columns map to the classes (``models.labels``); what cannot be established is
refused with one line.

It also refuses graphs that read an input column beyond the width they declare (ONNX Runtime either fails
with a C++ message at run time or, for linear operators, computes with misaligned coefficients).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import GraphProto, TensorProto

from optimizer_core.errors import UnsupportedModelError, describe_ort_error
from optimizer_core.models.labels import Columns, are_probabilities, binary_columns, label_indices, probe_rows

__all__ = ["ScoreReading", "SCORES_METADATA_KEY", "label_output", "read_scores", "label_cause",
           "check_feature_indices", "outputs_note"]

SCORES_METADATA_KEY = "inference_optimizer.scores"  # "probabilities" | "decision": what the converter wrote


@dataclass(frozen=True)
class InputSpec:
    """An ONNX graph's one input: its name, element type and width (``models.onnx.input_spec`` reads it; defined
    here, where the outputs are checked against it, so that neither module imports the other both ways)."""

    name: str
    elem_type: int
    n_features: int

_LABEL_TYPES = frozenset({TensorProto.INT64, TensorProto.INT32, TensorProto.STRING})
# Ops that only move or retype values: a margin passed through them is still a margin.
_PASS_THROUGH = frozenset({
    "ArrayFeatureExtractor", "Cast", "Concat", "Flatten", "Identity", "Reshape", "Squeeze", "Unsqueeze", "ZipMap",
})
_MARGIN_OPS = frozenset({"SVMClassifier", "LinearClassifier"})  # raw margins when post_transform is NONE
_TREE_OPS = frozenset({"TreeEnsembleClassifier", "TreeEnsembleRegressor", "TreeEnsemble"})


@dataclass(frozen=True)
class ScoreReading:
    decision: bool
    columns: Columns = "as-is"


def label_output(graph: GraphProto) -> str | None:
    """The name of the graph's label output (an int or string tensor), if it has one."""
    for output in graph.output:
        tensor = output.type.tensor_type if output.type.HasField("tensor_type") else None
        if tensor is not None and tensor.elem_type in _LABEL_TYPES:
            return output.name
    return None


def read_scores(
    graph: GraphProto,
    output: str,
    zipmap: bool,
    classes: Sequence[Any],
    raw: Callable[[np.ndarray], np.ndarray],
    labels: Callable[[np.ndarray], np.ndarray] | None,
    n_features: int,
    name: str,
    stated: str | None = None,
) -> ScoreReading:
    """Whether the classifier's scores output ``output`` holds decision values, and how its columns become
    one per class in ``classes`` order (binary decision scores only; anything else is read as it is)."""
    tensor = _zipmap_input(graph, output) if zipmap else output
    source = _margin_source(graph, tensor)
    if source is not None and _is_one_vs_one(source, len(classes)):
        raise UnsupportedModelError(
            f"{name}: its scores output {output!r} holds one decision value per pair of classes (an SVC with "
            f"decision_function_shape='ovo', node {source.name!r}), not one per class: set "
            "decision_function_shape='ovr' on the scikit-learn model (no refit needed) and export it again"
        )
    X = probe_rows(n_features)
    try:
        scores = np.asarray(raw(X), dtype=np.float64).reshape(len(X), -1)
    except Exception as e:  # noqa: BLE001 - judged by the structure alone; the run reports the failure
        scores, failure = None, describe_ort_error(e)
    else:
        failure = ""
    if stated in ("probabilities", "decision"):
        decision = stated == "decision"
    else:
        decision = (source is not None or (scores is not None and (scores.shape[1] == 1 or not are_probabilities(scores))))
    if not decision or len(classes) != 2:
        return ScoreReading(decision)
    width = scores.shape[1] if scores is not None else None
    if labels is None:
        if width == 2 or (width is None and stated == "decision"):
            return ScoreReading(True)  # no label to agree with (this tool's own files): one column per class
        raise UnsupportedModelError(
            f"{name}: its scores output {output!r} holds one decision value per row and the file has no label "
            "output to tell which class a value favours: export the model with its label output"
        )
    if scores is None:
        raise UnsupportedModelError(
            f"{name}: its binary decision scores cannot be mapped to its classes, because it fails on test rows "
            f"({failure}): check that it runs in ONNX Runtime"
        )
    columns = binary_columns(label_indices(labels(X), classes), scores)
    if columns is None:
        raise UnsupportedModelError(
            f"{name}: its decision scores {output!r} cannot be mapped to its label output: on seeded test rows "
            "no order of the score columns makes their argmax the file's label on every row; export scores "
            "whose argmax is the label (or the model itself, e.g. as a skops file)"
        )
    return ScoreReading(True, columns)


def stated_scores(proto: onnx.ModelProto) -> str | None:
    for prop in proto.metadata_props:
        if prop.key == SCORES_METADATA_KEY and prop.value in ("probabilities", "decision"):
            return prop.value
    return None


def label_cause(graph: GraphProto) -> str:
    """Why this graph's label can differ from the argmax of its scores, when its operators say so."""
    for node in graph.node:
        if node.op_type != "SVMClassifier":
            continue
        if _platt_scaled(node):
            return (": an SVC's label comes from its one-vs-one votes and its probabilities from Platt scaling, "
                    "which disagree near the class boundaries, so flips and accuracy by the argmax would describe "
                    "another decision than the file's; drop the label output to have the probabilities judged alone")
        if len(_class_labels(node)) > 2:
            return (": an SVC's label breaks ties between one-vs-one votes by class order while its per-class "
                    "scores break them by confidence; measure the scikit-learn model with break_ties=True, whose "
                    "predict is the argmax of its scores")
    return ""


def outputs_note(label: str | None, output: str, zipmap: bool, decision: bool, columns: Columns,
                 classes: Sequence[Any]) -> str | None:
    """What became of the file's outputs, for the notes (None when it has only the scores)."""
    kind = "decision scores" if decision else "probabilities"
    parts = [f"scores ({kind}) are read from {output!r}" + (" (a ZipMap, as one column per class)" if zipmap else "")]
    if columns == "swapped":
        parts.append("its two columns run opposite to the file's labels (as skl2onnx writes a binary SVC), so "
                     "they are read swapped")
    elif columns in ("one-column", "one-column-negated"):
        sign = "positive" if columns == "one-column" else "negative"
        favoured = classes[1] if len(classes) == 2 else "the second class"
        parts.append(f"its single column s becomes two, {'[-s, s]' if columns == 'one-column' else '[s, -s]'} "
                     f"({sign} s is class {_plain(favoured)!r}, as the file's label says)")
    if label is not None:
        parts.append(f"the label output {label!r} is checked against their argmax on every row and left out of "
                     "the ONNX variants")
    if label is None and not zipmap and columns == "as-is":
        return None
    return "the file's outputs: " + "; ".join(parts)


def check_feature_indices(graph: GraphProto, spec: InputSpec, name: str) -> None:
    """Refuse an ONNX-ML operator on the input that reads a column beyond the input's declared width."""
    width = spec.n_features
    readers = {spec.name}
    for node in graph.node:
        if node.op_type in ("Cast", "Identity") and node.input and node.input[0] in readers:
            readers.update(node.output)
    for node in graph.node:
        if node.domain != "ai.onnx.ml" or not node.input or node.input[0] not in readers:
            continue
        attrs = {a.name: a for a in node.attribute}
        where = f"{name}: node {node.name or node.op_type!r} ({node.op_type})"
        if node.op_type in _TREE_OPS:
            ids = list(attrs["nodes_featureids"].ints) if "nodes_featureids" in attrs else []
            if ids and max(ids) >= width:
                raise UnsupportedModelError(
                    f"{where} reads feature index {max(ids)}, beyond the {width} features its input {spec.name!r} "
                    f"declares (indices 0 to {width - 1}): export it with the input width the model was trained "
                    f"on, e.g. FloatTensorType([None, {max(ids) + 1}])"
                )
        elif node.op_type in ("LinearClassifier", "LinearRegressor"):
            _check_weights(attrs, "coefficients", _linear_rows(node, attrs), width, where, spec.name)
        elif node.op_type in ("SVMClassifier", "SVMRegressor") and "support_vectors" in attrs:
            _check_weights(attrs, "support_vectors", _support_vector_count(attrs), width, where, spec.name)


def _check_weights(attrs: dict[str, Any], key: str, rows: Sequence[int], width: int, where: str,
                   input_name: str) -> None:
    count = len(attrs[key].floats) if key in attrs else 0
    if not count or any(count == r * width for r in rows if r):
        return
    fits = sorted({count // r for r in rows if r and count % r == 0})
    trained = f" (it was trained on {fits[0]} features)" if len(fits) == 1 else ""
    raise UnsupportedModelError(
        f"{where} holds {count} {key.replace('_', ' ')}, which do not fit the {width} features its input "
        f"{input_name!r} declares{trained}: export it with the input width the model was trained on"
    )


def _linear_rows(node: onnx.NodeProto, attrs: dict[str, Any]) -> list[int]:
    """Possible numbers of weight rows: one per class (or one for a binary model), or ``targets``."""
    if node.op_type == "LinearRegressor":
        return [attrs["targets"].i if "targets" in attrs else 1]
    n_classes = len(_class_labels(node))
    return [n_classes, 1] if n_classes == 2 else [n_classes]


def _support_vector_count(attrs: dict[str, Any]) -> list[int]:
    if "vectors_per_class" in attrs:
        return [sum(attrs["vectors_per_class"].ints)]
    if "n_supports" in attrs:
        return [attrs["n_supports"].i]
    return []


def _zipmap_input(graph: GraphProto, output: str) -> str:
    for node in graph.node:
        if node.op_type == "ZipMap" and output in node.output:
            return node.input[0]
    return output


def _margin_source(graph: GraphProto, tensor: str) -> onnx.NodeProto | None:
    """The SVMClassifier or LinearClassifier with post_transform NONE whose output reaches ``tensor``
    through pass-through ops only: then ``tensor`` holds its raw margins."""
    producers = {out: node for node in graph.node for out in node.output}
    stack, seen = [tensor], set()
    while stack:
        node = producers.get(stack.pop())
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if node.op_type in _PASS_THROUGH:
            stack.extend(node.input[:1] if node.op_type == "ArrayFeatureExtractor" else node.input)
        elif (node.domain == "ai.onnx.ml" and node.op_type in _MARGIN_OPS and _post_transform(node) == "NONE"
              and not _platt_scaled(node)):
            return node
    return None


def _post_transform(node: onnx.NodeProto) -> str:
    for attr in node.attribute:
        if attr.name == "post_transform":
            return attr.s.decode("utf-8", errors="replace")
    return "NONE"


def _platt_scaled(node: onnx.NodeProto) -> bool:
    return any(a.name == "prob_a" and len(a.floats) for a in node.attribute)


def _is_one_vs_one(node: onnx.NodeProto, n_classes: int) -> bool:
    """An SVMClassifier in SVC mode without probabilities outputs one value per pair of classes."""
    attrs = {a.name for a in node.attribute}
    return node.op_type == "SVMClassifier" and "vectors_per_class" in attrs and n_classes > 2


def _class_labels(node: onnx.NodeProto) -> list[Any]:
    for attr in node.attribute:
        if attr.name in ("classlabels_ints", "classlabels_int64s") and len(attr.ints):
            return list(attr.ints)
        if attr.name == "classlabels_strings" and len(attr.strings):
            return list(attr.strings)
    return []


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value

