"""The tensorized tree pass: a tree ensemble rewritten with standard ONNX operators only.

ONNX Runtime has no CUDA (or TensorRT) kernel for the ``ai.onnx.ml`` tree operators, so a TreeEnsemble node
always runs on the CPU. This pass replaces each TreeEnsembleClassifier / TreeEnsembleRegressor node of the
verified fp32 graph by an equivalent subgraph of Gather / GatherElements, comparisons, And / Or, IsNaN,
Add, MatMul, ReduceSum, Sigmoid / Softmax..., which every execution provider implements, in float32 or in
float16. The trees are read from the node itself (``tree_ensemble_reader``), so every family the converters
support is covered, with the file's own comparison rule (``<`` or ``<=``) and missing-value directions.

Strategies, as Hummingbird chooses them by depth (https://github.com/microsoft/hummingbird):

* gemm (depth <= 3): every split of every tree evaluated at once, the leaf found with two batched MatMuls;
* perfect (depth <= 10 and little padding): each tree padded to a perfect binary tree, walked level by level
  with index arithmetic (2 * index + condition);
* traversal (deeper trees): the nodes' child indices followed for as many steps as the deepest tree.

Before it is handed out, the float32 graph is run next to the TreeEnsemble graph on probe rows (values on,
just above and just below every threshold, and NaN) and refused when they differ (``NotTensorizable``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from optimizer_core.variants.tree_ensemble_reader import (
    EQ,
    LEQ,
    LT,
    ML_DOMAIN,
    MODE_NAMES,
    NEQ,
    TREE_OPS,
    Ensemble,
    NotTensorizable,
    Tree,
    read_ensemble,
)

GRAPH = "tensor"
GEMM_MAX_DEPTH = 3
PERFECT_MAX_DEPTH = 10
PERFECT_MAX_PADDING = 4.0  # padded nodes per real node beyond which the perfect layout wastes too much
TRAVERSAL_MAX_DEPTH = 512
MIN_OPSET = 13  # ReduceSum / Unsqueeze take their axes as inputs from here on
UPGRADE_OPSET = 15
PROBE_ROWS = 512
SELF_CHECK_TOLERANCE = 1e-5
FLOAT16_MAX = 65504.0

# Said on every tensor variant, and by the explanation of a slower one (bench.explain).
CPU_REASON = ("ONNX Runtime's TreeEnsemble kernel walks each tree directly, while the tensor graph evaluates every "
              "level of every tree with general operators (Gather, comparisons, Add) and materializes the results")
CPU_CAVEAT = (f"on a CPU expect it slower than the TreeEnsemble graph: {CPU_REASON}; its value is on GPUs (CUDA, "
              "TensorRT), which have no TreeEnsemble kernel")

_COMPARE = {LEQ: "LessOrEqual", LT: "Less", EQ: "Equal", NEQ: "Equal"}
_DTYPES = {"float32": (np.float32, TensorProto.FLOAT), "float16": (np.float16, TensorProto.FLOAT16)}


@dataclass(frozen=True)
class TensorGraph:
    """The rewritten model and what was done, in words and as settings."""

    model: onnx.ModelProto
    notes: tuple[str, ...]
    config: dict[str, Any]
    nodes_changed: tuple[str, ...]


def graph_kind(model: onnx.ModelProto | None) -> str | None:
    """"tree-ensemble" for a graph computing with the ai.onnx.ml tree operators, "tensor" for one this pass
    wrote, None otherwise."""
    if model is None:
        return None
    if any(n.domain == ML_DOMAIN and n.op_type.startswith("TreeEnsemble") for n in model.graph.node):
        return "tree-ensemble"
    if any(p.key == "inference_optimizer.graph" and p.value == GRAPH for p in model.metadata_props):
        return GRAPH
    return None


def has_tree_ensemble(model: onnx.ModelProto) -> bool:
    return any(n.domain == ML_DOMAIN and n.op_type in TREE_OPS for n in model.graph.node)


def applicability(model: onnx.ModelProto) -> tuple[bool, str]:
    """Whether every tree ensemble of ``model`` can be tensorized, and the plan (or the reason why not), without
    building the graph."""
    trees = [n for n in model.graph.node if n.domain == ML_DOMAIN and n.op_type in TREE_OPS]
    if not trees and any(n.domain == ML_DOMAIN and n.op_type == "TreeEnsemble" for n in model.graph.node):
        return False, ("its trees are an ai.onnx.ml opset-5 TreeEnsemble node, which the tensor graph does not rewrite "
                       "yet (it reads TreeEnsembleClassifier/TreeEnsembleRegressor, what the converters here emit)")
    if not trees:
        present = sorted({n.op_type for n in model.graph.node})
        return False, (f"this model has no tree ensemble (its ops: {', '.join(present) or 'none'}): the tensor graph "
                       "rewrites TreeEnsembleClassifier/TreeEnsembleRegressor nodes only")
    try:
        _check_other_ml_ops(model.graph)
        plans = [_plan(read_ensemble(n)) for n in trees]
    except NotTensorizable as e:
        return False, f"no tensor graph: {e}"
    return True, "; ".join(plan.describe() for plan in plans)


def build(fp32_model: onnx.ModelProto, dtype: str = "float32") -> TensorGraph:
    """The tensorized copy of ``fp32_model`` (thresholds and leaves in ``dtype``), self-checked against it.

    Raises NotTensorizable with the reason when it cannot be built exactly.
    """
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(_DTYPES)}")
    exact, plans, changed = _rewrite(fp32_model, "float32")
    _self_check(fp32_model, exact, plans)
    model, plans, changed = (exact, plans, changed) if dtype == "float32" else _rewrite(fp32_model, dtype)
    notes = [
        "; ".join(plan.describe() for plan in plans) + ": rewritten with standard ONNX operators only (no ai.onnx.ml "
        "operator), each with a CUDA kernel in ONNX Runtime, so a GPU can run the whole graph",
        "the file's own rules are kept: " + ", ".join(sorted({r for plan in plans for r in plan.rules()})) +
        "; a missing value (NaN) follows each node's missing_value_tracks_true flag",
    ]
    checked = (f"{PROBE_ROWS} probe rows (values on and around every threshold, and NaN) within "
               f"{SELF_CHECK_TOLERANCE:g}")
    if dtype == "float16":
        notes += [_float16_note(plans), f"its float32 twin, the same layout, matches the TreeEnsemble graph on {checked}"]
    else:
        notes.append(f"matches the TreeEnsemble graph on {checked}")
    config = {"graph": GRAPH, "dtype": dtype, "ensembles": [plan.config() for plan in plans],
              "sums": "float32"}
    return TensorGraph(model, tuple(notes), config, changed)


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class _Plan:
    """One ensemble and how it is laid out."""

    ensemble: Ensemble
    strategy: str  # gemm | perfect | traversal
    padded_nodes: int

    def describe(self) -> str:
        e = self.ensemble
        layout = {"gemm": f"every split evaluated at once, leaves found by MatMul (depth {e.max_depth} <= "
                          f"{GEMM_MAX_DEPTH})",
                  "perfect": f"perfect-tree traversal, every tree padded to depth {e.max_depth}",
                  "traversal": f"index-following traversal, {e.max_depth} steps"}[self.strategy]
        return f"{e.op_type} ({len(e.trees)} trees, {e.n_nodes:,} nodes, depth <= {e.max_depth}): {layout}"

    def rules(self) -> list[str]:
        return [MODE_NAMES[m] for m in sorted(self.ensemble.modes())]

    def config(self) -> dict[str, Any]:
        e = self.ensemble
        return {"op_type": e.op_type, "strategy": self.strategy, "trees": len(e.trees), "nodes": e.n_nodes,
                "max_depth": e.max_depth, "padded_nodes": self.padded_nodes,
                "comparisons": self.rules(), "post_transform": e.output.post_transform, "output_rule": e.output.rule}


def _plan(ensemble: Ensemble) -> _Plan:
    depth = ensemble.max_depth
    perfect_nodes = len(ensemble.trees) * (2 ** (depth + 1) - 1)
    if depth <= GEMM_MAX_DEPTH:
        return _Plan(ensemble, "gemm", perfect_nodes)
    if depth <= PERFECT_MAX_DEPTH and perfect_nodes <= PERFECT_MAX_PADDING * ensemble.n_nodes:
        return _Plan(ensemble, "perfect", perfect_nodes)
    if depth > TRAVERSAL_MAX_DEPTH:
        raise NotTensorizable(f"{ensemble.op_type} has a tree {depth} levels deep; the tensor graph unrolls at most "
                              f"{TRAVERSAL_MAX_DEPTH} steps")
    return _Plan(ensemble, "traversal", ensemble.n_nodes)


# --------------------------------------------------------------------------- graph surgery

_ELEMENTWISE_ML = ("Scaler", "Imputer")


def _check_other_ml_ops(graph: onnx.GraphProto) -> None:
    other = sorted({n.op_type for n in graph.node if n.domain == ML_DOMAIN
                    and n.op_type not in TREE_OPS + _ELEMENTWISE_ML})
    if other:
        raise NotTensorizable(f"the graph also uses {', '.join(other)} ({ML_DOMAIN}), which has no standard-operator "
                              "rewrite here, so the graph would still need the CPU for it")
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("g") or attr.graphs:
                raise NotTensorizable(f"the graph has control flow ({node.op_type}); only flat graphs are rewritten")


def _rewrite(fp32_model: onnx.ModelProto, dtype: str) -> tuple[onnx.ModelProto, list[_Plan], tuple[str, ...]]:
    _check_other_ml_ops(fp32_model.graph)
    model = _with_opset(fp32_model)
    graph = model.graph
    widths = _widths(model)
    taken = _names(graph)
    plans: list[_Plan] = []
    new_nodes: list[onnx.NodeProto] = []
    changed: list[str] = []
    for index, node in enumerate(graph.node):
        if node.domain != ML_DOMAIN:
            kept = onnx.NodeProto()
            kept.CopyFrom(node)  # the originals go when the node list is cleared below
            new_nodes.append(kept)
            continue
        builder = _Builder(taken, f"t{index}_")
        if node.op_type in TREE_OPS:
            plan = _plan(read_ensemble(node))
            _refuse_used_labels(graph, node)
            scores = node.output[1] if node.op_type == "TreeEnsembleClassifier" else node.output[0]
            width = widths.get(node.input[0])
            if width is None:
                raise NotTensorizable(f"the input of {node.op_type} is not a 2-D float tensor with a known width")
            if plan.ensemble.n_features_used > width:
                raise NotTensorizable(f"{node.op_type} reads feature {plan.ensemble.n_features_used - 1} of a "
                                      f"{width}-column input")
            _ensemble_subgraph(builder, plan, node.input[0], width, scores, dtype)
            plans.append(plan)
        else:
            _elementwise_ml(builder, node)
        new_nodes.extend(builder.nodes)
        graph.initializer.extend(builder.inits)
        changed.extend(f"{n.op_type}:{n.name}" for n in builder.nodes)
    del graph.node[:]
    graph.node.extend(new_nodes)
    kept = [op for op in model.opset_import if op.domain != ML_DOMAIN]
    del model.opset_import[:]
    model.opset_import.extend(kept)
    del model.metadata_props[:]
    model.metadata_props.extend([p for p in fp32_model.metadata_props if p.key != "inference_optimizer.graph"])
    model.metadata_props.add(key="inference_optimizer.graph", value=GRAPH)
    del graph.value_info[:]
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:  # a bug here, not the user's: refuse rather than hand it out
        raise NotTensorizable(f"the rewritten graph fails the ONNX checker ({str(e).splitlines()[0][:200]})") from e
    return model, plans, tuple(changed)


def _with_opset(fp32_model: onnx.ModelProto) -> onnx.ModelProto:
    version = max((op.version for op in fp32_model.opset_import if op.domain in ("", "ai.onnx")), default=0)
    model = onnx.ModelProto()
    model.CopyFrom(fp32_model)
    if version >= MIN_OPSET:
        return model
    from onnx import version_converter

    try:
        return version_converter.convert_version(model, UPGRADE_OPSET)
    except Exception as e:
        raise NotTensorizable(f"the graph's ai.onnx opset {version} could not be raised to {UPGRADE_OPSET}, which the "
                              f"tensor graph needs ({type(e).__name__})") from e


def _widths(model: onnx.ModelProto) -> dict[str, int]:
    """Tensor name -> number of columns, for float32 rank-2 tensors whose width shape inference can tell."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:
        inferred = model
    widths = {}
    graph = inferred.graph
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        t = vi.type.tensor_type
        if t.elem_type == TensorProto.FLOAT and t.HasField("shape") and len(t.shape.dim) == 2 \
                and t.shape.dim[1].HasField("dim_value"):
            widths[vi.name] = t.shape.dim[1].dim_value
    for node in graph.node:  # ONNX's shape inference stops at the ai.onnx.ml elementwise ops
        if node.domain == ML_DOMAIN and node.op_type in _ELEMENTWISE_ML and node.input[0] in widths:
            widths.setdefault(node.output[0], widths[node.input[0]])
    return widths


