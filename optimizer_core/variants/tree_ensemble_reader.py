"""Read an ``ai.onnx.ml`` TreeEnsembleClassifier / TreeEnsembleRegressor node into plain arrays, with the
meaning ONNX Runtime's CPU kernel gives it (the kernel the verified fp32 graph was checked against).

What ONNX Runtime does, and this module records (``tree_ensemble_common.h``, ``tree_ensemble_aggregator.h``,
``ml_common.h``):

* a branch sends a row to its true child when ``x <mode> threshold`` holds, or when x is NaN and the node's
  ``nodes_missing_value_tracks_true`` is set; x and the threshold are compared as float32;
* each tree is entered at its first node in attribute order; a leaf adds its weights to the classes (targets)
  they name; SUM adds the trees up, AVERAGE divides the sum by the number of trees;
* base values, the post-transform and the binary special cases are applied as ``Output`` describes.

Anything this module cannot reproduce exactly raises ``NotTensorizable`` naming the reason, so a caller never
builds a graph that means something else than the file.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

TREE_OPS = ("TreeEnsembleClassifier", "TreeEnsembleRegressor")
ML_DOMAIN = "ai.onnx.ml"

# Branch modes after normalization: GTE and GT are rewritten as LT and LEQ with their children swapped.
LEQ, LT, EQ, NEQ = 0, 1, 2, 3
MODE_NAMES = {LEQ: "x <= threshold", LT: "x < threshold", EQ: "x == threshold", NEQ: "x != threshold"}
_MODES = {"BRANCH_LEQ": (LEQ, False), "BRANCH_LT": (LT, False), "BRANCH_GTE": (LT, True),
          "BRANCH_GT": (LEQ, True), "BRANCH_EQ": (EQ, False), "BRANCH_NEQ": (NEQ, False)}


class NotTensorizable(Exception):
    """The tree ensemble (or the graph around it) cannot be rewritten exactly; ``str()`` says why."""


@dataclass(frozen=True)
class Tree:
    """One tree, nodes numbered breadth-first from the root (0). Leaves have ``true_child == false_child == -1``."""

    feature: np.ndarray  # int64 [n]
    threshold: np.ndarray  # float32 [n]
    mode: np.ndarray  # int8 [n]: LEQ, LT, EQ or NEQ (leaves: 0)
    nan_true: np.ndarray  # bool [n]: a NaN goes to the true child
    true_child: np.ndarray  # int64 [n]
    false_child: np.ndarray  # int64 [n]
    depth: np.ndarray  # int64 [n], root 0
    weights: tuple[tuple[tuple[int, float], ...], ...]  # per node: (class or target, weight) pairs (leaves only)

    @property
    def is_leaf(self) -> np.ndarray:
        return self.true_child < 0

    @property
    def max_depth(self) -> int:
        return int(self.depth.max())

    def leaf_classes(self) -> set[int]:
        return {c for w in self.weights for c, _ in w}


@dataclass(frozen=True)
class Output:
    """How ONNX Runtime turns the per-class sums ``S`` (trees added up, then AVERAGE applied) into scores.

    ``rule`` is one of
      "transform": scores = post(S + base) over every column (``base`` padded with zeros);
      "single":    regressor with one target: scores = S + base[0] (ONNX Runtime applies no post-transform
                   other than PROBIT there);
      "binary2":   two classes, two columns: c1 = S0 + b1 when ``flip`` else S1 + b1, c0 = -c1 when ``flip`` else
                   S0 + b0, and a column whose class no leaf weighs (``present``) is 0; scores = post([c0, c1]);
      "binary1":   two classes, one column s = S0 + b0 expanded to two by ``expand``:
                   "logistic" [sigmoid(-s), sigmoid(s)]; "one_minus" [1 - s, s]; "negate" [-s, s].
    These are ONNX Runtime 1.32's results, checked against its kernel by tests/core/test_tensor_trees.py.
    """

    rule: str
    post_transform: str  # NONE, LOGISTIC, SOFTMAX
    base: tuple[float, ...] = ()
    flip: bool = False
    expand: str = ""
    present: tuple[bool, ...] = ()  # binary2: whether each class column is weighed by the leaves rows reach


@dataclass(frozen=True)
class Ensemble:
    op_type: str
    n_outputs: int  # classes (classifier) or targets (regressor)
    trees: tuple[Tree, ...]
    average: bool  # AVERAGE aggregation: the sum is divided by len(trees)
    output: Output
    n_features_used: int  # 1 + the largest feature index a branch reads

    @property
    def max_depth(self) -> int:
        return max(t.max_depth for t in self.trees)

    @property
    def n_nodes(self) -> int:
        return sum(len(t.feature) for t in self.trees)

    def modes(self) -> set[int]:
        return {int(m) for t in self.trees for m in t.mode[~t.is_leaf]}

    def classes(self) -> list[int]:
        """The classes (targets) that leaves carry weights for, in order."""
        return sorted(set().union(*(t.leaf_classes() for t in self.trees)))


def read_ensemble(node: onnx.NodeProto) -> Ensemble:
    """The trees of ``node`` and ONNX Runtime's output rule for them, or NotTensorizable with the reason."""
    if node.op_type not in TREE_OPS or node.domain != ML_DOMAIN:
        raise NotTensorizable(f"{node.op_type} is not a TreeEnsembleClassifier/TreeEnsembleRegressor node")
    attrs = {a.name: a for a in node.attribute}
    classifier = node.op_type == "TreeEnsembleClassifier"
    prefix = "class" if classifier else "target"
    for name in ("nodes_values_as_tensor", "nodes_hitrates_as_tensor", f"{prefix}_weights_as_tensor",
                 "base_values_as_tensor"):
        if name in attrs and numpy_helper.to_array(attrs[name].t).dtype != np.float32:
            raise NotTensorizable(f"{node.op_type} stores {name} in double precision; the tensor graph compares "
                                  "in float32 like the fp32 variant (the fp64 variant covers double precision)")
    tree_ids = _ints(attrs, "nodes_treeids")
    n = len(tree_ids)
    node_ids = _ints(attrs, "nodes_nodeids")
    features = _ints(attrs, "nodes_featureids")
    modes = [m.decode() for m in attrs["nodes_modes"].strings] if "nodes_modes" in attrs else []
    values = _floats(attrs, "nodes_values")
    true_ids, false_ids = _ints(attrs, "nodes_truenodeids"), _ints(attrs, "nodes_falsenodeids")
    missing = _ints(attrs, "nodes_missing_value_tracks_true") or [0] * n
    if n == 0 or any(len(a) != n for a in (node_ids, features, modes, values, true_ids, false_ids, missing)):
        raise NotTensorizable(f"{node.op_type}'s node attributes have different lengths or are empty")
    unknown = sorted(set(modes) - set(_MODES) - {"LEAF"})
    if unknown:
        raise NotTensorizable(f"{node.op_type} uses node mode {unknown[0]}, which the tensor graph does not implement")
    w_trees, w_nodes = _ints(attrs, f"{prefix}_treeids"), _ints(attrs, f"{prefix}_nodeids")
    w_ids, w_values = _ints(attrs, f"{prefix}_ids"), _floats(attrs, f"{prefix}_weights")
    if not (len(w_trees) == len(w_nodes) == len(w_ids) == len(w_values)):
        raise NotTensorizable(f"{node.op_type}'s weight attributes have different lengths")

    position = {}
    for i, key in enumerate(zip(tree_ids, node_ids, strict=True)):
        if key in position:
            raise NotTensorizable(f"{node.op_type} lists node {key[1]} of tree {key[0]} twice")
        position[key] = i
    weights: dict[int, list[tuple[int, float]]] = {}
    for t, nid, cls, w in zip(w_trees, w_nodes, w_ids, w_values, strict=True):
        if (t, nid) not in position:
            raise NotTensorizable(f"{node.op_type} gives a weight to node {nid} of tree {t}, which does not exist")
        weights.setdefault(position[(t, nid)], []).append((cls, float(np.float32(w))))

    columns = NodeColumns(features, modes, values, true_ids, false_ids, missing, weights)
    roots = list(dict.fromkeys(tree_ids))  # ONNX Runtime enters each tree at its first node in attribute order
    first = {t: i for i, t in reversed(list(enumerate(tree_ids)))}
    sizes = Counter(tree_ids)
    trees = tuple(_tree(node.op_type, t, first[t], sizes[t], position, columns) for t in roots)

    n_outputs = _n_outputs(node.op_type, attrs)
    bad = [c for t in trees for c in t.leaf_classes() if not 0 <= c < n_outputs]
    if bad:
        raise NotTensorizable(f"{node.op_type} gives weights to {prefix} {bad[0]}, outside 0..{n_outputs - 1}")
    aggregate = attrs["aggregate_function"].s.decode() if "aggregate_function" in attrs else "SUM"
    if aggregate not in ("SUM", "AVERAGE"):
        raise NotTensorizable(f"{node.op_type} aggregates its trees with {aggregate}; the tensor graph "
                              "implements SUM and AVERAGE")
    post = attrs["post_transform"].s.decode() if "post_transform" in attrs else "NONE"
    base = tuple(float(np.float32(v)) for v in _floats(attrs, "base_values"))
    if "base_values_as_tensor" in attrs:
        base = tuple(float(v) for v in numpy_helper.to_array(attrs["base_values_as_tensor"].t).ravel())
    if classifier:
        output = _classifier_output(node.op_type, trees, n_outputs, post, base, w_ids, w_values)
    else:
        output = _regressor_output(node.op_type, trees, n_outputs, post, base)
    used = max((int(t.feature[~t.is_leaf].max()) for t in trees if (~t.is_leaf).any()), default=-1)
    return Ensemble(node.op_type, n_outputs, trees, aggregate == "AVERAGE", output, used + 1)


