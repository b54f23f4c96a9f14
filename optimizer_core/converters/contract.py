"""Bring any converter's output (or a user's ONNX file) to the ONNX output contract (design.md).

One float input ``input [N, n_features]`` and one scores output ``scores``: probabilities
``[N, n_classes]`` for classifiers, predictions ``[N, 1]`` for regressors; no ZipMap, no label output,
declared shapes that match what ONNX Runtime returns, and an ``ai.onnx`` opset import (quantization
tools need it). Every converter rough edge about outputs is fixed here, in one place.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from optimizer_core.errors import ConversionError, shorten

INPUT_NAME = "input"
SCORES_NAME = "scores"
BATCH_DIM = "N"
DEFAULT_AI_ONNX_OPSET = 15
# IR version 4 is the first that lets initializers stay out of the graph inputs (IR 3 demands them there).
MIN_IR_VERSION = 4


def find_scores_tensor(graph: onnx.GraphProto, *, regression: bool) -> str:
    """Name of the tensor that holds probabilities (classifiers) or predictions (regressors).

    ZipMap outputs are traced back to ZipMap's input; otherwise the last float tensor output wins.
    """
    producers = {out: node for node in graph.node for out in node.output}
    float_types = (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16)
    candidates: list[str] = []
    for output in graph.output:
        node = producers.get(output.name)
        if node is not None and node.op_type == "ZipMap":
            return node.input[0]
        type_proto = output.type
        if type_proto.HasField("tensor_type") and type_proto.tensor_type.elem_type in float_types:
            candidates.append(output.name)
    if not candidates:
        raise ConversionError(
            "the ONNX model has no float tensor output to read scores from "
            f"(outputs: {', '.join(o.name for o in graph.output)})"
        )
    if regression:
        return candidates[0]
    return candidates[-1]


def normalize(
    model: onnx.ModelProto,
    *,
    scores_tensor: str,
    n_features: int,
    n_outputs: int,
    elem_type: int = TensorProto.FLOAT,
) -> onnx.ModelProto:
    """Return a copy of ``model`` that honours the output contract.

    ``scores_tensor`` names the tensor inside the graph that carries the scores (see
    ``find_scores_tensor``); ``n_outputs`` is the number of classes, or 1 for regression.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    initializer_names = {init.name for init in graph.initializer}
    real_inputs = [i for i in graph.input if i.name not in initializer_names]
    if len(real_inputs) != 1:
        raise ConversionError(
            f"the ONNX model has {len(real_inputs)} inputs ({', '.join(i.name for i in real_inputs)}); "
            "this tool needs exactly one float tensor input [N, n_features]: merge the inputs first"
        )
    old_input = real_inputs[0].name

    scores_rank = _declared_rank(graph, scores_tensor)
    final_scores = scores_tensor
    if scores_rank == 1 or (n_outputs == 1 and scores_rank != 2):
        final_scores = unique_name(graph, scores_tensor + "_2d")
        shape_name = unique_name(graph, scores_tensor + "_2d_shape")
        graph.initializer.append(helper.make_tensor(shape_name, TensorProto.INT64, [2], [-1, 1]))
        graph.node.append(helper.make_node("Reshape", [scores_tensor, shape_name], [final_scores],
                                           name="contract_reshape_scores"))

    # The contract names may already be taken by other tensors (a user's Cast output named "input", an
    # internal "scores"): move those out of the way first, or the renames below break SSA form.
    if old_input != INPUT_NAME:
        moved = _free_name(graph, INPUT_NAME)
        if final_scores == INPUT_NAME and moved is not None:  # an internal scores tensor called "input"
            final_scores = moved
    _rename_tensor(graph, old_input, INPUT_NAME)
    if final_scores != SCORES_NAME:
        _free_name(graph, SCORES_NAME)
    _rename_tensor(graph, final_scores, SCORES_NAME)

    del graph.input[:]  # initializers listed as inputs (old exporters) leave too: they are not data inputs
    graph.input.append(helper.make_tensor_value_info(INPUT_NAME, elem_type, [BATCH_DIM, n_features]))
    out.ir_version = max(out.ir_version, MIN_IR_VERSION)
    score_type = _elem_type_of(graph, SCORES_NAME, default=elem_type)
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(SCORES_NAME, score_type, [BATCH_DIM, n_outputs]))
    # Stale value_info can contradict the new shapes (ORT then warns at run time): drop it.
    del graph.value_info[:]
    _prune_unused(graph)
    ensure_ai_onnx_opset(out)
    try:
        onnx.checker.check_model(out)
    except onnx.checker.ValidationError as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConversionError(
            f"the ONNX graph built for this model fails the ONNX checker ({shorten(first, 200)}): if the model was an "
            "ONNX file, re-export it with a current converter; otherwise report it"
        ) from e
    return out


def take_column(proto: onnx.ModelProto, tensor: str, column: int) -> str:
    """Append ``tensor[:, column:column+1]`` to the graph and return its name ([N, 1]): a converter that
    emits two probability columns for what is a single-output model keeps one."""
    graph = proto.graph
    index = unique_name(graph, f"{tensor}_column_index")
    out = unique_name(graph, f"{tensor}_column{column}")
    graph.initializer.append(helper.make_tensor(index, TensorProto.INT64, [1], [column]))
    graph.node.append(helper.make_node("Gather", [tensor, index], [out], axis=1, name=f"take_column{column}"))
    graph.value_info.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, [None, 1]))
    return out


