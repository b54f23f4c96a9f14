"""fp64: the family converter's double-precision graph (float64 input and arithmetic).

Applies when the family converter can emit a float64 graph (``converters.supports_double``).
"""

from __future__ import annotations

import onnx
from onnx import TensorProto

from optimizer_core.errors import OptimizerError
from optimizer_core.models.base import LoadedModel
from optimizer_core.variants.base import PassContext, PrecisionVariant, _check_runs, _node_id, _not_applicable

PRECISION = "fp64"


def applicability(fp32_model: onnx.ModelProto, loaded: LoadedModel | None) -> tuple[bool, str]:
    return _fp64_applicability(loaded)


def build(fp32_model: onnx.ModelProto, context: PassContext) -> PrecisionVariant:
    return _build_fp64(context.loaded)


def _fp64_applicability(loaded: LoadedModel | None) -> tuple[bool, str]:
    if loaded is None:
        return False, "fp64 is converted from the original model, which was not given"
    from optimizer_core.converters import supports_double

    try:
        ok, reason = supports_double(loaded)
    except (OptimizerError, ImportError) as e:
        return False, f"no float64 converter for {loaded.estimator} ({loaded.family}): {e}"
    if ok:
        return True, reason or f"the {loaded.family} converter emits a float64 graph"
    return False, reason


def _build_fp64(loaded: LoadedModel | None) -> PrecisionVariant:
    from optimizer_core.converters import convert

    assert loaded is not None  # applicability returned False otherwise
    config = {"dtype": "float64", "converter": loaded.family}
    try:
        model = convert(loaded, double=True)
    except OptimizerError as e:
        return _not_applicable("fp64", f"float64 conversion failed: {e}", config)
    input_type = model.graph.input[0].type.tensor_type.elem_type
    if input_type != TensorProto.DOUBLE:
        return _not_applicable("fp64", "the converter returned a graph whose input is not float64, so no "
                               "fp64 variant is claimed", config)
    error = _check_runs(model)
    if error:
        return _not_applicable("fp64", f"the float64 graph does not run in ONNX Runtime ({error})", config)
    output_type = model.graph.output[0].type.tensor_type.elem_type
    if output_type == TensorProto.DOUBLE:
        gain = ("float64 input, arithmetic and scores: removes float32 rounding inside the graph (inputs, "
                "thresholds, sums), which brings the scores closer to a native model that computes in float64")
    else:
        gain = ("float64 input, but the scores come out of the graph in float32: inputs and thresholds are "
                "compared in float64, yet sums are still rounded to float32, so the drift may not shrink")
    notes = (
        gain,
        "costs: callers must pass float64 arrays (twice the input bytes) and float64 kernels are usually "
        "slower; it cannot remove differences the native library itself makes in float32",
    )
    nodes = tuple(_node_id(n) for n in model.graph.node)
    return PrecisionVariant("fp64", True, model, notes=notes, nodes_changed=nodes, config=config)
