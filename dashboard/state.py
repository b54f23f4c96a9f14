"""Typed access to the dashboard's session state, and the cached core calls the pages share.

Pages never touch ``st.session_state`` keys directly: they go through these helpers, so the keys
and their types live in one place. Heavy objects (a loaded and converted model) are cached with
``st.cache_resource`` keyed by the file's hash; small parsed values with ``st.cache_data``.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st

from optimizer_core.errors import OptimizerError

ALLOW_PICKLE_ENV = "INFERENCE_OPTIMIZER_ALLOW_PICKLE"
DEMO_KINDS = {"xgboost": "XGBoost", "mlp": "MLP"}
CSV_HEAD_BYTES = 1 << 20  # the column picker reads at most this much of the CSV in the server process

_JOBS = "io_jobs"  # job id -> JobMeta, for the jobs this session started
_ACTIVE = "io_active_job"  # job id shown on the Optimize page (running or finished)
_RESULTS = "io_results"  # job id -> Report (with artifacts), kept once the job is done
_DEMO = "io_demo_kind"  # which demo runs when nothing is uploaded
_UPLOAD_NONCE = "io_upload_nonce"  # bumped to clear the file uploaders
_PENDING_DELETE = "io_pending_delete"  # history run id awaiting confirmation


# --------------------------------------------------------------------------- settings


def one_line(error: BaseException | str) -> str:
    """An error as the one line the pages show (st.error), whatever whitespace the message had."""
    return " ".join(str(error).split()) or type(error).__name__


def pickle_allowed() -> bool:
    """The server's opt-in (``inference-optimizer dashboard --allow-pickle``); never a UI toggle."""
    return os.environ.get(ALLOW_PICKLE_ENV, "0").strip().lower() in ("1", "true", "yes")


# --------------------------------------------------------------------------- session state


@dataclass(frozen=True)
class JobMeta:
    job_id: str
    model_name: str
    csv_name: str
    demo: str | None = None


def _bucket(key: str) -> dict[str, Any]:
    if key not in st.session_state:
        st.session_state[key] = {}
    return st.session_state[key]


def remember_job(meta: JobMeta) -> None:
    _bucket(_JOBS)[meta.job_id] = meta
    st.session_state[_ACTIVE] = meta.job_id


def job_meta(job_id: str) -> JobMeta | None:
    return _bucket(_JOBS).get(job_id)


def active_job() -> str | None:
    return st.session_state.get(_ACTIVE)


def clear_active_job() -> None:
    st.session_state.pop(_ACTIVE, None)


def store_result(job_id: str, report: Any) -> None:
    _bucket(_RESULTS)[job_id] = report


def result(job_id: str) -> Any | None:
    return _bucket(_RESULTS).get(job_id)


def session_jobs() -> list[str]:
    return list(_bucket(_JOBS))


@dataclass(frozen=True)
class Outcome:
    """A job as the pages see it: its status, its report once done, and whether History has it."""

    status: Any
    report: Any = None
    saved_run_id: str | None = None
    save_error: str | None = None

    @property
    def finished(self) -> bool:
        return self.status is None or self.status.state in ("done", "failed")