def _refuse_used_labels(graph: onnx.GraphProto, node: onnx.NodeProto) -> None:
    if node.op_type != "TreeEnsembleClassifier" or not node.output[0]:
        return
    label = node.output[0]
    if any(label in n.input for n in graph.node) or any(o.name == label for o in graph.output):
        raise NotTensorizable("the graph uses the TreeEnsembleClassifier's label output, which the tensor graph "
                              "does not compute (it computes the probabilities)")


def _names(graph: onnx.GraphProto) -> set[str]:
    names = {vi.name for vi in list(graph.input) + list(graph.output) + list(graph.value_info)}
    names |= {t.name for t in graph.initializer} | {n.name for n in graph.node}
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
    return names


class _Builder:
    """Nodes and initializers of one rewrite, with names that clash with nothing in the graph."""

    def __init__(self, taken: set[str], prefix: str) -> None:
        self.taken = taken
        self.prefix = prefix
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._count = 0

    def name(self, base: str) -> str:
        name, k = self.prefix + base, 1
        while name in self.taken:
            name, k = f"{self.prefix}{base}_{k}", k + 1
        self.taken.add(name)
        return name

    def const(self, base: str, array: np.ndarray) -> str:
        name = self.name(base)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], base: str | None = None, output: str | None = None,
           **attrs: Any) -> str:
        out = output or self.name(base or op_type.lower())
        self._count += 1  # short node names: a deep traversal has thousands of nodes, and names are bytes in the file
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=self.name(f"n{self._count}"), **attrs))
        return out


