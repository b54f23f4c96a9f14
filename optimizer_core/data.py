"""CSV (or an in-memory table) -> Dataset aligned to the model's features.

Columns are matched by name when the model knows its feature names (any order, extra columns
ignored and listed in the notes); positionally otherwise, with an exact count check. Empty cells and
NaN stay missing (NaN), which is how every supported family represents a missing value.

Large files are read with bounded memory: the header is parsed first (separator, names, alignment),
one streaming pass checks the bytes (binary, UTF-8, sha256, row count), then pyarrow's streaming CSV
reader parses the body block by block straight into the preallocated float64 matrix. Only the target
column is ever held as Python objects. A path is streamed from disk, never read whole into memory.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import hashlib
import io
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optimizer_core.categories import CategoryReader
from optimizer_core.data_hints import (
    FALSE_TEXT,
    TRUE_TEXT,
    decimal_comma_hint,
    split_decimal_comma_hint,
)
from optimizer_core.errors import InputError, shorten
from optimizer_core.feature_names import RENAMED_MAPPING, match_renamed, renamed_note, training_names
from optimizer_core.models.base import LoadedModel

TARGET_GUESSES = ("label", "target", "y", "class")
# Cells read as a missing value (NaN), after stripping surrounding spaces.
NULL_TOKENS = ("", "nan", "NaN", "NA", "N/A", "null", "NULL", "None", "?")
_TARGET_NULLS = ("nan", "na", "null", "none")
_MAX_LISTED = 5
_BINARY_WINDOW = 1 << 16  # a NUL byte in the first 64 KiB means a binary file
_CHUNK = 1 << 22  # bytes per read in the checking pass
_HEAD = 1 << 20  # first read when looking for the header row
_MAX_HEADER = 1 << 24  # a header row longer than this is refused
_BLOCK = 1 << 20  # pyarrow block size; its streaming reader holds a few dozen blocks (~40 MB here) at once
_MAX_BLOCK = 1 << 30
_PROGRESS_MIN_BYTES = 1 << 24  # files smaller than this report only start and end
_NON_SPACE = re.compile(rb"[^ \t\r\n\x0b\x0c]")
_SPACES = " \t\r\n\x0b\x0c"
_COLUMN_INDEX = re.compile(r"CSV column #(\d+)")
# (leading bytes, what the file is, what to do): files that are often picked instead of the CSV itself
_COMPRESSED = (
    (b"\x1f\x8b", "gzip-compressed", "decompress it first (e.g. gunzip) and pass the CSV inside"),
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx file is one)", "extract the CSV, or export the sheet as CSV UTF-8"),
    (b"\xfd7zXZ\x00", "xz-compressed", "decompress it first (e.g. unxz) and pass the CSV inside"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed", "decompress it first (e.g. unzstd) and pass the CSV inside"),
)
_WIDE_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"),
              (b"\xfe\xff", "UTF-16"))

Progress = Callable[[str, float], None]


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


def read_csv_table(source: str | os.PathLike[str] | bytes, *, name: str | None = None) -> tuple[pd.DataFrame, str, str]:
    """Read a (small) CSV into a DataFrame of raw string values: (frame, display name, sha256).

    Meant for previews such as the dashboard's column picker; it holds every cell as a string, so
    use ``load_dataset`` for the full data.
    """
    import pyarrow as pa

    with _Source.open(source, name) as src:
        header = _read_header(src)
        scan = _scan(src, header.body_offset, header.sep, len(header.names), None)
        if not scan.has_body:
            _no_rows(src.display)
        if scan.odd_quotes:
            _check_quotes_closed(src, header)
        internal = [f"c{i}" for i in range(len(header.names))]
        types = {c: pa.string() for c in internal}
        columns: dict[str, list[Any]] = {c: [] for c in internal}
        for batch in _batches(src, header, internal, types, internal):
            for c in internal:
                columns[c].append(batch.column(c).to_numpy(zero_copy_only=False))
        frame = pd.DataFrame({n: np.concatenate(columns[c]) for n, c in zip(header.names, internal, strict=True)},
                             dtype=str)
        return frame, src.display, scan.sha256


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
    elif mapping == RENAMED_MAPPING and model is not None and model.feature_names:
        notes.append(renamed_note(selected, model.feature_names, model.family))
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


# --------------------------------------------------------------------------- CSV sources


class _Source:
    """A CSV as bytes in memory or a file on disk, read in pieces (never copied whole)."""

    def __init__(self, display: str, size: int, data: memoryview | None = None, path: Path | None = None):
        self.display = display
        self.size = size
        self.data = data
        self.path = path
        self._file = None

    @classmethod
    def open(cls, source: Any, name: str | None) -> _Source:
        if isinstance(source, bytes | bytearray | memoryview):
            view = memoryview(source).cast("B")
            return cls(name or "<uploaded CSV>", view.nbytes, data=view)
        if not isinstance(source, str | os.PathLike):
            raise InputError(f"data is a {type(source).__module__}.{type(source).__name__}: pass a CSV path or its "
                             "bytes, a pandas DataFrame, a numpy array or a Dataset (dense, one row per sample)")
        path = Path(source)
        display = name or str(path)
        try:
            if path.is_dir():
                raise InputError(f"{display} is a folder, not a CSV file")
            handle = open(path, "rb")  # noqa: SIM115 - closed in __exit__
        except FileNotFoundError as e:
            raise InputError(f"CSV file {display} does not exist: check the path") from e
        except PermissionError as e:
            raise InputError(f"CSV file {display} cannot be read (permission denied)") from e
        except OSError as e:
            raise InputError(f"CSV file {display} cannot be read: {e.strerror or e}") from e
        src = cls(display, os.fstat(handle.fileno()).st_size, path=path)
        src._file = handle
        return src

    def __enter__(self) -> _Source:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()

    def read(self, offset: int, size: int) -> bytes | memoryview:
        if self.data is not None:
            return self.data[offset:offset + size]
        try:
            self._file.seek(offset)
            return self._file.read(size)
        except OSError as e:
            raise InputError(f"CSV file {self.display} cannot be read: {e.strerror or e}") from e

    def chunks(self, offset: int = 0, size: int | None = None) -> Iterator[tuple[int, bytes | memoryview]]:
        size = size or _CHUNK
        while offset < self.size:
            piece = self.read(offset, size)
            if not len(piece):
                return
            yield offset, piece
            offset += len(piece)

    def arrow_input(self, offset: int) -> Any:
        """A pyarrow stream positioned at ``offset``."""
        import pyarrow as pa

        if self.data is not None:
            return pa.BufferReader(pa.py_buffer(self.data[offset:]))
        try:
            stream = pa.OSFile(str(self.path), "r")
        except OSError as e:
            raise InputError(f"CSV file {self.display} cannot be read: {_first_line(e)}") from e
        stream.seek(offset)
        return stream

    def text_lines(self, offset: int) -> io.TextIOBase:
        """Text from ``offset`` on, for diagnosing a problem (newlines kept as in the file)."""
        if self.data is not None:
            raw: Any = io.BufferedReader(_ViewReader(self.data[offset:]))
        else:
            raw = open(self.path, "rb")  # noqa: SIM115 - owned by the wrapper
            raw.seek(offset)
        return io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")


class _FilesystemSource(_Source):
    """A CSV on a pyarrow filesystem (an object store): read through ranged reads, never copied whole."""

    def __init__(self, display: str, size: int, filesystem: Any, path: str):
        super().__init__(display, size)
        self.filesystem = filesystem
        self.remote_path = path

    @classmethod
    def open(cls, filesystem: Any, path: str, display: str) -> _FilesystemSource:  # type: ignore[override]
        try:
            handle = filesystem.open_input_file(path)
        except FileNotFoundError as e:
            raise InputError(f"CSV file {display} does not exist: check the path") from e
        except (OSError, ValueError) as e:
            raise InputError(f"CSV file {display} cannot be read: {_first_line(e)}") from e
        src = cls(display, handle.size(), filesystem, path)
        src._file = handle
        return src

    def read(self, offset: int, size: int) -> bytes:
        try:
            return self._file.read_at(min(size, max(self.size - offset, 0)), offset)
        except OSError as e:
            raise InputError(f"CSV file {self.display} cannot be read: {_first_line(e)}") from e

    def arrow_input(self, offset: int) -> Any:
        try:
            stream = self.filesystem.open_input_file(self.remote_path)
        except OSError as e:
            raise InputError(f"CSV file {self.display} cannot be read: {_first_line(e)}") from e
        stream.seek(offset)
        return stream

    def text_lines(self, offset: int) -> io.TextIOBase:
        stream = self.arrow_input(offset)
        return io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="")


class _ViewReader(io.RawIOBase):
    """A file over a memoryview, without copying it (io.BytesIO would)."""

    def __init__(self, view: memoryview):
        self.view = view
        self.pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.view.nbytes - self.pos)
        buffer[:n] = self.view[self.pos:self.pos + n]
        self.pos += n
        return n


@dataclass(frozen=True)
class _Header:
    names: tuple[str, ...]
    sep: str
    body_offset: int  # byte offset just after the header row
    body_line: int  # physical line number (1-based) of the header row's last line


@dataclass(frozen=True)
class _Scan:
    sha256: str
    max_rows: int  # upper bound of data rows (line breaks after the header + 1)
    has_body: bool
    odd_quotes: bool  # an odd number of '"' after the header: maybe a quote left open


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


class _ConversionFailed(Exception):
    def __init__(self, column: str, message: str):
        super().__init__(message)
        self.column = column
        self.message = message


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
                    check_bytes: bool = True) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
    """The body of ``src`` in blocks: (rows before the block, float64 features in the model's order, cleaned
    target values or None), with the refusals of a run. ``check_bytes`` first makes the run's checking pass
    (UTF-8, data rows present, quotes closed). Raises ``CsvRetry`` (see there)."""
    if check_bytes:
        scan = _scan(src, layout.header.body_offset, layout.header.sep, len(layout.header.names), None)
        if not scan.has_body:
            _no_rows(src.display)
        if scan.odd_quotes:
            _check_quotes_closed(src, layout.header)
    include = list(layout.feature_cols) + ([layout.target_col] if layout.target_col else [])
    row = 0
    try:
        for batch in _batches(src, layout.header, list(layout.internal), layout.types(tolerant), include):
            block = np.empty((batch.num_rows, len(layout.feature_cols)), dtype=np.float64)
            _fill_block(batch, layout.feature_cols, layout.selected, src.display, row, block)
            y = _clean_target_text(batch.column(layout.target_col)) if layout.target_col else None
            yield row, block, y
            row += batch.num_rows
    except _ConversionFailed as failure:
        raise CsvRetry(_widen_tolerant(tolerant, failure, layout, src.display)) from None
    if row == 0:
        _no_rows(src.display)


def _fill_block(batch: Any, feature_cols: Sequence[str], selected: Sequence[str], display: str, row: int,
                block: np.ndarray, categories: CategoryReader | None = None) -> None:
    """Convert a pyarrow batch's feature columns into ``block`` (rows ``row`` on of the file); columns with
    ``categories`` decoders get the ids of their raw values until the whole column is seen."""
    import pyarrow as pa

    for j, c in enumerate(feature_cols):
        column = batch.column(c)
        if categories is not None and j in categories.decoders:
            block[:, j] = categories.decoders[j].ids(column.to_numpy(zero_copy_only=False))
        elif pa.types.is_string(column.type):
            block[:, j] = _tolerant_numbers(column.to_numpy(zero_copy_only=False), selected[j], display, row)
        else:
            block[:, j] = column.to_numpy(zero_copy_only=False)
    _check_finite(block, row, tuple(selected), display)


def _read_body(src: _Source, header: _Header, internal: list[str], types: dict[str, Any], include: list[str],
               feature_cols: list[str], target_col: str | None, selected: list[str], max_rows: int,
               report: _ProgressReporter, categories: CategoryReader) -> tuple[np.ndarray, np.ndarray | None]:
    X = np.empty((max_rows, len(feature_cols)), dtype=np.float64)
    targets: list[np.ndarray] = []
    row = 0
    for batch in _batches(src, header, internal, types, include):
        n = batch.num_rows
        if row + n > X.shape[0]:  # the row estimate is an upper bound; this is only a safety net
            X = _grow(X, max(row + n, 2 * X.shape[0]))
        block = X[row:row + n]
        _fill_block(batch, feature_cols, selected, src.display, row, block, categories)
        if target_col:
            targets.append(_clean_target_text(batch.column(target_col)))
        row += n
        report(0.4 + 0.6 * min(row / max_rows, 1.0))  # rows over the line count: smooth, unlike read-ahead
        del block
    if row < X.shape[0]:
        X = _shrink(X, row)
    y = (np.concatenate(targets) if targets else np.empty(0, dtype=object)) if target_col else None
    return X, y


def _batches(src: _Source, header: _Header, internal: list[str], types: dict[str, Any],
             include: list[str]) -> Iterator[Any]:
    """pyarrow record batches of the body; InputError on a malformed row, _ConversionFailed on a cell
    that pyarrow cannot read as a number."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    block = _BLOCK
    invalid: list[Any] = []
    blank = _SPACES.replace(header.sep, "")  # with tabs as separator, a tab is a (empty) cell

    def on_invalid(row: Any) -> str:
        if row.text is not None and not row.text.strip(blank):
            return "skip"  # a line of spaces is a blank line
        invalid.append(row)
        return "error"

    emitted = 0  # rows already handed out: after a restart with bigger blocks, they are skipped
    while True:
        invalid.clear()
        stream = src.arrow_input(header.body_offset)
        skip = emitted
        try:
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(column_names=internal, block_size=block, use_threads=True),
                parse_options=pacsv.ParseOptions(delimiter=header.sep, quote_char='"', double_quote=True,
                                                 escape_char=False, newlines_in_values=True,
                                                 ignore_empty_lines=True, invalid_row_handler=on_invalid),
                convert_options=pacsv.ConvertOptions(column_types=types, include_columns=include,
                                                     null_values=list(NULL_TOKENS), strings_can_be_null=False,
                                                     quoted_strings_can_be_null=True, check_utf8=False),
            )
            for batch in reader:
                if skip:
                    if batch.num_rows <= skip:
                        skip -= batch.num_rows
                        continue
                    batch, skip = batch.slice(skip), 0
                emitted += batch.num_rows
                yield batch
            return
        except pa.ArrowException as e:
            message = _first_line(e)
            if "straddling" in message and block < _MAX_BLOCK:
                block *= 8  # a row longer than one block: read again with bigger blocks
                continue
            if invalid or ("Expected" in message and "columns" in message):
                _raise_ragged(src, header, invalid[0] if invalid else None, message)
            match = _COLUMN_INDEX.search(message)
            if match and "conversion error" in message:
                raise _ConversionFailed(internal[int(match.group(1))], message) from None
            raise InputError(f"{src.display} is not a well-formed CSV: {message}") from e
        finally:
            stream.close()


