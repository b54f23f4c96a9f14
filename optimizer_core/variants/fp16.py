"""fp16: dense float ops converted to float16; inputs and scores stay float32.

Applies when the graph has an op the float16 converter changes (``PASS.ops``); other ai.onnx.ml operators have no
float16 kernels and are kept in float32. On a tree ensemble, fp16 is the tensor pass's graph (``variants.tensor``)
with float16 inputs, thresholds and leaves.
"""

from __future__ import annotations

import heapq
from typing import Any

import onnx
from onnx import TensorProto, numpy_helper

from optimizer_core.models.base import LoadedModel
from optimizer_core.variants import tree_tensor
from optimizer_core.variants.base import (
    PassContext,
    PrecisionVariant,
    _check_runs,
    _first_line,
    _ml_ops,
    _node_id,
    _not_applicable,
    _op_summary,
    _Pass,
    _same_model,
    _size_note,
    op_applicability,
)

PRECISION = "fp16"
PASS = _Pass("float16 conversion", "converts",
             ("MatMul", "Gemm", "Conv", "ConvTranspose", "Einsum", "LSTM", "GRU", "RNN"))


def applicability(fp32_model: onnx.ModelProto, loaded: LoadedModel | None) -> tuple[bool, str]:
    if tree_tensor.has_tree_ensemble(fp32_model):
        ok, reason = tree_tensor.applicability(fp32_model)
        return (True, f"float16 tensor graph of the trees: {reason}") if ok else (False, reason)
    return op_applicability(PRECISION, PASS, fp32_model)


def build(fp32_model: onnx.ModelProto, context: PassContext) -> PrecisionVariant:
    if tree_tensor.has_tree_ensemble(fp32_model):
        from optimizer_core.variants.tensor import build_tensor

        return build_tensor(PRECISION, fp32_model)
    return _build_fp16(fp32_model)


def _float16_converter() -> tuple[Any, list[str], str]:
    """convert_float_to_float16, its default block list, and where it came from."""
    try:
        from onnxruntime.transformers import float16

        return float16.convert_float_to_float16, list(float16.DEFAULT_OP_BLOCK_LIST), "onnxruntime.transformers"
    except ImportError:
        from onnxconverter_common import float16

        return float16.convert_float_to_float16, list(float16.DEFAULT_OP_BLOCK_LIST), "onnxconverter_common"


