"""Run history: every finished Report, its artifacts and a small summary, in one SQLite file.

The dashboard saves each finished run; the History page lists, opens (``?run=ID``), deletes and
compares them. Writes are transactional (a failed save leaves nothing behind) and every call opens
its own connection, so threads and processes can share one file (SQLite's WAL mode and a busy
timeout serialise the writers).

The database lives at ``$INFERENCE_OPTIMIZER_HISTORY_DB`` or, by default,
``~/.local/share/inference-optimizer/history.db`` (``$XDG_DATA_HOME`` honoured).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from optimizer_core.errors import OptimizerError
from optimizer_core.report import Report

HISTORY_DB_ENV = "INFERENCE_OPTIMIZER_HISTORY_DB"
_BUSY_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    model_name TEXT NOT NULL,
    family TEXT,
    estimator TEXT,
    task TEXT,
    rows INTEGER,
    summary TEXT NOT NULL,
    report_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS artifacts (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    blob BLOB NOT NULL,
    PRIMARY KEY (run_id, name)
);
CREATE INDEX IF NOT EXISTS runs_created_at ON runs(created_at);
"""
# The columns this tool reads: a database whose tables lack them belongs to another application.
_COLUMNS = {
    "runs": ("id", "created_at", "model_name", "family", "estimator", "task", "rows", "summary", "report_json"),
    "artifacts": ("run_id", "name", "blob"),
}
_ELSEWHERE = f"pass another --db (or set {HISTORY_DB_ENV} to another file)"


class HistoryError(OptimizerError):
    """The history database cannot be read or written, or a run is not in it."""


class RunNotFoundError(HistoryError):
    """No stored run has this id."""


def default_path() -> Path:
    """``$INFERENCE_OPTIMIZER_HISTORY_DB``, else the per-user data folder."""
    env = os.environ.get(HISTORY_DB_ENV)
    if env and env.strip():
        return Path(env).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(data_home) / "inference-optimizer" / "history.db"


@dataclass(frozen=True)
class RunSummary:
    """One row of the history list: enough to choose a run without loading its report."""

    run_id: str
    created_at: str
    model_name: str
    family: str | None
    estimator: str | None
    task: str | None
    rows: int | None
    variants: tuple[str, ...] = ()
    headline: dict[str, str] = field(default_factory=dict)  # summary.headline(): label -> display text
    recommended_batch1: str | None = None
    data_name: str | None = None
    wall_s: float | None = None


@dataclass(frozen=True)
class ComparedValue:
    """One quantity in both runs (None where a run lacks it)."""

    label: str
    a: Any
    b: Any


@dataclass(frozen=True)
class Comparison:
    """Two stored runs side by side: headline texts, p50 per batch size and variant, drift per variant."""

    a: RunSummary
    b: RunSummary
    headline: tuple[ComparedValue, ...]
    p50_us: tuple[tuple[int, str, float | None, float | None], ...]  # (batch size, variant, a, b)
    drift: tuple[tuple[str, float | None, float | None, float | None, float | None], ...]
    # (variant, a max |diff|, b max |diff|, a label-flip rate, b label-flip rate)


def summarize(report: Report, *, model_name: str) -> dict[str, Any]:
    """The summary stored next to a report (what the history list shows)."""
    from optimizer_core.summary import headline

    rec = report.recommendation.configuration(1) if report.recommendation else None
    return {
        "variants": [v.name for v in report.variants],
        "headline": headline(report),
        "recommended_batch1": rec,
        "data_name": report.data.get("path"),
        "wall_s": report.wall_s,
        "model_name": model_name,
    }


