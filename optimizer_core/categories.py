"""The category values a model file stores for its categorical columns, and reading raw data with them.

LightGBM trained on a pandas DataFrame with ``category`` columns writes each column's categories at the
end of its text file (``pandas_categorical:[...]``, one list per category column, in column order); given a
DataFrame it gives each category column those categories (``cat.set_categories``) and feeds the codes, a
value outside them becoming missing (``lightgbm.basic._data_from_pandas``). XGBoost 3.1 and later store the
categories of ``enable_categorical`` columns in the model and re-code a DataFrame with them. Either way the
trees, and the exported ONNX graph, take codes: 0 for the first stored category, 1 for the next...

A CSV has no dtypes, so each categorical column is read as the values or as the codes by one fixed rule
(``ColumnDecoder``): a cell *is a value* when it is one of the stored categories (the same text, or the same
number for numeric categories, as pandas compares them), *is a code* when it is a whole number from 0 to
n - 1. The column holds values when some cell is a value and not a code, codes when some cell is a code and
not a value; both at once, or only cells that are both with different meanings, are refused. Cells that are
both with the same meaning read the same either way. A value the model was not trained with is missing for
LightGBM (its rule); for XGBoost it is refused: XGBoost 3.2's own DataFrame prediction refuses it ("Found a
category not in the training set") or, for some models, scores it unlike any code or missing value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from optimizer_core.errors import InputError, shorten

CATEGORIES_METADATA_KEY = "inference_optimizer.categories"  # JSON list of {column, name, categories}
_LIBRARY = {"lightgbm": "LightGBM", "xgboost": "XGBoost"}
_SHOWN = 5


@dataclass(frozen=True)
class StoredCategories:
    """The categories a model file stores, by input column (in code order: code i is ``categories[i]``)."""

    family: str  # "lightgbm" | "xgboost"
    columns: tuple[tuple[int, tuple[Any, ...]], ...] = ()
    unusable: str | None = None  # why the file's categories cannot be applied (then ``columns`` is empty)

    @property
    def by_column(self) -> dict[int, tuple[Any, ...]]:
        return dict(self.columns)

    @property
    def library(self) -> str:
        return _LIBRARY.get(self.family, self.family)

    @property
    def unseen_is_missing(self) -> bool:
        return self.family == "lightgbm"

    def column_names(self, feature_names: Sequence[str] | None) -> list[str]:
        return [_column_name(i, feature_names) for i, _ in self.columns]


def _column_name(index: int, feature_names: Sequence[str] | None) -> str:
    return feature_names[index] if feature_names else f"column {index + 1}"


# --------------------------------------------------------------------------- what the model files store


def lightgbm_categories(pandas_categorical: Any, categorical_features: Sequence[int],
                        feature_infos: Sequence[str],
                        categorical_param: Sequence[int] | None = None) -> StoredCategories | None:
    """The ``pandas_categorical`` lists of a LightGBM model tied to its categorical features, or why they
    cannot be (None when the file stores none).

    The file keeps one list per pandas category column of the training frame, in column order, but not which
    columns those were. They are the model's categorical features when LightGBM chose them itself (the
    default, ``categorical_feature='auto'``, recorded in the parameters as those columns' indices, unused
    ones included): then the counts agree and every code seen in training (``feature_infos``) has a
    category. Otherwise (ordered categories, which train as numbers, or an explicit ``categorical_feature``
    naming other columns) the file does not say, and its categories are not used.
    """
    if not pandas_categorical or not isinstance(pandas_categorical, list):
        return None
    lists = [tuple(c) if isinstance(c, list) else () for c in pandas_categorical]
    if categorical_param is not None:  # the training's own list: unused features too, and authoritative
        categorical_features = sorted(categorical_param)
    count, splits = len(lists), len(categorical_features)
    if count != splits:
        return StoredCategories("lightgbm", unusable=(
            f"the model file stores the categories of {count} pandas category column{'s' if count != 1 else ''} but "
            f"splits {splits} feature{'s' if splits != 1 else ''} by category, so which columns they belong to is "
            "not recorded"))
    for index, categories in zip(categorical_features, lists, strict=True):
        seen = _codes_seen(feature_infos[index] if index < len(feature_infos) else "")
        if not categories or (seen and max(seen) >= len(categories)):
            return StoredCategories("lightgbm", unusable=(
                "the categories the model file stores do not fit the codes its categorical features were "
                "trained on, so which columns they belong to is not clear"))
    return StoredCategories("lightgbm", tuple(zip(categorical_features, lists, strict=True)))


def _codes_seen(info: str) -> list[int]:
    """Category codes LightGBM lists for a categorical feature in ``feature_infos`` (e.g. ``-1:0:2:1``)."""
    codes = []
    for token in info.split(":"):
        try:
            code = int(token)
        except ValueError:
            return []
        if code >= 0:
            codes.append(code)
    return codes


def xgboost_categories(booster: Any, categorical_features: Sequence[int]) -> StoredCategories | None:
    """The categories an XGBoost model stores for its ``enable_categorical`` features (XGBoost 3.1 and later
    save them when trained on a DataFrame), or why there are none to apply."""
    if not categorical_features:
        return None
    try:
        stored = booster.get_categories(export_to_arrow=True).to_arrow()
    except Exception:  # noqa: BLE001 - an older XGBoost, or a model without categories: nothing stored
        stored = []
    columns = []
    for index in categorical_features:
        array = stored[index][1] if index < len(stored) else None
        values = tuple(array.to_pylist()) if array is not None else ()
        if values:
            columns.append((index, values))
    if not columns:
        return StoredCategories("xgboost", unusable=(
            "the model file stores no category values (XGBoost 3.1 and later store them when trained on a "
            "DataFrame with category columns)"))
    return StoredCategories("xgboost", tuple(columns))


STORED_NOTE_MARK = ": the model file stores their categories, so the data may hold the "
DATA_NOTE_PREFIXES = ("category values mapped to the codes the model takes", "categorical column")


def without_repeated_notes(model_notes: Sequence[str], data_notes: Sequence[str]) -> list[str]:
    """The run's notes on the model and then the data, said once: when the data's notes say how its categorical
    columns were read (values mapped, or codes), the model's note on what they may hold repeats them."""
    said_by_data = any(n.startswith(DATA_NOTE_PREFIXES) for n in data_notes)
    kept = [n for n in model_notes if not (said_by_data and n.startswith("categorical features ")
                                           and STORED_NOTE_MARK in n)]
    return list(dict.fromkeys([*kept, *data_notes]))