@dataclass(frozen=True)
class NodeColumns:
    """The node attributes of a TreeEnsemble node, column by column (attribute order)."""

    features: list[int]
    modes: list[str]
    values: list[float]
    true_ids: list[int]
    false_ids: list[int]
    missing: list[int]
    weights: dict[int, list[tuple[int, float]]]


MAX_UNSHARED_GROWTH = 16  # a tree whose shared subtrees copy out to more nodes than this many times its own is refused


def _tree(op_type: str, tree_id: int, root: int, own: int, position: dict[tuple[int, int], int],
          c: NodeColumns) -> Tree:
    """Tree ``tree_id`` (``own`` nodes) renumbered breadth-first from ``root`` (positions are attribute indices).

    A node reached from two parents (onnxmltools writes a LightGBM categorical split as a chain of BRANCH_EQ nodes
    sharing one subtree) is copied once per parent, so the result is a tree that routes every row as the graph did.
    """
    limit = max(1024, MAX_UNSHARED_GROWTH * own)
    order: list[int] = []  # attribute index of each local node
    depth: list[int] = []
    queue = deque([(root, 0, -1, 0)])  # (attribute index, depth, parent's local number, 0 true / 1 false)
    links: list[tuple[int, int, int]] = []
    while queue:
        i, d, parent, side = queue.popleft()
        k = len(order)
        if k >= limit or d > own:
            raise NotTensorizable(f"{op_type}: tree {tree_id} has a cycle or shares subtrees too often to be "
                                  "copied out into a tree")
        order.append(i)
        depth.append(d)
        if parent >= 0:
            links.append((parent, side, k))
        if c.modes[i] == "LEAF":
            continue
        for side_, child_id in enumerate((c.true_ids[i], c.false_ids[i])):
            child = position.get((tree_id, child_id))
            if child is None:
                raise NotTensorizable(f"{op_type}: node {child_id} of tree {tree_id} is a child but does not exist")
            queue.append((child, d + 1, k, side_))
    n = len(order)
    own_children = np.full((n, 2), -1, np.int64)
    for parent, side, k in links:
        own_children[parent, side] = k
    feature = np.zeros(n, np.int64)
    threshold = np.zeros(n, np.float32)
    mode = np.zeros(n, np.int8)
    nan_true = np.zeros(n, bool)
    true_child = np.full(n, -1, np.int64)
    false_child = np.full(n, -1, np.int64)
    weights: list[tuple[tuple[int, float], ...]] = []
    for k, i in enumerate(order):
        leaf_weights = tuple(c.weights.get(i, ()))
        if c.modes[i] == "LEAF":
            weights.append(leaf_weights)
            continue
        if leaf_weights:
            raise NotTensorizable(f"{op_type} gives weights to branch node {i} of tree {tree_id}; "
                                  "only leaves carry weights in the tensor graph")
        weights.append(())
        code, swap = _MODES[c.modes[i]]
        feature[k] = c.features[i]
        threshold[k] = np.float32(c.values[i])
        mode[k] = code
        nan_true[k] = bool(c.missing[i]) != swap  # GTE/GT: the swapped children swap the NaN direction too
        t_child, f_child = own_children[k]
        true_child[k], false_child[k] = (f_child, t_child) if swap else (t_child, f_child)
    if (feature < 0).any():
        raise NotTensorizable(f"{op_type} reads a negative feature index in tree {tree_id}")
    return Tree(feature, threshold, mode, nan_true, true_child, false_child, np.asarray(depth, np.int64),
                tuple(weights))


