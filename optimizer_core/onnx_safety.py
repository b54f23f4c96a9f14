"""Refuse ONNX models that could read server files or load code, before ONNX Runtime sees them.

An uploaded ONNX file is untrusted. Two features of the format reach outside the bytes:

* **external data**: a tensor can name a file (and offset) to read its values from. ONNX Runtime
  resolves such paths against the working directory when a model is loaded from bytes (or, with the
  special ``*/_ORT_MEM_ADDR_/*`` location, against process memory), so a crafted upload could read
  server files back as predictions. Every tensor anywhere in the model must be inline.
* **custom operator domains**: only the standard domains and ONNX Runtime's own contrib ops
  (``com.microsoft``, which quantized models use) are accepted; no user input ever reaches
  ``register_custom_ops_library``, and model-local functions (which define ops) are refused too.
"""

from __future__ import annotations

from collections.abc import Iterator

import onnx
from onnx import AttributeProto, GraphProto, TensorProto

from optimizer_core.errors import ModelLoadError, UnsafeModelError, UnsupportedModelError

__all__ = ["ALLOWED_DOMAINS", "check_onnx_safe"]

# "" and "ai.onnx" are the same default domain; "com.microsoft" holds the contrib ops ONNX Runtime ships.
ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})

_INLINE_ADVICE = (
    "external data is not accepted: save the model with every tensor inline, "
    "e.g. onnx.save_model(model, 'model.onnx', save_as_external_data=False)"
)


def check_onnx_safe(proto: onnx.ModelProto, *, name: str) -> None:
    """Raise if ``proto`` references external data, custom operator domains or fails the checker.

    ``UnsafeModelError`` for external data, custom domains and model-local functions,
    ``UnsupportedModelError`` for training information, ``ModelLoadError`` for checker failures.
    """
    if len(proto.training_info):
        raise UnsupportedModelError(
            f"{name} carries ONNX training information: export an inference-only model instead"
        )
    if len(proto.functions):
        functions = ", ".join(sorted({repr(f"{f.domain}.{f.name}") for f in proto.functions}))
        raise UnsafeModelError(
            f"{name} defines model-local functions ({functions}), which are not accepted: inline them "
            "before saving, e.g. onnx.save_model(onnx.inliner.inline_local_functions(model), 'model.onnx')"
        )
    _check_opset_domains(proto, name)
    for graph in all_graphs(proto.graph):
        _check_graph(graph, name)
    _run_checker(proto, name)


def _check_opset_domains(proto: onnx.ModelProto, name: str) -> None:
    unknown = sorted({op.domain for op in proto.opset_import} - ALLOWED_DOMAINS)
    if unknown:
        raise UnsafeModelError(
            f"{name} imports the operator domain {unknown[0]!r}, which is not accepted: only the standard "
            "ONNX domains (ai.onnx, ai.onnx.ml) and ONNX Runtime's com.microsoft ops are allowed"
        )


def _check_graph(graph: GraphProto, name: str) -> None:
    for tensor in _graph_tensors(graph):
        if _is_external(tensor):
            raise UnsafeModelError(f"{name}: tensor {tensor.name!r} references external data; {_INLINE_ADVICE}")
    for node in graph.node:
        if node.domain not in ALLOWED_DOMAINS:
            raise UnsafeModelError(
                f"{name} uses the custom operator {node.domain + '.' + node.op_type!r}, which is not accepted: "
                "only standard ONNX, ONNX-ML and ONNX Runtime com.microsoft operators are allowed"
            )


def _is_external(tensor: TensorProto) -> bool:
    return tensor.data_location == TensorProto.EXTERNAL or len(tensor.external_data) > 0


def all_graphs(graph: GraphProto) -> Iterator[GraphProto]:
    """``graph`` and every subgraph nested in its nodes' attributes (If, Loop, Scan bodies)."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            for sub in _attribute_graphs(attr):
                yield from all_graphs(sub)


def _attribute_graphs(attr: AttributeProto) -> list[GraphProto]:
    graphs = list(attr.graphs)
    if attr.HasField("g"):
        graphs.append(attr.g)
    return graphs


def _graph_tensors(graph: GraphProto) -> Iterator[TensorProto]:
    """Every tensor stored in ``graph`` itself (not its subgraphs): initializers and attributes."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            sparse_attrs = list(attr.sparse_tensors)
            if attr.HasField("sparse_tensor"):
                sparse_attrs.append(attr.sparse_tensor)
            for sparse in sparse_attrs:
                yield sparse.values
                yield sparse.indices


def _run_checker(proto: onnx.ModelProto, name: str) -> None:
    try:
        onnx.checker.check_model(proto, full_check=False)
    except Exception as e:  # ValidationError, or ValueError for protos over 2 GB
        # The checker's first line is often cut mid-sentence ("... of node: "): keep all of it, on one line.
        reason = " ".join(str(e).split())[:300] or type(e).__name__
        raise ModelLoadError(
            f"{name} is not a valid ONNX model ({reason}): export it again with a current converter"
        ) from e
