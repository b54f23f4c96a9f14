"""CSV (or an in-memory table) -> Dataset aligned to the model's features.

Columns are matched by name when the model knows its feature names (any order, extra columns
ignored and listed in the notes); positionally otherwise, with an exact count check. Empty cells and
NaN stay missing (NaN), which is how every supported family represents a missing value.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optimizer_core.errors import InputError
from optimizer_core.models.base import LoadedModel

TARGET_GUESSES = ("label", "target", "y", "class")
_MAX_LISTED = 5


@dataclass(frozen=True)
class Dataset:
    """Feature matrix in the model's column order, plus the optional target."""

    X: np.ndarray = field(repr=False)  # float64 [rows, n_features], NaN = missing
    feature_names: tuple[str, ...]
    y: np.ndarray | None = field(default=None, repr=False)
    target: str | None = None
    path: str | None = None
    column_mapping: str = "by-name"  # "by-name" | "positional"
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
            "missing_values": int(np.isnan(self.X).sum()),
            "sha256": self.sha256,
            "notes": list(self.notes),
        }


def read_csv_table(source: str | os.PathLike[str] | bytes, *, name: str | None = None) -> tuple[pd.DataFrame, str, str]:
    """Read a CSV into a DataFrame of raw values. Returns (frame, display name, sha256)."""
    data, display = _read_bytes(source, name)
    text = _decode(data, display)
    if not text.strip():
        raise InputError(f"{display} is empty: it needs a header row and at least one data row")
    sep = _sniff_separator(text)
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, skipinitialspace=True, dtype=str, keep_default_na=False)
    except pd.errors.ParserError as e:
        raise InputError(f"{display} is not a well-formed CSV: {_first_line(e)}; every row needs the header's column count") from e
    except pd.errors.EmptyDataError as e:
        raise InputError(f"{display} is empty: it needs a header row and at least one data row") from e
    _check_header(frame, display)
    if frame.empty:
        raise InputError(f"{display} has a header but no data rows: add at least one row of feature values")
    return frame, display, hashlib.sha256(data).hexdigest()


def load_dataset(
    source: str | os.PathLike[str] | bytes | pd.DataFrame | np.ndarray,
    model: LoadedModel,
    *,
    target: str | None = None,
    y: Any = None,
    name: str | None = None,
) -> Dataset:
    """Load the user's rows aligned to ``model``'s features.

    ``source`` is a CSV path or its bytes, or an in-memory DataFrame/array (then ``y`` may carry the
    target directly). ``target`` names the target column to separate out.
    """
    if isinstance(source, np.ndarray):
        return _from_array(source, model, y=y, name=name)
    if isinstance(source, pd.DataFrame):
        frame, display, digest = source.copy(), name or "<DataFrame>", ""
        frame.columns = [str(c) for c in frame.columns]
    else:
        frame, display, digest = read_csv_table(source, name=name)
    target_values = None
    if target is not None:
        if target not in frame.columns:
            raise InputError(
                f"target column {target!r} is not in {display} (columns: {_listing(frame.columns)}): "
                "check the spelling or drop --target"
            )
        target_values = frame.pop(target).to_numpy(dtype=object)
    elif y is not None:
        target_values = np.asarray(y, dtype=object)
    features, mapping, ignored = _align(frame, model, display)
    X = _to_numeric(features, display)
    notes = []
    if ignored:
        notes.append(f"ignored columns not used by the model: {', '.join(ignored)}")
    if mapping == "positional":
        notes.append("the model has no feature names: CSV columns were taken in file order")
    return Dataset(
        X=X,
        feature_names=tuple(features.columns),
        y=_clean_target(target_values) if target_values is not None else None,
        target=target,
        path=None if display.startswith("<") else display,
        column_mapping=mapping,
        ignored_columns=tuple(ignored),
        notes=tuple(notes),
        sha256=digest,
    )


def guess_target(columns: list[str]) -> str | None:
    """The first column named like a target (label, target, y, class), case-insensitively."""
    lowered = {c.lower().strip(): c for c in columns}
    return next((lowered[g] for g in TARGET_GUESSES if g in lowered), None)


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
    return Dataset(
        X=X,
        feature_names=tuple(names),
        y=_clean_target(np.asarray(y, dtype=object)) if y is not None else None,
        target="y" if y is not None else None,
        path=name,
        column_mapping="positional",
    )


