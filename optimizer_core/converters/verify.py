"""Check a converted ONNX model against the native model without the user's data.

``convert`` writes a file that users deploy without measuring it, so before it is written the graph is
loaded in ONNX Runtime (a graph ORT refuses is an error) and its scores are compared with the native
model's on seeded synthetic rows (a difference is a warning: the rows are not the user's data, and
``inference-optimizer run`` measures drift on real rows).

Thresholds: a faithful float32 conversion differs from the native model by about 1e-7 in probability
and 1e-7 relative for regressors on in-range data (the run pipeline expects 1e-5 on real rows).
Synthetic rows lie partly outside the training range, where float32 rounding grows (saturated
exp/softmax, sums of many trees, large linear terms), hence a 10x-100x margin: 1e-4 absolute for
probabilities, 1e-3 relative for predictions. Converter bugs of the kind QA found differ far more (a
wrong post-transform: 0.15; a nearest-point lookup instead of interpolation: 0.14).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx

from optimizer_core.errors import ConversionError, UnsupportedModelError, describe_ort_error
from optimizer_core.models.base import LoadedModel

__all__ = ["verify_conversion", "synthetic_rows", "PROBABILITY_ATOL", "REGRESSION_RTOL"]

PROBABILITY_ATOL = 1e-4
REGRESSION_RTOL = 1e-3
# Standard-normal rows, then wider non-negative ones (for models that refuse negative inputs). Wider still
# is not useful: float32 distances then reorder k-NN neighbours, a rounding effect rather than a bug.
_SCALES = ((1.0, False), (10.0, True))


def verify_conversion(model: LoadedModel, proto: onnx.ModelProto, rows: int = 256) -> list[str]:
    """Load ``proto`` in ONNX Runtime (CPU) and compare its scores with ``model.predict_scores`` on
    ``rows`` seeded synthetic rows. Returns warnings (empty when the file matches); raises
    ``ConversionError`` when ONNX Runtime cannot load or run it, or it returns another shape. A row where
    the class its scores imply (argmax) is not the native model's own label (``LoadedModel.check_labels``)
    is a warning too."""
    session = _session(proto, model.estimator)
    worst, checked = 0.0, 0
    compared: list[tuple[np.ndarray, np.ndarray]] = []  # (rows, ONNX scores) for the label check
    for X in _synthetic_rows(model, rows):
        native = _native_scores(model, X)
        if native is None:  # the native model refuses these rows (e.g. negative inputs): not a verdict
            continue
        scores = _onnx_scores(session, X, model.estimator)
        if scores.shape != native.shape:
            raise ConversionError(
                f"the ONNX file converted from {model.estimator} returns scores of shape {list(scores.shape)} "
                f"where the native model gives {list(native.shape)}: it is not usable as written; report it, "
                "or export the model to ONNX yourself"
            )
        compared.append((X, scores))
        worst = max(worst, _difference(native, scores, _relative(model)))
        checked += X.shape[0]
    return _warnings(model, worst, checked) + _label_warnings(model, compared)


def _label_warnings(model: LoadedModel, compared: list[tuple[np.ndarray, np.ndarray]]) -> list[str]:
    """Where the class the file's scores imply (argmax) is not the native model's own label: a warning, as
    for scores, since synthetic rows are not the user's (far from the data an SVC's one-vs-one votes tie
    on many rows); ``inference-optimizer run`` refuses when it happens on a row of the data."""
    if not compared:
        return []
    try:
        model.check_labels(np.vstack([x for x, _ in compared]), np.vstack([s for _, s in compared]),
                           rows_are="synthetic row")
    except UnsupportedModelError as e:
        return [f"{e} (seen on synthetic rows; `inference-optimizer run` checks every row of your data and refuses "
                "if it happens there)"]
    return []


def _relative(model: LoadedModel) -> bool:
    """Differences are relative to the scores' size for regressors and for decision scores (unbounded,
    their float32 rounding grows with them); absolute for probabilities."""
    return model.task == "regression" or model.decision_scores


def _session(proto: onnx.ModelProto, estimator: str) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4  # failures surface as exceptions; ORT's own log would repeat them
    options.intra_op_num_threads = 1
    try:
        return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ConversionError(
            f"ONNX Runtime cannot load the ONNX graph converted from {estimator} ({describe_ort_error(e)}): "
            "the converter produced an invalid graph for this model; refit it with default settings for "
            "the parameter named there, or export it to ONNX yourself"
        ) from e


def synthetic_rows(model: LoadedModel, rows: int) -> list[np.ndarray]:
    """The seeded synthetic rows the self-check uses, in blocks (see ``_synthetic_rows``)."""
    return _synthetic_rows(model, rows)


def _synthetic_rows(model: LoadedModel, rows: int) -> list[np.ndarray]:
    """Seeded blocks of rows (float32 values, so native and ONNX see the same numbers); categorical
    columns get small whole-number codes, as the models expect."""
    rng = np.random.default_rng(0)
    categories = _category_values(model)
    blocks = []
    for i, (scale, non_negative) in enumerate(_SCALES):
        per_block = max(1, (rows + i) // len(_SCALES))  # the blocks add up to ``rows``
        X = rng.standard_normal((per_block, model.n_features)) * scale
        if non_negative:
            X = np.abs(X)
        for column, values in categories.items():
            X[:, column] = rng.choice(values, per_block)
        blocks.append(X.astype(np.float32))
    return blocks


def _category_values(model: LoadedModel) -> dict[int, np.ndarray]:
    """Column -> values to draw from, for columns that hold category codes (any other value is an unknown
    category, which the native model and ONNX may treat apart)."""
    codes = {column: np.arange(8, dtype=np.float64) for column in model.categorical_features}
    if model.family == "sklearn":
        from optimizer_core.models.sklearn import encoder_categories

        codes |= {c: v for c, v in encoder_categories(model.native, model.n_features, model.feature_names).items()
                  if v.size}
    return codes


def _native_scores(model: LoadedModel, X: np.ndarray) -> np.ndarray | None:
    try:
        scores = model.predict_scores(X)
    except Exception:  # noqa: BLE001 - any refusal of synthetic rows only means "cannot compare here"
        return None
    return scores if np.all(np.isfinite(scores)) else None


def _onnx_scores(session: Any, X: np.ndarray, estimator: str) -> np.ndarray:
    inp = session.get_inputs()[0]
    dtype = np.float64 if "double" in inp.type else np.float32
    try:
        out = session.run(["scores"], {inp.name: X.astype(dtype)})[0]
    except Exception as e:
        raise ConversionError(
            f"ONNX Runtime fails to run the ONNX graph converted from {estimator} ({describe_ort_error(e)}): "
            "report it, or export the model to ONNX yourself"
        ) from e
    return np.asarray(out, dtype=np.float64)


def _difference(native: np.ndarray, scores: np.ndarray, relative: bool) -> float:
    """Largest absolute difference (probabilities) or difference relative to the scores' size
    (regressors and decision scores, as drift.relative_scale measures it); NaN on the ONNX side only is
    infinite."""
    from optimizer_core.drift import per_sample_abs_diff, relative_scale

    per_row = per_sample_abs_diff(native, scores)
    if relative:
        per_row = per_row / relative_scale(native)
    return float(per_row.max())


def _warnings(model: LoadedModel, worst: float, checked: int) -> list[str]:
    if checked == 0:
        return [f"the ONNX file was not compared with {model.estimator}: the native model refused every "
                "synthetic row; measure it on real data with `inference-optimizer run`"]
    relative = _relative(model)
    if worst <= (REGRESSION_RTOL if relative else PROBABILITY_ATOL):
        return []
    if not np.isfinite(worst):
        how = "returns NaN or infinity where the native model does not"
    else:
        how = f"differs from the native model by up to {worst:.2g}"
        if relative:
            how += " (relative to the predictions)" if model.task == "regression" else " (relative to the decision scores)"
        else:
            how += " (probability)"
    return [f"the ONNX file {how} on {checked} synthetic rows: measure it on real data with "
            "`inference-optimizer run`"]
