"""Typed access to the dashboard's session state, and the cached core calls the pages share.

Pages never touch ``st.session_state`` keys directly: they go through these helpers, so the keys
and their types live in one place. Heavy objects (a loaded and converted model) are cached with
``st.cache_resource`` keyed by the file's hash; small parsed values with ``st.cache_data``.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st

from optimizer_core.config import DEFAULT_MAX_DRIFT
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
_DELETED = "io_deleted_run"  # what the last deletion removed, said once after the rerun
_SETTINGS = "io_settings"  # widget key -> last value, kept while the widget is not drawn (other pages)
_UPLOADS = "io_uploads"  # "model" / "csv" -> Upload, kept while the uploaders are not drawn
_STARTED = "io_started"  # set on the session's first script run
_LOST_JOB = "io_lost_job"  # a ?job=ID the server no longer knows
_ADOPTED_JOB = "io_adopted_job"  # a ?job=ID this session reconnected to (the tab was reloaded)

RUN_PARAM = "run"  # ?run=ID: a stored run (the hidden Run page)
JOB_PARAM = "job"  # ?job=ID: the Optimize page's job, so a reload reconnects to it
_JOB_ID = re.compile(r"[0-9a-f]{12}")  # what JobManager.submit hands out


# --------------------------------------------------------------------------- settings


def one_line(error: BaseException | str) -> str:
    """An error as the one line the pages show (st.error), whatever whitespace the message had."""
    return " ".join(str(error).split()) or type(error).__name__


def pickle_allowed() -> bool:
    """The server's opt-in (``inference-optimizer dashboard --allow-pickle``); never a UI toggle."""
    return os.environ.get(ALLOW_PICKLE_ENV, "0").strip().lower() in ("1", "true", "yes")


# --------------------------------------------------------------------------- session state


@dataclass(frozen=True)
class RunSettings:
    """The settings form as a run uses it (precisions in the order runs list them)."""

    precisions: tuple[str, ...]
    providers: tuple[str, ...]
    batch_sizes: tuple[int, ...]
    threads: int  # 0: one per physical core
    budget_s: int
    tune: bool
    target: str | None
    max_drift: float = DEFAULT_MAX_DRIFT  # the drift a recommended variant may have (the CLI's --max-drift)
    trees: tuple[str, ...] = ()  # truncated-ensemble variants ("25%", ...; the CLI's --trees)
    max_metric_loss: float | None = None  # the CLI's --max-metric-loss


@dataclass(frozen=True)
class RunInputs:
    """Everything a run measures: the model and CSV (by name and content) and the settings. The Optimize
    page compares the inputs a job was submitted with to the form's current ones."""

    model_name: str
    model_sha256: str
    csv_name: str
    csv_sha256: str
    settings: RunSettings


# (label, what differs) for each input a user changes; the labels name the form's sections
_INPUT_LABELS: tuple[tuple[str, Callable[[RunInputs], Any]], ...] = (
    ("model", lambda i: (i.model_name, i.model_sha256)),
    ("test data", lambda i: (i.csv_name, i.csv_sha256)),
    ("target column", lambda i: i.settings.target),
    ("precisions", lambda i: i.settings.precisions),
    ("execution providers", lambda i: i.settings.providers),
    ("batch sizes", lambda i: i.settings.batch_sizes),
    ("threads", lambda i: i.settings.threads),
    ("timing budget", lambda i: i.settings.budget_s),
    ("auto-tune", lambda i: i.settings.tune),
    ("drift tolerance", lambda i: i.settings.max_drift),
    ("trees kept", lambda i: i.settings.trees),
    ("metric tolerance", lambda i: i.settings.max_metric_loss),
)


def changed_inputs(before: RunInputs, now: RunInputs | None) -> list[str]:
    """What differs between a job's inputs and the form's (empty when equal; every input when the form has
    no runnable inputs, such as a model without its CSV)."""
    if now is None:  # nothing runnable is loaded now: say so, without guessing which of the two changed
        return ["the model or the test data (one is missing or cannot run)"]
    return [label for label, part in _INPUT_LABELS if part(before) != part(now)]


@dataclass(frozen=True)
class JobMeta:
    job_id: str
    model_name: str
    csv_name: str
    demo: str | None = None
    inputs: RunInputs | None = None  # None for a job this session reconnected to (?job=ID): not known


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

    def model_name(self, job_id: str) -> str | None:
        """The uploaded model's file name for a job this server started (a reloaded tab lost it)."""
        with self._lock:
            known = self._jobs.get(job_id)
        return known[0] if known else None

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


def submit(
    request: Any, meta_name: str, csv_name: str, demo: str | None, inputs: RunInputs | None = None
) -> str:
    """Queue a job in the worker pool, watch it for History, and make it this session's active job; its
    ``inputs`` are kept with it, so the page can tell when its results no longer match the form."""
    from optimizer_core import jobs

    job_id = jobs.get_manager().submit(request)
    history_saver().watch(job_id, meta_name)
    remember_job(JobMeta(job_id, meta_name, csv_name, demo, inputs))
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
    forget_upload("model")
    forget_upload("csv")