def _align(frame: pd.DataFrame, model: LoadedModel, display: str) -> tuple[pd.DataFrame, str, list[str]]:
    names = model.feature_names
    if names:
        missing = [n for n in names if n not in frame.columns]
        if not missing:
            ignored = [c for c in frame.columns if c not in set(names)]
            return frame[list(names)], "by-name", ignored
        if len(missing) < len(names):
            raise InputError(
                f"{display} is missing {len(missing)} of the model's feature columns: {_listing(missing)}; "
                "add them (named exactly as in training)"
            )
        # No name matches at all: fall back to positions when the count fits exactly.
    if frame.shape[1] != model.n_features:
        hint = " (pass --target if one column is the target)" if frame.shape[1] == model.n_features + 1 else ""
        raise InputError(
            f"{display} has {frame.shape[1]} feature columns but the model expects {model.n_features}{hint}"
            + ("; none of its column names match the model's feature names" if names else "")
        )
    return frame, "positional", []


def _to_numeric(frame: pd.DataFrame, display: str) -> np.ndarray:
    X = np.empty((frame.shape[0], frame.shape[1]), dtype=np.float64)
    for j, column in enumerate(frame.columns):
        raw = frame[column]
        if raw.dtype == object or pd.api.types.is_string_dtype(raw):
            text = raw.astype(str).str.strip()
            missing = text.isin(["", "nan", "NaN", "NA", "N/A", "null", "NULL", "None", "?"]) | raw.isna()
            values = pd.to_numeric(text.where(~missing, None), errors="coerce")
            bad = values.isna() & ~missing
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise InputError(
                    f"{display}: column {column!r} has a non-numeric value {str(raw.iloc[row])[:40]!r} "
                    f"at data row {row + 1}: features must be numbers (leave a cell empty for a missing value)"
                )
            X[:, j] = values.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            try:
                X[:, j] = raw.to_numpy(dtype=np.float64, na_value=np.nan)
            except (TypeError, ValueError) as e:
                raise InputError(f"{display}: column {column!r} is not numeric: {_first_line(e)}") from e
    if np.isinf(X).any():
        row, col = np.argwhere(np.isinf(X))[0]
        raise InputError(f"{display}: column {frame.columns[col]!r} has an infinite value at data row {row + 1}")
    return X


def _clean_target(values: np.ndarray) -> np.ndarray:
    out = np.empty(values.shape[0], dtype=object)
    for i, v in enumerate(values):
        if isinstance(v, str):
            v = v.strip()
            if v == "" or v.lower() in ("nan", "na", "null", "none"):
                out[i] = None
                continue
            try:
                f = float(v)
                out[i] = int(f) if f.is_integer() else f
            except ValueError:
                out[i] = v
        else:
            out[i] = v
    return out


def _read_bytes(source: str | os.PathLike[str] | bytes, name: str | None) -> tuple[bytes, str]:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source), name or "<uploaded CSV>"
    path = Path(source)
    display = name or str(path)
    try:
        if path.is_dir():
            raise InputError(f"{display} is a folder, not a CSV file")
        return path.read_bytes(), display
    except FileNotFoundError as e:
        raise InputError(f"CSV file {display} does not exist: check the path") from e
    except PermissionError as e:
        raise InputError(f"CSV file {display} cannot be read (permission denied)") from e
    except OSError as e:
        raise InputError(f"CSV file {display} cannot be read: {e.strerror or e}") from e


def _decode(data: bytes, display: str) -> str:
    if b"\x00" in data[:65536]:
        raise InputError(f"{display} is binary, not a CSV text file: export the data as UTF-8 CSV")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(
            f"{display} is not UTF-8 text (byte {e.start} cannot be decoded): save the CSV as UTF-8"
        ) from e


def _sniff_separator(text: str) -> str:
    header = text.lstrip().splitlines()[0] if text.strip() else ""
    try:
        return csv.Sniffer().sniff(header, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _check_header(frame: pd.DataFrame, display: str) -> None:
    columns = [str(c) for c in frame.columns]
    unnamed = [i for i, c in enumerate(columns) if c.startswith("Unnamed: ") or not c.strip()]
    if unnamed:
        raise InputError(f"{display}: column {unnamed[0] + 1} has no name: the first row must be a header naming every column")
    numeric_like = sum(_is_number(c) for c in columns)
    if columns and numeric_like == len(columns):
        raise InputError(f"{display} has no header row (the first row is all numbers): add a header naming every column")
    duplicates = sorted({c.rsplit(".", 1)[0] for c in columns if "." in c and c.rsplit(".", 1)[0] in columns})
    if duplicates:
        raise InputError(f"{display} has duplicate column names: {_listing(duplicates)}; rename them")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _listing(items: Any) -> str:
    items = [str(i) for i in items]
    shown = ", ".join(repr(i) for i in items[:_MAX_LISTED])
    return shown + (f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0][:200] if lines else type(e).__name__
