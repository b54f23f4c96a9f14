"""Reference models built in code from seeded synthetic data, so every run measures the same models.

Each builder returns ``(fitted estimator, X)`` where ``X`` holds float32 test rows the model never saw.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

N_FEATURES = 25
TRAIN_ROWS = 5_000
TEST_ROWS = 10_000
SEED = 0


def _classification(n_features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=TRAIN_ROWS + TEST_ROWS, n_features=n_features, n_informative=15,
                               n_redundant=5, random_state=seed)
    return X.astype(np.float32), y


def synthetic_data(n_features: int = N_FEATURES, seed: int = SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded binary classification data: ``(X_train, y_train, X_test)``, float32 features."""
    X, y = _classification(n_features, seed)
    return X[:TRAIN_ROWS], y[:TRAIN_ROWS], np.ascontiguousarray(X[TRAIN_ROWS:])


def synthetic_test_labels(n_features: int = N_FEATURES, seed: int = SEED) -> np.ndarray:
    """The labels of ``synthetic_data``'s test rows, for metrics."""
    return _classification(n_features, seed)[1][TRAIN_ROWS:]


def xgboost_model() -> tuple[Any, np.ndarray]:
    from xgboost import XGBClassifier

    X, y, X_test = synthetic_data()
    model = XGBClassifier(n_estimators=200, max_depth=6, learning_rate=0.1, random_state=SEED)
    return model.fit(X, y), X_test


def lightgbm_model() -> tuple[Any, np.ndarray]:
    from lightgbm import LGBMClassifier

    X, y, X_test = synthetic_data()
    model = LGBMClassifier(n_estimators=200, num_leaves=63, learning_rate=0.1, random_state=SEED, verbose=-1)
    return model.fit(X, y), X_test


def random_forest_model() -> tuple[Any, np.ndarray]:
    from sklearn.ensemble import RandomForestClassifier

    X, y, X_test = synthetic_data()
    # n_jobs=-1 as users usually train it; predict_proba then uses every core, as the ONNX session does
    model = RandomForestClassifier(n_estimators=100, n_jobs=-1, random_state=SEED)
    return model.fit(X, y), X_test


def mlp_model() -> tuple[Any, np.ndarray]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    X, y, X_test = synthetic_data()
    model = MLPClassifier(hidden_layer_sizes=(256, 256), max_iter=5, random_state=SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a few epochs are enough to time it
        model.fit(X, y)
    return model, X_test


def logistic_model() -> tuple[Any, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    X, y, X_test = synthetic_data()
    return LogisticRegression(max_iter=1000).fit(X, y), X_test


@dataclass(frozen=True)
class Reference:
    key: str
    title: str
    family: str  # xgboost | lightgbm | sklearn
    build: Callable[[], tuple[Any, np.ndarray]]


REFERENCE_MODELS: dict[str, Reference] = {
    ref.key: ref
    for ref in (
        Reference("xgboost", "XGBoost 200 trees depth 6", "xgboost", xgboost_model),
        Reference("lightgbm", "LightGBM 200 trees 63 leaves", "lightgbm", lightgbm_model),
        Reference("random_forest", "RandomForest 100 trees", "sklearn", random_forest_model),
        Reference("mlp", "MLP 256x256", "sklearn", mlp_model),
        Reference("logistic", "LogisticRegression", "sklearn", logistic_model),
    )
}