def _sort_topologically(graph: onnx.GraphProto) -> None:
    """Put every node after the nodes that produce its inputs, keeping the original order where it already
    is one (Kahn's algorithm, linear in the graph). The float16 converter's keep_io_types appends the Cast
    from the float32 input at the end of the graph: ONNX Runtime runs that, but onnx.checker (and so this
    tool, reading the file back) refuses it. Left as it is when the graph has a cycle or an input nothing
    produces."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    ready |= {t.values.name for t in graph.sparse_initializer}
    nodes = list(graph.node)
    producer = {out: index for index, node in enumerate(nodes) for out in node.output if out}
    waiting_on = [0] * len(nodes)
    consumers: dict[int, list[int]] = {}
    for index, node in enumerate(nodes):
        for name in set(node.input) - ready:
            if name not in producer:
                return
            waiting_on[index] += 1
            consumers.setdefault(producer[name], []).append(index)
    runnable = [index for index, count in enumerate(waiting_on) if count == 0]
    heapq.heapify(runnable)
    order: list[int] = []
    while runnable:
        index = heapq.heappop(runnable)
        order.append(index)
        for consumer in consumers.get(index, ()):
            waiting_on[consumer] -= 1
            if waiting_on[consumer] == 0:
                heapq.heappush(runnable, consumer)
    if len(order) < len(nodes) or order == sorted(order):
        return
    copies = [onnx.NodeProto() for _ in order]
    for copy, index in zip(copies, order, strict=True):
        copy.CopyFrom(nodes[index])
    del graph.node[:]
    graph.node.extend(copies)


def _build_fp16(fp32_model: onnx.ModelProto) -> PrecisionVariant:
    try:
        convert_fn, default_block, source = _float16_converter()
    except ImportError as e:
        return _not_applicable("fp16", f"no float16 converter is installed ({e}): install onnxruntime")
    block = sorted(set(default_block) | set(_ml_ops(fp32_model.graph)))
    config = {"dtype": "float16", "keep_io_types": True, "op_block_list": block, "converter": source}
    source_model = onnx.ModelProto()
    source_model.CopyFrom(fp32_model)
    try:
        model = convert_fn(source_model, keep_io_types=True, op_block_list=block)
    except Exception as e:
        return _not_applicable("fp16", f"float16 conversion failed ({type(e).__name__}: {_first_line(e)})", config)
    round_trips = _drop_cast_round_trips(model)
    _sort_topologically(model.graph)
    _store_raw(model.graph)
    changed = _float16_nodes(model)
    if not changed or _same_model(model, fp32_model):
        return _not_applicable("fp16", "float16 conversion left every node computing in float32, so no fp16 "
                               "variant is built and no size change is claimed", config)
    error = _check_runs(model)
    if error:
        return _not_applicable("fp16", f"the float16 graph does not run in ONNX Runtime ({error})", config)
    notes = [f"{len(changed)} node(s) compute in float16 ({_op_summary(changed)}); input and scores stay "
             "float32 through Cast nodes at the boundaries", _size_note(fp32_model, model)]
    kept = [op for op in _ml_ops(fp32_model.graph)]
    if kept:
        notes.append(f"kept in float32 (no float16 kernels): {', '.join(kept)}")
    if round_trips:
        notes.append(f"removed {round_trips} float32->float16->float32 Cast round trip(s) in front of float32 "
                     "nodes, so their inputs are not rounded to float16 for nothing")
    notes.append("ONNX Runtime's CPU provider lacks float16 kernels for many ops and runs them through "
                 "inserted casts: expect the size to halve but little speed-up on CPU; float16 pays off on GPUs")
    return PrecisionVariant("fp16", True, model, notes=tuple(notes), nodes_changed=changed, config=config)


def _store_raw(graph: onnx.GraphProto) -> None:
    """Store float16 initializers as raw bytes (2 per value) instead of varint int32_data (up to 3)."""
    for i, init in enumerate(graph.initializer):
        if init.data_type == TensorProto.FLOAT16 and not init.raw_data:
            graph.initializer[i].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init), init.name))


def _value_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every tensor whose type ONNX shape inference can tell."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:
        inferred = model
    graph = inferred.graph
    types = {init.name: init.data_type for init in graph.initializer}
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        if vi.type.HasField("tensor_type"):
            types[vi.name] = vi.type.tensor_type.elem_type
    return types


def _cast_to(node: onnx.NodeProto) -> int | None:
    if node.op_type != "Cast":
        return None
    return next((a.i for a in node.attribute if a.name == "to"), None)


def _drop_cast_round_trips(model: onnx.ModelProto) -> int:
    """Rewire Cast(float32 -> float16 -> float32) pairs to the original float32 tensor; drop dead casts.

    The converter casts each graph input to float16 and, in front of a blocked (float32) node, back
    to float32: a lossy identity that rounds the raw features to float16 before e.g. a Scaler.
    """
    graph = model.graph
    types = _value_types(model)
    producers = {out: node for node in graph.node for out in node.output}
    graph_outputs = {o.name for o in graph.output}
    rewired = 0
    for node in graph.node:
        src = producers.get(node.input[0]) if node.input else None
        if (_cast_to(node) != TensorProto.FLOAT or src is None or _cast_to(src) != TensorProto.FLOAT16
                or types.get(src.input[0]) != TensorProto.FLOAT or node.output[0] in graph_outputs):
            continue
        old, new = node.output[0], src.input[0]
        for consumer in graph.node:
            for i, name in enumerate(consumer.input):
                if name == old:
                    consumer.input[i] = new
        rewired += 1
    if rewired:
        _prune_dead_casts(graph)
    return rewired


def _prune_dead_casts(graph: onnx.GraphProto) -> None:
    while True:
        used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
        dead = [n for n in graph.node if n.op_type == "Cast" and not any(out in used for out in n.output)]
        if not dead:
            return
        for node in dead:
            graph.node.remove(node)


def _float16_nodes(model: onnx.ModelProto) -> tuple[str, ...]:
    """Nodes (other than boundary Casts) that now produce float16 tensors."""
    types = _value_types(model)
    return tuple(
        _node_id(n) for n in model.graph.node
        if n.op_type != "Cast" and any(types.get(out) == TensorProto.FLOAT16 for out in n.output)
    )
