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
    classifiers (binary too), predictions ``[N, 1]`` for regressors, as float64. A classifier whose scores
    are not probabilities (an SVM's or a linear model's decision values) has ``decision_scores``: the
    columns are still one per class, in the classes' order, and their argmax is the model's class.

    ``label_predictor``, when set, gives the class the model itself outputs (an ONNX file's label output,
    scikit-learn's ``predict``) where that can differ from the argmax of the scores; ``check_labels``
    refuses when they differ (see ``models.labels``). ``score_columns`` says how the file's raw score
    output was arranged into those columns (ONNX files only; the converter applies the same).
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
    decision_scores: bool = False
    label_predictor: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False, compare=False)
    label_source: str = "its label output"  # how messages name what label_predictor returns
    label_cause: str = ""  # why the model's labels can differ from the argmax of its scores, and what to do
    score_columns: str = "as-is"  # models.labels.Columns
    # the category values the model file stores for those columns (LightGBM pandas_categorical, XGBoost 3.1+)
    stored_categories: StoredCategories | None = field(default=None, repr=False, compare=False)
    # the model file as the user named it (a path, or load_model's name=); None for objects and unnamed bytes
    source_name: str | None = field(default=None, compare=False)

    @property
    def scores_kind(self) -> str:
        """What the scores are: "probabilities", "decision" (scores) or "predictions" (regressors)."""
        if self.task == "regression":
            return "predictions"
        return "decision" if self.decision_scores else "probabilities"

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

    def check_labels(self, X: np.ndarray, scores: np.ndarray, *, first_row: int = 0,
                     rows_are: str = "data row") -> None:
        """Refuse (``UnsupportedModelError``) when the argmax of ``scores`` (this model's, or a conversion's)
        is not the class the model itself outputs for ``X`` on some row; nothing to check without a
        ``label_predictor``."""
        if self.label_predictor is None or self.classes is None or not len(X):
            return
        from optimizer_core.models.labels import check_agreement

        step = 65_536  # bounded calls, one verdict over all rows
        labels = np.concatenate([np.asarray(self.label_predictor(X[i:i + step])).reshape(-1)
                                 for i in range(0, len(X), step)])
        check_agreement(labels, np.asarray(scores).reshape(len(X), -1), self.classes,
                        name=self.estimator, label_source=self.label_source, first_row=first_row,
                        rows_are=rows_are, cause=self.label_cause)

    def describe(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "estimator": self.estimator,
            "task": self.task,
            "scores": self.scores_kind,
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
