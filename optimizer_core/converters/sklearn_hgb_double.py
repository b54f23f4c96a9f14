"""scikit-learn HistGradientBoosting -> a float64 tree-ensemble graph (the fp64 variant), from its predictors.

HistGradientBoosting predicts on float64 features against float64 thresholds (``num_threshold``); skl2onnx
writes them as float32, so rows between a threshold and its rounding take the other branch. This graph keeps
every number in float64 and routes a NaN as the predictor does (``missing_go_to_left``), adds the baseline
prediction to the sum of the trees and applies the loss's inverse link: identity (squared, absolute, quantile
errors), exp (Poisson, gamma), expit then [1 - p, p] (binary), softmax (multiclass).

Built for the estimator itself (not inside a pipeline, whose other steps skl2onnx converts) without categorical
splits (refused for every precision by the sklearn converter).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx

from optimizer_core.converters.double_trees import Output, Tree, tree_ensemble_graph
from optimizer_core.errors import UnsupportedModelError
from optimizer_core.models.base import LoadedModel

_NAMES = ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor")
_LINKS = {"IdentityLink": "identity", "LogLink": "exp", "LogitLink": "binary", "MultinomialLogit": "softmax"}


def is_bare_hist_gradient_boosting(obj: Any) -> bool:
    return type(obj).__name__ in _NAMES and type(obj).__module__.startswith("sklearn.ensemble.")


def double_support(model: LoadedModel) -> tuple[bool, str]:
    link = type(getattr(model.native._loss, "link", None)).__name__
    if link not in _LINKS:
        return False, f"{model.estimator}'s loss ({type(model.native._loss).__name__}) has no float64 graph here"
    return True, ("a float64 tree graph built from HistGradientBoosting's own predictors: thresholds, leaf values "
                  "and sums in float64, as scikit-learn compares and adds them")


def to_onnx_double(model: LoadedModel) -> tuple[onnx.ModelProto, str]:
    ok, reason = double_support(model)
    if not ok:
        raise UnsupportedModelError(reason)
    est = model.native
    trees = [_tree(predictor.nodes, target)
             for iteration in est._predictors for target, predictor in enumerate(iteration)]
    base = tuple(float(v) for v in np.ravel(est._baseline_prediction))
    transform = _LINKS[type(est._loss.link).__name__]
    return tree_ensemble_graph(trees, model.n_features, Output(transform, len(base), base=base))


def _tree(nodes: np.ndarray, target: int) -> Tree:
    tree = Tree(target=target)
    if nodes[0]["is_leaf"]:
        tree.add_leaf(nodes[0]["value"])
        return tree
    placed: dict[int, tuple[bool, int]] = {}
    order = [0]
    for index in order:  # breadth first over the predictor's node array
        node = nodes[index]
        if node["is_leaf"]:
            placed[index] = tree.add_leaf(node["value"])
            continue
        if node["is_categorical"]:
            raise UnsupportedModelError("HistGradientBoosting with categorical splits has no float64 graph")
        placed[index] = (False, tree.add_node(int(node["feature_idx"]), float(node["num_threshold"]),
                                              bool(node["missing_go_to_left"])))
        order += [int(node["left"]), int(node["right"])]
    for index, (is_leaf, position) in placed.items():
        if not is_leaf:
            tree.true_child[position] = placed[int(nodes[index]["left"])]
            tree.false_child[position] = placed[int(nodes[index]["right"])]
    return tree


__all__ = ["double_support", "to_onnx_double", "is_bare_hist_gradient_boosting"]
