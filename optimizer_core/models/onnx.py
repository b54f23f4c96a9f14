"""ONNX models: the user's graph, run as given by ONNX Runtime, is the native predictor.

The file is untrusted: ``onnx_safety.check_onnx_safe`` refuses external data and custom operator
domains before ONNX Runtime ever sees the bytes. The model must take one float tensor ``[N, n_features]``;
classifiers are recognised by a ZipMap or a label output beside the probabilities, regressors by a
single float output with one value per row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import GraphProto, TensorProto, ValueInfoProto

from optimizer_core.errors import (
    ModelLoadError,
    RuntimeNotInstalledError,
    UnsupportedModelError,
    describe_ort_error,
)
from optimizer_core.models import onnx_outputs
from optimizer_core.models.base import LoadedModel, Task
from optimizer_core.models.labels import Columns, arrange
from optimizer_core.models.onnx_outputs import InputSpec
from optimizer_core.onnx_safety import check_onnx_safe

if TYPE_CHECKING:
    from optimizer_core.models import SourceInfo

__all__ = ["load", "matches", "from_object", "TASK_METADATA_KEY", "CLASSES_METADATA_KEY", "FEATURES_METADATA_KEY"]

# A model can state its task in metadata_props (the converter's normalized output may carry it).
TASK_METADATA_KEY = "inference_optimizer.task"
CLASSES_METADATA_KEY = "inference_optimizer.classes"  # JSON list: the class of each scores column
FEATURES_METADATA_KEY = "inference_optimizer.feature_names"  # JSON list: the input columns, in order
MAX_FEATURES = 1_000_000  # a declared feature count beyond this is a crafted or broken file

INPUT_DTYPES = {TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64}
SCORE_TYPES = frozenset({TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16})
LABEL_TYPES = frozenset({TensorProto.INT64, TensorProto.INT32, TensorProto.STRING})
_LABEL_ATTRS = ("classlabels_int64s", "classlabels_ints", "classlabels_strings")
# Ops that move data around; the estimator name lists the ops that compute.
_PLUMBING_OPS = frozenset({
    "ArgMax", "ArrayFeatureExtractor", "Cast", "CastMap", "Concat", "Constant", "Flatten", "Gather",
    "Identity", "LabelEncoder", "Reshape", "Shape", "Slice", "Squeeze", "Transpose", "Unsqueeze", "ZipMap",
})


@dataclass(frozen=True)
class OutputPlan:
    """Which graph output the native predictor reads, and what it means."""

    task: Task
    output: str
    classes: tuple[Any, ...] | None
    zipmap: bool = False
    label: str | None = None  # the file's own label output, checked against the scores' argmax
    decision: bool = False  # the scores are decision values, not probabilities
    columns: Columns = "as-is"  # how the raw scores become one column per class (models.labels)


def matches(obj: Any) -> bool:
    return isinstance(obj, onnx.ModelProto)


def load(data: bytes, fmt: str, source: SourceInfo) -> LoadedModel:
    """Read an ONNX file (``fmt == "onnx"``) after refusing anything unsafe in it."""
    return _build(data, fmt, source, printable(source.name or "the ONNX model"))


def from_object(obj: onnx.ModelProto, *, source: SourceInfo, fmt: str) -> LoadedModel:
    """Wrap an in-memory ModelProto: serialized and read exactly like an uploaded file."""
    from optimizer_core.models import SourceInfo

    name = printable(source.name or "the in-memory ONNX model")
    try:
        data = obj.SerializeToString()
    except ValueError as e:  # protobuf refuses messages over 2 GB
        raise UnsupportedModelError(f"{name} cannot be serialized ({e}): keep ONNX models under 2 GB") from e
    if source.data is None:
        source = SourceInfo(data, name)
    return _build(data, fmt, source, name)


def _build(data: bytes, fmt: str, source: SourceInfo, name: str) -> LoadedModel:
    proto = _parse(data, name)
    check_onnx_safe(proto, name=name)
    spec = input_spec(proto.graph, name)
    onnx_outputs.check_feature_indices(proto.graph, spec, name)
    session = _session(data, name)
    plan = _output_plan(proto, session, spec, name)
    return LoadedModel(
        family="onnx",
        estimator=estimator_name(proto),
        task=plan.task,
        n_features=spec.n_features,
        feature_names=_stated_features(proto, spec.n_features),
        classes=plan.classes,
        format=fmt,
        source_bytes=source.size,
        source_sha256=source.sha256,
        native=proto,
        predictor=_predictor(session, spec, plan),
        notes=_notes(plan),
        decision_scores=plan.decision,
        label_predictor=_label_predictor(session, spec, plan),
        label_source=f"its label output {plan.label!r}" if plan.label else "its label output",
        label_cause=onnx_outputs.label_cause(proto.graph),
        score_columns=plan.columns,
    )


def _parse(data: bytes, name: str) -> onnx.ModelProto:
    try:
        proto = onnx.load_model_from_string(data)
    except Exception as e:  # protobuf DecodeError on truncated or foreign bytes
        raise ModelLoadError(f"{name} is not a readable ONNX file ({_first_line(e)}): it may be truncated") from e
    if not proto.HasField("graph") or not len(proto.graph.output):
        raise ModelLoadError(f"{name} is an ONNX file without a graph or outputs: export the model again")
    _default_domain_as_empty(proto)
    return proto


def _default_domain_as_empty(proto: onnx.ModelProto) -> None:
    """Spell the default operator domain "" where the file spells it "ai.onnx" (skl2onnx 1.4 did, in 2019):
    the same domain, which ONNX Runtime accepts but the onnx checker does not find on the nodes."""
    from optimizer_core.onnx_safety import all_graphs

    versions: dict[str, int] = {}
    for op in proto.opset_import:
        domain = "" if op.domain == "ai.onnx" else op.domain
        versions[domain] = max(versions.get(domain, 0), op.version)
    if len(versions) != len(proto.opset_import) or any(op.domain == "ai.onnx" for op in proto.opset_import):
        del proto.opset_import[:]
        proto.opset_import.extend(onnx.helper.make_opsetid(d, v) for d, v in versions.items())
    for graph in all_graphs(proto.graph):
        for node in graph.node:
            if node.domain == "ai.onnx":
                node.domain = ""


# -- input ----------------------------------------------------------------------------------------------

_INPUT_NEEDED = "this tool needs exactly one float32/float64 tensor input [N, n_features]"


def input_spec(graph: GraphProto, name: str) -> InputSpec:
    """The single float input ``[N, n_features]`` of ``graph``, or an error saying what is wrong."""
    initializers = {t.name for t in graph.initializer} | {s.values.name for s in graph.sparse_initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(repr(i.name) for i in inputs) or "none"
        raise UnsupportedModelError(
            f"{name} has {len(inputs)} inputs ({names}); {_INPUT_NEEDED}: export the model with all "
            "features concatenated into one input"
        )
    vi = inputs[0]
    if not vi.type.HasField("tensor_type"):
        kind = vi.type.WhichOneof("value") or "untyped value"
        raise UnsupportedModelError(f"{name}: input {vi.name!r} is a {kind.replace('_', ' ')}; {_INPUT_NEEDED}")
    elem = vi.type.tensor_type.elem_type
    if elem not in INPUT_DTYPES:
        raise UnsupportedModelError(
            f"{name}: input {vi.name!r} holds {type_name(elem)} values; {_INPUT_NEEDED}"
        )
    n_features = _n_features(vi, name)
    _check_dynamic_batch(vi, elem, n_features, name)
    return InputSpec(vi.name, elem, n_features)


def _n_features(vi: ValueInfoProto, name: str) -> int:
    tensor = vi.type.tensor_type
    if not tensor.HasField("shape"):
        raise UnsupportedModelError(
            f"{name}: input {vi.name!r} has no declared shape; {_INPUT_NEEDED}: export it with that shape"
        )
    dims = tensor.shape.dim
    if len(dims) != 2:
        raise UnsupportedModelError(
            f"{name}: input {vi.name!r} has rank {len(dims)} (shape {_shape_text(dims)}); {_INPUT_NEEDED}"
        )
    feature_dim = dims[1]
    if not feature_dim.HasField("dim_value") or feature_dim.dim_value <= 0:
        raise UnsupportedModelError(
            f"{name}: input {vi.name!r} has no fixed feature count (shape {_shape_text(dims)}): export it "
            "with a fixed second dimension, e.g. skl2onnx initial_types=[('X', FloatTensorType([None, 4]))]"
        )
    if feature_dim.dim_value > MAX_FEATURES:
        raise UnsupportedModelError(
            f"{name}: input {vi.name!r} declares {feature_dim.dim_value:,} features, over the "
            f"{MAX_FEATURES:,} this tool accepts"
        )
    return int(feature_dim.dim_value)


def _check_dynamic_batch(vi: ValueInfoProto, elem: int, n_features: int, name: str) -> None:
    """Refuse a fixed first dimension: ONNX Runtime rejects every other batch size, and rows are fed in
    batches of many sizes. (Rewriting the dimension is not safe in general: a graph can reshape or reduce
    with the fixed size baked in.)"""
    batch = vi.type.tensor_type.shape.dim[0]
    if batch.HasField("dim_value"):  # 0 too: ONNX Runtime then accepts only empty batches
        tensor_type = "DoubleTensorType" if elem == TensorProto.DOUBLE else "FloatTensorType"
        raise UnsupportedModelError(
            f"{name}: the model's input {vi.name!r} has a fixed batch size of {batch.dim_value}: re-export it "
            f"with a dynamic first dimension (skl2onnx: {tensor_type}([None, {n_features}]))"
        )


def _shape_text(dims: Any) -> str:
    parts = [str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
    return "[" + ", ".join(parts) + "]"


def type_name(elem_type: int) -> str:
    try:
        return TensorProto.DataType.Name(elem_type).lower()
    except ValueError:
        return f"unknown type {elem_type}"


# -- runtime --------------------------------------------------------------------------------------------


def _session(data: bytes, name: str) -> Any:
    """An ONNX Runtime CPU session over the original bytes, threaded like the converted variants."""
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise RuntimeNotInstalledError(
            "onnxruntime is not installed: pip install 'inference-optimizer[cpu]' (or [gpu])"
        ) from e
    from optimizer_core.environment import physical_cores

    options = ort.SessionOptions()
    options.intra_op_num_threads = physical_cores()  # the ONNX variants' default, so timings compare
    options.inter_op_num_threads = 1
    options.log_severity_level = 4  # failures surface as exceptions; ORT's stderr log would repeat them
    try:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as e:
        reason = describe_ort_error(e)
        if type(e).__name__ == "NotImplemented":
            raise UnsupportedModelError(
                f"ONNX Runtime cannot run {name} ({reason}): re-export it with operators and opsets "
                "this onnxruntime version implements"
            ) from e
        raise ModelLoadError(
            f"ONNX Runtime cannot load {name} ({reason}): export the model again with a current converter"
        ) from e


def timing_predictor(model: LoadedModel, settings: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The original ONNX model's predictor on a session with ``settings`` (a runtime.SessionSettings).

    The pipeline times "native" with the variants' own settings (threads, spinning, graph level), so that
    native against fp32 measures the conversion, not a difference in session options.
    """
    from optimizer_core.runtime import create_session

    proto: onnx.ModelProto = model.native
    name = model.estimator
    session, _ = create_session(proto.SerializeToString(), settings)
    spec = input_spec(proto.graph, name)
    return _predictor(session, spec, _output_plan(proto, session, spec, name))