def _n_outputs(op_type: str, attrs: dict[str, onnx.AttributeProto]) -> int:
    if op_type == "TreeEnsembleClassifier":
        labels = attrs.get("classlabels_int64s") or attrs.get("classlabels_strings")
        n = len(labels.ints or labels.strings) if labels is not None else 0
        if n < 2:
            raise NotTensorizable(f"{op_type} has {n} class label(s); the tensor graph needs two or more")
        return n
    n = attrs["n_targets"].i if "n_targets" in attrs else 1
    if n < 1:
        raise NotTensorizable(f"{op_type} declares n_targets={n}")
    return n


def _classifier_output(op_type: str, trees: tuple[Tree, ...], n_classes: int, post: str, base: tuple[float, ...],
                       class_ids: list[int], class_weights: list[float]) -> Output:
    if post not in ("NONE", "LOGISTIC", "SOFTMAX"):
        raise NotTensorizable(f"{op_type} uses post_transform {post}; the tensor graph implements NONE, "
                              "LOGISTIC and SOFTMAX")
    if len(base) > n_classes:
        raise NotTensorizable(f"{op_type} has {len(base)} base values for {n_classes} classes")
    if n_classes > 2:
        return Output("transform", post, base + (0.0,) * (n_classes - len(base)))
    # Two classes: what ONNX Runtime writes depends on whether a row reached a leaf weighted for class 0 / 1
    # (a class no reached leaf weighs is written as 0), and on the single-weight-column "binary case".
    has1 = _presence(op_type, trees, 1)
    if has1 or len(base) == 2:
        has0 = _presence(op_type, trees, 0)
        b0, b1 = (base + (0.0, 0.0))[:2]
        return Output("binary2", post, (b0, b1), flip=has1 and len(base) == 2, present=(has0, has1))
    if not _presence(op_type, trees, 0):
        raise NotTensorizable(f"{op_type} has no leaf weights")
    binary_case = len(set(class_ids)) == 1
    if post == "LOGISTIC":
        expand = "logistic"
    elif binary_case:
        expand = "one_minus" if all(w >= 0 for w in class_weights) else "negate"
    else:
        raise NotTensorizable(f"{op_type}'s two-class output with these weights is written as a single column")
    return Output("binary1", post, (base[0] if base else 0.0,), expand=expand)


