"""LightGBM -> a float64 tree-ensemble graph (the fp64 variant), from the model's own dump.

LightGBM stores thresholds and leaf values as float64 and compares float64 feature values with them; the
float32 graph onnxmltools writes rounds the thresholds, so on real float64 data a row whose value lies between a
threshold and its float32 rounding takes the other branch. This graph keeps every number as LightGBM has it and
routes missing values as ``Tree::NumericalDecision`` does: with missing type NaN a NaN follows ``default_left``;
with missing type None a NaN is read as 0 (so it goes left when 0 <= threshold). Scores follow the objective's
``ConvertOutput``: sigmoid(sigmoid * score) (binary, multiclassova), softmax (multiclass), sigmoid
(cross_entropy), exp (poisson, gamma, tweedie), identity (the other regressions); random forests
(``average_output``) divide the sum by the number of iterations.

Not built (the float32 graph stays the only one): categorical splits, linear trees, zero-as-missing splits,
``reg_sqrt`` and ``cross_entropy_lambda`` (the float32 converter refuses the last four as well).
"""

from __future__ import annotations

from typing import Any

import onnx

from optimizer_core.converters.double_trees import Output, Tree, tree_ensemble_graph
from optimizer_core.errors import UnsupportedModelError
from optimizer_core.models import lightgbm as lgb_family
from optimizer_core.models.base import LoadedModel

_EXP_OBJECTIVES = frozenset({"poisson", "gamma", "tweedie"})
_IDENTITY_OBJECTIVES = frozenset({"regression", "regression_l1", "huber", "fair", "quantile", "mape"})


def double_support(model: LoadedModel) -> tuple[bool, str]:
    """Whether this graph can reproduce the model in float64, and why not when it cannot."""
    header = lgb_family.header_of(model.native)
    if header.categorical_features:
        return False, (f"{model.estimator} splits {len(header.categorical_features)} feature(s) by category; the "
                       "float64 graph only builds numerical splits, so fp32 is the only variant")
    text = lgb_family.model_text(model.native)
    if "\nis_linear=1" in text:
        return False, f"{model.estimator} uses linear trees, which no ONNX tree operator holds"
    objective = header.objective or ""
    if "sqrt" in header.objective_flags or objective == "cross_entropy_lambda":
        return False, f"{model.estimator}'s objective ({objective}) has no exact float64 graph here"
    if objective not in _EXP_OBJECTIVES | _IDENTITY_OBJECTIVES | {"binary", "multiclass", "multiclassova",
                                                                   "cross_entropy"}:
        return False, f"LightGBM objective {objective!r} has no float64 graph here"
    return True, ("a float64 tree graph built from LightGBM's own trees: thresholds, leaf values and sums in "
                  "float64, as LightGBM compares and adds them")


def to_onnx_double(model: LoadedModel) -> tuple[onnx.ModelProto, str]:
    """The float64 graph and its scores tensor; ``UnsupportedModelError`` when ``double_support`` says no."""
    ok, reason = double_support(model)
    if not ok:
        raise UnsupportedModelError(reason)
    booster = lgb_family.booster_of(model.native)
    header = lgb_family.header_of(model.native)
    dump = booster.dump_model(num_iteration=lgb_family.prediction_iterations(model.native))
    per_iteration = int(dump["num_tree_per_iteration"])
    trees = [_tree(info["tree_structure"], index % per_iteration, model.estimator)
             for index, info in enumerate(dump["tree_info"])]
    iterations = len(trees) // per_iteration
    return tree_ensemble_graph(trees, model.n_features, _output(header, per_iteration, iterations))


def _output(header: lgb_family.ModelHeader, per_iteration: int, iterations: int) -> Output:
    objective = header.objective or ""
    scale = float(header.objective_params.get("sigmoid", "1"))
    divide = float(iterations) if header.average_output else None
    if objective == "binary":
        return Output("binary", 1, divide, scale=scale)
    if objective == "multiclass":
        return Output("softmax", per_iteration, divide)
    if objective == "multiclassova":
        return Output("sigmoid", per_iteration, divide, scale=scale)
    if objective == "cross_entropy":
        return Output("sigmoid", 1, divide)
    if objective in _EXP_OBJECTIVES:
        return Output("exp", 1, divide)
    return Output("identity", 1, divide)


def _tree(structure: dict[str, Any], target: int, estimator: str) -> Tree:
    tree = Tree(target=target)
    if "split_index" not in structure:
        tree.add_leaf(structure["leaf_value"])
        return tree
    stack: list[tuple[dict[str, Any], int | None, bool]] = [(structure, None, True)]  # (node, parent, true side)
    while stack:  # iterative: a deep tree cannot overflow Python's stack
        node, parent, true_side = stack.pop()
        if "split_index" in node:
            if node.get("decision_type") != "<=":
                raise UnsupportedModelError(f"{estimator} has a categorical split, which the float64 graph does "
                                            "not build")
            threshold = float(node["threshold"])
            missing = node.get("missing_type", "None")
            if missing == "NaN":
                nan_left = bool(node.get("default_left"))
            elif missing == "None":
                nan_left = threshold >= 0.0  # LightGBM reads a NaN as 0 on such a split
            else:
                raise UnsupportedModelError(f"{estimator} treats zeros as missing, which ONNX tree operators do not")
            child: tuple[bool, int] = (False, tree.add_node(int(node["split_feature"]), threshold, nan_left))
            stack.append((node["right_child"], child[1], False))
            stack.append((node["left_child"], child[1], True))
        else:
            child = tree.add_leaf(node["leaf_value"])
        if parent is not None:
            (tree.true_child if true_side else tree.false_child)[parent] = child
    return tree


__all__ = ["double_support", "to_onnx_double"]
