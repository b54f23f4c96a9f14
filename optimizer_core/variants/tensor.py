"""tensor: a tree ensemble rewritten with standard ONNX operators only (``tree_tensor``), which GPUs run.

ONNX Runtime's TreeEnsemble operators have CPU kernels only; this graph computes the same scores with Gather,
comparisons, Where, Add, MatMul, ReduceSum... in float32. fp16 on a tree ensemble builds the same graph with
float16 thresholds and leaves (``fp16`` calls ``build_tensor`` here). The pass is in ``variants.ASKED_BY_NAME``:
on a CPU the graph is slower than the TreeEnsemble kernel, so runs build it only when asked for.
"""

from __future__ import annotations

import onnx

from optimizer_core.models.base import LoadedModel
from optimizer_core.variants import tree_tensor
from optimizer_core.variants.base import (
    PassContext,
    PrecisionVariant,
    _check_runs,
    _not_applicable,
    _size_note,
)

PRECISION = "tensor"


def applicability(fp32_model: onnx.ModelProto, loaded: LoadedModel | None) -> tuple[bool, str]:
    return tree_tensor.applicability(fp32_model)


def build(fp32_model: onnx.ModelProto, context: PassContext) -> PrecisionVariant:
    return build_tensor(PRECISION, fp32_model)


def build_tensor(precision: str, fp32_model: onnx.ModelProto) -> PrecisionVariant:
    """The tensor graph of ``fp32_model``'s trees, in float16 for ``precision`` "fp16" and float32 otherwise, or
    the variant saying why it is not built."""
    dtype = "float16" if precision == "fp16" else "float32"
    try:
        built = tree_tensor.build(fp32_model, dtype)
    except tree_tensor.NotTensorizable as e:
        return _not_applicable(precision, f"no tensor graph: {e}", {"graph": tree_tensor.GRAPH, "dtype": dtype})
    error = _check_runs(built.model)
    if error:
        return _not_applicable(precision, f"the tensor graph does not run in ONNX Runtime ({error})", built.config)
    notes = (*built.notes, _size_note(fp32_model, built.model), tree_tensor.CPU_CAVEAT)
    return PrecisionVariant(precision, True, built.model, notes=notes, nodes_changed=built.nodes_changed,
                            config=built.config)
