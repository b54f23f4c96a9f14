"""int8: ONNX Runtime dynamic quantization (int8 weights, activations quantized per call).

Applies when the graph has an op the dynamic quantizer changes (``PASS.ops``; it has no Gemm: int8-static does).
"""

from __future__ import annotations

import onnx

from optimizer_core.models.base import LoadedModel
from optimizer_core.variants.base import (
    PassContext,
    PrecisionVariant,
    _new_nodes,
    _op_summary,
    _Pass,
    _size_note,
    op_applicability,
)
from optimizer_core.variants.quantize import _finish_quantized, _quantize_with_fallback

PRECISION = "int8"
# ONNX Runtime's dynamic quantizer (IntegerOpsRegistry) has no Gemm: int8-static does.
PASS = _Pass("INT8 dynamic quantization", "quantizes", ("MatMul", "Conv", "LSTM"))


def applicability(fp32_model: onnx.ModelProto, loaded: LoadedModel | None) -> tuple[bool, str]:
    return op_applicability(PRECISION, PASS, fp32_model)


def build(fp32_model: onnx.ModelProto, context: PassContext) -> PrecisionVariant:
    return _build_int8(fp32_model)


def _build_int8(fp32_model: onnx.ModelProto) -> PrecisionVariant:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    ops = list(PASS.ops)
    model, per_channel, notes = _quantize_with_fallback(
        quantize_dynamic, fp32_model, weight_type=QuantType.QInt8, reduce_range=False, op_types_to_quantize=ops)
    config = {"method": "dynamic", "weight_type": "int8", "activation_type": "uint8 (per call)",
              "per_channel": per_channel, "reduce_range": False, "op_types_to_quantize": ops,
              "pre_process": False}
    failed = _finish_quantized("int8", fp32_model, model, config, notes)
    if failed is not None:
        return failed
    assert model is not None
    changed = _new_nodes(fp32_model, model)
    scales = "one scale per output channel" if per_channel else "one scale per tensor"
    notes = [
        f"weights stored as int8 ({scales}); activations quantized to uint8 at run time "
        f"(nodes added: {_op_summary(changed)})",
        _size_note(fp32_model, model),
        "activation scales are computed per call over the whole batch, so a row's scores can change "
        "slightly with the rows batched with it",
        *notes,
    ]
    return PrecisionVariant("int8", True, model, notes=tuple(notes), nodes_changed=changed, config=config)