def _raise_ragged(src: _Source, header: _Header, row: Any, message: str) -> None:
    expected = len(header.names)
    line, got, unclosed = _find_ragged_line(src, header)
    if line is not None and unclosed:
        raise InputError(f"{src.display} is not a well-formed CSV: line {line} opens a quoted value that is "
                         'never closed: check for a stray " in that row')
    if line is not None:
        where = f"line {line} has {got} field{'s' if got != 1 else ''}"
    elif row is not None:
        where = f"a row has {_plural(row.actual_columns, 'field')} ({_shorten(row.text)!r})"
    else:
        where = message
    fields = got if line is not None else row.actual_columns if row is not None else 0
    raise InputError(
        f"{src.display} is not a well-formed CSV: {where} but the header has {expected}; "
        "every row needs the header's column count"
        + split_decimal_comma_hint(row.text if row is not None else None, header.sep, fields, expected)
    )


def _check_quotes_closed(src: _Source, header: _Header) -> None:
    """A quote opened and never closed swallows every later row into one cell (pyarrow accepts that
    at the end of the file): find the row that opens it. Only run when the quote count is odd."""
    with src.text_lines(header.body_offset) as text:
        reader = csv.reader(text, delimiter=header.sep, skipinitialspace=True, strict=True)
        previous = 0
        try:
            for _ in reader:
                previous = reader.line_num
        except csv.Error as e:
            if "unexpected end of data" in str(e):
                raise InputError(f"{src.display} is not a well-formed CSV: line {header.body_line + previous + 1} "
                                 'opens a quoted value that is never closed: check for a stray " in that row') from None
            return  # another oddity (a quote inside a cell): pyarrow reads it like pandas does