def _elementwise_ml(b: _Builder, node: onnx.NodeProto) -> None:
    """Scaler and Imputer (float), as ONNX Runtime computes them."""
    attrs = {a.name: a for a in node.attribute}
    x, y = node.input[0], node.output[0]
    if node.op_type == "Scaler":
        offset = np.asarray(attrs["offset"].floats if "offset" in attrs else [0.0], np.float32)
        scale = np.asarray(attrs["scale"].floats if "scale" in attrs else [1.0], np.float32)
        shifted = b.op("Sub", [x, b.const("offset", offset)])
        b.op("Mul", [shifted, b.const("scale", scale)], output=y)
        return
    values = np.asarray(attrs["imputed_value_floats"].floats if "imputed_value_floats" in attrs else [], np.float32)
    replaced = attrs["replaced_value_float"].f if "replaced_value_float" in attrs else float("nan")
    if values.size == 0 or "imputed_value_int64s" in attrs:
        raise NotTensorizable("an Imputer imputes integers; the tensor graph rewrites float imputers only")
    missing = b.op("IsNaN", [x]) if np.isnan(replaced) else b.op(
        "Equal", [x, b.const("replaced", np.asarray([replaced], np.float32))])
    b.op("Where", [missing, b.const("imputed", values), x], output=y)


