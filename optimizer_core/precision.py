"""Precision variants built from the verified float32 ONNX model, as passes with explicit configs.

Each precision declares what it changes and when it applies (``applicability``, cheap enough to call
before a run so the dashboard can grey an option out with the reason). ``build_variant`` returns a
``PrecisionVariant`` that records the exact settings used (``config``), the nodes it changed and
notes in words. A precision that would leave the model unchanged is reported as not applicable with
``model=None``: the same model is never returned under another label, and no size change is claimed.

- fp32: the verified conversion itself.
- fp64: the family converter's double-precision graph (float64 input and arithmetic).
- fp16: dense float ops converted to float16; inputs and scores stay float32.
- int8: ONNX Runtime dynamic quantization (int8 weights, activations quantized per call).
- int8-static: ONNX Runtime static QDQ quantization calibrated on rows of the user's data.
- tensor: a tree ensemble rewritten with standard ONNX operators (``tree_tensor``), which GPUs run; fp16 on a tree
  ensemble builds the same graph with float16 thresholds and leaves.
"""

from __future__ import annotations

import heapq
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from optimizer_core import tree_tensor
from optimizer_core.config import PRECISIONS
from optimizer_core.converters.contract import ensure_ai_onnx_opset
from optimizer_core.errors import ConfigError, OptimizerError
from optimizer_core.models.base import LoadedModel

ML_DOMAIN = "ai.onnx.ml"
CALIBRATION_BATCH = 64

# ai.onnx.ml operators, heaviest first: the one named when a pass leaves the model's work untouched
_ML_WORK_OPS = ("TreeEnsembleClassifier", "TreeEnsembleRegressor", "TreeEnsemble", "SVMClassifier",
                "SVMRegressor", "LinearClassifier", "LinearRegressor")
# nodes that only exist in a quantized graph
_QUANTIZED_OPS = frozenset({
    "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat",
    "QuantizeLinear", "DequantizeLinear", "QLinearMatMul", "QLinearConv", "QGemm", "DynamicQuantizeLSTM",
})


@dataclass(frozen=True)
class _Pass:
    """What a precision pass works on, in words and as op types."""

    what: str  # "INT8 dynamic quantization"
    verb: str  # "quantizes"
    ops: tuple[str, ...]  # default-domain op types it changes


_PASSES = {
    "fp16": _Pass("float16 conversion", "converts",
                  ("MatMul", "Gemm", "Conv", "ConvTranspose", "Einsum", "LSTM", "GRU", "RNN")),
    # ONNX Runtime's dynamic quantizer (IntegerOpsRegistry) has no Gemm: int8-static does.
    "int8": _Pass("INT8 dynamic quantization", "quantizes", ("MatMul", "Conv", "LSTM")),
    "int8-static": _Pass("INT8 static quantization", "quantizes", ("MatMul", "Gemm", "Conv")),
}


@dataclass(frozen=True)
class PrecisionVariant:
    """One precision of the model: the ONNX graph (None when not applicable) and what was done."""

    precision: str
    applicable: bool
    model: onnx.ModelProto | None = field(repr=False, compare=False)
    notes: tuple[str, ...] = ()
    nodes_changed: tuple[str, ...] = ()  # "OpType:name" of nodes added or changed by the pass
    config: dict[str, Any] = field(default_factory=dict)  # the explicit settings used

    @property
    def size_bytes(self) -> int | None:
        return None if self.model is None else self.model.ByteSize()

    @property
    def graph(self) -> str | None:
        """"tree-ensemble" (ai.onnx.ml tree operators), "tensor" (trees as standard operators) or None."""
        return tree_tensor.graph_kind(self.model)

    def to_dict(self) -> dict[str, Any]:
        return {"precision": self.precision, "applicable": self.applicable, "size_bytes": self.size_bytes,
                "graph": self.graph, "notes": list(self.notes), "nodes_changed": list(self.nodes_changed),
                "config": dict(self.config)}


# --------------------------------------------------------------------------- applicability

def applicability(precision: str, fp32_model: onnx.ModelProto, loaded: LoadedModel | None) -> tuple[bool, str]:
    """Whether ``precision`` can change this model, and why (in words), without building anything."""
    _check_precision(precision)
    if precision == "fp32":
        return True, "the verified float32 conversion"
    if precision == "fp64":
        return _fp64_applicability(loaded)
    if _tensor_pass(precision, fp32_model):
        return _tensor_applicability(precision, fp32_model)
    spec = _PASSES[precision]
    counts = _op_counts(fp32_model.graph)
    targets = {op: n for op, n in counts.items() if op in spec.ops}
    if targets:
        listed = ", ".join(f"{n} {op}" for op, n in sorted(targets.items()))
        return True, f"{spec.what} {spec.verb} {listed} node(s)"
    return False, _not_applicable_reason(precision, spec, fp32_model.graph, counts)


