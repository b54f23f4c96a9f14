"""int8-static: ONNX Runtime static QDQ quantization calibrated on rows of the user's data.

Applies when the graph has an op the static quantizer changes (``PASS.ops``); needs calibration rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optimizer_core.models.base import LoadedModel
from optimizer_core.variants.base import (
    PassContext,
    PrecisionVariant,
    _new_nodes,
    _not_applicable,
    _op_summary,
    _Pass,
    _size_note,
    op_applicability,
)
from optimizer_core.variants.quantize import _finish_quantized, _quantize_with_fallback

PRECISION = "int8-static"
PASS = _Pass("INT8 static quantization", "quantizes", ("MatMul", "Gemm", "Conv"))


def applicability(fp32_model: onnx.ModelProto, loaded: LoadedModel | None) -> tuple[bool, str]:
    return op_applicability(PRECISION, PASS, fp32_model)


def build(fp32_model: onnx.ModelProto, context: PassContext) -> PrecisionVariant:
    return _build_int8_static(fp32_model, context.calibration, context.calibration_rows, context.seed)


CALIBRATION_BATCH = 64


def _calibration_rows(calibration: np.ndarray | None, n_features: int, rows: int, seed: int
                      ) -> tuple[np.ndarray | None, str, dict[str, Any]]:
    """Rows sampled reproducibly for calibration, a sentence about them, and their config."""
    if calibration is None:
        return None, "int8-static needs calibration rows (the CSV's feature rows) and none were given", {}
    X = np.asarray(calibration)
    if X.ndim != 2 or X.shape[1] != n_features:
        return None, (f"calibration data has shape {X.shape}, but the model takes {n_features} features per row"), {}
    # Index the finite rows instead of copying them: the CSV can have millions of rows.
    pool = np.flatnonzero(np.isfinite(X).all(axis=1))
    dropped = int(X.shape[0] - pool.size)
    if pool.size == 0:
        return None, "every calibration row has a missing or infinite value, so int8-static cannot calibrate", {}
    take = min(rows, pool.size)
    idx = pool[np.sort(np.random.default_rng(seed).choice(pool.size, size=take, replace=False))]
    sample = np.ascontiguousarray(X[idx], dtype=np.float32)
    sentence = f"calibrated on {take:,} of {pool.size:,} rows sampled without replacement (seed {seed})"
    if dropped:
        sentence += f"; {dropped:,} row(s) with missing or infinite values were left out"
    config = {"calibration_rows": take, "calibration_rows_requested": rows, "calibration_pool_rows": int(pool.size),
              "rows_dropped_non_finite": dropped, "seed": seed}
    return sample, sentence, config


class _RowsReader:
    """A CalibrationDataReader over fixed rows, in batches."""

    def __init__(self, input_name: str, rows: np.ndarray, batch: int = CALIBRATION_BATCH):
        self._batches = iter([{input_name: rows[i:i + batch]} for i in range(0, rows.shape[0], batch)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def __iter__(self):  # CalibrationDataReader protocol
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item


def _input_width(model: onnx.ModelProto) -> tuple[str, int | None]:
    inits = {i.name for i in model.graph.initializer}
    graph_input = next(i for i in model.graph.input if i.name not in inits)
    dims = graph_input.type.tensor_type.shape.dim
    width = dims[-1].dim_value if dims and dims[-1].HasField("dim_value") else None
    return graph_input.name, width


def _build_int8_static(fp32_model: onnx.ModelProto, calibration: np.ndarray | None, rows: int,
                       seed: int) -> PrecisionVariant:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    input_name, width = _input_width(fp32_model)
    n_features = width if width is not None else (np.asarray(calibration).shape[-1] if calibration is not None else 0)
    sample, sentence, calib_config = _calibration_rows(calibration, n_features, rows, seed)
    ops = list(PASS.ops)
    config = {"method": "static", "format": "QDQ", "calibrate_method": "MinMax", "weight_type": "int8",
              "activation_type": "int8", "op_types_to_quantize": ops, "pre_process": False, **calib_config}
    if sample is None:
        return _not_applicable("int8-static", sentence, config)

    def quantize(src: Path, dst: Path, *, per_channel: bool, **kwargs: Any) -> None:
        quantize_static(src, dst, _RowsReader(input_name, sample), per_channel=per_channel, **kwargs)

    model, per_channel, notes = _quantize_with_fallback(
        quantize, fp32_model, quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=ops)
    config["per_channel"] = per_channel
    failed = _finish_quantized("int8-static", fp32_model, model, config, notes)
    if failed is not None:
        return failed
    assert model is not None
    changed = _new_nodes(fp32_model, model)
    scales = "one scale per output channel" if per_channel else "one scale per tensor"
    notes = [
        sentence,
        f"weights stored as int8 ({scales}) and activations quantized with ranges fixed at calibration "
        f"(MinMax, QDQ format; nodes added: {_op_summary(changed)}); inputs outside the calibrated ranges "
        "saturate",
        _size_note(fp32_model, model),
        *notes,
    ]
    return PrecisionVariant("int8-static", True, model, notes=tuple(notes), nodes_changed=changed, config=config)
