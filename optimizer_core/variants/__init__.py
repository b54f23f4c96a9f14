"""Variants of the verified float32 ONNX model, built by passes: a registry, one module per pass.

Each pass declares what it changes and when it applies (``applicability``, cheap enough to call before a
run so the dashboard can grey an option out with the reason). ``build_variant`` returns a
``PrecisionVariant`` that records the exact settings used (``config``), the nodes it changed and notes in
words. A pass that would leave the model unchanged is reported as not applicable with ``model=None``: the
same model is never returned under another label, and no size change is claimed.

- fp32 (``fp32.py``): the verified conversion itself.
- fp64 (``fp64.py``): the family converter's double-precision graph (float64 input and arithmetic).
- fp16 (``fp16.py``): dense float ops converted to float16; inputs and scores stay float32.
- int8 (``int8.py``): ONNX Runtime dynamic quantization (int8 weights, activations quantized per call).
- int8-static (``int8_static.py``): ONNX Runtime static QDQ quantization calibrated on rows of the user's data.
- tensor (``tensor.py``): a tree ensemble rewritten with standard ONNX operators (``tree_tensor``), which GPUs run;
  fp16 on a tree ensemble builds the same graph with float16 thresholds and leaves.

Adding a pass: one module exposing ``PRECISION``, ``applicability(fp32_model, loaded) -> (bool, reason)`` and
``build(fp32_model, context: PassContext) -> PrecisionVariant``, and one line in ``PASSES`` (and its name in
``ASKED_BY_NAME`` if runs should build it only when asked for). The modules are
imported on first use (as ``models`` and ``converters`` import their families), so reading ``PRECISIONS``
stays cheap: the CLI and ``config`` do it at start-up.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from optimizer_core.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from optimizer_core.models.base import LoadedModel
    from optimizer_core.variants.base import PrecisionVariant

# precision -> the module of its pass, in the order runs list them
PASSES = {
    "fp32": "optimizer_core.variants.fp32",
    "fp64": "optimizer_core.variants.fp64",
    "fp16": "optimizer_core.variants.fp16",
    "int8": "optimizer_core.variants.int8",
    "int8-static": "optimizer_core.variants.int8_static",
    "tensor": "optimizer_core.variants.tensor",
}
PRECISIONS = tuple(PASSES)
# Built only when asked for by name: on a CPU the tensor graph is slower than the TreeEnsemble kernel, and fp16 on a
# tree ensemble already builds it.
ASKED_BY_NAME = ("tensor",)
DEFAULT_PRECISIONS = tuple(p for p in PRECISIONS if p not in ASKED_BY_NAME)


def _pass(precision: str) -> ModuleType:
    _check_precision(precision)
    return importlib.import_module(PASSES[precision])


def applicability(precision: str, fp32_model: onnx.ModelProto, loaded: LoadedModel | None) -> tuple[bool, str]:
    """Whether ``precision`` can change this model, and why (in words), without building anything."""
    return _pass(precision).applicability(fp32_model, loaded)


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}: choose from {', '.join(PRECISIONS)}")


def build_variant(
    precision: str,
    fp32_model: onnx.ModelProto,
    *,
    loaded: LoadedModel | None,
    calibration: np.ndarray | None = None,
    calibration_rows: int = 512,
    seed: int = 0,
) -> PrecisionVariant:
    """Build ``precision`` from the verified fp32 model, or say why it does not apply."""
    from optimizer_core.variants.base import PassContext, _not_applicable

    module = _pass(precision)
    ok, reason = module.applicability(fp32_model, loaded)
    if not ok:
        return _not_applicable(precision, reason)
    context = PassContext(loaded=loaded, reason=reason, calibration=calibration, calibration_rows=calibration_rows,
                          seed=seed)
    return module.build(fp32_model, context)


__all__ = ["ASKED_BY_NAME", "DEFAULT_PRECISIONS", "PASSES", "PRECISIONS", "applicability", "build_variant"]
