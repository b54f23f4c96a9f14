"""The per-batch work of a validation, the same in every engine: native scores and the ONNX file's scores
for a block of rows, compared as a run compares them, folded into a ``Partial``.

A ``Scorer`` is built from the two files' bytes, so a worker on another machine rebuilds it exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from optimizer_core import data as tables
from optimizer_core.data import encode_target
from optimizer_core.errors import InputError, OptimizerError, UnsupportedModelError, describe_ort_error
from optimizer_core.models import LoadedModel, load_model
from optimizer_core.validation.aggregate import Partial, TargetCounts
from optimizer_core.validation.sources import Block, DataFile, WorkUnit, read_unit


@dataclass(frozen=True)
class Job:
    """What every worker needs, besides the two files' bytes: small enough to send to each of them."""

    model_name: str
    onnx_name: str
    files: tuple[DataFile, ...]
    target: str | None
    batch_rows: int
    allow_pickle: bool = False


def onnx_columns(native: LoadedModel, onnx: LoadedModel, onnx_name: str) -> np.ndarray | None:
    """Refuse an ONNX file made from another model: different feature count, task, classes or (as the
    converter records them) feature names. Returns the order of the native feature columns the ONNX file
    takes (None: the same order)."""
    described = f"{native.estimator} ({native.task}, {native.n_features} features)"
    if onnx.n_features != native.n_features:
        raise UnsupportedModelError(f"{onnx_name} takes {onnx.n_features} features but the model takes "
                                    f"{native.n_features}: it was made from another model than {described}")
    if onnx.task != native.task:
        raise UnsupportedModelError(f"{onnx_name} is a {onnx.task} model but the model is {described}: it was made "
                                    "from another model")
    if onnx.n_outputs != native.n_outputs:
        raise UnsupportedModelError(f"{onnx_name} scores {onnx.n_outputs} classes but the model has "
                                    f"{native.n_outputs}: it was made from another model than {described}")
    if _labels_known(onnx) and native.classes is not None and _plain(onnx.classes) != _plain(native.classes):
        raise UnsupportedModelError(f"{onnx_name} scores the classes {_plain(onnx.classes)} but the model's are "
                                    f"{_plain(native.classes)}: it was made from another model than {described}")
    if onnx.feature_names is None or native.feature_names is None:
        return None
    if list(onnx.feature_names) == list(native.feature_names):
        return None
    if sorted(onnx.feature_names) != sorted(native.feature_names):
        missing = [n for n in onnx.feature_names if n not in native.feature_names][:3]
        raise UnsupportedModelError(f"{onnx_name} was converted from a model with other features ({', '.join(missing)}"
                                    f"{', ...' if len(missing) == 3 else ''} are not the model's): it was made from "
                                    f"another model than {described}")
    position = {name: i for i, name in enumerate(native.feature_names)}
    return np.array([position[name] for name in onnx.feature_names])  # the same features in its own order


def _labels_known(onnx: LoadedModel) -> bool:
    """Whether the ONNX file names its classes (metadata or its classifier's labels), rather than the 0..n-1
    a file without labels gets."""
    return onnx.classes is not None and list(onnx.classes) != list(range(len(onnx.classes)))


def _plain(classes: Sequence[Any] | None) -> list[str]:
    return [str(c.item() if hasattr(c, "item") else c) for c in classes or ()]


# ONNX Runtime's intra-op threads in every engine: a tree ensemble's float32 sums depend on how its trees are
# split among threads (1 and 2 threads differ in the last bit on 10% of rows), so every session has one thread;
# the local engine uses its cores by running slices of a batch on that session side by side.
ONNX_THREADS = 1
_MIN_SLICE_ROWS = 4096