# --------------------------------------------------------------------------- one ensemble


@dataclass
class _Table:
    """Per-slot node attributes of a group of nodes evaluated together (a level, or every node)."""

    feature: np.ndarray
    threshold: np.ndarray
    mode: np.ndarray
    nan_true: np.ndarray
    real: np.ndarray  # bool: a branch of a tree (not padding, not a leaf)

    def fill_padding(self, default_mode: int, default_nan: bool) -> None:
        """Give padding slots the most common mode and NaN direction, so fewer masks are needed."""
        real_modes = self.mode[self.real]
        mode = Counter(real_modes.tolist()).most_common(1)[0][0] if real_modes.size else default_mode
        nans = self.nan_true[self.real]
        nan = bool(Counter(nans.tolist()).most_common(1)[0][0]) if nans.size else default_nan
        self.mode[~self.real] = mode
        self.nan_true[~self.real] = nan


@dataclass
class _Leaves:
    """Leaf values laid out for aggregation: per slot a scalar (``columns`` given by tree) or a vector."""

    classes: list[int]
    tree_order: list[int]  # trees in layout order
    tree_column: np.ndarray | None  # scalar layout: each laid-out tree's column in ``classes``
    grouped: bool  # scalar layout with trees interleaved by column: reshape then ReduceSum
    values: dict[int, list[np.ndarray]] = field(default_factory=dict)

    @property
    def scalar(self) -> bool:
        return self.tree_column is not None

    def value(self, tree: Tree, node: int) -> np.ndarray:
        """The leaf's weights: a scalar in the scalar layout, a [K] vector otherwise (duplicates added)."""
        out = np.zeros(1 if self.scalar else len(self.classes), np.float64)
        for cls, w in tree.weights[node]:
            out[0 if self.scalar else self.classes.index(cls)] += w
        return out.astype(np.float32)


def _leaves(ensemble: Ensemble) -> _Leaves:
    classes = ensemble.classes()
    if not classes:
        raise NotTensorizable(f"{ensemble.op_type} has no leaf weights")
    weighted = [i for i, t in enumerate(ensemble.trees) if t.leaf_classes()]
    scalar = all(len(t.leaf_classes()) == 1 and all(len(w) <= 1 for w in t.weights)
                 for t in (ensemble.trees[i] for i in weighted))
    if not scalar:
        return _Leaves(classes, weighted, None, False)
    column = {i: classes.index(next(iter(ensemble.trees[i].leaf_classes()))) for i in weighted}
    per_column = Counter(column.values())
    grouped = len(per_column) == len(classes) and len(set(per_column.values())) == 1
    if grouped:  # round r, column k -> position r * K + k
        queues = {k: [i for i in weighted if column[i] == k] for k in range(len(classes))}
        order = [queues[k][r] for r in range(per_column[0]) for k in range(len(classes))]
    else:
        order = weighted
    return _Leaves(classes, order, np.array([column[i] for i in order]), grouped)


def _ensemble_subgraph(b: _Builder, plan: _Plan, x: str, width: int, scores: str, dtype: str) -> None:
    np_dtype, onnx_dtype = _DTYPES[dtype]
    leaves = _leaves(plan.ensemble)
    if dtype != "float32":
        x = b.op("Cast", [x], "input_" + dtype, to=onnx_dtype)
    ensemble, x = _route_missing(b, plan.ensemble, x, width, np_dtype)
    build = {"gemm": _gemm, "perfect": _perfect, "traversal": _traversal}[plan.strategy]
    sums = build(b, ensemble, leaves, x, np_dtype)  # float32 [N, K]
    if plan.ensemble.average:
        sums = b.op("Div", [sums, b.const("n_trees", np.asarray([len(plan.ensemble.trees)], np.float32))])
    _finalize(b, plan.ensemble, leaves, sums, scores)


def _route_missing(b: _Builder, ensemble: Ensemble, x: str, width: int, np_dtype: Any) -> tuple[Ensemble, str]:
    """Send NaN to the true child through the data instead of per-node masks, where that is exact.

    NaN compares false, so a node whose NaN goes to the false child needs nothing. For ``x <= t`` and ``x < t``
    nodes whose NaN goes to the true child, reading the feature from a copy of the input with NaN replaced by -inf
    gives the same answer (-inf <= t always; -inf < t unless t is -inf, which is checked). Mixed directions read
    from [x, x with NaN as -inf] side by side. Saves IsNaN, a mask Gather, And and Or per level or step.
    """
    branches = [(t.mode[~t.is_leaf], t.nan_true[~t.is_leaf], t.threshold[~t.is_leaf]) for t in ensemble.trees]
    modes = np.concatenate([m for m, _, _ in branches])
    to_true = np.concatenate([n for _, n, _ in branches])
    if not to_true.any():
        return ensemble, x
    with np.errstate(over="ignore"):
        thresholds = np.concatenate([t for _, _, t in branches]).astype(np_dtype)
    if not np.isin(modes, (LT, LEQ)).all() or ((modes == LT) & to_true & (thresholds == -np.inf)).any():
        return ensemble, x  # the per-node masks (exact for every mode) are used instead
    filled = b.op("Where", [b.op("IsNaN", [x], "input_nan"), b.const("minus_inf", np.asarray([-np.inf], np_dtype)),
                            x], "input_nan_true")
    both = not to_true.all()
    routed = b.op("Concat", [x, filled], "input_routed", axis=1) if both else filled
    trees = tuple(replace(t, feature=t.feature + (width * t.nan_true if both else 0),
                          nan_true=np.zeros_like(t.nan_true)) for t in ensemble.trees)
    return replace(ensemble, trees=trees), routed