class HistorySaver:
    """Saves every finished job to History from a watcher thread, so a run is stored even when the
    browser tab that started it was closed or reloaded. Process-wide (one per server)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, tuple[str, Path]] = {}  # job id -> (model name, database path)
        self._saved: dict[str, tuple[str | None, str | None]] = {}  # job id -> (run id, error)

    def watch(self, job_id: str, model_name: str) -> None:
        from optimizer_core.history import default_path

        with self._lock:
            self._jobs[job_id] = (model_name, default_path())
        threading.Thread(target=self._wait, args=(job_id,), daemon=True, name=f"save-{job_id}").start()

    def _wait(self, job_id: str) -> None:
        from optimizer_core import jobs

        manager = jobs.get_manager()
        while True:
            status = manager.get(job_id)
            if status is None or status.state == "failed":
                return
            if status.state == "done":
                self.ensure_saved(job_id, status.report)
                return
            time.sleep(0.5)

    def ensure_saved(self, job_id: str, report: Any) -> tuple[str | None, str | None] | None:
        """(run id, None) or (None, error) once saved; None for a job this saver does not know."""
        from optimizer_core.history import HistoryStore

        with self._lock:
            if job_id in self._saved:
                return self._saved[job_id]
            if job_id not in self._jobs or report is None:
                return None
            model_name, path = self._jobs[job_id]
            try:
                outcome: tuple[str | None, str | None] = (
                    HistoryStore(path).save(report, model_name=model_name),
                    None,
                )
            except OptimizerError as e:
                outcome = (None, one_line(e))
            self._saved[job_id] = outcome
            return outcome


@st.cache_resource(show_spinner=False)
def history_saver() -> HistorySaver:
    return HistorySaver()


def submit(request: Any, meta_name: str, csv_name: str, demo: str | None) -> str:
    """Queue a job in the worker pool, watch it for History, and make it this session's active job."""
    from optimizer_core import jobs

    job_id = jobs.get_manager().submit(request)
    history_saver().watch(job_id, meta_name)
    remember_job(JobMeta(job_id, meta_name, csv_name, demo))
    return job_id


def collect(job_id: str) -> Outcome:
    """Poll a job; when it is done keep its report in the session and make sure History has it."""
    from optimizer_core import jobs

    status = jobs.get_manager().get(job_id)
    if status is None or status.state != "done" or status.report is None:
        return Outcome(status)
    report = result(job_id)
    if report is None:
        report = status.report
        store_result(job_id, report)
    saved = history_saver().ensure_saved(job_id, report) or (None, None)
    return Outcome(status, report, *saved)


def unfinished_jobs() -> list[str]:
    """This session's jobs that are still queued or running (finished ones are collected on the way)."""
    return [job_id for job_id in session_jobs() if not collect(job_id).finished]


def demo_kind() -> str:
    return st.session_state.get(_DEMO, "xgboost")


def choose_demo(kind: str) -> None:
    """Button callback: run the chosen demo, and clear any uploaded files so the choice is visible."""
    st.session_state[_DEMO] = kind
    st.session_state[_UPLOAD_NONCE] = upload_nonce() + 1


def upload_nonce() -> int:
    return int(st.session_state.get(_UPLOAD_NONCE, 0))


def pending_delete() -> str | None:
    return st.session_state.get(_PENDING_DELETE)


def set_pending_delete(run_id: str | None) -> None:
    if run_id is None:
        st.session_state.pop(_PENDING_DELETE, None)
    else:
        st.session_state[_PENDING_DELETE] = run_id


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Inputs:
    """The model and CSV the next run uses: uploaded files, or the bundled demo."""

    model_name: str
    model_bytes: bytes = field(repr=False)
    csv_name: str
    csv_bytes: bytes = field(repr=False)
    demo: str | None = None  # demo kind, None for uploads
    description: str | None = None
    default_target: str | None = None

    @property
    def model_sha256(self) -> str:
        return _sha(self.model_bytes)

    @property
    def csv_sha256(self) -> str:
        return _sha(self.csv_bytes)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@st.cache_data(show_spinner="Preparing the demo model…")
def _demo_bytes(kind: str) -> tuple[str, bytes, str, bytes, str, str]:
    from optimizer_core.demo import demo_files

    files = demo_files(kind)
    return (
        files.model_path.name,
        Path(files.model_path).read_bytes(),
        files.csv_path.name,
        Path(files.csv_path).read_bytes(),
        files.target,
        files.description,
    )


def demo_inputs(kind: str) -> Inputs:
    model_name, model_bytes, csv_name, csv_bytes, target, description = _demo_bytes(kind)
    return Inputs(
        model_name,
        model_bytes,
        csv_name,
        csv_bytes,
        demo=kind,
        description=description,
        default_target=target,
    )


# --------------------------------------------------------------------------- cached core calls


@dataclass(frozen=True)
class CsvPreview:
    columns: tuple[str, ...] = ()
    guessed_target: str | None = None
    rows_read: int = 0
    complete: bool = True  # False when only the head of a large file was read
    error: str | None = None


