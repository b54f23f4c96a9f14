"""Run optimize() jobs outside the caller (the Streamlit script) in isolated worker processes.

A Streamlit rerun would kill work done in the script thread, and a crafted model file can crash a
C++ parser: each job therefore runs in ``python -I -m optimizer_core.worker`` with an empty working
directory, a scrubbed environment, resource limits and a wall-clock timeout. The caller polls
``get(job_id)``; results never mix because each job owns its folder, which is removed afterwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from optimizer_core.config import OptimizeConfig
from optimizer_core.errors import JobTimeoutError, OptimizerError
from optimizer_core.limits import Limits
from optimizer_core.report import Report

JobState = Literal["queued", "running", "done", "failed"]
_KEPT_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
             "OMP_NUM_THREADS", "INFERENCE_OPTIMIZER_CACHE", "INFERENCE_OPTIMIZER_LOCK")
_MAX_CONCURRENT = 2
_KEEP_FINISHED = 32  # finished jobs (with their reports) kept for polling; older ones are forgotten


@dataclass(frozen=True, kw_only=True)
class JobRequest:
    """Inputs as bytes (uploads) or as paths the worker reads itself (the CLI: no copy of a big CSV)."""

    model_name: str
    csv_name: str
    config: OptimizeConfig
    model_bytes: bytes = dataclasses.field(default=b"", repr=False)
    csv_bytes: bytes = dataclasses.field(default=b"", repr=False)
    model_path: str | None = None
    csv_path: str | None = None
    target: str | None = None
    allow_pickle: bool = False

    def sizes(self) -> tuple[int, int]:
        model = _file_size(self.model_path) if self.model_path else len(self.model_bytes)
        csv = _file_size(self.csv_path) if self.csv_path else len(self.csv_bytes)
        return model, csv


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0  # the worker reports a missing or unreadable file with the loader's own message


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    state: JobState
    stage: str = ""
    fraction: float = 0.0
    message: str | None = None  # one-line error when failed
    report: Report | None = None
    started_at: float | None = None
    finished_at: float | None = None


class JobManager:
    def __init__(self, *, limits: Limits | None = None, max_concurrent: int = _MAX_CONCURRENT):
        self.limits = limits or Limits.from_env()
        self._statuses: dict[str, JobStatus] = {}
        self._procs: dict[str, subprocess.Popen] = {}
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(max_concurrent)
        sweep_orphaned_job_dirs()

    def submit(self, request: JobRequest, *, test_fault: str | None = None) -> str:
        """Queue a job; raises ResourceLimitError at once for oversize files."""
        model_size, csv_size = request.sizes()
        self.limits.check_sizes(model_bytes=model_size, csv_bytes=csv_size)
        job_id = uuid.uuid4().hex[:12]
        self._forget_old()
        self._set(JobStatus(job_id, "queued", stage="waiting for a free worker"))
        thread = threading.Thread(target=self._run, args=(job_id, request, test_fault), daemon=True,
                                  name=f"job-{job_id}")
        thread.start()
        return job_id

    def get(self, job_id: str) -> JobStatus | None:
        with self._lock:
            return self._statuses.get(job_id)

    def forget(self, job_id: str) -> None:
        """Drop a finished job's status (and its report) once the caller has it."""
        with self._lock:
            status = self._statuses.get(job_id)
            if status is not None and status.state in ("done", "failed"):
                del self._statuses[job_id]

    def _forget_old(self) -> None:
        with self._lock:
            finished = sorted((s for s in self._statuses.values() if s.state in ("done", "failed")),
                              key=lambda s: s.finished_at or 0)
            for status in finished[:max(0, len(finished) - _KEEP_FINISHED)]:
                del self._statuses[status.job_id]

    def cancel(self, job_id: str) -> None:
        with self._lock:
            self._cancelled.add(job_id)
            proc = self._procs.get(job_id)
        if proc is not None and proc.poll() is None:
            proc.kill()

    def wait(self, job_id: str, timeout_s: float) -> JobStatus:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = self.get(job_id)
            if status is not None and status.state in ("done", "failed"):
                return status
            time.sleep(0.1)
        raise TimeoutError(f"job {job_id} did not finish within {timeout_s} s")

    def _set(self, status: JobStatus) -> None:
        with self._lock:
            self._statuses[status.job_id] = status

    def _update(self, job_id: str, **changes) -> None:
        with self._lock:
            self._statuses[job_id] = dataclasses.replace(self._statuses[job_id], **changes)

    def _run(self, job_id: str, request: JobRequest, test_fault: str | None) -> None:
        with self._slots:
            if job_id in self._cancelled:
                self._update(job_id, state="failed", message="cancelled", finished_at=time.time())
                return
            job_dir = Path(tempfile.mkdtemp(prefix=f"{JOB_DIR_PREFIX}{job_id}-p{os.getpid()}-"))
            final: dict[str, Any] = {}
            try:
                self._update(job_id, state="running", stage="starting worker", started_at=time.time())
                final = self._execute(job_id, request, job_dir, test_fault)
            except Exception as e:  # never let a job thread die silently
                final = {"state": "failed", "message": f"the job failed: {type(e).__name__}: {e}",
                         "finished_at": time.time()}
            finally:
                # clean up before the job reads as finished: a CLI exits as soon as it sees that
                shutil.rmtree(job_dir, ignore_errors=True)
                with self._lock:
                    self._procs.pop(job_id, None)
                if final:
                    self._update(job_id, **final)

    def _execute(self, job_id: str, request: JobRequest, job_dir: Path, test_fault: str | None) -> dict[str, Any]:
        work = job_dir / "cwd"
        work.mkdir()
        model_file = request.model_path or str(job_dir / "model.bin")
        csv_file = request.csv_path or str(job_dir / "data.csv")
        if request.model_path is None:
            (job_dir / "model.bin").write_bytes(request.model_bytes)
        if request.csv_path is None:
            (job_dir / "data.csv").write_bytes(request.csv_bytes)
        timeout = request.config.budget_s * 2 + self.limits.job_timeout_s
        payload = {
            "config": request.config.to_dict(),
            "target": request.target,
            "allow_pickle": request.allow_pickle,
            "model_file": str(Path(model_file).resolve()),
            "csv_file": str(Path(csv_file).resolve()),
            "model_name": request.model_name,
            "csv_name": request.csv_name,
            "limits": _rlimits(self.limits, timeout),
        }
        if test_fault:
            payload["test_fault"] = test_fault
        (job_dir / "request.json").write_text(json.dumps(payload), encoding="utf-8")
        proc = subprocess.Popen(
            [sys.executable, "-I", "-m", "optimizer_core.worker", str(job_dir)],
            cwd=work, env=_worker_env(job_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL, text=True, start_new_session=True,
        )
        with self._lock:
            self._procs[job_id] = proc
        stderr_tail: list[str] = []
        threading.Thread(target=_drain, args=(proc.stderr, stderr_tail), daemon=True).start()
        expired = threading.Event()
        timer = threading.Timer(timeout, _kill_group, args=(proc, expired))
        timer.start()
        try:
            for line in proc.stdout:
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                self._update(job_id, stage=str(event.get("stage", "")), fraction=float(event.get("fraction", 0)))
            code = proc.wait()
        finally:
            timer.cancel()
        return self._finish(job_id, job_dir, code, timed_out=expired.is_set(), timeout=timeout,
                            stderr_tail=stderr_tail)

    def _finish(self, job_id: str, job_dir: Path, code: int, *, timed_out: bool, timeout: float,
                stderr_tail: list[str]) -> dict[str, Any]:
        """The job's final status fields, read from what the worker left in ``job_dir``."""
        now = time.time()
        if code == 0:
            out = job_dir / "out"
            report = Report.from_json((out / "report.json").read_text(encoding="utf-8"))
            artifacts = {p.name: p.read_bytes() for p in out.iterdir()
                         if p.is_file() and p.name not in ("report.json", "report.html")}
            report = dataclasses.replace(report, artifacts=artifacts)
            return {"state": "done", "stage": "done", "fraction": 1.0, "report": report, "finished_at": now}
        error_file = job_dir / "error.json"
        if job_id in self._cancelled:
            message = "cancelled"
        elif error_file.exists():
            message = json.loads(error_file.read_text(encoding="utf-8"))["message"]
        elif timed_out:
            message = f"the job exceeded {timeout:.0f} s and was stopped: try a smaller model, CSV or budget"
        elif code < 0:
            stage = self.get(job_id).stage or "starting"
            message = (f"the worker crashed ({_signal_name(-code)}) during '{stage}': the model file is probably "
                       "malformed or hostile, or the job ran out of memory")
        else:
            message = f"the worker failed (exit {code}): {stderr_tail[-1] if stderr_tail else 'no details'}"
        return {"state": "failed", "message": " ".join(message.split()), "finished_at": now}


JOB_DIR_PREFIX = "inference-optimizer-job-"


def sweep_orphaned_job_dirs() -> list[Path]:
    """Remove job folders left by a process that was killed before it could clean up (a server stopped
    mid-run, a CLI killed with SIGKILL): their names carry the owning pid, and that process is gone."""
    import re

    removed = []
    for path in Path(tempfile.gettempdir()).glob(f"{JOB_DIR_PREFIX}*-p*-*"):
        match = re.fullmatch(rf"{JOB_DIR_PREFIX}[0-9a-f]+-p(\d+)-.*", path.name)
        if not match or not path.is_dir() or (hasattr(os, "getuid") and path.stat().st_uid != os.getuid()):
            continue
        if _pid_alive(int(match.group(1))):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _rlimits(limits: Limits, wall_s: float) -> dict[str, int]:
    """What the worker sets on itself before loading anything (optimizer_core.worker._set_limits)."""
    return {
        "memory_bytes": int(limits.worker_memory_mb * 2**20),
        "cpu_seconds": int(wall_s * (os.cpu_count() or 1)) + 60,  # every core busy for the whole wall time
        "file_bytes": int(limits.worker_file_mb * 2**20),
    }


def _worker_env(job_dir: Path) -> dict[str, str]:
    """Only what the worker needs: no credentials or tokens from the server's environment.

    Its home and temporary folders are inside the job's folder, which is removed when the job ends (done,
    failed or killed), so nothing a library writes there (ONNX Runtime 1.32 writes ``$TMPDIR/.ses``) outlives
    the job; ONNX Runtime's telemetry is off (``ort_telemetry``)."""
    from optimizer_core.ort_telemetry import OPT_OUT

    env = {k: os.environ[k] for k in _KEPT_ENV if k in os.environ}
    home, tmp = job_dir / "home", job_dir / "tmp"
    home.mkdir(exist_ok=True)
    tmp.mkdir(exist_ok=True)
    env["HOME"] = str(home)
    env["TMPDIR"] = str(tmp)
    env[OPT_OUT] = os.environ.get(OPT_OUT, "1")
    from optimizer_core.bench_lock import default_lock_path
    from optimizer_core.demo import cache_dir
    from optimizer_core.worker import PARENT_PID_ENV

    env[PARENT_PID_ENV] = str(os.getpid())  # the worker exits when this process is gone, even during its start
    env.setdefault("INFERENCE_OPTIMIZER_LOCK", str(default_lock_path()))
    env.setdefault("INFERENCE_OPTIMIZER_CACHE", str(cache_dir()))
    return env


def _drain(stream, tail: list[str]) -> None:
    for line in stream:
        tail.append(line.rstrip())
        del tail[:-20]


def _kill_group(proc: subprocess.Popen, expired: threading.Event) -> None:
    if proc.poll() is None:
        expired.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


INSPECT_TIMEOUT_S = 120.0


def inspect_model(model_bytes: bytes, model_name: str, *, allow_pickle: bool = False,
                  limits: Limits | None = None, timeout_s: float = INSPECT_TIMEOUT_S) -> dict:
    """Load and convert an uploaded model in an isolated worker and return what applies to it.

    Returns ``{"model": LoadedModel.describe(), "applicability": [[precision, applies, reason], ...]}``;
    raises ``OptimizerError`` with a one-line message when the file is bad, crashes its parser or hangs.
    """
    limits = limits or Limits.from_env()
    limits.check_sizes(model_bytes=len(model_bytes), csv_bytes=0)
    job_dir = Path(tempfile.mkdtemp(prefix="inference-optimizer-job-inspect-"))
    try:
        (job_dir / "cwd").mkdir()
        (job_dir / "model.bin").write_bytes(model_bytes)
        payload = {"model_file": str(job_dir / "model.bin"), "model_name": model_name, "allow_pickle": allow_pickle,
                   "limits": _rlimits(limits, timeout_s)}
        (job_dir / "request.json").write_text(json.dumps(payload), encoding="utf-8")
        try:
            proc = subprocess.run([sys.executable, "-I", "-m", "optimizer_core.worker", "--inspect", str(job_dir)],
                                  cwd=job_dir / "cwd", env=_worker_env(job_dir), capture_output=True, text=True,
                                  stdin=subprocess.DEVNULL, timeout=timeout_s)
        except subprocess.TimeoutExpired as e:
            raise JobTimeoutError(f"inspecting {model_name} took longer than {timeout_s:g} s and was stopped: the "
                                  "server may be busy (try again), or the file is damaged or too large") from e
        if proc.returncode == 0:
            return json.loads((job_dir / "inspect.json").read_text(encoding="utf-8"))
        error_file = job_dir / "error.json"
        if error_file.exists():
            raise OptimizerError(" ".join(json.loads(error_file.read_text(encoding="utf-8"))["message"].split()))
        if proc.returncode < 0:
            raise OptimizerError(f"{model_name} crashed the model parser ({_signal_name(-proc.returncode)}) while it "
                                 "was being inspected: the file is probably malformed or hostile, or too large")
        raise OptimizerError(f"{model_name} could not be inspected (worker exit {proc.returncode})")
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)


_MANAGER: JobManager | None = None
_MANAGER_LOCK = threading.Lock()


def get_manager() -> JobManager:
    """The process-wide job manager (the dashboard shares one across sessions)."""
    global _MANAGER
    with _MANAGER_LOCK:
        if _MANAGER is None:
            _MANAGER = JobManager()
        return _MANAGER


__all__ = ["JobManager", "JobRequest", "JobStatus", "OptimizerError", "get_manager"]