def model_note(stored: StoredCategories | None, categorical_features: Sequence[int],
               feature_names: Sequence[str] | None) -> str | None:
    """The loaded model's note about its categorical columns."""
    if not categorical_features:
        return None
    if stored is None or not stored.columns:
        why = f" ({stored.unusable})" if stored is not None and stored.unusable else ""
        return f"categorical features must be given as their integer category codes{why}"
    names = ", ".join(repr(n) for n in stored.column_names(feature_names))
    return (f"categorical features {names}{STORED_NOTE_MARK}"
            f"category values (mapped to the codes the model takes, as {stored.library} does for a DataFrame with "
            "those categories) or their integer category codes")


# --------------------------------------------------------------------------- reading a column


@dataclass(frozen=True)
class _Cell:
    """One distinct raw value of a column, classified."""

    raw: Any
    match: int | None  # index of the stored category it is, if any
    number: float | None  # its value as a number, if it is one
    missing: bool

    def code_ok(self, n: int) -> bool:
        return self.number is not None and self.number.is_integer() and 0 <= self.number < n


@dataclass(frozen=True)
class ColumnReading:
    """How one categorical column was read: ``mode`` 'values' (mapped) or 'codes' (taken as they are)."""

    column: str
    mode: str
    unseen_rows: int = 0
    unseen_examples: tuple[str, ...] = ()


