"""Run one optimize() job in an isolated child process: `python -I -m optimizer_core.worker JOB_DIR`.

Model files are parsed by C++ code (XGBoost, LightGBM, ONNX) with known out-of-bounds bugs on crafted
input, so a parser crash must take down only this process. The parent (``jobs.py``) starts it in an
empty working directory with a scrubbed environment; limits on memory, CPU time and file size are set
here, before anything is loaded. Results leave as files (report.json and artifacts), progress as JSON
lines on stdout, errors as error.json.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

PARENT_PID_ENV = "INFERENCE_OPTIMIZER_PARENT_PID"  # set by jobs: the process this worker serves


def _set_limits(request: dict) -> None:
    limits = request.get("limits", {})
    for name, value in (
        ("RLIMIT_AS", limits.get("memory_bytes")),
        ("RLIMIT_CPU", limits.get("cpu_seconds")),
        ("RLIMIT_FSIZE", limits.get("file_bytes")),
    ):
        if value:
            limit = getattr(resource, name)
            soft, hard = resource.getrlimit(limit)
            value = int(value) if hard == resource.RLIM_INFINITY else min(int(value), hard)
            resource.setrlimit(limit, (value, hard))


def _exit_with_parent() -> None:
    """Stop when the process that started this worker goes away (it runs in its own session, so the
    signal that ended the parent never reaches it). The parent names itself (``PARENT_PID_ENV``): asked here,
    os.getppid() would already name init when the parent died while this interpreter was starting, and the
    worker would then outlive it until its timeout."""
    import os
    import threading
    import time

    given = os.environ.get(PARENT_PID_ENV, "")
    parent = int(given) if given.isdigit() else os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(5)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _emit(payload: dict) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def _write_error(job_dir: Path, kind: str, message: str) -> None:
    (job_dir / "error.json").write_text(json.dumps({"kind": kind, "message": message}), encoding="utf-8")


def _inject_test_fault(fault: str | None) -> None:
    """Faults the test suite uses to prove isolation: a hang (timeout) and a native crash."""
    if not fault:
        return
    if fault.startswith("hang:"):
        import time

        time.sleep(float(fault.split(":", 1)[1]))
    elif fault == "segv":
        import os
        import signal

        os.kill(os.getpid(), signal.SIGSEGV)


def inspect(job_dir: Path, request: dict) -> int:
    """Load and convert the model only, and say which precisions apply: the dashboard's preview."""
    from optimizer_core.converters import convert
    from optimizer_core.errors import OptimizerError
    from optimizer_core.models import load_model
    from optimizer_core.variants import PRECISIONS, applicability

    try:
        loaded = load_model(request["model_file"], allow_pickle=bool(request.get("allow_pickle")),
                            name=request.get("model_name"))
        fp32 = convert(loaded)
        rows = []
        for precision in PRECISIONS:
            try:
                applies, reason = applicability(precision, fp32, loaded)
            except OptimizerError as e:
                applies, reason = False, str(e)
            rows.append([precision, bool(applies), str(reason)])
    except OptimizerError as e:
        _write_error(job_dir, type(e).__name__, str(e))
        return 2
    except Exception as e:
        first = (str(e).strip().splitlines() or [""])[0][:300]
        _write_error(job_dir, type(e).__name__, f"could not be inspected: {type(e).__name__}: {first}")
        return 4
    from optimizer_core.variants.truncation import applicability as trees_applicability

    trees_ok, trees_reason, _ = trees_applicability(loaded)
    result = {"model": loaded.describe(), "applicability": rows, "trees": [bool(trees_ok), str(trees_reason)]}
    (job_dir / "inspect.json").write_text(json.dumps(result, default=str), encoding="utf-8")
    return 0


def _telemetry_off() -> None:
    """ONNX Runtime's telemetry events off (the parent set ORT_DISABLE_TELEMETRY already; this is ORT's own API)."""
    import contextlib

    from optimizer_core.environment import import_onnxruntime
    from optimizer_core.errors import RuntimeNotInstalledError
    from optimizer_core.ort_telemetry import disable_events

    with contextlib.suppress(RuntimeNotInstalledError):  # the job says so in its own words where it needs ORT
        disable_events(import_onnxruntime())


def main(argv: list[str]) -> int:
    _exit_with_parent()
    if argv and argv[0] == "--inspect":
        job_dir = Path(argv[1])
        request = json.loads((job_dir / "request.json").read_text(encoding="utf-8"))
        _set_limits(request)
        _telemetry_off()
        return inspect(job_dir, request)
    job_dir = Path(argv[0])
    request = json.loads((job_dir / "request.json").read_text(encoding="utf-8"))
    _set_limits(request)
    try:
        from optimizer_core.config import OptimizeConfig
        from optimizer_core.errors import OptimizerError
        from optimizer_core.pipeline import optimize

        _telemetry_off()
    except MemoryError:
        _write_error(job_dir, "ResourceLimitError", "the worker ran out of memory while starting")
        return 3
    _inject_test_fault(request.get("test_fault"))
    try:
        config = OptimizeConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in request["config"].items()})
        report = optimize(
            request["model_file"],
            request["csv_file"],
            config,
            lambda stage, fraction: _emit({"stage": stage, "fraction": round(fraction, 4)}),
            target=request.get("target"),
            allow_pickle=bool(request.get("allow_pickle")),
            model_name=request.get("model_name"),
            data_name=request.get("csv_name"),
        )
        report.write_out(job_dir / "out")
    except OptimizerError as e:
        _write_error(job_dir, type(e).__name__, str(e))
        return 2
    except MemoryError:
        mb = request.get("limits", {}).get("memory_bytes", 0) / 2**20
        _write_error(job_dir, "ResourceLimitError",
                     f"the job ran out of memory (limit {mb:,.0f} MB): try a smaller CSV or model")
        return 3
    except Exception as e:  # an unanticipated library failure: still one line for the user
        first = (str(e).strip().splitlines() or [""])[0][:300]
        _write_error(job_dir, type(e).__name__, f"unexpected {type(e).__name__}: {first}")
        return 4
    _emit({"stage": "done", "fraction": 1.0})
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