def labelled_predictor(model: LoadedModel, settings: Any
                       ) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]:
    """Like ``timing_predictor``, but each call returns the scores and, from the same session run, the file's
    own label output (None for a file without one, or a regressor): for checking them against each other
    (``models.labels.check_agreement``) without running the graph twice."""
    from optimizer_core.runtime import create_session

    proto: onnx.ModelProto = model.native
    session, _ = create_session(proto.SerializeToString(), settings)
    spec = input_spec(proto.graph, model.estimator)
    plan = _output_plan(proto, session, spec, model.estimator)
    label = plan.label if plan.task != "regression" else None
    outputs = [plan.output] + ([label] if label else [])
    dtype = INPUT_DTYPES[spec.elem_type]
    zipmap_classes = plan.classes if plan.zipmap else None

    def predict(X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        found = session.run(outputs, {spec.name: np.ascontiguousarray(X, dtype=dtype)})
        scores = _from_zipmap(found[0], zipmap_classes) if zipmap_classes else found[0]
        if plan.columns != "as-is":
            scores = arrange(scores, plan.columns)
        return scores, np.asarray(found[1]).reshape(-1) if label else None

    return predict


def _from_zipmap(rows: Any, classes: tuple[Any, ...]) -> np.ndarray:
    """A ZipMap's one {label: score} dict per row as an array, columns in the classes' order."""
    row_scores = itemgetter(*classes)
    return np.array([row_scores(row) for row in rows], dtype=np.float64).reshape(len(rows), len(classes))


def _predictor(session: Any, spec: InputSpec, plan: OutputPlan) -> Callable[[np.ndarray], np.ndarray]:
    raw = _raw_reader(session, spec, plan.output, plan.classes if plan.zipmap else None)
    if plan.columns == "as-is":
        return raw
    columns = plan.columns
    return lambda X: arrange(raw(X), columns)


def _raw_reader(session: Any, spec: InputSpec, output: str,
                zipmap_classes: tuple[Any, ...] | None) -> Callable[[np.ndarray], np.ndarray]:
    """The output ``output`` as the file computes it (a ZipMap's dicts as an array in classes order)."""
    dtype = INPUT_DTYPES[spec.elem_type]
    row_scores = itemgetter(*zipmap_classes) if zipmap_classes else None

    def predict(X: np.ndarray) -> np.ndarray:
        out = session.run([output], {spec.name: np.ascontiguousarray(X, dtype=dtype)})[0]
        if row_scores is None:
            return out
        # ZipMap yields one {label: score} dict per row; columns follow the classes order.
        rows = [row_scores(row) for row in out]
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(zipmap_classes or ()))

    return predict


