"""The loaded-model contract every family module returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

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

    @property
    def n_classes(self) -> int | None:
        return None if self.classes is None else len(self.classes)

    @property
    def n_outputs(self) -> int:
        return 1 if self.task == "regression" else len(self.classes or ())

    def predict_scores(self, X: np.ndarray) -> np.ndarray:
        """Native prediction in the output contract (float64, 2-D)."""
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