class Scorer:
    """The native model and one ONNX Runtime session over the ONNX file, scoring blocks of rows."""

    def __init__(self, model_bytes: bytes, onnx_bytes: bytes, job: Job, *, concurrency: int = 1,
                 loaded: tuple[LoadedModel, LoadedModel] | None = None):
        """``concurrency``: slices of a batch the one-thread ONNX Runtime session runs at once; ``loaded``: the
        native and ONNX models already loaded from these bytes (saves loading them twice in one process)."""
        self.job = job
        if loaded is None:
            loaded = (load_model(model_bytes, allow_pickle=job.allow_pickle, name=job.model_name),
                      load_onnx(onnx_bytes, job.onnx_name))
        self.native, self.onnx = loaded
        self.columns = onnx_columns(self.native, self.onnx, job.onnx_name)
        self.onnx_predict = labelled_onnx_predictor(self.onnx, ONNX_THREADS)
        self.concurrency = max(1, concurrency)
        self.pool = None
        if self.concurrency > 1:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="onnx-slice")
        self.classes = self.native.classes

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None

    def _predict_onnx(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The session over ``X`` (scores, and the file's label output or None), in slices side by side when
        there are several cores to use (ONNX Runtime releases the GIL; each row's scores do not depend on the
        slice it is in)."""
        slices = min(self.concurrency, X.shape[0] // _MIN_SLICE_ROWS)
        if self.pool is None or slices < 2:
            scores, labels = self.onnx_predict(X)
            return _as_scores(scores), labels
        parts = list(self.pool.map(self.onnx_predict, np.array_split(X, slices)))
        labels = None if parts[0][1] is None else np.concatenate([p[1] for p in parts])
        return np.concatenate([_as_scores(p[0]) for p in parts]), labels

    def score_unit(self, unit: WorkUnit, on_rows: Callable[[int], None] | None = None) -> Partial:
        """The unit's rows scored and compared; InputError naming the file and row when they cannot be.
        ``on_rows(n)`` is told the rows of the unit scored so far."""
        file = self.job.files[unit.file_index]
        tolerant: frozenset[str] = frozenset()
        while True:
            partial = Partial.empty(self.native.task, self.native.n_outputs, file.target is not None)
            try:
                for block in read_unit(file, unit, self.job.batch_rows, tolerant, self.native.stored_categories):
                    self._score_block(partial, file, unit.file_index, block)
                    if on_rows is not None:
                        on_rows(block.first_row + block.X.shape[0] - unit.first_row)
                return partial
            except tables.CsvRetry as retry:
                tolerant = retry.tolerant

    def _score_block(self, partial: Partial, file: DataFile, file_index: int, block: Block) -> None:
        from optimizer_core.pipeline import predict_native

        X = block.X
        try:
            native = predict_native(self.native, X, first_row=block.first_row)
        except InputError as e:
            raise InputError(f"{file.display}, data rows {block.first_row + 1:,} to {block.first_row + X.shape[0]:,}: "
                             f"{e}") from e
        except UnsupportedModelError as e:  # its predict and the argmax of its scores differ (check_labels)
            raise UnsupportedModelError(f"{self.job.model_name} on {file.display}: {e}") from e
        onnx = self._onnx_scores(X, file, block.first_row)
        y_index = y_values = target = None
        if block.y is not None:
            y_index, y_values, target = self._target(block.y, file, block.first_row)
        partial.add(file_index, block.first_row, native, onnx, y_index=y_index, y_values=y_values, target=target)

    def _onnx_scores(self, X: np.ndarray, file: DataFile, first_row: int) -> np.ndarray:
        try:
            scores, labels = self._predict_onnx(X if self.columns is None else X[:, self.columns])
        except OptimizerError:
            raise
        except Exception as e:
            raise InputError(f"ONNX Runtime failed on {file.display}, data rows {first_row + 1:,} to "
                             f"{first_row + X.shape[0]:,} ({describe_ort_error(e)})") from e
        if labels is not None and self.onnx.classes is not None and len(labels):
            # the rule run applies to an ONNX file: the argmax of its scores is its own label on every row
            from optimizer_core.models.labels import check_agreement

            try:
                check_agreement(labels, scores, self.onnx.classes, name=self.onnx.estimator,
                                label_source=self.onnx.label_source, first_row=first_row,
                                cause=self.onnx.label_cause)
            except UnsupportedModelError as e:
                raise UnsupportedModelError(f"{self.job.onnx_name} on {file.display}: {e}") from e
        return scores

    def _target(self, y: np.ndarray, file: DataFile, first_row: int
                ) -> tuple[np.ndarray | None, np.ndarray | None, TargetCounts]:
        if self.native.task == "regression":
            tables.check_regression_target(y, file.target or "the target", file.display, first_row)
            values = np.asarray(y, dtype=np.float64)
            missing = np.isnan(values)
            return None, values, TargetCounts(y.size, int(missing.sum()), infinite=int(np.isinf(values).sum()))
        index, missing = encode_labels(y, self.classes)
        unknown = (index < 0) & ~missing
        examples = tuple(sorted({str(v) for v in y[unknown]}))[:5]
        return index, None, TargetCounts(y.size, int(missing.sum()), int(unknown.sum()), 0, examples)


def _as_scores(scores: Any) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    return scores.reshape(-1, 1) if scores.ndim == 1 else scores


def encode_labels(y: np.ndarray, classes: Sequence[Any] | None) -> tuple[np.ndarray, np.ndarray]:
    """``data.encode_target(y, classes)`` (class index per row, -1 unknown or missing) and the missing rows,
    computed once per distinct value instead of once per row. Values equal to each other but written
    differently (1, 1.0, True) share a bucket: when the bucket's value is not itself a class key, its rows are
    encoded one by one, so the answer is always the run's."""
    import pandas as pd

    from optimizer_core.data import _label_keys

    y = np.asarray(y, dtype=object)
    codes, uniques = pd.factorize(y, use_na_sentinel=True)
    uniques = np.asarray(uniques, dtype=object)
    index = np.full(y.shape[0], -1, dtype=np.int64)
    missing = codes < 0
    if uniques.size == 0:
        return index, missing
    per_value = encode_target(uniques, classes)
    index[~missing] = per_value[codes[~missing]]
    keys = {key for c in classes or () for key in _label_keys(c)}
    unsure = np.array([not _hashable_in(u, keys) for u in uniques], dtype=bool)
    if unsure.any():
        rows = np.flatnonzero(~missing & unsure[np.maximum(codes, 0)])
        index[rows] = encode_target(y[rows], classes)
    return index, missing


def _hashable_in(value: Any, keys: set[Any]) -> bool:
    try:
        return value in keys
    except TypeError:
        return False


def load_onnx(onnx_bytes: bytes, name: str) -> LoadedModel:
    """The ONNX file through the project's ONNX loader (its safety checks, output plan and metadata)."""
    loaded = load_model(onnx_bytes, name=name)
    if loaded.family != "onnx":
        raise InputError(f"{name} is not an ONNX file (it holds a {loaded.family} model): pass the .onnx file that "
                         "'inference-optimizer convert' or 'run --out' wrote as the second argument")
    return loaded


def labelled_onnx_predictor(onnx: LoadedModel, threads: int) -> Any:
    """A CPU session over the ONNX file with ``threads`` intra-op threads and spinning off (as a run's sessions
    are made), returning (scores, the file's label output or None) from one run."""
    from optimizer_core.models.onnx import labelled_predictor
    from optimizer_core.runtime import SessionSettings

    return labelled_predictor(onnx, SessionSettings(intra_op_threads=threads, allow_spinning=False))


def describe_onnx(onnx: LoadedModel) -> dict[str, Any]:
    return {"estimator": onnx.estimator, "task": onnx.task, "n_features": onnx.n_features,
            "classes": _plain(onnx.classes) if onnx.classes else None,
            "source_bytes": onnx.source_bytes, "source_sha256": onnx.source_sha256}