def _label_predictor(session: Any, spec: InputSpec, plan: OutputPlan) -> Callable[[np.ndarray], np.ndarray] | None:
    if plan.label is None or plan.task == "regression":
        return None
    dtype = INPUT_DTYPES[spec.elem_type]
    label = plan.label

    def labels(X: np.ndarray) -> np.ndarray:
        return np.asarray(session.run([label], {spec.name: np.ascontiguousarray(X, dtype=dtype)})[0]).reshape(-1)

    return labels


class _Probe:
    """Output shapes from running one all-zero row, computed on first use only."""

    def __init__(self, session: Any, spec: InputSpec, name: str):
        self._session, self._spec, self._name = session, spec, name
        self._shapes: dict[str, tuple[int, ...]] | None = None
        self._error: ModelLoadError | None = None

    def width(self, vi: ValueInfoProto) -> int:
        """Values per row of the float output ``vi``: measured, since a declared shape can be wrong (a
        file may declare [N, 1] and return [N, 2]); the declared one when the probe row cannot run."""
        shape = self._run().get(vi.name)
        if shape is None:
            return self._declared_width(vi)
        if len(shape) == 1:
            return 1
        if len(shape) != 2:
            raise UnsupportedModelError(
                f"{self._name}: output {vi.name!r} has shape {list(shape)} for one row; this tool needs "
                "[N, n_classes] probabilities or [N, 1] predictions"
            )
        return int(shape[1])

    def _declared_width(self, vi: ValueInfoProto) -> int:
        dims = vi.type.tensor_type.shape.dim if vi.type.tensor_type.HasField("shape") else None
        if dims is not None and len(dims) == 1:
            return 1
        if dims is not None and len(dims) == 2 and dims[1].HasField("dim_value"):
            return int(dims[1].dim_value)
        if self._error is not None:  # neither declared nor measurable
            raise self._error
        raise UnsupportedModelError(f"{self._name}: output {vi.name!r} has no shape ONNX Runtime reports")

    def _run(self) -> dict[str, tuple[int, ...]]:
        """Shapes by output name; empty when the zero row fails (the error is kept for ``_declared_width``)."""
        if self._shapes is None:
            row = np.zeros((1, self._spec.n_features), dtype=INPUT_DTYPES[self._spec.elem_type])
            try:
                outs = self._session.run(None, {self._spec.name: row})
            except Exception as e:
                self._error = ModelLoadError(
                    f"{self._name} fails on a test row of zeros in ONNX Runtime ({describe_ort_error(e)}): "
                    "check that it runs in ONNX Runtime, or declare the output shapes in the file"
                )
                self._error.__cause__ = e
                outs = []
            names = [o.name for o in self._session.get_outputs()]
            self._shapes = {n: tuple(np.shape(v)) for n, v in zip(names, outs, strict=False)}
        return self._shapes