def _condition(b: _Builder, values: str, table: _Table, index: str | None, np_dtype: Any,
               consts: dict[str, str] | None = None) -> str:
    """Boolean [N, slots]: which rows go to the true child of each slot's node. ``consts`` keeps the table's
    initializers across calls on the same table (the traversal's steps)."""
    consts = {} if consts is None else consts

    def lookup(base: str, array: np.ndarray, short: str = "") -> str:
        if base not in consts:
            consts[base] = b.const(base, array)
        return consts[base] if index is None else b.op("Gather", [consts[base], index], short or base)

    with np.errstate(over="ignore"):  # float16: thresholds beyond its range become infinite (said in the notes)
        thresholds = lookup("thresholds", table.threshold.astype(np_dtype), "thr")
    modes = sorted(set(table.mode.tolist()))
    compared = {}
    for mode in modes:
        compared[mode] = b.op(_COMPARE[mode], [values, thresholds], "cmp")
        if mode == NEQ:
            compared[mode] = b.op("Not", [compared[mode]], "ne")
    if len(modes) == 1:
        cond = compared[modes[0]]
    else:
        parts = [b.op("And", [lookup(f"is_mode{m}", table.mode == m, "mode"), compared[m]], "br") for m in modes]
        cond = parts[0]
        for part in parts[1:]:
            cond = b.op("Or", [cond, part], "br")
    # NaN compares false, so a NaN goes to the false child unless its node tracks missing values as true
    # (NEQ: NaN != t is already true)
    to_true = table.nan_true | (table.mode == NEQ)
    if to_true.any():
        nan = b.op("IsNaN", [values], "nan")
        if not to_true.all():
            nan = b.op("And", [nan, lookup("nan_true", to_true, "nt")], "nt")
        cond = b.op("Or", [cond, nan], "br")
    return cond


def _root_values(b: _Builder, x: str, feature: np.ndarray) -> str:
    return b.op("Gather", [x, b.const("features", feature.astype(np.int32))], "v", axis=1)


def _narrow(array: np.ndarray) -> np.ndarray:
    """Indices stored in the smallest integer type that holds them (the file is what fp16 makes smaller): a
    Gather of them is followed by a Cast to int32."""
    top = int(array.max()) if array.size else 0
    for dtype in (np.uint8, np.int16):
        if top <= np.iinfo(dtype).max and int(array.min(initial=0)) >= 0:
            return array.astype(dtype)
    return array.astype(np.int32)


def _gather_index(b: _Builder, table: str, index: str, narrow: bool, base: str) -> str:
    picked = b.op("Gather", [table, index], base)
    return b.op("Cast", [picked], base + "i", to=TensorProto.INT32) if narrow else picked


def _node_values(b: _Builder, x: str, feature: np.ndarray | tuple[str, bool], index: str) -> str:
    if isinstance(feature, np.ndarray):
        narrowed = _narrow(feature)
        feature = (b.const("features", narrowed), narrowed.dtype != np.int32)
    columns = _gather_index(b, feature[0], index, feature[1], "col")
    return b.op("GatherElements", [x, columns], "v", axis=1)


def _perfect_layout(tree: Tree, depth: int) -> tuple[list[_Table], np.ndarray]:
    """Tree padded to a perfect tree of ``depth``: per level a table of 2^d slots (heap order; slot 2j is the
    false child of j, 2j + 1 its true child) and, at level ``depth``, the tree node of each of the 2^depth leaves."""
    levels = [_Table(np.zeros(2 ** d, np.int64), np.zeros(2 ** d, np.float32), np.zeros(2 ** d, np.int8),
                     np.zeros(2 ** d, bool), np.zeros(2 ** d, bool)) for d in range(depth)]
    leaf_of_slot = np.full(2 ** depth, -1, np.int64)
    stack = [(0, 0, 0)]  # (node, level, slot)
    while stack:
        node, d, j = stack.pop()
        if tree.true_child[node] < 0:
            span = 2 ** (depth - d)
            leaf_of_slot[j * span:(j + 1) * span] = node
            continue
        level = levels[d]
        level.feature[j], level.threshold[j] = tree.feature[node], tree.threshold[node]
        level.mode[j], level.nan_true[j], level.real[j] = tree.mode[node], tree.nan_true[node], True
        stack.append((int(tree.false_child[node]), d + 1, 2 * j))
        stack.append((int(tree.true_child[node]), d + 1, 2 * j + 1))
    return levels, leaf_of_slot


def _concat_tables(tables: list[_Table]) -> _Table:
    return _Table(*(np.concatenate([getattr(t, f) for t in tables])
                    for f in ("feature", "threshold", "mode", "nan_true", "real")))


