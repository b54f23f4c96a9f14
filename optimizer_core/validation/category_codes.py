"""Categorical columns whose categories the model file stores, in validate: integer codes only, block by block.

`run` reads such a column as the category values or as their integer codes by looking at the whole column
(``categories.ColumnDecoder``). validate reads the data batch by batch (on several machines with Ray), so it never
sees a whole column. It applies the same decoder to each block alone and accepts the block only when the decoder
reads it as codes. When every stored category is text that cannot be read as a number, that is exactly the run's
verdict: a number can then only be a code, so a column of numbers reads as codes in every block and as a whole,
and a block that holds category values is refused with how to write the codes. When a stored category is a
number (or text that reads as one, or True/False), a number in the data could be a category or a code and only
the whole column can settle it: validate refuses such a model before any work.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from optimizer_core.categories import CATEGORIES_METADATA_KEY, CategoryReader, StoredCategories
from optimizer_core.errors import InputError, UnsupportedModelError
from optimizer_core.models.base import LoadedModel

_LISTED = 5
RUN_A_SAMPLE = ("check a sample of the data with `inference-optimizer run MODEL SAMPLE.csv`, which reads whole "
                "columns and maps category values itself")


def check_model(native: LoadedModel, display: str) -> str | None:
    """The note validate adds for a model that stores its categories (None when it stores none it can apply);
    ``UnsupportedModelError`` when a stored category could also be read as a number."""
    stored = native.stored_categories
    if stored is None or not stored.columns:
        return None  # the model takes codes only, as a run reads it
    names = stored.column_names(native.feature_names)
    for name, (_, categories) in zip(names, stored.columns, strict=True):
        numeric = [c for c in categories if _reads_as_number(c)]
        if numeric:
            shown = ", ".join(repr(c) for c in numeric[:3]) + (", ..." if len(numeric) > 3 else "")
            raise UnsupportedModelError(
                f"{display} stores categories of {name!r} that are numbers ({shown}): a number in the data could be "
                "one of those categories or a category code, which only a whole column settles and validate reads "
                f"the data batch by batch; {RUN_A_SAMPLE}")
    several = len(names) > 1
    return (f"categorical column{'s' if several else ''} {', '.join(repr(n) for n in names)} "
            f"{'are' if several else 'is'} read as integer category codes: the model file stores "
            f"{'their categories' if several else 'its categories'} as text, so a number can only be a code "
            "(validate takes codes only)")


def _reads_as_number(category: Any) -> bool:
    """Whether a cell could match ``category`` and also be a number (``ColumnDecoder._classify``'s rules)."""
    if not isinstance(category, str):
        return True
    text = category.strip()
    if text.lower() in ("true", "false"):
        return True
    if not text or "_" in text:  # categories._number's rule: float() would read "1_0"
        return False
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def reader_factory(stored: StoredCategories | None, selected: Sequence[str], display: str,
                   null_tokens: Sequence[str]) -> Callable[[int], CategoryReader] | None:
    """A codes-only reader for a block of rows (given the rows before it), or None without stored categories."""
    if stored is None or not stored.columns:
        return None
    return lambda row_offset: _CodesOnly(stored, selected, display, null_tokens, row_offset)


class _CodesOnly(CategoryReader):
    """A block's categorical columns decoded as a run decodes a whole column, refusing a block read as values."""

    def __init__(self, stored: StoredCategories, selected: Sequence[str], display: str, null_tokens: Sequence[str],
                 row_offset: int):
        super().__init__(stored, selected, display, null_tokens, row_offset)
        self.display, self.row_offset = display, row_offset

    def finish(self, X: np.ndarray, *, values_only: Sequence[int] = ()) -> None:
        try:
            super().finish(X)
        except InputError as e:
            raise InputError(f"{e} (validate takes integer codes only: code i is the i-th category the model "
                             f"stores; or {RUN_A_SAMPLE})") from e
        for (j, decoder), reading in zip(self.decoders.items(), self.readings, strict=True):
            if reading.mode != "values":
                continue
            rows = np.flatnonzero(np.isfinite(X[:, j]))
            if rows.size:
                row = int(rows[0])
                example = f"{decoder.categories[int(X[row, j])]!r} at data row {self.row_offset + row + 1:,}"
            else:
                example = ", ".join(reading.unseen_examples[:1])
            raise InputError(
                f"{self.display}: categorical column {decoder.column!r} holds category values (e.g. {example}): "
                "validate reads categorical columns as their integer codes (it reads the data batch by batch, and only "
                "a whole column tells values from codes); write each value as its code, its position in the model's "
                f"stored list ({_codes(decoder.categories)}; every list is in the ONNX file's metadata "
                f"{CATEGORIES_METADATA_KEY!r}), or {RUN_A_SAMPLE}")


def _codes(categories: Sequence[Any]) -> str:
    shown = ", ".join(f"{c!r}={i}" for i, c in enumerate(categories[:_LISTED]))
    more = len(categories) - _LISTED
    return shown + (f" and {more} more, codes up to {len(categories) - 1}" if more > 0 else "")