def _find_ragged_line(src: _Source, header: _Header) -> tuple[int | None, int, bool]:
    """(physical line, field count, whether a quote is left open) of the first row whose field count
    differs from the header's."""
    expected = len(header.names)
    blank = _SPACES.replace(header.sep, "")
    with src.text_lines(header.body_offset) as text:
        reader = csv.reader(text, delimiter=header.sep, skipinitialspace=True)
        previous = 0
        try:
            for fields in reader:
                if fields and not (len(fields) == 1 and not fields[0].strip(blank)) and len(fields) != expected:
                    multiline = reader.line_num > previous + 1 or any("\n" in f or "\r" in f for f in fields)
                    unclosed = multiline and next(reader, None) is None  # the quote ran to the end of the file
                    return header.body_line + previous + 1, len(fields), unclosed
                previous = reader.line_num
        except csv.Error:
            return None, 0, False
    return None, 0, False


def _read_header(src: _Source) -> _Header:
    head = bytes(src.read(0, min(_HEAD, src.size)))
    _refuse_non_text(head, src.display)
    bom = 3 if head.startswith(codecs.BOM_UTF8) else 0
    first = _NON_SPACE.search(head, bom)
    while first is None and len(head) < src.size:  # a long run of blank lines
        head += bytes(src.read(len(head), _HEAD))
        first = _NON_SPACE.search(head, bom)
    if first is None:
        raise InputError(f"{src.display} is empty: it needs a header row and at least one data row")
    start = max(head.rfind(b"\n", bom, first.start()), head.rfind(b"\r", bom, first.start())) + 1
    start = max(start, bom)
    skipped_lines = _count_lines(head[bom:start])
    while True:
        text, complete = _decode_head(head, start, src)
        lines = io.StringIO(text, newline="").readlines()
        sep = _sniff_separator(lines[0] if lines else "")
        reader = csv.reader(iter(lines), delimiter=sep, skipinitialspace=True)
        try:
            names = next(reader)
        except (csv.Error, StopIteration) as e:
            raise InputError(f"{src.display}: the header row cannot be read: {_first_line(e)}") from e
        used = reader.line_num
        if used < len(lines) or complete:
            break
        if len(head) - start >= _MAX_HEADER:
            raise InputError(f"{src.display}: the header row is longer than {_MAX_HEADER >> 20} MB "
                             "(an unclosed quote?): the first row must be a header naming every column")
        head += bytes(src.read(len(head), max(len(head), _HEAD)))
    _check_header(names, src.display)
    body_offset = start + len("".join(lines[:used]).encode("utf-8"))
    return _Header(tuple(names), sep, body_offset, skipped_lines + used)


