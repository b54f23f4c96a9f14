"""What the two INT8 passes share: running ONNX Runtime's quantizers on temporary files, per-channel scales
with a per-tensor fallback, and the check that a quantized graph really changed and runs.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import onnx

from optimizer_core.converters.contract import ensure_ai_onnx_opset
from optimizer_core.variants.base import (
    PrecisionVariant,
    _check_runs,
    _first_line,
    _not_applicable,
    _same_model,
)

# nodes that only exist in a quantized graph
_QUANTIZED_OPS = frozenset({
    "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat",
    "QuantizeLinear", "DequantizeLinear", "QLinearMatMul", "QLinearConv", "QGemm", "DynamicQuantizeLSTM",
})


class _PreprocessHintFilter(logging.Filter):
    """ORT's quantizer logs 'consider pre-processing' on the root logger for every model."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing" not in record.getMessage()


@contextmanager
def _quiet_quantizer() -> Iterator[None]:
    root = logging.getLogger()
    hint = _PreprocessHintFilter()
    root.addFilter(hint)
    try:
        yield
    finally:
        root.removeFilter(hint)


def _quantizable_copy(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy with exactly one default-domain opset import (ORT's quantizer requires it)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    versions: dict[str, int] = {}
    for opset in out.opset_import:
        domain = "" if opset.domain == "ai.onnx" else opset.domain
        versions[domain] = max(versions.get(domain, 0), opset.version)
    del out.opset_import[:]
    out.opset_import.extend(onnx.helper.make_opsetid(d, v) for d, v in versions.items())
    ensure_ai_onnx_opset(out)
    return out


def _quantize(fn: Any, fp32_model: onnx.ModelProto, per_channel: bool, **kwargs: Any) -> onnx.ModelProto:
    """Run an ORT quantizer on temporary files (always removed) and return the result in memory."""
    with tempfile.TemporaryDirectory(prefix="io-quant-") as tmp:
        src, dst = Path(tmp, "fp32.onnx"), Path(tmp, "quantized.onnx")
        src.write_bytes(_quantizable_copy(fp32_model).SerializeToString())
        with _quiet_quantizer():
            fn(src, dst, per_channel=per_channel, **kwargs)
        out = onnx.ModelProto()
        out.ParseFromString(dst.read_bytes())
        return out


def _quantize_with_fallback(fn: Any, fp32_model: onnx.ModelProto, **kwargs: Any
                            ) -> tuple[onnx.ModelProto | None, bool, list[str]]:
    """Per-channel weight scales first; per-tensor if that fails. Returns (model, per_channel, notes)."""
    try:
        return _quantize(fn, fp32_model, True, **kwargs), True, []
    except Exception as first:
        notes = [f"per-channel quantization failed ({type(first).__name__}: {_first_line(first)}); "
                 "used one scale per weight tensor instead"]
    try:
        return _quantize(fn, fp32_model, False, **kwargs), False, notes
    except Exception as e:
        return None, False, notes + [f"ONNX Runtime's quantizer failed ({type(e).__name__}: {_first_line(e)})"]


def _finish_quantized(precision: str, fp32_model: onnx.ModelProto, model: onnx.ModelProto | None,
                      config: dict[str, Any], notes: list[str]) -> PrecisionVariant | None:
    """The not-applicable variant if quantization did nothing usable, else None."""
    if model is None:
        return _not_applicable(precision, "; ".join(notes), config)
    if not any(n.op_type in _QUANTIZED_OPS for n in model.graph.node) or _same_model(model, fp32_model):
        reason = ("ONNX Runtime's quantizer left every node unchanged (no quantized node in the result), "
                  f"so no {precision} variant is built and no size change is claimed")
        return _not_applicable(precision, reason, config)
    error = _check_runs(model)
    if error:
        return _not_applicable(precision, f"the quantized graph does not run in ONNX Runtime ({error})", config)
    return None