def arrange_scores(proto: onnx.ModelProto, tensor: str, columns: str) -> str:
    """Append nodes that bring a classifier's raw scores ``tensor`` to one column per class, as
    ``models.labels.arrange`` does in numpy ("swapped": two columns reversed; "one-column": s -> [-s, s];
    "one-column-negated": s -> [s, -s]); returns the new tensor's name ("as-is": ``tensor`` itself)."""
    if columns == "as-is":
        return tensor
    graph = proto.graph
    ensure_ai_onnx_opset(proto)
    out = unique_name(graph, f"{tensor}_by_class")
    if columns == "swapped":
        order = unique_name(graph, f"{tensor}_swap_order")
        graph.initializer.append(helper.make_tensor(order, TensorProto.INT64, [2], [1, 0]))
        graph.node.append(helper.make_node("Gather", [tensor, order], [out], axis=1, name=unique_name(graph, "swap_columns")))
        return out
    if columns not in ("one-column", "one-column-negated"):
        raise ConversionError(f"unknown score arrangement {columns!r}")
    shape = unique_name(graph, f"{tensor}_column_shape")
    column = unique_name(graph, f"{tensor}_column")
    negated = unique_name(graph, f"{tensor}_negated")
    graph.initializer.append(helper.make_tensor(shape, TensorProto.INT64, [2], [-1, 1]))
    graph.node.append(helper.make_node("Reshape", [tensor, shape], [column], name=unique_name(graph, "score_column")))
    graph.node.append(helper.make_node("Neg", [column], [negated], name=unique_name(graph, "negate_score")))
    pair = [negated, column] if columns == "one-column" else [column, negated]
    graph.node.append(helper.make_node("Concat", pair, [out], axis=1, name=unique_name(graph, "score_columns")))
    return out


def ensure_ai_onnx_opset(model: onnx.ModelProto, version: int = DEFAULT_AI_ONNX_OPSET) -> bool:
    """Add the default-domain opset import when missing, and keep one import per domain (skl2onnx
    can list the default domain twice, which ORT's quantizer rejects). Returns True if one was added."""
    highest: dict[str, int] = {}
    for op in model.opset_import:
        domain = "" if op.domain == "ai.onnx" else op.domain
        highest[domain] = max(highest.get(domain, 0), op.version)
    added = "" not in highest
    if added:
        highest[""] = version
    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(d, v) for d, v in highest.items())
    return added


def _declared_rank(graph: onnx.GraphProto, name: str) -> int | None:
    for vi in list(graph.output) + list(graph.value_info):
        if vi.name == name and vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
            return len(vi.type.tensor_type.shape.dim)
    return None


def _elem_type_of(graph: onnx.GraphProto, name: str, *, default: int) -> int:
    for vi in list(graph.output) + list(graph.value_info):
        if vi.name == name and vi.type.HasField("tensor_type"):
            return vi.type.tensor_type.elem_type
    return default


def _rename_tensor(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Rename tensor ``old`` to ``new`` everywhere: nodes, I/O, value_info, initializers and subgraphs."""
    if old == new:
        return
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
        for sub in _subgraphs(node):  # If/Loop/Scan bodies read outer tensors by name
            _rename_tensor(sub, old, new)
    for vi in list(graph.output) + list(graph.value_info) + list(graph.input):
        if vi.name == old:
            vi.name = new
    for init in graph.initializer:
        if init.name == old:
            init.name = new
    for sparse in graph.sparse_initializer:
        if sparse.values.name == old:
            sparse.values.name = new


def _free_name(graph: onnx.GraphProto, name: str) -> str | None:
    """Rename the tensor called ``name`` (if any) to a fresh name, so that ``name`` can be given to
    another tensor; returns the fresh name, or None when ``name`` was unused."""
    if name not in _tensor_names(graph):
        return None
    fresh = unique_name(graph, name + "_orig")
    _rename_tensor(graph, name, fresh)
    return fresh


def unique_name(graph: onnx.GraphProto, base: str, taken: set[str] | None = None) -> str:
    """``base``, or ``base_1``, ``base_2``... : the first that names no tensor in ``graph`` or its subgraphs
    (nor in ``taken``, when given)."""
    taken = _tensor_names(graph) | (taken or set())
    name, k = base, 1
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    return name


def _tensor_names(graph: onnx.GraphProto) -> set[str]:
    """Every tensor name used in ``graph`` and its subgraphs."""
    names = {vi.name for vi in list(graph.input) + list(graph.output) + list(graph.value_info)}
    names |= {t.name for t in graph.initializer} | {s.values.name for s in graph.sparse_initializer}
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
        for sub in _subgraphs(node):
            names |= _tensor_names(sub)
    names.discard("")
    return names


def _subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    graphs = [g for attr in node.attribute for g in attr.graphs]
    graphs += [attr.g for attr in node.attribute if attr.HasField("g")]
    return graphs


def _prune_unused(graph: onnx.GraphProto) -> None:
    """Drop nodes and initializers that do not feed the outputs (e.g. ZipMap, label casts)."""
    needed = {o.name for o in graph.output}
    kept = []
    for node in reversed(graph.node):
        if any(out in needed for out in node.output):
            kept.append(node)
            needed.update(i for i in node.input if i)
            for attr in node.attribute:  # subgraphs (If/Loop) reference outer names
                for sub in list(attr.g.node if attr.HasField("g") else []) + [
                    n for g in attr.graphs for n in g.node
                ]:
                    needed.update(i for i in sub.input if i)
    kept.reverse()
    del graph.node[:]
    graph.node.extend(kept)
    inits = [init for init in graph.initializer if init.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(inits)
