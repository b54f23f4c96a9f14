"""Hints about data that reads fine but may not mean what the model was trained on.

* Mostly zeros: XGBoost trained on a sparse matrix (scipy CSR/CSC, LIBSVM) treats an absent entry as
  *missing*, and a tree may send missing values and zeros down different branches; a dense CSV writes those
  entries as 0. The model file does not record how it was trained, so when most cells are 0 the tool measures
  what reading them as missing would change and says so (a note, not a refusal: dense training data with
  many zeros is common too). LightGBM reads a sparse matrix's absent entries as zeros (unless trained with
  ``zero_as_missing``, which its trees then apply to any 0 themselves), and scikit-learn's trees as zeros, so
  for them the two agree.
* Decimal commas: ``0,645`` is a number written for a locale that uses ',' as the decimal separator;
  it fails as a number (or, with ',' separating the fields, splits into two fields), and the error says so.
* ``True``/``False`` (pandas writes them for boolean columns, e.g. ``get_dummies``) read as 1 and 0.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

TRUE_TEXT = ("True", "true", "TRUE")  # pyarrow's and pandas' spellings of a boolean
FALSE_TEXT = ("False", "false", "FALSE")
MOSTLY_ZEROS = 0.5  # share of the feature cells that are exactly 0 before the sparse-training note
_SAMPLE_ROWS = 2_000
_CHUNK_ROWS = 65_536
_DECIMAL_COMMA = re.compile(r"^[+-]?(\d{1,3}(\.\d{3})+|\d+),\d+$")  # 0,645  12,5  1.234,56
_FIELDS_SPLIT_AT_COMMA = re.compile(r"\d,\d")


def decimal_comma_hint(value: str) -> str:
    """``; ...`` for a refused cell that looks like a number with a decimal comma, else ''."""
    if not _DECIMAL_COMMA.match(value.strip()):
        return ""
    return ("; it looks like a number with a decimal comma: write decimal points (0.645, not 0,645), e.g. export "
            "the CSV with '.' as the decimal separator")


def split_decimal_comma_hint(line: str | None, sep: str, fields: int, expected: int) -> str:
    """``; ...`` for a comma-separated row with too many fields and digits on both sides of a comma."""
    if sep != "," or line is None or fields <= expected or not _FIELDS_SPLIT_AT_COMMA.search(line):
        return ""
    return ("; if its numbers are written with decimal commas (0,645), each one splits into two fields: write "
            "decimal points, or separate the fields with ';'")


def sparse_zeros_note(X: np.ndarray, model: Any) -> str | None:
    """For an XGBoost model and data that is mostly exact zeros: what reading the zeros as missing (as a
    sparse training matrix would have) changes on a sample of rows, measured; None when nothing to say."""
    if model.family != "xgboost" or X.size == 0:
        return None
    zeros = sum(int(np.count_nonzero(X[i:i + _CHUNK_ROWS] == 0)) for i in range(0, X.shape[0], _CHUNK_ROWS))
    share = zeros / X.size
    if share <= MOSTLY_ZEROS:
        return None
    with_zeros = _rows_with_zeros(X)
    sample = np.ascontiguousarray(X[with_zeros])
    absent = np.where(sample == 0, np.nan, sample)
    head = (f"{share:.0%} of the feature cells are exactly 0: if the model was trained on a sparse matrix, its "
            "absent entries meant missing there, not 0")
    try:
        change = float(np.max(np.abs(model.predict_scores(absent) - model.predict_scores(sample))))
    except Exception:  # noqa: BLE001 - the hint is worth giving even when the comparison cannot run
        return head + "; if so, leave those cells empty"
    if change == 0.0:
        return None  # zeros and missing values take the same branches here: nothing to warn about
    return (head + f"; read as missing, they would change the scores by up to {change:.3g} on {len(with_zeros):,} "
            "sampled rows: if it was, leave those cells empty")


def _rows_with_zeros(X: np.ndarray) -> np.ndarray:
    """The first ``_SAMPLE_ROWS`` rows holding a 0, found block by block (never a mask of the whole matrix)."""
    found: list[np.ndarray] = []
    count = 0
    for start in range(0, X.shape[0], _CHUNK_ROWS):
        rows = start + np.flatnonzero((X[start:start + _CHUNK_ROWS] == 0).any(axis=1))
        found.append(rows[:_SAMPLE_ROWS - count])
        count += found[-1].size
        if count >= _SAMPLE_ROWS:
            break
    return np.concatenate(found)