def _dominant(ensemble: Ensemble) -> tuple[int, bool]:
    modes = Counter(int(m) for t in ensemble.trees for m in t.mode[~t.is_leaf])
    nans = Counter(bool(v) for t in ensemble.trees for v in t.nan_true[~t.is_leaf])
    return (modes.most_common(1)[0][0] if modes else LT), (nans.most_common(1)[0][0] if nans else False)


def _perfect(b: _Builder, ensemble: Ensemble, leaves: _Leaves, x: str, np_dtype: Any) -> str:
    depth = max(ensemble.max_depth, 1)
    trees = [ensemble.trees[i] for i in leaves.tree_order]
    layouts = [_perfect_layout(t, depth) for t in trees]
    mode, nan = _dominant(ensemble)
    index = None
    for d in range(depth):
        table = _concat_tables([levels[d] for levels, _ in layouts])
        table.fill_padding(mode, nan)
        values = _root_values(b, x, table.feature) if d == 0 else _node_values(b, x, table.feature, index)
        cond = b.op("Cast", [_condition(b, values, table, index, np_dtype)], "go", to=TensorProto.INT32)
        base = b.const("first_child", (2 * np.arange(len(trees))).astype(np.int32)) if d == 0 \
            else b.op("Add", [index, index], "fc")
        index = b.op("Add", [base, cond], f"level{d + 1}_")
    slot_values = [np.stack([leaves.value(t, int(n)) for n in leaf_of_slot]) for t, (_, leaf_of_slot)
                   in zip(trees, layouts, strict=True)]
    return _gather_leaves(b, leaves, np.concatenate(slot_values), index, np_dtype, len(trees))


def _traversal(b: _Builder, ensemble: Ensemble, leaves: _Leaves, x: str, np_dtype: Any) -> str:
    trees = [ensemble.trees[i] for i in leaves.tree_order]
    offsets = np.cumsum([0] + [len(t.feature) for t in trees])
    table = _Table(np.concatenate([t.feature for t in trees]), np.concatenate([t.threshold for t in trees]),
                   np.concatenate([t.mode for t in trees]), np.concatenate([t.nan_true for t in trees]),
                   np.concatenate([~t.is_leaf for t in trees]))
    mode, nan = _dominant(ensemble)
    table.fill_padding(mode, nan)
    children = np.empty((int(offsets[-1]), 2), np.int32)  # [false child, true child]; a leaf points at itself
    for t, offset in zip(trees, offsets, strict=False):
        own = np.arange(len(t.feature)) + offset
        children[own, 0] = np.where(t.is_leaf, own, t.false_child + offset)
        children[own, 1] = np.where(t.is_leaf, own, t.true_child + offset)
    narrow_children = _narrow(children.reshape(-1))
    children_const = b.const("children", narrow_children)
    roots = offsets[:-1].astype(np.int32)
    root_table = _Table(*(getattr(table, f)[roots] for f in ("feature", "threshold", "mode", "nan_true", "real")))
    narrow_features = _narrow(table.feature)
    features = (b.const("features", narrow_features), narrow_features.dtype != np.int32)
    consts: dict[str, str] = {}
    index = None
    for step in range(max(ensemble.max_depth, 1)):
        if step == 0:
            cond = _condition(b, _root_values(b, x, root_table.feature), root_table, None, np_dtype)
            base = b.const("root_children", (2 * roots).astype(np.int32))
        else:
            cond = _condition(b, _node_values(b, x, features, index), table, index, np_dtype, consts)
            base = b.op("Add", [index, index], "fc")
        slot = b.op("Add", [base, b.op("Cast", [cond], "go", to=TensorProto.INT32)], "slot")
        index = _gather_index(b, children_const, slot, narrow_children.dtype != np.int32, f"step{step + 1}_")
    node_values = np.stack([leaves.value(t, i) for t in trees for i in range(len(t.feature))])
    return _gather_leaves(b, leaves, node_values, index, np_dtype, len(trees))