def _refuse_non_text(head: bytes, display: str) -> None:
    """InputError for a compressed file, UTF-16/32 text or other binary content, each with its own fix."""
    for magic, what, fix in _COMPRESSED:
        if head.startswith(magic):
            raise InputError(f"{display} is {what}: {fix}")
    encoding = _wide_encoding(head)
    if encoding:
        raise InputError(f"{display} is {encoding} text: save it as UTF-8 (a spreadsheet's 'CSV UTF-8' format, "
                         f"or iconv -f {encoding} -t UTF-8)")
    if b"\x00" in head[:_BINARY_WINDOW]:
        raise InputError(f"{display} is binary, not a CSV text file: export the data as UTF-8 CSV")


def _wide_encoding(head: bytes) -> str | None:
    """'UTF-16' or 'UTF-32' when the bytes start with that byte-order mark, or look like ASCII text stored in
    UTF-16 without one (every other byte NUL); else None."""
    for bom, name in _WIDE_BOMS:
        if head.startswith(bom):
            return name
    sample = head[:min(512, len(head) - len(head) % 2)]  # whole code units
    if len(sample) < 8:
        return None
    even, odd = sample[0::2], sample[1::2]
    for zeros, text in ((odd, even), (even, odd)):  # little-endian, big-endian
        if zeros.count(0) == len(zeros) and text.count(0) == 0:
            return "UTF-16"
    return None