@st.cache_data(show_spinner=False, max_entries=32)
def csv_preview(sha256: str, _data: bytes, name: str) -> CsvPreview:
    """The CSV's columns (reading at most the first MiB) and the guessed target column."""
    from optimizer_core.data import guess_target, read_csv_table

    complete = len(_data) <= CSV_HEAD_BYTES
    head = _data if complete else _data[: _data.rfind(b"\n", 0, CSV_HEAD_BYTES) + 1]
    try:
        frame, _, _ = read_csv_table(head or _data, name=name)
    except OptimizerError as e:
        return CsvPreview(error=one_line(e))
    columns = tuple(str(c) for c in frame.columns)
    return CsvPreview(columns, guess_target(list(columns)), len(frame), complete)


@dataclass(frozen=True)
class ModelCheck:
    """What the server knows about a model before running it."""

    format: str | None = None
    summary: str | None = None  # "XGBClassifier (xgboost), binary, 30 features"
    applicability: tuple[tuple[str, bool, str], ...] = ()  # (precision, applies, reason)
    error: str | None = None
    deferred: str | None = None  # why the check is left to the isolated worker


@st.cache_resource(show_spinner=False)
def _inspections() -> tuple[dict[tuple[str, str, bool], ModelCheck], threading.Lock]:
    """Process-wide results of model inspections, by (file hash, name, pickle allowed), and their lock."""
    return {}, threading.Lock()


def model_check(sha256: str, data: bytes, name: str, allow_pickle: bool) -> ModelCheck:
    """Load and convert the model once per file hash (in a child process), then ask each precision
    whether it applies. Only the format is sniffed here, from the bytes. Results are kept for the
    server's lifetime, except failures that may pass (a timeout on a busy server)."""
    from optimizer_core.models import PICKLE_ADVICE, sniff_format

    cache, lock = _inspections()
    key = (sha256, name, allow_pickle)
    with lock:
        if key in cache:
            return cache[key]
    try:
        fmt = sniff_format(data)
    except OptimizerError as e:
        return ModelCheck(error=one_line(e))
    if fmt == "pickle":
        if not allow_pickle:
            return ModelCheck(format=fmt, error=f"{name} is a pickle/joblib file: {PICKLE_ADVICE}")
        return ModelCheck(
            format=fmt,
            deferred="pickle files are only ever loaded inside the isolated worker, "
            "so which precisions apply is reported with the results",
        )
    from dashboard.model_check import inspect_isolated

    with st.spinner("Inspecting the model…"):
        found = inspect_isolated(data, name)  # a child process: a crashing parser cannot take the server down
    if found.get("error"):
        check = ModelCheck(format=fmt, error=str(found["error"]))
    else:
        rows = tuple((str(p), bool(ok), str(reason)) for p, ok, reason in found.get("applicability", ()))
        check = ModelCheck(format=fmt, summary=found.get("summary"), applicability=rows)
    if not found.get("transient"):
        with lock:
            if len(cache) >= 64:
                cache.pop(next(iter(cache)))
            cache[key] = check
    return check


# ONNX Runtime lists Azure as available in every build, but it calls remote endpoints: it does not run a
# local model, so offering it as a place to benchmark would only ever measure a CPU fallback.
_NOT_LOCAL = ("azure",)


@st.cache_resource(show_spinner=False)
def providers() -> tuple[Any, ...]:
    """ONNX Runtime's execution providers as the core reports them (available or not, and why)."""
    from optimizer_core.runtime import provider_table

    return tuple(p for p in provider_table() if p.short not in _NOT_LOCAL)


@st.cache_resource(show_spinner=False)
def auto_provider() -> str:
    """What 'auto' resolves to on this server, in words."""
    from optimizer_core.runtime import resolve_provider

    return resolve_provider("auto").removesuffix("ExecutionProvider")


@st.cache_data(show_spinner=False, max_entries=8)
def html_report(run_id: str, _report: Any) -> str:
    from optimizer_core.html_report import render_html

    return render_html(_report)


def history_store() -> Any:
    """A HistoryStore on the configured database (cheap: each call opens its own connection)."""
    from optimizer_core.history import HistoryStore

    return HistoryStore()