class ColumnDecoder:
    """Reads one categorical column block by block: ``ids`` numbers each distinct raw value, ``finish``
    decides values or codes over the whole column and turns the ids into what the model takes."""

    def __init__(self, column: str, categories: Sequence[Any], family: str, display: str,
                 null_tokens: Sequence[str], row_offset: int = 0):
        """``row_offset``: data rows before the first one this decoder sees (a block read alone), for messages."""
        self.column = column
        self.row_offset = row_offset
        self.categories = tuple(categories)
        self.family = family
        self.display = display
        self.null_tokens = frozenset(null_tokens)
        self._ids: dict[Any, int] = {}
        self._raw: list[Any] = []
        self._text = {c: i for i, c in reversed(list(enumerate(self.categories))) if isinstance(c, str)}
        self._numbers: dict[float, list[int]] = {}
        self._booleans: dict[bool, list[int]] = {}
        for i, c in enumerate(self.categories):
            if isinstance(c, bool | np.bool_):
                self._booleans.setdefault(bool(c), []).append(i)
            elif isinstance(c, int | float | np.integer | np.floating) and math.isfinite(float(c)):
                self._numbers.setdefault(float(c), []).append(i)

    @property
    def library(self) -> str:
        return _LIBRARY.get(self.family, self.family)

    def ids(self, raw: np.ndarray) -> np.ndarray:
        """float64 ids of ``raw``'s values (one per distinct value, shared across blocks)."""
        codes, uniques = pd.factorize(pd.Series(raw, dtype=object), use_na_sentinel=True)
        lut = np.array([self._id(u) for u in uniques] + [self._id(None)], dtype=np.float64)
        return lut[codes]

    def _id(self, value: Any) -> int:
        key = (type(value).__name__, value) if value is not None else None
        found = self._ids.get(key)
        if found is None:
            found = self._ids[key] = len(self._raw)
            self._raw.append(value)
        return found

    def finish(self, ids: np.ndarray, *, values_only: bool = False) -> tuple[np.ndarray, ColumnReading]:
        """The column as the model takes it (codes, NaN for missing), and how it was read.

        ``values_only``: the column is known to hold values (a pandas category column), as LightGBM assumes.
        """
        cells = [self._classify(v, typed=values_only) for v in self._raw]
        mode = "values" if values_only else self._mode(cells, ids)
        out = np.full(len(cells), np.nan)
        unseen: list[int] = []
        for i, cell in enumerate(cells):
            if mode == "values":
                if cell.match is not None:
                    out[i] = cell.match
                elif not cell.missing:
                    unseen.append(i)
            elif cell.number is not None and not cell.missing:
                out[i] = cell.number
        unseen_rows = 0
        if unseen:
            present = np.isin(ids, unseen)
            if self.family != "lightgbm":
                raise self._error(
                    f"value {self._shown(unseen[0])} at data row {self._first_row(ids, unseen[0])} is not one of the "
                    f"model's categories ({self._listing()}): {self.library} gives an unknown category no defined "
                    "meaning (its own DataFrame prediction refuses it, or scores it unlike any code or missing "
                    "value): leave the cell empty (missing) or use one of the categories")
            unseen_rows = int(present.sum())
        lut = np.append(out, np.nan)
        index = np.where(np.isnan(ids), len(cells), ids).astype(np.int64)
        reading = ColumnReading(self.column, mode, unseen_rows, tuple(self._shown(i) for i in unseen[:3]))
        return lut[index], reading

    def _mode(self, cells: list[_Cell], ids: np.ndarray) -> str:
        n = len(self.categories)
        present = [(i, c) for i, c in enumerate(cells) if not c.missing]
        value_only = [i for i, c in present if c.match is not None and not c.code_ok(n)]
        code_only = [i for i, c in present if c.match is None and c.code_ok(n)]
        clash = [i for i, c in present if c.match is not None and c.code_ok(n) and c.match != c.number]
        agree = [i for i, c in present if c.match is not None and c.code_ok(n) and c.match == c.number]
        text = [i for i, c in present if c.match is None and c.number is None]
        if value_only and code_only:
            raise self._error(
                f"mixes the model's category values (e.g. {self._shown(value_only[0])} at data row "
                f"{self._first_row(ids, value_only[0])}) and category codes that are not values (e.g. "
                f"{self._shown(code_only[0])} at data row {self._first_row(ids, code_only[0])}): write every cell "
                f"as a category value ({self._listing()}) or every cell as its code (0 to {n - 1})")
        if code_only:
            if text:
                raise self._error(
                    f"holds category codes (numbers such as {self._shown(code_only[0])}) and also text that is not "
                    f"one of the model's categories ({self._shown(text[0])} at data row "
                    f"{self._first_row(ids, text[0])}): write every cell as its code, or every cell as a category "
                    f"value ({self._listing()})")
            return "codes"
        if value_only:
            return "values"
        if clash:
            i = clash[0]
            raise self._error(
                f"holds numbers that are both among the model's categories and valid codes with another "
                f"meaning, and no cell settles which ({self._shown(i)} at data row {self._first_row(ids, i)} is category {self._shown(i)}, whose "
                f"code is {cells[i].match}), so the file cannot say which it holds: add rows that show it, or pass a "
                "pandas DataFrame whose column has category dtype (Python API)")
        if agree:
            return "values"
        if text:
            raise self._error(
                f"holds none of the model's categories ({self._listing()}; e.g. {self._shown(text[0])} at data "
                f"row {self._first_row(ids, text[0])}): check the spelling (values are compared exactly, as pandas "
                "does) or write the integer codes")
        return "codes"

    def _classify(self, value: Any, *, typed: bool = False) -> _Cell:
        """``typed``: the values come typed (a pandas category column), so text matches only text categories."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return _Cell(value, None, None, True)
        if isinstance(value, bool | np.bool_):
            matches = self._booleans.get(bool(value), [])
            return self._cell(value, matches, None, text=None)
        if isinstance(value, int | float | np.integer | np.floating):
            number = float(value)
            number = number if math.isfinite(number) else None
            return self._cell(value, self._numbers.get(number, []) if number is not None else [], number, text=None)
        text = str(value)
        if typed:  # compared as pandas compares a category column's values: exactly, text with text only
            return self._cell(value, [self._text[text]] if text in self._text else [], None, text=None)
        stripped = text.strip()
        number = _number(stripped)
        matches = [self._text[text]] if text in self._text else [self._text[stripped]] if stripped in self._text else []
        if number is not None:
            matches += self._numbers.get(number, [])
        if stripped.lower() in ("true", "false"):
            matches += self._booleans.get(stripped.lower() == "true", [])
        return self._cell(value, matches, number, text=stripped)

    def _cell(self, value: Any, matches: list[int], number: float | None, *, text: str | None) -> _Cell:
        matches = list(dict.fromkeys(matches))
        if len(matches) > 1:
            shown = " and ".join(repr(self.categories[m]) for m in matches[:2])
            raise self._error(f"value {shorten(str(value), 40)!r} is two of the model's categories ({shown}): the "
                              "file cannot say which; pass a pandas DataFrame with category dtype (Python API)")
        missing = not matches and text is not None and text in self.null_tokens
        return _Cell(value, matches[0] if matches else None, None if missing else number, missing)

    def _first_row(self, ids: np.ndarray, value_id: int) -> int:
        return self.row_offset + int(np.flatnonzero(ids == value_id)[0]) + 1

    def _shown(self, value_id: int) -> str:
        return repr(shorten(str(self._raw[value_id]), 40))

    def _listing(self) -> str:
        shown = ", ".join(repr(c) for c in self.categories[:_SHOWN])
        return shown + (f" and {len(self.categories) - _SHOWN} more" if len(self.categories) > _SHOWN else "")

    def _error(self, what: str) -> InputError:
        return InputError(f"{self.display}: categorical column {self.column!r} {what}")


def _number(text: str) -> float | None:
    if not text or "_" in text:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


class CategoryReader:
    """The decoders of one dataset's categorical columns whose categories the model file stores, by the
    column's position in the model's input."""

    def __init__(self, stored: StoredCategories | None, selected: Sequence[str], display: str,
                 null_tokens: Sequence[str], row_offset: int = 0):
        self.stored = stored
        self.decoders: dict[int, ColumnDecoder] = {}
        if stored is not None:
            self.decoders = {j: ColumnDecoder(selected[j], categories, stored.family, display, null_tokens,
                                              row_offset)
                             for j, categories in stored.columns if j < len(selected)}
        self.readings: list[ColumnReading] = []

    def finish(self, X: np.ndarray, *, values_only: Sequence[int] = ()) -> None:
        """Replace the ids in ``X``'s categorical columns by what the model takes (in place)."""
        for j, decoder in self.decoders.items():
            X[:, j], reading = decoder.finish(X[:, j], values_only=j in values_only)
            self.readings.append(reading)

    def notes(self, rows: int) -> list[str]:
        if self.stored is None:
            return []
        library = self.stored.library
        mapped = [r.column for r in self.readings if r.mode == "values"]
        codes = [r.column for r in self.readings if r.mode == "codes"]
        notes = []
        if mapped:
            notes.append(f"category values mapped to the codes the model takes with the categories stored in the "
                         f"model file, as {library} does for a DataFrame with those categories: "
                         f"{', '.join(repr(c) for c in mapped)}")
        if codes:
            several = len(codes) > 1
            notes.append(f"categorical column{'s' if several else ''} {', '.join(repr(c) for c in codes)} "
                         f"hold{'' if several else 's'} numbers, not category values: read as the integer category "
                         "codes")
        for r in self.readings:
            if r.unseen_rows:
                verb = "holds a value" if r.unseen_rows == 1 else "hold values"
                notes.append(f"{r.unseen_rows:,} of {rows:,} rows {verb} of {r.column!r} the model was not trained "
                             f"with (e.g. {', '.join(r.unseen_examples)}): read as missing, as {library} does")
        return notes