def _decode_head(head: bytes, start: int, src: _Source) -> tuple[str, bool]:
    """The head's text from ``start`` (a multi-byte character cut at the end is left out)."""
    complete = len(head) >= src.size
    try:
        return head[start:].decode("utf-8"), complete
    except UnicodeDecodeError as e:
        if not complete and e.start >= len(head) - start - 3 and e.reason == "unexpected end of data":
            return head[start:start + e.start].decode("utf-8"), False
        raise _not_utf8(src.display, start + e.start) from e


def _count_lines(data: bytes) -> int:
    """Line breaks in ``data`` (\\n, \\r or \\r\\n each count once)."""
    returns = data.count(b"\r")
    return data.count(b"\n") + (returns - data.count(b"\r\n") if returns else 0)


def _scan(src: _Source, body_offset: int, sep: str, columns: int, report: _ProgressReporter | None) -> _Scan:
    """One pass over the bytes: sha256, strict UTF-8, line breaks after the header, any data at all."""
    non_blank = re.compile(b"[^" + re.escape(_SPACES.replace(sep, "").encode()) + b"]")
    digest = hashlib.sha256()
    carry = b""  # the start of a multi-byte character cut by the chunk boundary
    breaks = quotes = 0
    has_body = False
    previous_cr = False
    for offset, piece in src.chunks():
        digest.update(piece)
        data = carry + bytes(piece) if carry else piece
        try:
            _, decoded = codecs.utf_8_decode(data, "strict", False)
        except UnicodeDecodeError as e:
            raise _not_utf8(src.display, offset - len(carry) + e.start) from e
        carry = bytes(data[decoded:])
        body = piece if offset >= body_offset else piece[max(body_offset - offset, 0):]
        if len(body):
            body = bytes(body) if isinstance(body, memoryview) else body
            breaks += _count_lines(body) - (1 if previous_cr and body[:1] == b"\n" else 0)
            previous_cr = body[-1:] == b"\r"
            has_body = has_body or non_blank.search(body) is not None
            quotes += body.count(b'"')
        if report is not None:
            report(0.4 * (offset + len(piece)) / max(src.size, 1))
    if carry:
        raise _not_utf8(src.display, src.size - len(carry))
    # A data row has at least one byte per column (separators and its line break), so the byte count
    # bounds the rows too: that keeps a file of mostly blank lines from reserving a huge matrix.
    by_bytes = max(src.size - body_offset, 0) // columns + 1
    return _Scan(digest.hexdigest(), min(breaks + 1, by_bytes), has_body, quotes % 2 == 1)