def _gather_leaves(b: _Builder, leaves: _Leaves, values: np.ndarray, index: str, np_dtype: Any, n_trees: int) -> str:
    """Sum the reached leaves per column: float32 [N, K]."""
    table = values[:, 0] if leaves.scalar else values
    picked = b.op("Gather", [b.const("leaf_values", table.astype(np_dtype)), index], "leaves")
    if np_dtype != np.float32:
        picked = b.op("Cast", [picked], "leaves_float32", to=TensorProto.FLOAT)
    if not leaves.scalar:  # [N, T, K]
        return b.op("ReduceSum", [picked, b.const("tree_axis", np.asarray([1], np.int64))], "sums", keepdims=0)
    k = len(leaves.classes)
    if k == 1:
        return b.op("ReduceSum", [picked, b.const("tree_axis", np.asarray([1], np.int64))], "sums", keepdims=1)
    if leaves.grouped:
        shaped = b.op("Reshape", [picked, b.const("rounds_shape", np.asarray([0, n_trees // k, k], np.int64))],
                      "by_round")
        return b.op("ReduceSum", [shaped, b.const("round_axis", np.asarray([1], np.int64))], "sums", keepdims=0)
    assert leaves.tree_column is not None
    onehot = np.zeros((n_trees, k), np.float32)
    onehot[np.arange(n_trees), leaves.tree_column] = 1.0
    return b.op("MatMul", [picked, b.const("tree_columns", onehot)], "sums")


def _gemm(b: _Builder, ensemble: Ensemble, leaves: _Leaves, x: str, np_dtype: Any) -> str:
    depth = max(ensemble.max_depth, 1)
    trees = [ensemble.trees[i] for i in leaves.tree_order]
    n_trees, n_inner, n_leaves, k = len(trees), 2 ** depth - 1, 2 ** depth, len(leaves.classes)
    layouts = [_perfect_layout(t, depth) for t in trees]
    table = _concat_tables([_concat_tables(levels) for levels, _ in layouts])  # tree-major, heap order inside
    mode, nan = _dominant(ensemble)
    table.fill_padding(mode, nan)
    cond = _condition(b, _root_values(b, x, table.feature), table, None, np_dtype)
    # the MatMuls run in float32 whatever the variant (0/1 conditions and +-1 paths are exact; ONNX Runtime's CPU
    # provider has no float16 MatMul and crashed on one while creating the session): float16 leaf values are stored
    # as float16 and cast once
    cond = b.op("Cast", [cond], "go_true", to=TensorProto.FLOAT)
    per_tree = b.op("Reshape", [cond, b.const("tree_shape", np.asarray([0, n_trees, n_inner], np.int64))], "by_tree")
    per_tree = b.op("Transpose", [per_tree], "tree_major", perm=[1, 0, 2])  # [T, N, inner]
    # path[i, l]: +1 when leaf l lies under the true child of inner node i, -1 under its false child
    path = np.zeros((n_inner, n_leaves), np.float32)
    for i in range(n_inner):
        d = int(np.floor(np.log2(i + 1)))
        j = i + 1 - 2 ** d
        for leaf in range(n_leaves):
            if leaf >> (depth - d) == j:
                path[i, leaf] = 1.0 if (leaf >> (depth - d - 1)) & 1 else -1.0
    true_turns = np.array([bin(leaf).count("1") for leaf in range(n_leaves)], np.float32)
    score = b.op("MatMul", [per_tree, b.const("paths", path)], "path_score")  # one path matrix for every tree
    reached = b.op("Equal", [score, b.const("true_turns", true_turns)], "reached")
    reached = b.op("Cast", [reached], "reached_float", to=TensorProto.FLOAT)
    values = np.zeros((n_trees, n_leaves, k), np.float32)
    for t, (tree, (_, leaf_of_slot)) in enumerate(zip(trees, layouts, strict=True)):
        for slot, node in enumerate(leaf_of_slot):
            value = leaves.value(tree, int(node))
            if leaves.scalar:
                assert leaves.tree_column is not None
                values[t, slot, leaves.tree_column[t]] = value[0]
            else:
                values[t, slot] = value
    table = b.const("leaf_values", values.astype(np_dtype))
    if np_dtype != np.float32:
        table = b.op("Cast", [table], "leaf_values_float32", to=TensorProto.FLOAT)
    picked = b.op("MatMul", [reached, table], "leaves")  # [T, N, K]
    return b.op("ReduceSum", [picked, b.const("tree_axis", np.asarray([0], np.int64))], "sums", keepdims=0)


def _finalize(b: _Builder, ensemble: Ensemble, leaves: _Leaves, sums: str, scores: str) -> None:
    """ONNX Runtime's base values, binary special cases and post-transform, written into ``scores``."""
    out = ensemble.output
    n = ensemble.n_outputs

    def full() -> str:  # [N, n]: the sums placed in their class columns (zeros elsewhere)
        if leaves.classes == list(range(n)):
            return sums
        placement = np.zeros((len(leaves.classes), n), np.float32)
        placement[np.arange(len(leaves.classes)), leaves.classes] = 1.0
        return b.op("MatMul", [sums, b.const("class_columns", placement)], "by_class")

    def column(matrix: str, k: int) -> str:
        return b.op("Gather", [matrix, b.const("column", np.asarray([k], np.int64))], f"class{k}", axis=1)

    def add(value: str, constant: float | tuple[float, ...]) -> str:
        array = np.asarray(constant if isinstance(constant, tuple) else [constant], np.float32)
        return value if not array.any() else b.op("Add", [value, b.const("base", array)], "with_base")

    def transform(value: str) -> None:
        if out.post_transform == "LOGISTIC":
            b.op("Sigmoid", [value], output=scores)
        elif out.post_transform == "SOFTMAX":
            b.op("Softmax", [value], output=scores, axis=-1)
        else:
            b.op("Identity", [value], output=scores)

    if out.rule == "single":
        b.op("Identity", [add(sums, out.base[0])], output=scores)
    elif out.rule == "transform":
        transform(add(full(), out.base))
    elif out.rule == "binary2":
        matrix = full()
        has0, has1 = out.present
        if out.flip:
            s1 = add(column(matrix, 0), out.base[1])
            s0 = b.op("Neg", [s1], "class0") if has0 else column(matrix, 0)
        else:  # a class no reached leaf weighs: its column of the sums is 0 and stays 0 (no base value)
            s0 = add(column(matrix, 0), out.base[0]) if has0 else column(matrix, 0)
            s1 = add(column(matrix, 1), out.base[1]) if has1 else column(matrix, 1)
        transform(b.op("Concat", [s0, s1], "both", axis=1))
    else:  # binary1
        s = add(column(full(), 0), out.base[0])
        if out.expand == "one_minus":
            pair = [b.op("Sub", [b.const("one", np.asarray([1.0], np.float32)), s], "class0"), s]
        elif out.expand == "logistic":
            pair = [b.op("Sigmoid", [b.op("Neg", [s], "negated")], "class0"), b.op("Sigmoid", [s], "class1")]
        else:  # negate
            pair = [b.op("Neg", [s], "class0"), s]
        b.op("Concat", pair, output=scores, axis=1)


# --------------------------------------------------------------------------- self-check and notes


def _self_check(reference: onnx.ModelProto, tensor: onnx.ModelProto, plans: list[_Plan]) -> None:
    """Run both graphs on probe rows; refuse the tensor graph when they differ."""
    from optimizer_core.environment import import_onnxruntime

    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.log_severity_level = 4  # a failure is raised and reported as the reason
    options.intra_op_num_threads = 1
    try:
        a = ort.InferenceSession(reference.SerializeToString(), options, providers=["CPUExecutionProvider"])
        t = ort.InferenceSession(tensor.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise NotTensorizable(f"ONNX Runtime cannot load the tensor graph ({type(e).__name__}: "
                              f"{str(e).splitlines()[0][:200]})") from e
    feed = a.get_inputs()[0]
    width = feed.shape[-1] if isinstance(feed.shape[-1], int) else max(p.ensemble.n_features_used for p in plans)
    rows = probe_rows(reference, width)
    name, output = feed.name, a.get_outputs()[0].name
    try:
        expected = np.asarray(a.run([output], {name: rows})[0], np.float64)
        got = np.asarray(t.run([output], {name: rows})[0], np.float64)
    except Exception as e:
        raise NotTensorizable(f"the self-check run failed ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from e
    if expected.shape != got.shape:
        raise NotTensorizable(f"the tensor graph returns shape {got.shape}, the TreeEnsemble graph {expected.shape}")
    both_nan = np.isnan(expected) & np.isnan(got)
    diff = np.where(both_nan, 0.0, np.abs(expected - got) / np.maximum(1.0, np.abs(expected)))
    worst = float(np.nanmax(np.where(np.isnan(diff), np.inf, diff))) if diff.size else 0.0
    if worst > SELF_CHECK_TOLERANCE:
        raise NotTensorizable(f"the tensor graph differs from the TreeEnsemble graph by {worst:.2g} on probe rows, "
                              "so it is not handed out")


def probe_rows(model: onnx.ModelProto, width: int, rows: int = PROBE_ROWS, seed: int = 0) -> np.ndarray:
    """Rows whose values sit on, just above and just below the thresholds of the trees that read the graph input
    directly, mixed with NaN and random values, so both children of most nodes and every NaN route are taken."""
    rng = np.random.default_rng(seed)
    graph_input = model.graph.input[0].name
    candidates: list[list[float]] = [[0.0, -1.0, 1.0] for _ in range(width)]
    for node in model.graph.node:
        if node.domain != ML_DOMAIN or node.op_type not in TREE_OPS or node.input[0] != graph_input:
            continue
        for tree in read_ensemble(node).trees:
            for f, t in zip(tree.feature[~tree.is_leaf], tree.threshold[~tree.is_leaf], strict=True):
                if f < width:
                    candidates[f] += [float(t), float(np.nextafter(t, np.float32(np.inf))),
                                      float(np.nextafter(t, np.float32(-np.inf)))]
    X = rng.standard_normal((rows, width)).astype(np.float32) * 3
    for f in range(width):
        pool = np.asarray(candidates[f], np.float32)
        pick = rng.random(rows) < 0.7
        X[pick, f] = rng.choice(pool, size=int(pick.sum()))
    X[rng.random((rows, width)) < 0.1] = np.nan
    X[0] = np.nan
    return X


def _float16_note(plans: list[_Plan]) -> str:
    thresholds = np.concatenate([t.threshold[~t.is_leaf] for p in plans for t in p.ensemble.trees])
    weights = np.asarray([w for p in plans for t in p.ensemble.trees for ws in t.weights for _, w in ws], np.float32)
    with np.errstate(over="ignore"):
        rounded = thresholds.astype(np.float16).astype(np.float32)
        leaf_error = np.abs(weights.astype(np.float16).astype(np.float32) - weights) if weights.size else np.zeros(1)
    moved = int(np.count_nonzero(rounded != thresholds))
    beyond = int(np.count_nonzero(np.abs(thresholds) > FLOAT16_MAX))
    note = (f"float16: inputs, {thresholds.size:,} thresholds and {weights.size:,} leaf values are rounded to float16 "
            f"and compared in float16 ({moved:,} thresholds changed value")
    if beyond:
        note += f", {beyond:,} beyond float16's range ±{FLOAT16_MAX:g} became infinite"
    note += (f"; leaf values moved by at most {float(leaf_error.max()):.2g}); the trees' sums, base values and the "
             "final transform stay float32; a feature value beyond ±65504 becomes infinite before it is compared")
    return note


__all__ = ["CPU_CAVEAT", "CPU_REASON", "GRAPH", "NotTensorizable", "TensorGraph", "applicability", "build", "graph_kind", "has_tree_ensemble",
           "probe_rows"]
