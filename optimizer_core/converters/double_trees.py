"""Double-precision tree-ensemble graphs, built directly from a model's own trees.

onnxmltools and skl2onnx write tree thresholds and leaf values as float32 attributes, so their graphs compare
every feature with a threshold rounded to float32. Libraries that compare in float64 (LightGBM, scikit-learn's
HistGradientBoosting) then disagree on rows whose value falls between a threshold and its rounding. The
``ai.onnx.ml`` ``TreeEnsemble`` operator (opset 5) takes thresholds and leaf weights as tensors of the input's
type: with float64 input it compares, sums and outputs in float64, as the native library does.

A family adapter turns its model into :class:`Tree` objects (exact float64 thresholds, NaN routing, one target
per tree) and an :class:`Output` (how raw sums become scores); :func:`tree_ensemble_graph` builds the graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ML_OPSET = 5  # TreeEnsemble with typed tensors (ONNX Runtime >= 1.19)
AI_ONNX_OPSET = 21
_BRANCH_LEQ = 0
_SUM = 1


@dataclass
class Tree:
    """One tree as parallel lists: internal nodes (``x[feature] <= threshold`` goes to the true child) and leaves.

    Children are ``(is_leaf, index)`` into this tree's nodes or leaves; ``missing_true``: a NaN goes to the true
    child. A tree without internal nodes holds one leaf.
    """

    target: int = 0
    features: list[int] = field(default_factory=list)
    thresholds: list[float] = field(default_factory=list)
    missing_true: list[bool] = field(default_factory=list)
    true_child: list[tuple[bool, int]] = field(default_factory=list)
    false_child: list[tuple[bool, int]] = field(default_factory=list)
    leaves: list[float] = field(default_factory=list)

    def add_leaf(self, value: float) -> tuple[bool, int]:
        self.leaves.append(float(value))
        return True, len(self.leaves) - 1

    def add_node(self, feature: int, threshold: float, missing_true: bool) -> int:
        """A node whose children are set later (``true_child[i]``, ``false_child[i]``)."""
        self.features.append(int(feature))
        self.thresholds.append(float(threshold))
        self.missing_true.append(bool(missing_true))
        self.true_child.append((True, -1))
        self.false_child.append((True, -1))
        return len(self.features) - 1


@dataclass(frozen=True)
class Output:
    """How the summed leaf values become the scores of the output contract.

    ``transform``: "identity", "exp", "sigmoid" (each column), "binary" (sigmoid, then [1 - p, p]) or "softmax".
    ``divide_by``: averaged ensembles (random forests) divide the sum by this before anything else; ``base``: a
    value per target added to the sum (scikit-learn's baseline prediction); ``scale``: multiplies the sum before
    a sigmoid (LightGBM's ``sigmoid`` parameter).
    """

    transform: str
    n_targets: int = 1
    divide_by: float | None = None
    base: tuple[float, ...] | None = None
    scale: float = 1.0


def tree_ensemble_graph(trees: list[Tree], n_features: int, output: Output) -> tuple[onnx.ModelProto, str]:
    """A float64 graph: input ``input [N, n_features]``, returns the model and its scores tensor's name."""
    nodes_featureids: list[int] = []
    nodes_splits: list[float] = []
    nodes_missing: list[int] = []
    true_ids: list[int] = []
    true_leafs: list[int] = []
    false_ids: list[int] = []
    false_leafs: list[int] = []
    leaf_targets: list[int] = []
    leaf_weights: list[float] = []
    roots: list[int] = []
    for tree in trees:
        node_base, leaf_base = len(nodes_featureids), len(leaf_weights)
        if not tree.features:  # a single leaf: a node every row passes through (x <= +inf, NaN too) to it
            if len(tree.leaves) != 1:
                raise ValueError("a tree without nodes must hold exactly one leaf")
            tree = Tree(tree.target, [0], [np.inf], [True], [(True, 0)], [(True, 0)], tree.leaves)
        roots.append(node_base)
        for i, feature in enumerate(tree.features):
            nodes_featureids.append(feature)
            nodes_splits.append(tree.thresholds[i])
            nodes_missing.append(int(tree.missing_true[i]))
            for (is_leaf, index), ids, leafs in ((tree.true_child[i], true_ids, true_leafs),
                                                 (tree.false_child[i], false_ids, false_leafs)):
                if index < 0:
                    raise ValueError("a tree node has a child that was never set")
                ids.append(index + (leaf_base if is_leaf else node_base))
                leafs.append(int(is_leaf))
        leaf_targets += [tree.target] * len(tree.leaves)
        leaf_weights += tree.leaves
    ensemble = helper.make_node(
        "TreeEnsemble", ["input"], ["raw_sum"], domain="ai.onnx.ml", name="tree_ensemble_float64",
        aggregate_function=_SUM, post_transform=0, n_targets=output.n_targets, tree_roots=roots,
        nodes_featureids=nodes_featureids,
        nodes_modes=numpy_helper.from_array(np.full(len(nodes_featureids), _BRANCH_LEQ, dtype=np.uint8)),
        nodes_splits=numpy_helper.from_array(np.asarray(nodes_splits, dtype=np.float64)),
        nodes_truenodeids=true_ids, nodes_trueleafs=true_leafs, nodes_falsenodeids=false_ids,
        nodes_falseleafs=false_leafs, nodes_missing_value_tracks_true=nodes_missing,
        leaf_targetids=leaf_targets, leaf_weights=numpy_helper.from_array(np.asarray(leaf_weights, dtype=np.float64)),
    )
    graph_nodes = [ensemble]
    initializers: list[onnx.TensorProto] = []
    current = "raw_sum"

    def constant(name: str, values: list[float]) -> str:
        initializers.append(numpy_helper.from_array(np.asarray(values, dtype=np.float64).reshape(1, -1), name))
        return name

    def step(op: str, inputs: list[str], out: str, **attrs: object) -> str:
        graph_nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    if output.divide_by is not None:
        current = step("Div", [current, constant("tree_count", [output.divide_by])], "averaged")
    if output.base is not None:
        current = step("Add", [current, constant("baseline", list(output.base))], "with_baseline")
    if output.transform in ("sigmoid", "binary") and output.scale != 1.0:
        current = step("Mul", [current, constant("sigmoid_scale", [output.scale])], "scaled")
    if output.transform == "exp":
        current = step("Exp", [current], "predictions")
    elif output.transform in ("sigmoid", "binary"):
        current = step("Sigmoid", [current], "probability")
        if output.transform == "binary":
            other = step("Sub", [constant("one", [1.0]), current], "probability_negative")
            current = step("Concat", [other, current], "probabilities", axis=1)
    elif output.transform == "softmax":
        current = step("Softmax", [current], "probabilities", axis=1)
    elif output.transform != "identity":
        raise ValueError(f"unknown output transform {output.transform!r}")
    width = 2 if output.transform == "binary" else output.n_targets
    graph = helper.make_graph(
        graph_nodes, "tree_ensemble_float64",
        [helper.make_tensor_value_info("input", TensorProto.DOUBLE, [None, n_features])],
        [helper.make_tensor_value_info(current, TensorProto.DOUBLE, [None, width])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", AI_ONNX_OPSET),
                                                    helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
                              producer_name="inference-optimizer")
    model.ir_version = 10  # what ai.onnx 21 needs; ONNX Runtime 1.19+ reads it
    return model, current


__all__ = ["Tree", "Output", "tree_ensemble_graph"]