def _not_utf8(display: str, offset: int) -> InputError:
    return InputError(f"{display} is not UTF-8 text (byte {offset} cannot be decoded): save the CSV as UTF-8")


def _no_rows(display: str) -> None:
    raise InputError(f"{display} has a header but no data rows: add at least one row of feature values")


class _ProgressReporter:
    def __init__(self, progress: Progress | None, size: int):
        self.progress = progress if size >= _PROGRESS_MIN_BYTES else None
        self.edges = progress
        self.last = -1.0

    def __call__(self, fraction: float) -> None:
        if fraction in (0.0, 1.0):
            if self.edges is not None and fraction != self.last:
                self.edges("reading data", fraction)
                self.last = fraction
            return
        if self.progress is not None and fraction - self.last >= 0.01:
            self.last = fraction
            self.progress("reading data", min(fraction, 1.0))


# --------------------------------------------------------------------------- shared helpers


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
    when that matches every name one to one. A model without names takes the columns in file order, with an
    exact count check.
    """
    if names and target is not None and column_key(target) in {column_key(n) for n in names}:
        raise InputError(
            f"target column {target!r} is one of the model's feature columns: choose the column that holds "
            "the labels or values the model predicts"
        )
    if names:
        renamed = match_renamed(columns, names, family, display)  # refuses two columns for one renamed name
        selected = list(names) if set(names) <= set(columns) else renamed or _match_names(columns, names)
        if selected is not None:
            wanted = set(selected)
            mapping = ("by-name" if list(selected) == list(names) else
                       RENAMED_MAPPING if selected == renamed else "by-name-ignoring-case")
            return selected, mapping, [c for c in columns if c not in wanted]
        present = {column_key(c) for c in columns}
        as_trained = training_names(columns, family)
        missing = [n for n in names if n not in columns and column_key(n) not in present and n not in as_trained]
        if len(missing) < len(names):
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


def _tolerant_numbers(raw: np.ndarray, column: str, display: str, row_offset: int) -> np.ndarray:
    """Text cells -> float64 (spaces stripped, NULL_TOKENS missing), or InputError naming the first bad cell."""
    series = pd.Series(raw, dtype=object)
    present = series.notna()
    text = series.where(present, "").astype(str).str.strip()
    text = text.mask(text.isin(TRUE_TEXT), "1").mask(text.isin(FALSE_TEXT), "0")  # pandas writes booleans so
    missing = text.isin(NULL_TOKENS) | ~present
    values = pd.to_numeric(text.where(~missing, None), errors="coerce")
    bad = values.isna() & ~missing
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"{display}: column {column!r} has a non-numeric value {_shorten(str(raw[row]))!r} "
            f"at data row {row_offset + row + 1}: features must be numbers (leave a cell empty for a missing value)"
            + decimal_comma_hint(str(raw[row]))
        )
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _check_finite(block: np.ndarray, row_offset: int, columns: tuple[str, ...], display: str) -> None:
    infinite = np.isinf(block)
    if infinite.any():
        row, col = np.argwhere(infinite)[0]
        raise InputError(f"{display}: column {columns[col]!r} has an infinite value at data row {row_offset + row + 1}")


def _grow(X: np.ndarray, rows: int) -> np.ndarray:
    grown = np.empty((rows, X.shape[1]), dtype=X.dtype)
    grown[:X.shape[0]] = X
    return grown


def _shrink(X: np.ndarray, rows: int) -> np.ndarray:
    """Drop unused rows in place (realloc) when possible, else copy."""
    try:
        X.resize((rows, X.shape[1]), refcheck=False)
        return X
    except ValueError:
        return np.ascontiguousarray(X[:rows])


def _count_nan(X: np.ndarray, chunk_rows: int = 65_536) -> int:
    return int(sum(np.count_nonzero(np.isnan(X[i:i + chunk_rows])) for i in range(0, X.shape[0], chunk_rows)))


def _rows(count: int, total: int) -> str:
    return f"{count:,} of {_plural(total, 'row')} {'has' if count == 1 else 'have'}"


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


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
        from optimizer_core.drift import encode_target

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


def _clean_target(values: np.ndarray) -> np.ndarray:
    out = np.empty(values.shape[0], dtype=object)
    for i, v in enumerate(values):
        if isinstance(v, str):
            v = v.strip()
            if v == "" or v.lower() in _TARGET_NULLS:
                out[i] = None
                continue
            try:
                f = float(v)
                out[i] = int(f) if f.is_integer() else f
            except (ValueError, OverflowError):
                out[i] = v
        else:
            out[i] = v
    return out


def _clean_target_text(column: Any) -> np.ndarray:
    """``_clean_target`` for a pyarrow string column, vectorised when every value is a number or missing."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(column)
    missing = pc.or_(pc.equal(text, ""), pc.is_in(pc.utf8_lower(text), value_set=pa.array(_TARGET_NULLS)))
    try:
        numbers = pc.cast(pc.if_else(missing, pa.scalar(None, pa.string()), text), pa.float64())
    except pa.ArrowException:
        return _clean_target(column.to_numpy(zero_copy_only=False))
    values = numbers.to_numpy(zero_copy_only=False)
    absent = missing.to_numpy(zero_copy_only=False)
    finite = np.isfinite(values)
    with np.errstate(invalid="ignore"):
        whole = finite & (np.mod(values, 1.0) == 0) & (np.abs(values) < 2.0**53)
    if (finite & (np.abs(values) >= 2.0**53)).any():
        return _clean_target(column.to_numpy(zero_copy_only=False))  # huge integers: exact Python ints
    out = values.astype(object)
    if whole.any():
        out[whole] = values[whole].astype(np.int64).astype(object)
    out[absent] = None
    return out


