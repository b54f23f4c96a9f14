"""A table (a CSV read by ``csv_reader``, a DataFrame or an array) -> Dataset aligned to the model's features.

Columns are matched by name when the model knows its feature names (any order, extra columns
ignored and listed in the notes); positionally otherwise, with an exact count check. Empty cells and
NaN stay missing (NaN), which is how every supported family represents a missing value.

A CSV's header is read first (``csv_reader``), aligned to the model here, and only then is its body parsed,
block by block, straight into the preallocated float64 matrix of the columns the model reads. The target
is cleaned against the model here too: rows whose label is missing or not one of the model's classes are
named in the notes and left out of the metrics (``encode_target``).

Column names the training library rewrote (``feature_names``) and categories stored with the model
(``categories``) are applied here, by the file's own rule. ``open_csv``, ``csv_layout`` and ``iter_csv_blocks``
give the same alignment and refusals block by block for data of any size (``validation``); ``frame_features``,
``align_columns`` and ``alignment_notes`` do the same for a DataFrame.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from optimizer_core.categories import CategoryReader
from optimizer_core.csv_reader import (
    NULL_TOKENS,
    Progress,
    _batches,
    _check_finite,
    _check_quotes_closed,
    _clean_target,
    _clean_target_text,
    _ConversionFailed,
    _duplicates,
    _FilesystemSource,
    _fill_block,
    _first_line,
    _has_index_column,
    _Header,
    _listing,
    _no_rows,
    _plural,
    _ProgressReporter,
    _read_body,
    _read_header,
    _scan,
    _shorten,
    _Source,
    _tolerant_numbers,
)
from optimizer_core.data_hints import decimal_comma_hint
from optimizer_core.errors import InputError
from optimizer_core.feature_names import (
    RENAMED_IGNORING_CASE_MAPPING,
    RENAMED_MAPPING,
    match_renamed,
    match_renamed_ignoring_case,
    missing_listing,
    renamed_note,
    training_names,
)
from optimizer_core.models.base import LoadedModel

TARGET_GUESSES = ("label", "target", "y", "class")


@dataclass(frozen=True)
class Dataset:
    """Feature matrix in the model's column order, plus the optional target."""

    X: np.ndarray = field(repr=False)  # float64 [rows, n_features], NaN = missing
    feature_names: tuple[str, ...]
    y: np.ndarray | None = field(default=None, repr=False)
    target: str | None = None
    path: str | None = None
    column_mapping: str = "by-name"  # "by-name" | "by-name-ignoring-case" | RENAMED_MAPPING | "positional"
    ignored_columns: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    sha256: str = ""

    @property
    def rows(self) -> int:
        return int(self.X.shape[0])

    @property
    def X32(self) -> np.ndarray:
        return np.ascontiguousarray(self.X, dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "rows": self.rows,
            "target": self.target,
            "column_mapping": self.column_mapping,
            "ignored_columns": list(self.ignored_columns),
            "missing_values": _count_nan(self.X),
            "sha256": self.sha256,
            "notes": list(self.notes),
        }


def load_dataset(
    source: str | os.PathLike[str] | bytes | pd.DataFrame | np.ndarray,
    model: LoadedModel,
    *,
    target: Any = None,
    y: Any = None,
    name: str | None = None,
    progress: Progress | None = None,
) -> Dataset:
    """Load the user's rows aligned to ``model``'s features.

    ``source`` is a CSV path or its bytes, or an in-memory DataFrame/array (then ``y`` may carry the
    target directly). ``target`` names the target column to separate out, or holds the target values
    themselves (a Series, array or list, one per row: then it is ``y``). ``progress(stage, fraction)``
    is called while a CSV is read (fraction of its bytes, 0.0 to 1.0).
    """
    if target is not None and y is not None:
        raise InputError("pass either target= (a column of the data) or y= (the values), not both")
    if _target_values(target):  # target= given as the values themselves: they are y
        try:
            return load_dataset(source, model, y=target, name=name, progress=progress)
        except InputError as e:
            if str(e).startswith("y has "):
                raise InputError(f"target{str(e)[1:]}") from e
            raise
    if target is not None and not isinstance(target, str):
        target = str(target)  # a DataFrame's integer column label: columns are compared as text
    if isinstance(source, pd.Series):
        raise InputError("data is a pandas Series: pass a DataFrame with one row per sample "
                         "(for a single row: series.to_frame().T)")
    if isinstance(source, list | tuple):
        source = np.asarray(source, dtype=object)
    try:
        if isinstance(source, np.ndarray):
            return _from_array(source, model, y=y, name=name)
        if isinstance(source, pd.DataFrame):
            return _from_frame(source, model, target=target, y=y, name=name)
        with _Source.open(source, name) as src:
            return _from_csv(src, model, target=target, y=y, progress=progress)
    except InputError as e:
        # the hint belongs only to text in a column the model splits by category (never the target's)
        categorical = [model.feature_names[i] for i in model.categorical_features] if model.feature_names else []
        named = [n for n in categorical if f"column {n!r} has a non-numeric value" in str(e)]
        if named:
            stored = model.stored_categories
            why = f" ({stored.unusable})" if stored is not None and stored.unusable else ""
            raise InputError(f"{e}; the model reads {named[0]!r} as category codes: write each category as the "
                             f"integer code it had in training{why}") from e
        raise


