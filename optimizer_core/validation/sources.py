"""The data of a validation: CSV and Parquet files, found from paths, folders, globs and object-store URLs,
aligned to the model's features the way a run aligns its CSV, and read back in bounded batches.

Every file is checked before the work starts (it exists, it is readable, its columns align to the model),
so a bad file is refused by name before any row is scored. The work is cut into units (a CSV file, or a run
of a Parquet file's row groups) that know their first row, so every row keeps its file and row number.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from optimizer_core import data as tables
from optimizer_core.errors import InputError
from optimizer_core.models.base import LoadedModel
from optimizer_core.validation import category_codes

if TYPE_CHECKING:
    from optimizer_core.categories import CategoryReader, StoredCategories

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv",)
UNIT_BATCHES = 16  # Parquet row groups are gathered into units of about this many batches
_PANDAS_INDEX = re.compile(r"__index_level_\d+__")


@dataclass(frozen=True)
class DataFile:
    """One file, checked and aligned to the model. Sent to every worker, so it stays small."""

    display: str  # how messages and results name it: the path or URL as found
    path: str  # local path, or the path inside ``filesystem``
    format: str  # "csv" | "parquet"
    size_bytes: int
    filesystem: Any = None  # a pyarrow filesystem for object-store URLs; None for local files
    selected: tuple[str, ...] = ()  # the file's columns in the model's feature order
    target: str | None = None
    notes: tuple[str, ...] = ()
    csv_layout: tables.CsvLayout | None = None
    row_groups: tuple[int, ...] = ()  # Parquet: rows per row group

    @property
    def rows(self) -> int | None:
        """Data rows, when known before reading (Parquet)."""
        return sum(self.row_groups) if self.format == "parquet" else None


@dataclass(frozen=True)
class WorkUnit:
    """A piece of the work: a whole CSV file, or consecutive row groups of a Parquet file."""

    file_index: int
    first_row: int = 0  # rows of the file before this unit
    row_groups: tuple[int, ...] = ()  # Parquet: which row groups
    weight: int = 1  # rows (Parquet) or bytes (CSV), for progress


@dataclass(frozen=True)
class Found:
    """A data file named by the user, before it is opened."""

    display: str
    path: str
    filesystem: Any = None
    notes: tuple[str, ...] = field(default=())


# --------------------------------------------------------------------------- finding files


def find_files(sources: Sequence[str | os.PathLike[str]]) -> tuple[list[Found], list[str]]:
    """Files named by paths, folders (searched recursively for .csv and .parquet files, skipping names that
    start with '.' or '_'), globs and URLs (``s3://``, ``gs://``, ``hdfs://``, ``file://``: any scheme pyarrow
    has a filesystem for). Returns the files in order, without repeats, and notes."""
    if isinstance(sources, str | os.PathLike):
        sources = [sources]
    if not sources:
        raise InputError("no data given: pass CSV or Parquet files, folders of them, or globs")
    found: list[Found] = []
    notes: list[str] = []
    for source in sources:
        text = os.fspath(source)
        if "://" in text:
            files, skipped = _find_remote(text)
        else:
            files, skipped = _find_local(text)
        if skipped:
            several = skipped != 1
            notes.append(f"{text}: {skipped:,} file{'s' if several else ''} that {'are' if several else 'is'} neither "
                         f".csv nor .parquet {'were' if several else 'was'} skipped")
        found.extend(files)
    seen: set[str] = set()
    unique = []
    for f in found:
        key = f.display if f.filesystem is not None else os.path.realpath(f.path)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, notes


def _find_local(text: str) -> tuple[list[Found], int]:
    if glob.has_magic(text):
        matches = sorted(glob.glob(text, recursive=True))
        files = [m for m in matches if os.path.isfile(m)]
        if not files:
            raise InputError(f"no file matches {text}: check the pattern (quote it so the shell does not expand it)")
        return [Found(m, m) for m in files], 0
    path = Path(text)
    if path.is_dir():
        members, skipped = _folder_members([str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()])
        if not members:
            raise InputError(f"folder {text} holds no .csv or .parquet files")
        return [Found(str(path / m), str(path / m)) for m in members], skipped
    if not path.exists():
        raise InputError(f"data file {text} does not exist: check the path")
    return [Found(text, text)], 0


def _folder_members(relative: list[str]) -> tuple[list[str], int]:
    """The data files among a folder's files (relative paths), sorted, and how many others were skipped."""
    visible = [r for r in relative if not any(part.startswith((".", "_")) for part in Path(r).parts)]
    data = sorted(r for r in visible if r.lower().endswith(PARQUET_SUFFIXES + CSV_SUFFIXES))
    return data, len(visible) - len(data)


