"""The loaded-model contract every family module returns."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from optimizer_core.errors import InputError

if TYPE_CHECKING:
    from optimizer_core.categories import StoredCategories

Task = Literal["binary", "multiclass", "regression"]
Family = Literal["xgboost", "lightgbm", "sklearn", "onnx"]


@dataclass(frozen=True)
class LoadedModel:
    """A model read from a file or taken from memory, ready to predict natively.

    ``predict_scores`` follows the ONNX output contract: class probabilities ``[N, n_classes]`` for
    classifiers (binary too), predictions ``[N, 1]`` for regressors, as float64.
    """

    family: Family
    estimator: str
    task: Task
    n_features: int
    feature_names: tuple[str, ...] | None
    classes: tuple[Any, ...] | None
    format: str
    source_bytes: int
    source_sha256: str
    native: Any = field(repr=False, compare=False)
    predictor: Callable[[np.ndarray], np.ndarray] = field(repr=False, compare=False)
    notes: tuple[str, ...] = ()
    categorical_features: tuple[int, ...] = ()  # input columns that hold category codes (trees split by set)
    # the category values the model file stores for those columns (LightGBM pandas_categorical, XGBoost 3.1+)
    stored_categories: StoredCategories | None = field(default=None, repr=False, compare=False)

    @property
    def n_classes(self) -> int | None:
        return None if self.classes is None else len(self.classes)

    @property
    def n_outputs(self) -> int:
        return 1 if self.task == "regression" else len(self.classes or ())

    def predict_scores(self, X: np.ndarray) -> np.ndarray:
        """Native prediction in the output contract (float64, 2-D).

        Refuses category codes that are not whole numbers: the native library truncates them while the
        ONNX tree operators compare them as numbers, so such rows drift with no visible cause.
        """
        if self.categorical_features:
            check_category_codes(X, self.categorical_features, self.feature_names)
        out = np.asarray(self.predictor(X), dtype=np.float64)
        if out.ndim == 1:
            out = out.reshape(-1, 1)
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "estimator": self.estimator,
            "task": self.task,
            "n_features": self.n_features,
            "n_classes": self.n_classes,
            "feature_names": list(self.feature_names) if self.feature_names else None,
            "classes": [c.item() if hasattr(c, "item") else c for c in self.classes] if self.classes else None,
            "format": self.format,
            "source_bytes": self.source_bytes,
            "source_sha256": self.source_sha256,
        }


def check_category_codes(X: np.ndarray, columns: Sequence[int], feature_names: Sequence[str] | None) -> None:
    """Raise ``InputError`` naming the categorical columns of ``X`` that hold values other than whole
    numbers (missing values are fine)."""
    bad = []
    for column in columns:
        values = np.asarray(X[:, column], dtype=np.float64)
        fractional = values[np.isfinite(values) & (values != np.floor(values))]
        if fractional.size:
            name = repr(feature_names[column]) if feature_names else str(column + 1)
            bad.append(f"{name} (e.g. {fractional[0]:g})")
    if bad:
        several = len(bad) > 1
        raise InputError(
            f"categorical column{'s' if several else ''} {', '.join(bad)} hold{'' if several else 's'} values "
            "that are not whole numbers: categorical features take the integer category codes the model was "
            "trained with; fix those values in the data"
        )
