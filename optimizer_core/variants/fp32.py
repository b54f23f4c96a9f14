"""fp32: the verified float32 conversion itself (always applies).
"""

from __future__ import annotations

import onnx

from optimizer_core.models.base import LoadedModel
from optimizer_core.variants.base import PassContext, PrecisionVariant

PRECISION = "fp32"


def applicability(fp32_model: onnx.ModelProto, loaded: LoadedModel | None) -> tuple[bool, str]:
    return True, "the verified float32 conversion"


def build(fp32_model: onnx.ModelProto, context: PassContext) -> PrecisionVariant:
    return PrecisionVariant("fp32", True, fp32_model, notes=(context.reason,), config={"dtype": "float32"})