# -- outputs --------------------------------------------------------------------------------------------


def _output_plan(proto: onnx.ModelProto, session: Any, spec: InputSpec, name: str) -> OutputPlan:
    """Which output to read and what it means: the task and classes, then, for a classifier, whether its
    scores are probabilities and how their columns map to the classes (``onnx_outputs``)."""
    plan = _basic_plan(proto, session, spec, name)
    if plan.task == "regression":
        return plan
    label = onnx_outputs.label_output(proto.graph)
    raw = _raw_reader(session, spec, plan.output, plan.classes if plan.zipmap else None)
    reading = onnx_outputs.read_scores(proto.graph, plan.output, plan.zipmap, plan.classes or (), raw,
                                       _label_predictor(session, spec, replace(plan, label=label)),
                                       spec.n_features, name, stated=onnx_outputs.stated_scores(proto))
    return replace(plan, label=label, decision=reading.decision, columns=reading.columns)


def _basic_plan(proto: onnx.ModelProto, session: Any, spec: InputSpec, name: str) -> OutputPlan:
    graph = proto.graph
    zipmap = _zipmap(graph)
    if zipmap is not None:
        output, classes = zipmap
        return OutputPlan(_classifier_task(len(classes), output, name), output, classes, zipmap=True)
    floats = [o for o in graph.output if _elem_type(o) in SCORE_TYPES]
    if not floats:
        outputs = ", ".join(repr(o.name) for o in graph.output)
        raise UnsupportedModelError(
            f"{name} has no float tensor output (outputs: {outputs}); this tool reads class probabilities "
            "or predictions from one"
        )
    probe = _Probe(session, spec, name)
    has_label = any(_elem_type(o) in LABEL_TYPES for o in graph.output)
    stated = _stated_task(proto)
    # The same choice as convert.contract.find_scores_tensor: last float output for classifiers.
    probs = floats[-1]
    if stated is not None:
        classifier = stated != "regression"
    else:
        classifier = has_label or (_has_classifier_op(graph) and probe.width(probs) >= 2)
    if classifier:
        width = probe.width(probs)
        if width == 1 and has_label:  # one decision value per row (a binary LinearSVC): two classes
            labels = _stated_classes(proto, 2) or _labels(graph, 2, fallback=False)
            if labels is None:
                raise UnsupportedModelError(
                    f"{name}: the scores output {probs.name!r} has one column and the file names no two classes "
                    "for it: this tool cannot tell which class a score favours; export one column per class"
                )
            return OutputPlan("binary", probs.name, labels)
        labels = _stated_classes(proto, width) or _labels(graph, width)
        return OutputPlan(_classifier_task(width, probs.name, name), probs.name, labels)
    return _regression_plan(floats[0], probe, name)