def _sniff_separator(header: str) -> str:
    try:
        return csv.Sniffer().sniff(header, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _check_header(columns: list[str], display: str) -> None:
    first = 1 if _has_index_column(columns) else 0  # a pandas index: dealt with once the model is known
    unnamed = [i for i, c in enumerate(columns) if i >= first and (c.startswith("Unnamed: ") or not c.strip())]
    if unnamed:
        column = unnamed[0]
        if column == len(columns) - 1 and not columns[column].strip():
            raise InputError(f"{display}: column {column + 1} has no name: the header row ends with a separator "
                             "(a trailing comma?): remove it, or name the column")
        raise InputError(f"{display}: column {column + 1} has no name: the first row must be a header naming every column")
    numeric_like = sum(_is_number(c) for c in columns)
    if columns and numeric_like == len(columns):
        raise InputError(f"{display} has no header row (the first row is all numbers): add a header naming every column")
    duplicates = _duplicates(columns)
    if duplicates:
        raise InputError(f"{display} has duplicate column names: {_listing(duplicates)}; rename them")


def _has_index_column(columns: Sequence[str], feature_names: Sequence[str] | None = None) -> bool:
    """Whether the first column looks like the index pandas writes by default (DataFrame.to_csv without
    index=False): no name, or 'Unnamed: 0' (such a file read back with pandas and written again). Never a
    column the model names as a feature: a model trained on such a frame has 'Unnamed: 0' as a feature."""
    if feature_names and columns and columns[0] in feature_names:
        return False
    return len(columns) > 1 and (not columns[0].strip() or columns[0] == "Unnamed: 0")


def _index_column_problem(columns: Sequence[str], feature_names: Sequence[str] | None, display: str) -> str | None:
    """Why a pandas index column cannot simply be ignored: a model without feature names takes columns by
    position, so dropping an unnamed column would be a guess."""
    if feature_names or not _has_index_column(columns, feature_names):
        return None
    return (f"{display}: column 1 has no name and looks like a pandas index (DataFrame.to_csv without index=False): "
            "this model takes the columns by position, so save the CSV with index=False (or delete that column)")


_INDEX_NOTE = ("column 1 has no name and looks like a pandas index (DataFrame.to_csv without index=False): "
               "ignored")


def _duplicates(columns: list[str]) -> list[str]:
    seen: set[str] = set()
    return sorted({c for c in columns if c in seen or seen.add(c)})


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _shorten(text: str, limit: int = 40) -> str:
    return shorten(text, limit)


def _listing(items: Any) -> str:
    items = [str(i) for i in items]
    shown = ", ".join(repr(i) for i in items[:_MAX_LISTED])
    return shown + (f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0][:200] if lines else type(e).__name__