def _presence(op_type: str, trees: tuple[Tree, ...], cls: int) -> bool:
    """Whether every row reaches a leaf weighted for ``cls`` (True) or none does (False); refuses when it
    depends on the row, since ONNX Runtime's output differs between the two cases."""
    if any(all(any(c == cls for c, _ in t.weights[i]) for i in np.flatnonzero(t.is_leaf)) for t in trees):
        return True
    if not any(cls in t.leaf_classes() for t in trees):
        return False
    raise NotTensorizable(f"{op_type}: whether a row reaches a leaf weighted for output {cls} depends on the row, "
                          "and ONNX Runtime's output changes with it; the tensor graph does not reproduce that")


def _regressor_output(op_type: str, trees: tuple[Tree, ...], n_targets: int, post: str,
                      base: tuple[float, ...]) -> Output:
    if n_targets == 1:
        if post == "PROBIT":
            raise NotTensorizable(f"{op_type} uses post_transform PROBIT, whose approximation the tensor graph "
                                  "does not reproduce")
        return Output("single", "NONE", (base[0] if len(base) == 1 else 0.0,))
    if post not in ("NONE", "LOGISTIC", "SOFTMAX"):
        raise NotTensorizable(f"{op_type} uses post_transform {post}; the tensor graph implements NONE, "
                              "LOGISTIC and SOFTMAX")
    base = base if len(base) == n_targets else (0.0,) * n_targets
    # a target no reached leaf weighs is written as 0 (its base value is not added)
    return Output("transform", post, tuple(b if _presence(op_type, trees, k) else 0.0 for k, b in enumerate(base)))


def _ints(attrs: dict[str, onnx.AttributeProto], name: str) -> list[int]:
    return list(attrs[name].ints) if name in attrs else []


def _floats(attrs: dict[str, onnx.AttributeProto], name: str) -> list[float]:
    if name in attrs:
        return list(attrs[name].floats)
    tensor_name = f"{name}_as_tensor"
    if tensor_name in attrs:
        return [float(v) for v in numpy_helper.to_array(attrs[tensor_name].t).ravel()]
    return []