def upload_nonce() -> int:
    return int(st.session_state.get(_UPLOAD_NONCE, 0))


def say_deleted(text: str) -> None:
    st.session_state[_DELETED] = text


def pop_deleted() -> str | None:
    """The message about a run deleted on the previous script run, once."""
    return st.session_state.pop(_DELETED, None)


def pending_delete() -> str | None:
    return st.session_state.get(_PENDING_DELETE)


def set_pending_delete(run_id: str | None) -> None:
    if run_id is None:
        st.session_state.pop(_PENDING_DELETE, None)
    else:
        st.session_state[_PENDING_DELETE] = run_id


def run_link(run_id: str) -> str:
    """The shareable address of a stored run (the hidden stored-run page), relative to the app."""
    return f"./run?{RUN_PARAM}={run_id}"


def first_run() -> bool:
    """True on the session's first script run (a page opened by its address), False on every later run."""
    if _STARTED in st.session_state:
        return False
    st.session_state[_STARTED] = True
    return True


# --------------------------------------------------------------------------- settings that survive page switches
# Streamlit forgets a widget's value when a run does not draw it (the user is on another page). The
# Optimize page therefore restores each widget from a copy kept under a key no widget owns.


def restore_setting(key: str, default: Any, valid: Callable[[Any], bool] | None = None) -> None:
    """Before drawing the widget ``key``: give it back its last value (or ``default``). Draw it without
    its own default value afterwards, so Streamlit takes this one."""
    if key in st.session_state:
        return
    value = _bucket(_SETTINGS).get(key, default)
    if valid is not None and not valid(value):
        value = default
    st.session_state[key] = value


def remember_setting(key: str, value: Any) -> None:
    """After drawing a widget: keep its value for when the page is drawn again."""
    _bucket(_SETTINGS)[key] = value


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes = field(repr=False)
    sha256: str = ""  # hashed once, when the file arrives, not on every rerun of the page


def keep_upload(kind: str, widget_key: str) -> None:
    """File uploader callback: keep (or forget) the file itself, not only the widget's value."""
    file = st.session_state.get(widget_key)
    if file is None:
        forget_upload(kind)
    else:
        data = file.getvalue()
        _bucket(_UPLOADS)[kind] = Upload(file.name, data, _sha(data))


def uploaded(kind: str) -> Upload | None:
    return _bucket(_UPLOADS).get(kind)


def forget_upload(kind: str) -> None:
    _bucket(_UPLOADS).pop(kind, None)


# --------------------------------------------------------------------------- the job in the address bar


def adopt_url_job() -> None:
    """A reloaded tab is a new session: reconnect it to the job its address names (``?job=ID``), running
    or finished, so its progress and then its result are shown again. Call once per script run."""
    job_id = st.query_params.get(JOB_PARAM)
    if not job_id or active_job() is not None:
        return
    from optimizer_core import jobs

    if not _JOB_ID.fullmatch(job_id) or jobs.get_manager().get(job_id) is None:
        st.session_state[_LOST_JOB] = job_id
        del st.query_params[JOB_PARAM]
        return
    remember_job(JobMeta(job_id, history_saver().model_name(job_id) or "", ""))
    st.session_state[_ADOPTED_JOB] = job_id


def adopted_job() -> str | None:
    """The job this session reconnected to from its address, if any."""
    return st.session_state.get(_ADOPTED_JOB)


def show_job_in_url(job_id: str | None) -> None:
    """Keep ``?job=ID`` equal to the Optimize page's job, so a reload or a bookmark comes back to it."""
    if job_id is None:
        if JOB_PARAM in st.query_params:
            del st.query_params[JOB_PARAM]
    elif st.query_params.get(JOB_PARAM) != job_id:
        st.query_params[JOB_PARAM] = job_id


def lost_job() -> str | None:
    """The ``?job=ID`` this session was opened with when the server no longer has that job (shown once)."""
    return st.session_state.pop(_LOST_JOB, None)


# --------------------------------------------------------------------------- inputs


def upload_limit_mb() -> int:
    """The largest file the browser uploads (Streamlit's server.maxUploadSize, as this server runs)."""
    from streamlit import config

    return int(config.get_option("server.maxUploadSize"))


@dataclass(frozen=True)
class Inputs:
    """The model and CSV the next run uses: uploaded files, or the bundled demo."""

    model_name: str
    model_bytes: bytes = field(repr=False)
    csv_name: str
    csv_bytes: bytes = field(repr=False)
    model_sha256: str  # hashed once per upload (Upload.sha256) or per demo (cached with its bytes)
    csv_sha256: str
    demo: str | None = None  # demo kind, None for uploads
    description: str | None = None
    default_target: str | None = None

    @classmethod
    def of(cls, model: Upload, csv: Upload, **extra: Any) -> Inputs:
        return cls(model.name, model.data, csv.name, csv.data, model.sha256 or _sha(model.data),
                   csv.sha256 or _sha(csv.data), **extra)

    def with_settings(self, settings: RunSettings) -> RunInputs:
        return RunInputs(self.model_name, self.model_sha256, self.csv_name, self.csv_sha256, settings)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@st.cache_data(show_spinner="Preparing the demo model…")