# --------------------------------------------------------------------------- what a deployment must do


def metadata_entry(stored: StoredCategories | None, feature_names: Sequence[str] | None) -> str | None:
    """The JSON an exported ONNX model keeps under ``CATEGORIES_METADATA_KEY``: which input columns take codes,
    and the category each code stands for."""
    if stored is None or not stored.columns:
        return None
    return json.dumps([{"column": i, "name": _column_name(i, feature_names), "categories": list(c)}
                       for i, c in stored.columns])


def contract_note(stored: StoredCategories | None, feature_names: Sequence[str] | None) -> str | None:
    """One line for the ONNX file and ``convert``: the graph takes codes, not category values."""
    if stored is None or not stored.columns:
        return None
    names = ", ".join(repr(n) for n in stored.column_names(feature_names))
    return (f"input columns {names} take category codes, not values: code i is the i-th category listed in the "
            f"metadata {CATEGORIES_METADATA_KEY!r}: map values to codes before running it")


def snippet_lines(stored: StoredCategories | None, feature_names: Sequence[str] | None) -> list[str]:
    """Python for deploy.py that turns rows of raw values into the codes the ONNX model takes."""
    if stored is None or not stored.columns:
        return []
    names = ", ".join(stored.column_names(feature_names))
    unseen = (["# codes; a value not among them becomes missing, as LightGBM does."] if stored.unseen_is_missing else
              ["# codes; a value not among them is refused, as XGBoost's own DataFrame prediction may refuse it."])
    lines = [
        f"# The model takes category codes in {names}: code i is the i-th category of its column",
        "# (stored in the model file). encode() maps rows of raw values, typed as in training (10, not '10'), to",
        *unseen,
        "CATEGORIES = {  # input column -> categories in code order",
    ]
    lines += [f"    {i}: {json.dumps(list(c))},  # {_column_name(i, feature_names)}" for i, c in stored.columns]
    lines += [
        "}",
        "",
        "",
        "def encode(rows):",
        '    """Rows of raw values in the model\'s column order (a list of lists or a 2-D array) -> float32 input."""',
        "    X = np.array(rows, dtype=object)",
        "    for column, categories in CATEGORIES.items():",
        "        code = {value: i for i, value in enumerate(categories)}",
        "        cells = [v if v is None or v != v else code.get(v, -1) for v in X[:, column]]",
    ]
    if stored.unseen_is_missing:
        lines.append("        X[:, column] = [np.nan if v is None or v != v or v < 0 else v for v in cells]")
    else:
        lines += [
            "        unknown = [v for v, c in zip(X[:, column], cells) if c == -1]",
            "        if unknown:",
            '            raise ValueError(f"column {column}: {unknown[0]!r} is not one of the model\'s categories")',
            "        X[:, column] = [np.nan if v is None or v != v else v for v in cells]",
        ]
    lines += ["    return X.astype(np.float32)", "", ""]
    return lines