class HistoryStore:
    """SQLite store of finished runs. Cheap to construct; each method opens its own connection."""

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path).expanduser() if path is not None else default_path()
        if self.path.is_dir():
            raise HistoryError(f"the run history at {self.path} is a folder: give the path of a history file "
                               f"inside it (e.g. {self.path / 'history.db'})")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._refuse_foreign_database()  # before anything writes to it (tables, even the WAL journal mode)
            with self._connect() as conn:
                conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            if not isinstance(e, sqlite3.OperationalError):  # "file is not a database", "malformed"
                raise _not_a_history_file(self.path, e) from e
            raise self._cannot_open(e) from e
        except OSError as e:
            raise self._cannot_open(e) from e

    def _cannot_open(self, e: BaseException) -> HistoryError:
        return HistoryError(f"the run history at {self.path} cannot be opened ({e}): check that the folder "
                            f"is writable, or set {HISTORY_DB_ENV} to another file")

    def _refuse_foreign_database(self) -> None:
        """HistoryError for an existing SQLite file that holds another application's tables."""
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return
        conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S)
        try:
            names = [row[0] for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
                "ORDER BY name")]
            tables = {name: [row[0] for row in conn.execute("SELECT name FROM pragma_table_info(?)", (name,))]
                      for name in names}
        finally:
            conn.close()
        if problem := _foreign_schema(tables):
            raise HistoryError(f"{self.path} is not an inference-optimizer history ({problem}): {_ELSEWHERE}")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S)
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            with contextlib.suppress(sqlite3.OperationalError):  # e.g. a read-only or network file system
                conn.execute("PRAGMA journal_mode = WAL")
            yield conn
        finally:
            conn.close()

    # ------------------------------------------------------------------ writes

    def save(self, report: Report, *, model_name: str) -> str:
        """Store ``report`` (and its artifacts) under ``report.run_id``, replacing an older copy."""
        summary = summarize(report, model_name=model_name)
        report_json = report.to_json(indent=None)
        model = report.model or {}
        rows = (report.data or {}).get("rows")
        try:
            with self._connect() as conn, conn:  # one transaction: all of it or nothing
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("DELETE FROM artifacts WHERE run_id = ?", (report.run_id,))
                conn.execute("DELETE FROM runs WHERE id = ?", (report.run_id,))
                conn.execute(
                    "INSERT INTO runs (id, created_at, model_name, family, estimator, task, rows, summary, "
                    "report_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        report.run_id,
                        report.created_at,
                        model_name,
                        model.get("family"),
                        model.get("estimator"),
                        model.get("task"),
                        int(rows) if rows is not None else None,
                        json.dumps(summary, allow_nan=False, default=str),
                        report_json,
                    ),
                )
                conn.executemany(
                    "INSERT INTO artifacts (run_id, name, blob) VALUES (?, ?, ?)",
                    [(report.run_id, name, _blob(name, blob)) for name, blob in report.artifacts.items()],
                )
        except sqlite3.Error as e:
            raise HistoryError(f"the run could not be saved to {self.path}: {e}") from e
        return report.run_id

    def delete(self, run_id: str) -> bool:
        """Remove a run and its artifacts; False if there was no such run."""
        try:
            with self._connect() as conn, conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("DELETE FROM artifacts WHERE run_id = ?", (run_id,))
                deleted = conn.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount
        except sqlite3.Error as e:
            raise HistoryError(f"run {run_id} could not be deleted from {self.path}: {e}") from e
        return deleted > 0

    # ------------------------------------------------------------------ reads

    def list_runs(self, limit: int | None = None) -> list[RunSummary]:
        """Stored runs, newest first."""
        sql = (
            "SELECT id, created_at, model_name, family, estimator, task, rows, summary FROM runs "
            "ORDER BY created_at DESC, rowid DESC"
        )
        params: tuple[Any, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            params = (int(limit),)
        with self._reading() as conn:
            return [_summary_from_row(row) for row in conn.execute(sql, params)]

    def summary(self, run_id: str) -> RunSummary:
        with self._reading() as conn:
            row = conn.execute(
                "SELECT id, created_at, model_name, family, estimator, task, rows, summary FROM runs "
                "WHERE id = ?",
                (run_id,),
            ).fetchone()
        if row is None:
            raise RunNotFoundError(f"no stored run has the id {run_id!r}: it may have been deleted")
        return _summary_from_row(row)

    def load(self, run_id: str) -> Report:
        """The stored Report with its artifacts."""
        with self._reading() as conn:
            row = conn.execute("SELECT report_json FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise RunNotFoundError(f"no stored run has the id {run_id!r}: it may have been deleted")
            artifacts = {
                name: bytes(blob)
                for name, blob in conn.execute(
                    "SELECT name, blob FROM artifacts WHERE run_id = ? ORDER BY name", (run_id,)
                )
            }
        try:
            report = Report.from_json(row[0])
        except (ValueError, TypeError, KeyError) as e:
            raise HistoryError(f"stored run {run_id} cannot be read by this version: {e}") from e
        return replace(report, artifacts=artifacts)

    def compare(self, a: str, b: str) -> Comparison:
        """Two runs side by side (headline, p50 per batch size and variant, drift per variant)."""
        ra, rb = self.load(a), self.load(b)
        return compare_reports(ra, rb, self.summary(a), self.summary(b))

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._connect() as conn:
                yield conn
        except sqlite3.Error as e:
            if isinstance(e, sqlite3.DatabaseError) and not isinstance(e, sqlite3.OperationalError):
                raise _not_a_history_file(self.path, e) from e
            raise HistoryError(f"the run history at {self.path} cannot be read: {e}") from e


def _foreign_schema(tables: dict[str, list[str]]) -> str | None:
    """Why these tables are not this tool's (None for an empty database or this tool's own)."""
    if not tables:
        return None
    if "runs" not in tables:
        listed = ", ".join(repr(t) for t in list(tables)[:5]) + (" and more" if len(tables) > 5 else "")
        return f"it has table{'s' if len(tables) > 1 else ''} {listed}"
    for name, expected in _COLUMNS.items():
        columns = tables.get(name)
        if columns is not None and not set(expected) <= set(columns):
            return f"its table {name!r} has other columns: {', '.join(columns[:8]) or 'none'}"
    return None


def _not_a_history_file(path: Path, e: BaseException) -> HistoryError:
    return HistoryError(f"{path} is not a valid history database ({e}): move it aside to start a new history, "
                        f"or {_ELSEWHERE}")


def compare_reports(a: Report, b: Report, sa: RunSummary, sb: RunSummary) -> Comparison:
    from optimizer_core.summary import headline

    ha, hb = headline(a), headline(b)
    heads = tuple(ComparedValue(k, ha.get(k), hb.get(k)) for k in dict.fromkeys([*ha, *hb]))
    names = list(dict.fromkeys([v.name for v in a.variants] + [v.name for v in b.variants]))
    sizes = sorted({r.batch_size for rep in (a, b) for v in rep.variants for r in v.latency})
    p50 = []
    for size in sizes:
        for name in names:
            va, vb = _p50(a, name, size), _p50(b, name, size)
            if va is not None or vb is not None:
                p50.append((size, name, va, vb))
    drift = []
    for name in names:
        da, db = a.variant(name), b.variant(name)
        if (da is None or da.drift is None) and (db is None or db.drift is None):
            continue
        drift.append((name, _max_abs(da), _max_abs(db), _flip_rate(da), _flip_rate(db)))
    return Comparison(sa, sb, heads, tuple(p50), tuple(drift))


def _p50(report: Report, variant: str, batch_size: int) -> float | None:
    v = report.variant(variant)
    row = v.latency_at(batch_size) if v is not None else None
    return row.p50_us if row is not None else None


def _max_abs(v: Any) -> float | None:
    if v is None or v.drift is None:
        return None
    return math.inf if v.drift.max_abs is None else float(v.drift.max_abs)


def _flip_rate(v: Any) -> float | None:
    return None if v is None or v.drift is None else v.drift.label_flip_rate


def _blob(name: str, blob: Any) -> bytes:
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise sqlite3.InterfaceError(f"artifact {name!r} is {type(blob).__name__}, not bytes")
    return bytes(blob)


def _summary_from_row(row: tuple[Any, ...]) -> RunSummary:
    run_id, created_at, model_name, family, estimator, task, rows, summary_json = row
    try:
        summary = json.loads(summary_json) if summary_json else {}
    except json.JSONDecodeError:
        summary = {}
    return RunSummary(
        run_id=run_id,
        created_at=created_at,
        model_name=model_name,
        family=family,
        estimator=estimator,
        task=task,
        rows=rows,
        variants=tuple(summary.get("variants") or ()),
        headline=dict(summary.get("headline") or {}),
        recommended_batch1=summary.get("recommended_batch1"),
        data_name=summary.get("data_name"),
        wall_s=summary.get("wall_s"),
    )


__all__ = [
    "HistoryStore",
    "RunSummary",
    "Comparison",
    "ComparedValue",
    "HistoryError",
    "RunNotFoundError",
    "default_path",
    "summarize",
    "compare_reports",
]
