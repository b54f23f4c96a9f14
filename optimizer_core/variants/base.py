"""What every variant pass shares: the result (``PrecisionVariant``), the context a pass is built with, the
op-type applicability rule of the graph-rewriting passes, and small graph helpers.

A pass that would leave the model unchanged is reported as not applicable with ``model=None``
(``_not_applicable``): the same model is never returned under another label, and no size change is claimed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from optimizer_core.models.base import LoadedModel
from optimizer_core.variants.tree_ensemble_reader import TREE_OPS
from optimizer_core.variants.tree_tensor import graph_kind

ML_DOMAIN = "ai.onnx.ml"
# ai.onnx.ml operators, heaviest first: the one named when a pass leaves the model's work untouched
_ML_WORK_OPS = ("TreeEnsembleClassifier", "TreeEnsembleRegressor", "TreeEnsemble", "SVMClassifier",
                "SVMRegressor", "LinearClassifier", "LinearRegressor")


@dataclass(frozen=True)
class _Pass:
    """What a precision pass works on, in words and as op types."""

    what: str  # "INT8 dynamic quantization"
    verb: str  # "quantizes"
    ops: tuple[str, ...]  # default-domain op types it changes


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
        return graph_kind(self.model)

    def to_dict(self) -> dict[str, Any]:
        return {"precision": self.precision, "applicable": self.applicable, "size_bytes": self.size_bytes,
                "graph": self.graph, "notes": list(self.notes), "nodes_changed": list(self.nodes_changed),
                "config": dict(self.config)}


@dataclass(frozen=True)
class PassContext:
    """What a pass may use besides the verified fp32 graph: the loaded model (fp64 converts it again), rows of
    the user's data for calibration, and the applicability reason (fp32 reports it as its note)."""

    loaded: LoadedModel | None
    reason: str = ""
    calibration: np.ndarray | None = field(default=None, repr=False)
    calibration_rows: int = 512
    seed: int = 0


# --------------------------------------------------------------------------- applicability


def op_applicability(precision: str, spec: _Pass, fp32_model: onnx.ModelProto) -> tuple[bool, str]:
    """The rule of the passes that rewrite default-domain ops (fp16, int8, int8-static): applicable when the
    graph has at least one op the pass changes; else not, naming the op that does the model's work."""
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
    if precision != "fp16" and ml_op in TREE_OPS:  # fp16 of these is the tensor graph (variants.fp16)
        reason += ("; tree splits have no int8 form (rounding thresholds to 256 levels would move them): fp16 builds "
                   "the smaller tree file")
    return reason


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


# --------------------------------------------------------------------------- helpers for building


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
    from optimizer_core.environment import import_onnxruntime
    from optimizer_core.runtime import probe_feeds

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
