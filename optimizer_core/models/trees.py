"""Tree ensembles counted and cut natively: what a truncated-ensemble variant keeps, and the native model it
must match.

Each family module that holds tree ensembles exposes ``ensemble(model) -> Ensemble`` (raising
``UnsupportedModelError`` with the reason when the model cannot be cut) and ``truncate(model, ensemble, k) ->
Truncated``: the first ``k`` boosting rounds (or forest trees) as the family's own library computes them
(XGBoost ``iteration_range``, LightGBM ``num_iteration``, scikit-learn ``estimators_[:k]``), wrapped as a
``LoadedModel`` that the family's converter turns into ONNX like any other model.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Literal

from optimizer_core.errors import UnsupportedModelError
from optimizer_core.models.base import LoadedModel

Unit = Literal["rounds", "trees"]

_FAMILIES = {
    "xgboost": "optimizer_core.models.xgboost",
    "lightgbm": "optimizer_core.models.lightgbm",
    "sklearn": "optimizer_core.models.sklearn",
}


@dataclass(frozen=True)
class Ensemble:
    """How a tree ensemble is counted: truncation keeps a prefix of ``total`` units."""

    total: int  # boosting rounds (or forest trees) the native prediction uses
    unit: Unit  # "rounds" for boosting, "trees" for forests (averaged)
    trees_per_unit: int  # trees in one round: one per class (multiclass) times parallel trees; 1 for forests
    library: str  # "XGBoost", "LightGBM", "scikit-learn"

    def describe(self, k: int) -> str:
        """'the first 100 of 200 boosting rounds (300 of 600 trees: 3 per round)'."""
        if self.unit == "trees":
            return f"the first {k:,} of {self.total:,} trees (the average over the kept trees)"
        text = f"the first {k:,} of {self.total:,} boosting rounds"
        if self.trees_per_unit > 1:
            text += (f" ({k * self.trees_per_unit:,} of {self.total * self.trees_per_unit:,} trees: "
                     f"{self.trees_per_unit} per round)")
        return text


@dataclass(frozen=True)
class Truncated:
    """The first ``k`` units of a model, natively: ``loaded`` predicts as the native library does with ``k``
    (its predictor is the reference a truncated ONNX graph is verified against) and converts like any model."""

    loaded: LoadedModel
    kept: int
    reference: str  # how the native library computes it, in words: "XGBoost's iteration_range=(0, 100)"
    native_code: str  # Python that predicts with the same trees natively


def ensemble_of(model: LoadedModel) -> Ensemble:
    """How ``model`` is counted for truncation; ``UnsupportedModelError`` naming why it cannot be cut."""
    module = _module(model)
    found: Ensemble = module.ensemble(model)
    if found.total < 2:
        what = "boosting round" if found.unit == "rounds" else "tree"
        raise UnsupportedModelError(
            f"{model.estimator} has a single {what}"
            + (f" of {found.trees_per_unit} trees" if found.trees_per_unit > 1 else "")
            + f": there is nothing to cut ({found.library} predicts with whole rounds only)"
        )
    return found


def truncate(model: LoadedModel, ensemble: Ensemble, k: int) -> Truncated:
    """The first ``k`` units of ``model`` (1 <= k < total), as the family's own library computes them."""
    if not 1 <= k < ensemble.total:
        raise ValueError(f"k={k} is outside 1..{ensemble.total - 1}")
    return _module(model).truncate(model, ensemble, k)


def _module(model: LoadedModel):
    name = _FAMILIES.get(model.family)
    if name is None:
        raise UnsupportedModelError(
            f"{model.estimator} is an ONNX file: its trees cannot be cut and checked against a native library "
            "(pass the original XGBoost, LightGBM or scikit-learn model to get truncated variants)"
        )
    return importlib.import_module(name)


__all__ = ["Ensemble", "Truncated", "ensemble_of", "truncate"]
