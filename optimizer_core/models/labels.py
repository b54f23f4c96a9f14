"""Which class a classifier's scores imply, and whether that is the class the model itself outputs.

The tool judges classes by the argmax of the scores (label flips, accuracy, F1). That is only honest when
the argmax is the model's own decision: a file's label output, or scikit-learn's ``predict``. Two things
break it, and both are caught here instead of being reported with confidence:

* scores that are not probabilities (an SVM or linear model's decision values) whose columns run in
  another order than the classes: skl2onnx's binary SVC writes ``[d, -d]`` where ``d > 0`` means the
  second class, and a binary LinearSVC writes one column. ``binary_columns`` finds the arrangement that
  makes the argmax the model's label on every row, ``arrange`` applies it;
* a label computed another way than the scores (an SVC's one-vs-one votes against its per-class scores,
  Platt-scaled probabilities): ``check_agreement`` refuses with the rows where they differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from optimizer_core.errors import UnsupportedModelError

__all__ = [
    "Columns",
    "arrange",
    "are_probabilities",
    "binary_columns",
    "check_agreement",
    "disagreements",
    "label_indices",
    "probe_rows",
    "tied_elsewhere",
]

# How a model's raw scores become the contract's one column per class (binary: two columns):
# "as-is"; "swapped" (two columns in the opposite order); "one-column" (s -> [-s, s]: s > 0 is the second
# class); "one-column-negated" (s -> [s, -s]: s > 0 is the first class).
Columns = Literal["as-is", "swapped", "one-column", "one-column-negated"]
_BINARY_CANDIDATES: dict[int, tuple[Columns, ...]] = {1: ("one-column", "one-column-negated"), 2: ("as-is", "swapped")}
# float32 probabilities summed in float64 stay within ~1e-6 of 1; a ZipMap or Normalizer adds no more.
_SUM_TOLERANCE = 1e-3
_RANGE_TOLERANCE = 1e-6


def are_probabilities(scores: np.ndarray) -> bool:
    """Whether every finite row of ``scores`` ([N, C], C >= 2) lies in [0, 1] and sums to 1."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] < 2:
        return False
    rows = scores[np.isfinite(scores).all(axis=1)]
    if not rows.size:
        return True  # nothing to judge by: NaN rows are reported elsewhere
    in_range = bool(((rows >= -_RANGE_TOLERANCE) & (rows <= 1 + _RANGE_TOLERANCE)).all())
    return in_range and bool((np.abs(rows.sum(axis=1) - 1.0) <= _SUM_TOLERANCE).all())


def arrange(raw: np.ndarray, columns: Columns) -> np.ndarray:
    """``raw`` scores in the contract's column order (see ``Columns``)."""
    raw = np.asarray(raw)
    if columns == "as-is":
        return raw
    if columns == "swapped":
        return raw[:, ::-1]
    column = raw.reshape(len(raw), -1)[:, :1]
    return np.hstack([-column, column] if columns == "one-column" else [column, -column])


def label_indices(labels: np.ndarray, classes: Sequence[Any]) -> np.ndarray:
    """Index in ``classes`` of each label (-1 for a label that is none of them); matches by value, then by
    text, so that a file's int64 labels match classes read as Python ints and bytes match strings."""
    lookup: dict[Any, int] = {}
    for i, c in enumerate(classes):
        lookup.setdefault(_key(c), i)
        lookup.setdefault(str(_key(c)), i)
    flat = np.asarray(labels).reshape(-1)
    out = np.empty(flat.shape[0], dtype=np.int64)
    for row, value in enumerate(flat):
        key = _key(value)
        found = lookup.get(key)
        out[row] = found if found is not None else lookup.get(str(key), -1)
    return out


def _key(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value.item() if isinstance(value, np.generic) else value


def disagreements(label_idx: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Rows whose label is not a class of highest score (a label among tied top scores agrees; a label
    that is no class of the model never does). Rows with NaN scores are not judged."""
    scores = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(scores).all(axis=1)
    top = np.where(finite[:, None], scores, 0.0).max(axis=1)
    rows = np.arange(scores.shape[0])
    known = label_idx >= 0
    at_label = np.full(scores.shape[0], -np.inf)
    at_label[known] = scores[rows[known], label_idx[known]]
    return np.flatnonzero(finite & (~known | (at_label < top)))


def binary_columns(label_idx: np.ndarray, raw: np.ndarray) -> Columns | None:
    """The arrangement of a binary classifier's raw scores (one or two columns) whose argmax is the label
    on every row, or None when no single one is (or no row tells them apart: every row a tie)."""
    raw = np.asarray(raw, dtype=np.float64).reshape(len(raw), -1)
    candidates = _BINARY_CANDIDATES.get(raw.shape[1], ())
    fitting = [c for c in candidates if not disagreements(label_idx, arrange(raw, c)).size]
    return fitting[0] if len(fitting) == 1 else None


def check_agreement(
    labels: np.ndarray,
    scores: np.ndarray,
    classes: Sequence[Any],
    *,
    name: str,
    label_source: str,
    first_row: int = 0,
    rows_are: str = "data row",
    cause: str = "",
) -> None:
    """Raise ``UnsupportedModelError`` when the argmax of ``scores`` is not the class in ``labels`` on some
    row. ``first_row`` numbers the rows (0: the first given row is ``{rows_are} 1``); ``cause`` explains
    the disagreement when the model's kind is known to produce it, and says what to do."""
    idx = label_indices(labels, classes)
    bad = disagreements(idx, scores)
    if not bad.size:
        return
    row = int(bad[0])
    favoured = classes[int(np.asarray(scores[row], dtype=np.float64).argmax())]
    label = np.asarray(labels).reshape(-1)[row]
    total = len(idx)
    ties = tied_elsewhere(idx, scores).size
    tied = (f"; {ties:,} more row{'s tie' if ties != 1 else ' ties'} exactly between the label and another class: "
            "not counted, though the argmax takes the first tied class there" if ties else "")
    raise UnsupportedModelError(
        f"{name}: the class its scores imply (argmax) differs from {label_source} on {bad.size:,} of {total:,} "
        f"rows (first: {rows_are} {first_row + row + 1}, label {_shown(label)}, scores favour {_shown(favoured)}"
        f"{tied}){cause or _DEFAULT_CAUSE}"
    )


def tied_elsewhere(label_idx: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Rows that agree only through a tie: the label is among the exactly tied top scores, but ``argmax`` (the
    first of them) is another class. ``disagreements`` does not count them; accuracy by the argmax does."""
    scores = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(scores).all(axis=1)
    known = (label_idx >= 0) & finite
    first = np.where(finite[:, None], scores, 0.0).argmax(axis=1)
    rows = np.flatnonzero(known & (first != label_idx))
    return rows[scores[rows, label_idx[rows]] == scores[rows, first[rows]]]


_DEFAULT_CAUSE = (
    ": this tool judges classes by the argmax of the scores, so label flips and accuracy would describe "
    "another decision than the model's; export scores whose argmax is the model's label"
)


def _shown(value: Any) -> str:
    return repr(_key(value))


def probe_rows(n_features: int, rows: int = 64, seed: int = 0) -> np.ndarray:
    """Seeded float32 rows for learning how a model's outputs relate when no data is at hand: standard
    normal values, then wider non-negative ones (as ``converters.verify`` draws them)."""
    rng = np.random.default_rng(seed)
    half = max(1, rows // 2)
    narrow = rng.standard_normal((half, n_features))
    wide = np.abs(rng.standard_normal((rows - half, n_features))) * 10.0
    return np.vstack([narrow, wide]).astype(np.float32)