def _demo_bytes(kind: str) -> tuple[Upload, Upload, str, str]:
    from optimizer_core.demo import demo_files

    files = demo_files(kind)
    model, csv = Path(files.model_path).read_bytes(), Path(files.csv_path).read_bytes()
    return (Upload(files.model_path.name, model, _sha(model)), Upload(files.csv_path.name, csv, _sha(csv)),
            files.target, files.description)


def demo_inputs(kind: str) -> Inputs:
    model, csv, target, description = _demo_bytes(kind)
    return Inputs.of(model, csv, demo=kind, description=description, default_target=target)


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
    from optimizer_core.csv_reader import read_csv_table
    from optimizer_core.data import guess_target

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
    feature_names: tuple[str, ...] = ()  # empty when the model does not know them
    n_features: int | None = None
    trees: tuple[bool, str] = (False, "")  # whether truncated-ensemble variants apply, and why (or why not)


def target_choices(columns: Sequence[str], check: ModelCheck) -> list[str]:
    """The CSV columns that can be the target: every column except the model's own features."""
    from optimizer_core.data import column_key

    features = {column_key(n) for n in check.feature_names}
    return [c for c in columns if column_key(c) not in features]


def column_problem(columns: Sequence[str], check: ModelCheck, target: str | None, csv_name: str) -> str | None:
    """Why the CSV cannot feed the model, known before any run from its header and the inspection; None
    when it fits or when the inspection could not tell (the core's own column rules and words)."""
    from optimizer_core.data import check_columns

    family = "lightgbm" if check.format == "lightgbm-text" else None  # its training renames feature names
    return check_columns(list(columns), check.feature_names, check.n_features, target, csv_name, family=family)


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
        fmt = sniff_format(data, name)
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
        check = ModelCheck(
            format=fmt,
            summary=found.get("summary"),
            applicability=rows,
            feature_names=tuple(str(n) for n in found.get("feature_names") or ()),
            n_features=found.get("n_features"),
            trees=_trees_check(found.get("trees")),
        )
    if not found.get("transient"):
        with lock:
            if len(cache) >= 64:
                cache.pop(next(iter(cache)))
            cache[key] = check
    return check


def _trees_check(found: Any) -> tuple[bool, str]:
    """The inspection's (applies, reason) for truncated-ensemble variants; (False, "") when it did not say."""
    applies, reason = found if isinstance(found, list | tuple) and len(found) == 2 else (False, "")
    return bool(applies), str(reason)


# ONNX Runtime lists Azure as available in every build, but it calls remote endpoints: it does not run a
# local model, so offering it as a place to benchmark would only ever measure a CPU fallback.
_NOT_LOCAL = ("azure",)


@st.cache_resource(show_spinner=False)
def providers() -> tuple[Any, ...]:
    """ONNX Runtime's execution providers as the core reports them (available or not, and why)."""
    from optimizer_core.runtime import provider_table

    return tuple(p for p in provider_table() if p.short not in _NOT_LOCAL)


@st.cache_resource(show_spinner=False)
def resolved_provider(short: str) -> str:
    """The ONNX Runtime provider a choice runs on ('auto' -> CPUExecutionProvider on a CPU-only build)."""
    from optimizer_core.runtime import resolve_provider

    try:
        return resolve_provider(short)
    except OptimizerError:
        return short


def distinct_providers(chosen: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """The chosen providers with each ONNX Runtime provider once (first choice wins), and the dropped
    choices as (dropped, kept) pairs: 'auto' resolving to the CPU plus 'cpu' would time everything twice."""
    kept: dict[str, str] = {}
    dropped = []
    for short in chosen:
        ort_name = resolved_provider(short)
        if ort_name in kept:
            dropped.append((short, kept[ort_name]))
        else:
            kept[ort_name] = short
    return list(kept.values()), dropped


@st.cache_resource(show_spinner=False)
def auto_provider() -> str:
    """What 'auto' resolves to on this server, in words."""
    from optimizer_core.runtime import resolve_provider

    return resolve_provider("auto").removesuffix("ExecutionProvider")


@st.cache_data(show_spinner=False, max_entries=8)
def html_report(run_id: str, _report: Any) -> str:
    from optimizer_core.views.html import render_html

    return render_html(_report)


def history_store() -> Any:
    """A HistoryStore on the configured database (cheap: each call opens its own connection)."""
    from optimizer_core.history import HistoryStore

    return HistoryStore()