def _regression_plan(output: ValueInfoProto, probe: _Probe, name: str) -> OutputPlan:
    width = probe.width(output)
    if width != 1:
        raise UnsupportedModelError(
            f"{name}: output {output.name!r} gives {width} values per row and no class labels; this tool "
            "handles regressors with one prediction per row (export one model per target) and classifiers "
            "with a label output or ZipMap"
        )
    return OutputPlan("regression", output.name, None)


def _classifier_task(n_classes: int, output: str, name: str) -> Task:
    if n_classes < 2:
        raise UnsupportedModelError(
            f"{name}: the probabilities output {output!r} has {n_classes} column(s); this tool needs one "
            "column per class (binary classifiers too: two columns)"
        )
    return "binary" if n_classes == 2 else "multiclass"


def _zipmap(graph: GraphProto) -> tuple[str, tuple[Any, ...]] | None:
    """(graph output name, class labels) when an output comes from a ZipMap node."""
    outputs = {o.name for o in graph.output}
    for node in graph.node:
        if node.op_type == "ZipMap" and node.output and node.output[0] in outputs:
            labels = _attr_labels(node)
            if labels is None:
                raise ModelLoadError(f"the ZipMap node {node.name!r} has no class labels: export the model again")
            return node.output[0], labels
    return None