def _target_values(target: Any) -> bool:
    """Whether ``target=`` holds the target values (a Series, array or list), not a column's name."""
    return isinstance(target, pd.Series | pd.DataFrame | pd.Index | np.ndarray | list | tuple) and not (
        isinstance(target, np.ndarray) and target.ndim == 0)


def guess_target(columns: list[str]) -> str | None:
    """The first column named like a target (label, target, y, class), case-insensitively."""
    lowered = {c.lower().strip(): c for c in columns}
    return next((lowered[g] for g in TARGET_GUESSES if g in lowered), None)


# --------------------------------------------------------------------------- in-memory sources


def _given_target(y: Any, rows: int) -> np.ndarray:
    """``y=`` from the Python API as one value per row: a list, Series or array, (n,) or (n, 1)."""
    values = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y, dtype=object)
    if values.ndim == 2 and 1 in values.shape:
        values = values.reshape(-1)
    if values.ndim != 1:
        raise InputError(f"y has shape {values.shape}: pass one target value per row (a list, Series or 1-D array)")
    if values.shape[0] != rows:
        raise InputError(f"y has {_plural(values.shape[0], 'value')} but the data has {_plural(rows, 'row')}: "
                         "pass one per row")
    return values


def _from_array(X: np.ndarray, model: LoadedModel, *, y: Any, name: str | None) -> Dataset:
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != model.n_features:
        raise InputError(f"the array has shape {X.shape}; the model expects [rows, {model.n_features}]")
    if X.shape[0] == 0:
        raise InputError("the array has no rows")
    try:
        X = np.ascontiguousarray(X, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InputError(f"the array is not numeric: {_first_line(e)}") from e
    names = model.feature_names or tuple(f"f{i}" for i in range(model.n_features))
    values = _given_target(y, X.shape[0]) if y is not None else None
    # an array has no column names: taking it in order is what the caller asked for, not worth a note
    return _dataset(X, list(names), "positional", [], "y" if values is not None else None, values,
                    name or "<array>", "", model, order_note=False)


def _from_frame(frame: pd.DataFrame, model: LoadedModel, *, target: str | None, y: Any, name: str | None) -> Dataset:
    display = name or "<DataFrame>"
    columns = [str(c) for c in frame.columns]
    if frame.shape[0] == 0:
        raise InputError(f"{display} has no rows")
    target_values = _given_target(y, frame.shape[0]) if target is None and y is not None else None
    selected, mapping, ignored = align_columns(columns, model, target=target, display=display)
    if target is not None:
        target_values = frame.iloc[:, columns.index(target)].to_numpy(dtype=object)
    categories = _category_reader(model, selected, display)
    X = frame_features(frame, selected, display, categories=categories)
    # a pandas category column holds values by definition: LightGBM gives it the stored categories
    typed = [j for j in categories.decoders
             if isinstance(frame.iloc[:, columns.index(selected[j])].dtype, pd.CategoricalDtype)]
    categories.finish(X, values_only=typed)
    if target is None and target_values is not None:
        target = "y"
    return _dataset(X, selected, mapping, ignored, target, target_values, display, "", model,
                    extra_notes=categories.notes(X.shape[0]))


def frame_features(frame: pd.DataFrame, selected: Sequence[str], display: str, row_offset: int = 0,
                   categories: CategoryReader | None = None) -> np.ndarray:
    """The ``selected`` columns of ``frame`` (names, in the model's order) as a float64 matrix, by the rules a
    DataFrame is read with: text cells parsed tolerantly, anything else converted or refused naming the column
    and the data row (``row_offset`` rows precede the frame's first one). Columns with ``categories`` decoders
    get the ids of their raw values: the caller finishes them (``CategoryReader.finish``) on the whole column."""
    columns = [str(c) for c in frame.columns]
    X = np.empty((frame.shape[0], len(selected)), dtype=np.float64)
    for j, column in enumerate(selected):
        raw = frame.iloc[:, columns.index(column)]
        if categories is not None and j in categories.decoders:
            X[:, j] = categories.decoders[j].ids(raw.to_numpy(dtype=object))
        elif raw.dtype == object or pd.api.types.is_string_dtype(raw):
            X[:, j] = _tolerant_numbers(raw.to_numpy(dtype=object), column, display, row_offset)
        else:
            try:
                X[:, j] = raw.to_numpy(dtype=np.float64, na_value=np.nan)
            except (TypeError, ValueError) as e:
                raise InputError(f"{display}: column {column!r} is not numeric: {_first_line(e)}") from e
    _check_finite(X, row_offset, tuple(selected), display)
    return X


METRICS_SKIPPED = "metrics skipped"  # how a note on unusable targets starts: shown as a warning
IGNORED_NAMED = 10  # the note names this many ignored columns; report.json's data.ignored_columns has them all



def _category_reader(model: LoadedModel, selected: Sequence[str], display: str) -> CategoryReader:
    """Decoders for the columns whose categories the model file stores."""
    return CategoryReader(model.stored_categories, selected, display, NULL_TOKENS)

def _ignored_note(ignored: Sequence[str]) -> str:
    """One line however wide the CSV: 2,970 ignored columns made a 46 KB note."""
    if len(ignored) <= IGNORED_NAMED:
        return f"ignored columns not used by the model: {', '.join(ignored)}"
    shown = ", ".join(ignored[:IGNORED_NAMED])
    return (f"{len(ignored):,} columns not used by the model were ignored: {shown}, … {ignored[-1]} "
            "(all of them: data.ignored_columns in report.json)")


def alignment_notes(mapping: str, ignored: Sequence[str], *, order_note: bool = True,
                    selected: Sequence[str] = (), model: LoadedModel | None = None) -> list[str]:
    """The notes a dataset carries about how its columns met the model's features."""
    notes = []
    if ignored:
        notes.append(_ignored_note(ignored))
    if mapping == "positional" and order_note:
        notes.append("the model has no feature names: the columns were taken in the order given")
    elif mapping in (RENAMED_MAPPING, RENAMED_IGNORING_CASE_MAPPING) and model is not None and model.feature_names:
        notes.append(renamed_note(selected, model.feature_names, model.family,
                                  ignoring_case=mapping == RENAMED_IGNORING_CASE_MAPPING))
    elif mapping == "by-name-ignoring-case":
        notes.append("columns were matched to the model's feature names ignoring case and surrounding spaces")
    return notes


def align_columns(columns: Sequence[str], model: LoadedModel, *, target: str | None,
                  display: str) -> tuple[list[str], str, list[str]]:
    """(selected columns in the model's order, mapping, ignored columns) for a table with these column names,
    by the rules an in-memory DataFrame is read with (a missing target and duplicated names that matter are
    refused, naming ``display``)."""
    columns = [str(c) for c in columns]
    if target is not None and target not in columns:
        raise _missing_target(target, columns, display)
    selected, mapping, ignored = _align([c for c in columns if c != target], model.feature_names,
                                        model.n_features, display, target, family=model.family)
    duplicated = [c for c in _duplicates(columns) if c in selected or c == target]
    if duplicated:
        raise InputError(f"{display} has duplicate column names: {_listing(duplicated)}; rename them")
    return selected, mapping, ignored


def _dataset(X: np.ndarray, selected: list[str], mapping: str, ignored: list[str], target: str | None,
             target_values: np.ndarray | None, display: str, digest: str, model: LoadedModel, *,
             extra_notes: Sequence[str] = (), order_note: bool = True) -> Dataset:
    notes = list(extra_notes)
    y = _clean_target(target_values) if target_values is not None else None
    notes += alignment_notes(mapping, ignored, order_note=order_note, selected=selected, model=model)
    if y is not None:
        notes.extend(_target_notes(y, model, target or "the target", display))
    return Dataset(
        X=X,
        feature_names=tuple(selected),
        y=y,
        target=target,
        path=None if display.startswith("<") else display,
        column_mapping=mapping,
        ignored_columns=tuple(ignored),
        notes=tuple(notes),
        sha256=digest,
    )


# --------------------------------------------------------------------------- CSV files


def _from_csv(src: _Source, model: LoadedModel, *, target: str | None, y: Any, progress: Progress | None) -> Dataset:
    report = _ProgressReporter(progress, src.size)
    report(0.0)
    header = _read_header(src)
    scan = _scan(src, header.body_offset, header.sep, len(header.names), report)
    if not scan.has_body:
        _no_rows(src.display)
    if scan.odd_quotes:
        _check_quotes_closed(src, header)
    layout = _csv_layout(src, header, model, target)
    selected, mapping, ignored, index = list(layout.selected), layout.mapping, list(layout.ignored), layout.index
    feature_cols, target_col, internal = list(layout.feature_cols), layout.target_col, list(layout.internal)
    include = feature_cols + ([target_col] if target_col else [])
    categories = _category_reader(model, selected, src.display)
    text_cols = frozenset(feature_cols[j] for j in categories.decoders)  # values or codes: decided on the whole column
    tolerant: frozenset[str] = frozenset()  # feature columns parsed as strings (pyarrow refused a value)
    while True:
        categories = _category_reader(model, selected, src.display)
        try:
            X, target_values = _read_body(src, header, internal, layout.types(tolerant | text_cols), include,
                                          feature_cols, target_col, selected, scan.max_rows, report, categories)
            break
        except _ConversionFailed as failure:
            if failure.column in text_cols:
                raise InputError(f"{src.display} could not be read: {failure.message}") from None
            tolerant = _widen_tolerant(tolerant, failure, layout, src.display)
    if X.shape[0] == 0:
        _no_rows(src.display)
    categories.finish(X)
    if target_values is None and y is not None:
        target_values = _given_target(y, X.shape[0])
        target = "y"
    report(1.0)
    notes = ((_INDEX_NOTE,) if index is not None else ()) + tuple(categories.notes(X.shape[0]))
    return _dataset(X, selected, mapping, ignored, target, target_values, src.display, scan.sha256, model,
                    extra_notes=notes)


@dataclass(frozen=True)
class CsvLayout:
    """A CSV's header aligned to a model's features: what a run decides before it reads the body."""

    header: _Header
    selected: tuple[str, ...]  # the file's columns, in the model's feature order
    mapping: str
    ignored: tuple[str, ...]
    index: str | None  # a pandas index column, ignored
    target: str | None
    internal: tuple[str, ...]  # pyarrow's names for the file's columns, c0, c1, ...
    feature_cols: tuple[str, ...]
    target_col: str | None

    def types(self, tolerant: frozenset[str] = frozenset()) -> dict[str, Any]:
        """pyarrow column types: features as numbers, those in ``tolerant`` (and the target) as text."""
        import pyarrow as pa

        types = {c: (pa.string() if c in tolerant else pa.float64()) for c in self.feature_cols}
        if self.target_col:
            types[self.target_col] = pa.string()
        return types

    def notes(self, model: LoadedModel | None = None) -> list[str]:
        return ([_INDEX_NOTE] if self.index is not None else []) + alignment_notes(
            self.mapping, self.ignored, selected=self.selected, model=model)


def _csv_layout(src: _Source, header: _Header, model: LoadedModel, target: str | None) -> CsvLayout:
    import pyarrow as pa

    names = list(header.names)
    if target is not None and target not in names:
        raise _missing_target(target, names, src.display)
    if problem := _index_column_problem(names, model.feature_names, src.display):
        raise InputError(problem)
    index = names[0] if _has_index_column(names, model.feature_names) else None
    internal = [f"c{i}" for i in range(len(names))]
    try:
        selected, mapping, ignored = _align([c for c in names if c not in (target, index)], model.feature_names,
                                            model.n_features, src.display, target, family=model.family)
    except InputError:
        # A malformed file is the more basic problem: name it first (as reading whole files did).
        for _ in _batches(src, header, internal, {internal[0]: pa.string()}, internal[:1]):
            pass
        raise
    return CsvLayout(header=header, selected=tuple(selected), mapping=mapping, ignored=tuple(ignored), index=index,
                     target=target, internal=tuple(internal),
                     feature_cols=tuple(internal[names.index(c)] for c in selected),
                     target_col=internal[names.index(target)] if target is not None else None)


def _widen_tolerant(tolerant: frozenset[str], failure: _ConversionFailed, layout: CsvLayout,
                    display: str) -> frozenset[str]:
    """Parse the refused column as text and convert it here (spaces, odd null tokens) or explain which value
    is wrong; a second refusal sends every feature column down that path."""
    if failure.column in tolerant or failure.column not in layout.feature_cols:
        raise InputError(f"{display} could not be read: {failure.message}") from None
    return tolerant | {failure.column} if not tolerant else frozenset(layout.feature_cols)


def open_csv(source: str | os.PathLike[str] | bytes, *, name: str | None = None, filesystem: Any = None) -> _Source:
    """A CSV source to read with ``csv_layout`` and ``iter_csv_blocks`` (a context manager): a local path, its
    bytes, or a path on a pyarrow ``filesystem`` (object stores)."""
    if filesystem is not None:
        return _FilesystemSource.open(filesystem, str(source), name or str(source))
    return _Source.open(source, name)


def csv_layout(src: _Source, model: LoadedModel, *, target: str | None = None) -> CsvLayout:
    """Read the header of ``src`` and align it to ``model``: the same checks and refusals as a run, from
    the header alone (the body is read only to name a malformed file first)."""
    return _csv_layout(src, _read_header(src), model, target)


class CsvRetry(Exception):
    """A feature column holds a value pyarrow cannot read as a number: read the file again from its first
    row with ``tolerant`` (the columns to parse as text, as a run does)."""

    def __init__(self, tolerant: frozenset[str]):
        super().__init__("read the CSV again with more columns parsed as text")
        self.tolerant = tolerant


def iter_csv_blocks(src: _Source, layout: CsvLayout, *, tolerant: frozenset[str] = frozenset(),
                    check_bytes: bool = True, categories: Callable[[int], CategoryReader] | None = None,
                    ) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
    """The body of ``src`` in blocks: (rows before the block, float64 features in the model's order, cleaned
    target values or None), with the refusals of a run. ``check_bytes`` first makes the run's checking pass
    (UTF-8, data rows present, quotes closed). Raises ``CsvRetry`` (see there). ``categories(rows before the
    block)``: a reader for each block's categorical columns (read as text, decoded and finished on that block
    alone); without it they are read as numbers."""
    if check_bytes:
        scan = _scan(src, layout.header.body_offset, layout.header.sep, len(layout.header.names), None)
        if not scan.has_body:
            _no_rows(src.display)
        if scan.odd_quotes:
            _check_quotes_closed(src, layout.header)
    include = list(layout.feature_cols) + ([layout.target_col] if layout.target_col else [])
    text = frozenset(layout.feature_cols[j] for j in categories(0).decoders) if categories is not None else frozenset()
    row = 0
    try:
        for batch in _batches(src, layout.header, list(layout.internal), layout.types(tolerant | text), include):
            block = np.empty((batch.num_rows, len(layout.feature_cols)), dtype=np.float64)
            reader = categories(row) if categories is not None else None
            _fill_block(batch, layout.feature_cols, layout.selected, src.display, row, block, reader)
            if reader is not None:
                reader.finish(block)
            y = _clean_target_text(batch.column(layout.target_col)) if layout.target_col else None
            yield row, block, y
            row += batch.num_rows
    except _ConversionFailed as failure:
        raise CsvRetry(_widen_tolerant(tolerant, failure, layout, src.display)) from None
    if row == 0:
        _no_rows(src.display)


# --------------------------------------------------------------------------- alignment and the target


def check_columns(columns: Sequence[str], feature_names: Sequence[str] | None, n_features: int | None,
                  target: str | None, display: str, *, family: str | None = None) -> str | None:
    """Why a CSV with this header cannot feed a model with these features (None when it can): the same rules
    and words a run uses, for callers that know only the header (the dashboard, before a run)."""
    names = tuple(feature_names) if feature_names else None
    if names is None and n_features is None:
        return None
    if problem := _index_column_problem(columns, names, display):
        return problem
    if _has_index_column(columns, names):
        columns = columns[1:]
    try:
        _align([c for c in columns if c != target], names, n_features if n_features is not None else len(columns),
               display, target, family=family)
    except InputError as e:
        return str(e)
    return None


def _align(columns: list[str], names: tuple[str, ...] | None, n_features: int, display: str,
           target: str | None = None, *, family: str | None = None) -> tuple[list[str], str, list[str]]:
    """(selected columns in the model's order, mapping, ignored columns).

    A model that knows its feature names gets its columns by name: exactly, else as the training library
    renamed them (``feature_names.match_renamed``, for ``family``), else ignoring case and surrounding spaces
    when that matches every name one to one, else the rename then ignoring case
    (``feature_names.match_renamed_ignoring_case``). A model without names takes the columns in file order,
    with an exact count check.
    """
    if names and target is not None and column_key(target) in {column_key(n) for n in names}:
        raise InputError(
            f"target column {target!r} is one of the model's feature columns: choose the column that holds "
            "the labels or values the model predicts"
        )
    if names:
        renamed = match_renamed(columns, names, family, display)  # refuses two columns for one renamed name
        selected = list(names) if set(names) <= set(columns) else renamed or _match_names(columns, names)
        both = None
        if selected is None:  # the rename, then ignoring case; refuses two columns for one name
            selected = both = match_renamed_ignoring_case(columns, names, family, display)
        if selected is not None:
            wanted = set(selected)
            mapping = ("by-name" if list(selected) == list(names) else
                       RENAMED_MAPPING if selected == renamed else
                       RENAMED_IGNORING_CASE_MAPPING if selected is both else "by-name-ignoring-case")
            return selected, mapping, [c for c in columns if c not in wanted]
        present = {column_key(c) for c in columns}
        as_trained = training_names(columns, family)
        trained_keys = {column_key(n) for n in as_trained}
        missing = [n for n in names if n not in columns and column_key(n) not in present and n not in as_trained
                   and column_key(n) not in trained_keys]
        if len(missing) < len(names):
            spelled = missing_listing(missing, columns, family)
            if spelled is not None:  # the CSV keeps the names before the library's rename: say them that way
                raise InputError(
                    f"{display} is missing {len(missing)} of the model's feature columns: "
                    f"{', '.join(spelled[:5])}{' and more' if len(spelled) > 5 else ''}; "
                    "add them, spelled as the file's other columns are")
            raise InputError(
                f"{display} is missing {len(missing)} of the model's feature columns: {_listing(missing)}; "
                "add them (named exactly as in training)"
            )
        raise InputError(
            f"none of {display}'s columns match the model's feature names (the model expects {_listing(list(names))}; "
            f"the file has {_listing(columns)}): rename the columns to the names used in training"
        )
    if len(columns) != n_features:
        hint = " (name the target column if one of them is the target)" if len(columns) == n_features + 1 else ""
        raise InputError(f"{display} has {_plural(len(columns), 'feature column')} but the model expects "
                         f"{n_features}{hint}")
    return list(columns), "positional", []


def column_key(name: str) -> str:
    """A column name as columns are matched when exact names fail: ignoring case and surrounding spaces."""
    return name.strip().casefold()


def _match_names(columns: list[str], names: tuple[str, ...] | list[str]) -> list[str] | None:
    """The CSV columns for the model's names, in the model's order: exact, else case/space-insensitive if unique."""
    present = set(columns)
    if all(n in present for n in names):
        return list(names)
    by_fold: dict[str, list[str]] = {}
    for c in columns:
        by_fold.setdefault(column_key(c), []).append(c)
    if len({column_key(n) for n in names}) != len(names):
        return None
    matched = [by_fold.get(column_key(n), []) for n in names]
    if all(len(m) == 1 for m in matched):
        return [m[0] for m in matched]
    return None


def _count_nan(X: np.ndarray, chunk_rows: int = 65_536) -> int:
    return int(sum(np.count_nonzero(np.isnan(X[i:i + chunk_rows])) for i in range(0, X.shape[0], chunk_rows)))


def _rows(count: int, total: int) -> str:
    return f"{count:,} of {_plural(total, 'row')} {'has' if count == 1 else 'have'}"


def check_regression_target(y: np.ndarray, target: str, display: str, row_offset: int = 0) -> None:
    """InputError naming the first text value in a regression target (``row_offset`` rows precede ``y``)."""
    text = np.array([isinstance(v, str) for v in y], dtype=bool)
    if text.any():
        row = int(np.flatnonzero(text)[0])
        raise InputError(
            f"{display}: target column {target!r} has a non-numeric value {_shorten(str(y[row]))!r} at data "
            f"row {row_offset + row + 1}: a regression model's target must be numbers (leave a cell empty if unknown)"
            + decimal_comma_hint(str(y[row]))
        )


def clean_target(values: np.ndarray) -> np.ndarray:
    """Target values as a run keeps them: text trimmed, empty and null markers None, numbers as numbers."""
    return _clean_target(values)


def _target_notes(y: np.ndarray, model: LoadedModel, target: str, display: str) -> list[str]:
    """Say which target rows the metrics cannot use; InputError for a regression target that is not numbers."""
    missing = np.array([v is None or (isinstance(v, float) and np.isnan(v)) for v in y], dtype=bool)
    notes = []
    if model.task == "regression":
        check_regression_target(y, target, display)
    elif model.classes is not None:
        unknown = (encode_target(y, model.classes) < 0) & ~missing
        if unknown.all() and unknown.any():
            seen = list(dict.fromkeys(str(v) for v in y[unknown]))
            indices = list(model.classes) == list(range(len(model.classes)))
            if indices and all(isinstance(v, str) for v in y[unknown]):
                return [f"{METRICS_SKIPPED}: the values in {target!r} are text ({_listing(seen)}) but this model file "
                        f"stores its classes as 0 to {len(model.classes) - 1} without their names (XGBoost and LightGBM "
                        "files keep none): write the target as those class numbers (scikit-learn numbers sorted "
                        "labels: the first in sorted order is 0)"]
            return [f"{METRICS_SKIPPED}: none of the values in {target!r} ({_listing(seen)}) is one of the model's "
                    f"classes ({_listing(model.classes)}); check that this column holds the labels the model was "
                    "trained on"]
        if unknown.any():
            examples = list(dict.fromkeys(str(v) for v in y[unknown]))
            which = f"a {target!r} value that is not" if int(unknown.sum()) == 1 else f"{target!r} values that are not"
            notes.append(f"{_rows(int(unknown.sum()), y.size)} {which} among the "
                         f"model's classes ({_listing(examples)}): left out of the metrics")
    if missing.all():
        notes.append(f"{METRICS_SKIPPED}: {target!r} is empty on every row")
    elif missing.any():
        notes.append(f"{_rows(int(missing.sum()), y.size)} no {target!r} value: left out of the metrics")
    return notes


def encode_target(y: np.ndarray, classes: Sequence[Any] | None) -> np.ndarray:
    """Map target values to class indices (-1 for missing or unknown labels).

    Matches by value, and by string form so that a CSV's "1" matches a model's integer class 1.
    """
    y = np.asarray(y, dtype=object)
    if classes is None:
        raise ValueError("classification metrics need the model's classes")
    lookup: dict[Any, int] = {}
    for i, c in enumerate(classes):
        for key in _label_keys(c):
            lookup.setdefault(key, i)
    out = np.full(y.shape[0], -1, dtype=np.int64)
    for row, value in enumerate(y):
        for key in _label_keys(value):
            if key in lookup:
                out[row] = lookup[key]
                break
    return out


def _label_keys(value: Any) -> list[Any]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    keys: list[Any] = [value, str(value).strip()]
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        return keys
    if as_float.is_integer():
        keys.append(str(int(as_float)))
    return keys


def _missing_target(target: str, columns: list[str], display: str) -> InputError:
    """The target is not a column: suggest the closest name (case-insensitive first, then by spelling)."""
    folded = [column_key(c) for c in columns]
    same = [c for c, f in zip(columns, folded, strict=True) if f == column_key(target)]
    close = same or [columns[folded.index(m)] for m in difflib.get_close_matches(column_key(target), folded, n=1)]
    if close:
        return InputError(f"target column {target!r} is not in {display}: did you mean {close[0]!r}? "
                          f"(columns: {_listing(columns)})")
    return InputError(f"target column {target!r} is not in {display} (columns: {_listing(columns)}): "
                      "check the spelling, or run without a target")


def _index_column_problem(columns: Sequence[str], feature_names: Sequence[str] | None, display: str) -> str | None:
    """Why a pandas index column cannot simply be ignored: a model without feature names takes columns by
    position, so dropping an unnamed column would be a guess."""
    if feature_names or not _has_index_column(columns, feature_names):
        return None
    return (f"{display}: column 1 has no name and looks like a pandas index (DataFrame.to_csv without index=False): "
            "this model takes the columns by position, so save the CSV with index=False (or delete that column)")


_INDEX_NOTE = ("column 1 has no name and looks like a pandas index (DataFrame.to_csv without index=False): "
               "ignored")


