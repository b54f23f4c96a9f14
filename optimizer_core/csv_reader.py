"""Read a CSV's bytes into a table: encodings, separators, header, ragged lines, progress.

Large files are read with bounded memory: the header is parsed first (separator, names), one streaming
pass checks the bytes (binary, UTF-8, sha256, row count), then pyarrow's streaming CSV reader parses the
body block by block straight into a preallocated float64 matrix (``_read_body``). Only the target column
is ever held as Python objects. A path is streamed from disk, never read whole into memory; a path on a
pyarrow filesystem (an object store) through ranged reads (``_FilesystemSource``).

Cells are parsed here: features to float64 (empty cells and ``NULL_TOKENS`` are NaN), target cells to
Python values (numbers as int or float, text stripped, missing as None). Which columns are features, in
which order, and what the target means for the model is ``optimizer_core.data``'s job (alignment).
Booleans as pandas writes them read as 1/0; a refused cell or ragged row that looks like a decimal comma says
so (``data_hints``); a column whose categories the model stores is decoded by ``categories``.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optimizer_core.categories import CategoryReader
from optimizer_core.data_hints import FALSE_TEXT, TRUE_TEXT, decimal_comma_hint, split_decimal_comma_hint
from optimizer_core.errors import InputError, shorten

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


class _ConversionFailed(Exception):
    def __init__(self, column: str, message: str):
        super().__init__(message)
        self.column = column
        self.message = message


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


# --------------------------------------------------------------------------- cells, header checks and words


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


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


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