def _find_remote(url: str) -> tuple[list[Found], int]:
    import pyarrow as pa
    import pyarrow.fs as pafs

    scheme, _, rest = url.partition("://")
    wildcard = re.search(r"[*?\[]", rest)
    base = url if wildcard is None else f"{scheme}://{rest[:wildcard.start()].rpartition('/')[0]}"
    try:
        filesystem, path = pafs.FileSystem.from_uri(base)
    except (pa.ArrowException, ValueError, OSError) as e:
        raise InputError(f"cannot open {url}: {_first_line(e)} (does pyarrow support {scheme}://, and are the "
                         "credentials set?)") from e
    prefix = base[: len(base) - len(path)] if base.endswith(path) else f"{scheme}://"
    if wildcard is not None:
        matcher = _glob_regex(path.rstrip("/") + url[len(base):])
        files = sorted(i.path for i in _list_remote(filesystem, path, url) if i.is_file and matcher.fullmatch(i.path))
        if not files:
            raise InputError(f"no file matches {url}: check the pattern")
        return [Found(prefix + f, f, filesystem) for f in files], 0
    info = _info(filesystem, path, url)
    if info.type == pafs.FileType.NotFound:
        raise InputError(f"data file {url} does not exist: check the URL")
    if info.type == pafs.FileType.Directory:
        folder = path.rstrip("/") + "/"
        members, skipped = _folder_members([i.path[len(folder):] for i in _list_remote(filesystem, path, url)
                                            if i.is_file and i.path.startswith(folder)])
        if not members:
            raise InputError(f"folder {url} holds no .csv or .parquet files")
        return [Found(prefix + folder + m, folder + m, filesystem) for m in members], skipped
    return [Found(url, path, filesystem)], 0


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob as a regular expression with the shell's rules: '*' and '?' stay within a folder, '**' spans
    folders."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 1:]:
            end = pattern.index("]", i + 1)
            out.append("[" + pattern[i + 1:end].replace("!", "^", 1) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def _info(filesystem: Any, path: str, url: str) -> Any:
    try:
        return filesystem.get_file_info(path)
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read {url}: {_first_line(e)}") from e


def _list_remote(filesystem: Any, path: str, url: str) -> list[Any]:
    import pyarrow.fs as pafs

    try:
        return filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
    except (OSError, ValueError) as e:
        raise InputError(f"cannot list {url}: {_first_line(e)}") from e


# --------------------------------------------------------------------------- checking files


def inspect_file(found: Found, model: LoadedModel, target: str | None) -> DataFile:
    """Open ``found``, tell CSV from Parquet by content, and align its columns to ``model`` (InputError naming
    the file when it cannot be read or aligned)."""
    head, size = _head(found)
    if head.startswith(b"PAR1"):
        return _inspect_parquet(found, model, target, size)
    with tables.open_csv(found.path, name=found.display, filesystem=found.filesystem) as src:
        layout = tables.csv_layout(src, model, target=target)
    return DataFile(found.display, found.path, "csv", size, found.filesystem, layout.selected, target,
                    tuple(layout.notes(model)), csv_layout=layout)


def _head(found: Found) -> tuple[bytes, int]:
    try:
        if found.filesystem is None:
            if os.path.isdir(found.path):
                raise InputError(f"{found.display} is a folder inside a folder of data: pass the files or the top "
                                 "folder")
            with open(found.path, "rb") as f:
                return f.read(4), os.fstat(f.fileno()).st_size
        with found.filesystem.open_input_file(found.path) as f:
            return f.read(4), f.size()
    except FileNotFoundError as e:
        raise InputError(f"data file {found.display} does not exist: check the path") from e
    except PermissionError as e:
        raise InputError(f"data file {found.display} cannot be read (permission denied)") from e
    except OSError as e:
        raise InputError(f"data file {found.display} cannot be read: {_first_line(e)}") from e


def _inspect_parquet(found: Found, model: LoadedModel, target: str | None, size: int) -> DataFile:
    with _parquet(found) as parquet:
        metadata = parquet.metadata
        names = list(parquet.schema_arrow.names)
        groups = tuple(metadata.row_group(i).num_rows for i in range(metadata.num_row_groups))
    if sum(groups) == 0:
        raise InputError(f"{found.display} has no data rows: remove it from the data, or add rows")
    index = [n for n in names if _PANDAS_INDEX.fullmatch(n)
             and not (model.feature_names and n in model.feature_names)]
    columns = [n for n in names if n not in index]
    selected, mapping, ignored = tables.align_columns(columns, model, target=target, display=found.display)
    notes = ([f"{', '.join(index)} {'is' if len(index) == 1 else 'are'} the pandas index stored with the data: "
              "ignored"] if index else []) + tables.alignment_notes(mapping, ignored, selected=selected, model=model)
    return DataFile(found.display, found.path, "parquet", size, found.filesystem, tuple(selected), target,
                    tuple(notes), row_groups=groups)


class _parquet:
    """``pyarrow.parquet.ParquetFile`` over a local or remote file, closed on exit; InputError if unreadable."""

    def __init__(self, file: Found | DataFile):
        self.file = file
        self.handle = None

    def __enter__(self) -> Any:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            if self.file.filesystem is None:
                self.handle = pa.OSFile(self.file.path, "r")
            else:
                self.handle = self.file.filesystem.open_input_file(self.file.path)
            return pq.ParquetFile(self.handle)
        except FileNotFoundError as e:
            self.__exit__()
            raise InputError(f"data file {self.file.display} does not exist: check the path") from e
        except (pa.ArrowException, OSError) as e:
            self.__exit__()
            raise InputError(f"{self.file.display} is not a readable Parquet file ({_first_line(e)}): it may be "
                             "truncated or still being written") from e

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def plan_units(files: Sequence[DataFile], unit_rows: int) -> list[WorkUnit]:
    """Cut the work into units: each CSV file whole (a CSV cannot be split without reading it), each Parquet
    file into runs of row groups of about ``unit_rows`` rows."""
    units = []
    for index, file in enumerate(files):
        if file.format == "csv":
            units.append(WorkUnit(index, weight=max(file.size_bytes, 1)))
            continue
        start, first_row, rows = 0, 0, 0
        for group, count in enumerate(file.row_groups):
            rows += count
            if rows >= unit_rows or group == len(file.row_groups) - 1:
                units.append(WorkUnit(index, first_row, tuple(range(start, group + 1)), weight=max(rows, 1)))
                start, first_row, rows = group + 1, first_row + rows, 0
    return units


# --------------------------------------------------------------------------- reading a unit


@dataclass(frozen=True)
class Block:
    """Rows of one file: ``first_row`` rows of the file come before them."""

    first_row: int
    X: np.ndarray  # float64 [rows, n_features] in the model's order
    y: np.ndarray | None  # the target values as a run cleans them, or None


def read_unit(file: DataFile, unit: WorkUnit, batch_rows: int,
              tolerant: frozenset[str] = frozenset(), stored: StoredCategories | None = None) -> Iterator[Block]:
    """The unit's rows in blocks of at most ``batch_rows``. A CSV may raise ``data.CsvRetry``: read the unit
    again with its ``tolerant`` columns (what a run does when pyarrow refuses a number). ``stored``: the
    categories the model file stores, whose columns must hold integer codes (``category_codes``)."""
    categories = category_codes.reader_factory(stored, file.selected, file.display, tables.NULL_TOKENS)
    if file.format == "parquet":
        yield from _parquet_blocks(file, unit, batch_rows, categories)
        return
    with tables.open_csv(file.path, name=file.display, filesystem=file.filesystem) as src:
        for first_row, X, y in tables.iter_csv_blocks(src, file.csv_layout, tolerant=tolerant,
                                                       check_bytes=not tolerant, categories=categories):
            for start in range(0, X.shape[0], batch_rows):
                stop = start + batch_rows
                yield Block(first_row + start, X[start:stop], None if y is None else y[start:stop])


def _parquet_blocks(file: DataFile, unit: WorkUnit, batch_rows: int,
                    categories: Callable[[int], CategoryReader] | None = None) -> Iterator[Block]:
    import pandas as pd
    import pyarrow as pa

    columns = list(dict.fromkeys(list(file.selected) + ([file.target] if file.target else [])))
    row = unit.first_row
    with _parquet(file) as parquet:
        batches = parquet.iter_batches(batch_size=batch_rows, row_groups=list(unit.row_groups), columns=columns,
                                       use_threads=False)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except (pa.ArrowException, OSError) as e:
                raise InputError(f"{file.display} could not be read after data row {row:,} ({_first_line(e)}): "
                                 "the file may be damaged") from e
            frame = batch.to_pandas()
            reader = categories(row) if categories is not None else None
            X = tables.frame_features(frame, file.selected, file.display, row, categories=reader)
            if reader is not None:
                reader.finish(X)
            y = None
            if file.target:
                column = frame[file.target]
                y = column.to_numpy(dtype=object)
                if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)):
                    y = tables.clean_target(y)  # cleaning changes only text: numbers pass as they are
            yield Block(row, X, y)
            row += batch.num_rows


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0][:200] if lines else type(e).__name__
