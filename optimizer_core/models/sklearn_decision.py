"""scikit-learn classifiers without ``predict_proba``: their decision scores, read as they are.

An SVC without ``probability=True``, a LinearSVC, an SGDClassifier with hinge loss, a RidgeClassifier or a
Perceptron has only ``decision_function``. Its scores are kept one column per class, in the classes' order,
so that their argmax is the model's class: a binary ``decision_function`` ``d`` (positive: the second class)
becomes ``[-d, d]``, as the ONNX graph of the same model is arranged (``converters.sklearn``). Drift is
measured on these values as they are; probability metrics are left out (``drift.metrics_with_notes``).
``predict`` is the model's own class, checked against the argmax (``LoadedModel.check_labels``); classifiers
with ``predict_proba`` get the same check (``label_predictor``, ``label_cause``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from optimizer_core.errors import UnsupportedModelError

__all__ = ["check_decision_shape", "decision_predictor", "label_predictor", "label_cause", "decision_note"]


def check_decision_shape(final: Any, n_classes: int, name: str) -> None:
    """Refuse a multiclass decision function with one value per pair of classes (SVC's 'ovo' shape)."""
    if n_classes > 2 and getattr(final, "decision_function_shape", "ovr") == "ovo":
        raise UnsupportedModelError(
            f"{name} has decision_function_shape='ovo': its decision_function gives one value per pair of classes, "
            "not one per class; set model.set_params(decision_function_shape='ovr') (no refit needed) and save "
            "it again"
        )


def decision_predictor(obj: Any, as_input: Callable[[np.ndarray], Any]) -> Callable[[np.ndarray], np.ndarray]:
    def predict(X: np.ndarray) -> np.ndarray:
        d = np.asarray(obj.decision_function(as_input(X)), dtype=np.float64)
        if d.ndim == 1 or d.shape[1] == 1:
            d = d.reshape(-1, 1)
            return np.hstack([-d, d])
        return d

    return predict


def label_predictor(obj: Any, as_input: Callable[[np.ndarray], Any]) -> Callable[[np.ndarray], np.ndarray]:
    return lambda X: np.asarray(obj.predict(as_input(X))).reshape(-1)


def label_cause(final: Any, classes: Sequence[Any]) -> str:
    """Why ``predict`` can differ from the argmax of the scores (``decision_function``, or ``predict_proba`` for
    a classifier that has it), and the fix, when known."""
    from sklearn.svm import SVC, NuSVC

    if isinstance(final, SVC | NuSVC) and getattr(final, "probability", False) is True:  # 1.9: "deprecated"
        return (": an SVC's predict comes from its decision function and its predict_proba from Platt scaling "
                "(a separate fit), which disagree near the class boundaries, so flips and accuracy by the argmax "
                "would describe another decision than predict's; refit with probability=False (its decision "
                "scores are judged), or wrap it in CalibratedClassifierCV(SVC(...), ensemble=False), whose predict "
                "is the argmax of its probabilities")
    if isinstance(final, SVC | NuSVC) and len(classes) > 2 and not final.break_ties:
        return (": an SVC's predict breaks ties between one-vs-one votes by class order while its per-class "
                "decision_function breaks them by confidence; set model.set_params(break_ties=True) (no refit "
                "needed: predict is then the argmax of decision_function) and save it again")
    return ""


def decision_note(final: Any, advice: str) -> str:
    return (f"{type(final).__name__} has no predict_proba: its scores are decision values, whose drift is measured "
            f"as they are, and probability metrics (log loss) are left out; for probabilities, {advice}")