def _not_applicable_reason(precision: str, spec: _Pass, graph: onnx.GraphProto, counts: dict[str, int]) -> str:
    ops = "/".join(spec.ops)
    ml_op = _main_ml_op(graph)
    if ml_op is not None:
        reason = (f"{spec.what} only {spec.verb} {ops} nodes; this model's work is done by {ml_op} "
                  f"({ML_DOMAIN}), which it leaves untouched, so no {precision} variant is built and "
                  "no size change is claimed")
    else:
        present = ", ".join(sorted(counts)) or "none"
        reason = (f"{spec.what} only {spec.verb} {ops} nodes and this graph has none (its ops: {present}), "
                  f"so no {precision} variant is built and no size change is claimed")
    if precision == "int8" and "Gemm" in counts:
        reason += "; int8-static quantizes Gemm"
    if ml_op is not None and ml_op.startswith("TreeEnsemble"):
        reason += ("; tree splits have no int8 form (rounding thresholds to 256 levels would move them): fp16 builds "
                   "the smaller tree file")
    return reason


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


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}: choose from {', '.join(PRECISIONS)}")


def _all_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from _all_nodes(attr.g)
            for sub in attr.graphs:
                yield from _all_nodes(sub)


def _op_counts(graph: onnx.GraphProto) -> dict[str, int]:
    """Default-domain op types and how often they occur (subgraphs included)."""
    counts: dict[str, int] = {}
    for node in _all_nodes(graph):
        if node.domain in ("", "ai.onnx"):
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def _ml_ops(graph: onnx.GraphProto) -> list[str]:
    return list(dict.fromkeys(n.op_type for n in _all_nodes(graph) if n.domain == ML_DOMAIN))


def _main_ml_op(graph: onnx.GraphProto) -> str | None:
    present = _ml_ops(graph)
    return next((op for op in _ML_WORK_OPS if op in present), present[0] if present else None)


# --------------------------------------------------------------------------- build

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
    _check_precision(precision)
    ok, reason = applicability(precision, fp32_model, loaded)
    if not ok:
        return _not_applicable(precision, reason)
    if precision == "fp32":
        return PrecisionVariant("fp32", True, fp32_model, notes=(reason,), config={"dtype": "float32"})
    if precision == "fp64":
        return _build_fp64(loaded)
    if _tensor_pass(precision, fp32_model):
        return _build_tensor(precision, fp32_model)
    if precision == "fp16":
        return _build_fp16(fp32_model)
    if precision == "int8":
        return _build_int8(fp32_model)
    return _build_int8_static(fp32_model, calibration, calibration_rows, seed)


def _not_applicable(precision: str, reason: str, config: dict[str, Any] | None = None) -> PrecisionVariant:
    return PrecisionVariant(precision, False, None, notes=(reason,), config=config or {})


def _size_note(before: onnx.ModelProto, after: onnx.ModelProto) -> str:
    a, b = before.ByteSize(), after.ByteSize()
    ratio = a / b if b else float("inf")
    return f"serialized size {a:,} -> {b:,} bytes ({ratio:.1f}x smaller)" if b < a else (
        f"serialized size {a:,} -> {b:,} bytes (no smaller)")


def _same_model(a: onnx.ModelProto, b: onnx.ModelProto) -> bool:
    return a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True)


def _check_runs(model: onnx.ModelProto) -> str | None:
    """None if ONNX Runtime loads ``model`` and runs one zero row on CPU, else the error in one line."""
    from optimizer_core.runtime import import_onnxruntime, probe_feeds

    ort = import_onnxruntime()
    try:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        feeds = probe_feeds(session)
        if feeds is not None:
            session.run(None, feeds)
    except Exception as e:
        return f"{type(e).__name__}: {_first_line(e)}"
    return None


def _first_line(e: BaseException) -> str:
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    return lines[0][:240] if lines else type(e).__name__


def _node_id(node: onnx.NodeProto) -> str:
    return f"{node.op_type}:{node.name}" if node.name else node.op_type


def _new_nodes(before: onnx.ModelProto, after: onnx.ModelProto) -> tuple[str, ...]:
    old = {(n.op_type, n.name) for n in before.graph.node}
    return tuple(_node_id(n) for n in after.graph.node if (n.op_type, n.name) not in old)


def _op_summary(nodes: tuple[str, ...]) -> str:
    counts: dict[str, int] = {}
    for node in nodes:
        op = node.split(":", 1)[0]
        counts[op] = counts.get(op, 0) + 1
    return ", ".join(f"{n} {op}" for op, n in counts.items())


# --------------------------------------------------------------------------- fp64

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


# --------------------------------------------------------------------------- tensor (trees as standard operators)

def _tensor_pass(precision: str, fp32_model: onnx.ModelProto) -> bool:
    """tensor always goes to the tensor pass; fp16 does on a tree ensemble (the float16 tensor graph)."""
    return precision == "tensor" or (precision == "fp16" and tree_tensor.has_tree_ensemble(fp32_model))


def _tensor_applicability(precision: str, fp32_model: onnx.ModelProto) -> tuple[bool, str]:
    ok, reason = tree_tensor.applicability(fp32_model)
    if precision == "fp16" and ok:
        return True, f"float16 tensor graph of the trees: {reason}"
    return ok, reason


def _build_tensor(precision: str, fp32_model: onnx.ModelProto) -> PrecisionVariant:
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


# --------------------------------------------------------------------------- fp16

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


# --------------------------------------------------------------------------- int8 (dynamic and static)

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


def _build_int8(fp32_model: onnx.ModelProto) -> PrecisionVariant:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    ops = list(_PASSES["int8"].ops)
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
    ops = list(_PASSES["int8-static"].ops)
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


__all__ = ["PRECISIONS", "PrecisionVariant", "applicability", "build_variant"]