def _labels(graph: GraphProto, n_classes: int, *, fallback: bool = True) -> tuple[Any, ...] | None:
    """Class labels from the ONNX-ML classifier node when there is exactly one, else 0..n-1 (None
    without ``fallback``)."""
    found = {
        labels
        for node in graph.node
        if node.domain == "ai.onnx.ml" and node.op_type.endswith("Classifier")
        for labels in [_attr_labels(node)]
        if labels is not None
    }
    if len(found) == 1:
        (labels,) = found
        if len(labels) == n_classes:
            return labels
    return tuple(range(n_classes)) if fallback else None


def _attr_labels(node: onnx.NodeProto) -> tuple[Any, ...] | None:
    for attr in node.attribute:
        if attr.name in _LABEL_ATTRS and attr.name.endswith("strings") and len(attr.strings):
            return tuple(s.decode("utf-8", errors="replace") for s in attr.strings)
        if attr.name in _LABEL_ATTRS and len(attr.ints):
            return tuple(int(i) for i in attr.ints)
    return None


def _has_classifier_op(graph: GraphProto) -> bool:
    return any(
        (node.domain == "ai.onnx.ml" and node.op_type.endswith("Classifier")) or node.op_type == "Softmax"
        for node in graph.node
    )


def _stated_task(proto: onnx.ModelProto) -> str | None:
    for prop in proto.metadata_props:
        if prop.key == TASK_METADATA_KEY and prop.value in ("binary", "multiclass", "regression"):
            return prop.value
    return None


def _stated_json_list(proto: onnx.ModelProto, key: str, length: int) -> tuple[Any, ...] | None:
    """A JSON list this tool's converter stored in metadata_props, when it fits the graph (else ignored)."""
    import json

    for prop in proto.metadata_props:
        if prop.key == key:
            try:
                values = json.loads(prop.value)
            except ValueError:
                return None
            ok = isinstance(values, list) and len(values) == length
            ok = ok and all(isinstance(v, bool | int | float | str) for v in values)
            return tuple(values) if ok else None
    return None


def _stated_classes(proto: onnx.ModelProto, n_classes: int) -> tuple[Any, ...] | None:
    return _stated_json_list(proto, CLASSES_METADATA_KEY, n_classes)


def _stated_features(proto: onnx.ModelProto, n_features: int) -> tuple[str, ...] | None:
    names = _stated_json_list(proto, FEATURES_METADATA_KEY, n_features)
    if names is None or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        return None
    return tuple(names)


def _elem_type(vi: ValueInfoProto) -> int | None:
    return vi.type.tensor_type.elem_type if vi.type.HasField("tensor_type") else None


# -- description ----------------------------------------------------------------------------------------


def estimator_name(proto: onnx.ModelProto) -> str:
    """E.g. ``ONNX(LinearClassifier) from skl2onnx``: the computing ops, ONNX-ML ones first."""
    nodes = [n for n in proto.graph.node if n.op_type not in _PLUMBING_OPS]
    ml_ops = list(dict.fromkeys(n.op_type for n in nodes if n.domain == "ai.onnx.ml"))
    ops = ml_ops or list(dict.fromkeys(n.op_type for n in nodes))
    shown = ", ".join(printable(op)[:40] for op in ops[:3]) + (", ..." if len(ops) > 3 else "")
    label = f"ONNX({shown or 'no compute ops'})"
    producer = printable(proto.producer_name.strip())[:40]
    return f"{label} from {producer}" if producer else label


def printable(text: str) -> str:
    """``text`` with control characters escaped, so a hostile name cannot break a one-line message."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _notes(plan: OutputPlan) -> tuple[str, ...]:
    notes = ["native = this ONNX model as given, in ONNX Runtime on CPU"]
    if plan.task != "regression":
        outputs = onnx_outputs.outputs_note(plan.label, plan.output, plan.zipmap, plan.decision, plan.columns,
                                            plan.classes or ())
        if outputs:
            notes.append(outputs)
    return tuple(notes)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__
