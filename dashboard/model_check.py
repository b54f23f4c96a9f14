"""Inspect an uploaded model before a run, in a child process: `python -I -m dashboard.model_check NAME`.

The Optimize page explains which precisions apply to *this* model before anything runs, which needs the
model loaded and converted. Model files are parsed by C++ code (XGBoost, LightGBM, ONNX) that a crafted
file can crash, so, like the run itself (``optimizer_core.jobs``), the inspection happens in a child
process with a scrubbed environment and resource limits: a crash ends the child, not the server.
Pickle files are never loaded here (only inside the run's worker, when the server allows them).

Protocol: model bytes on stdin; one JSON object on stdout with ``summary`` and ``applicability``
(``[[precision, applies, reason], ...]``) or ``error`` (one line). No Streamlit import here.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
from typing import Any

TIMEOUT_S = 180.0
_KEPT_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "OMP_NUM_THREADS", "INFERENCE_OPTIMIZER_CACHE")


def inspect(data: bytes, name: str) -> dict[str, Any]:
    """Load, convert and ask every precision whether it applies; errors come back as one line."""
    from optimizer_core.config import PRECISIONS
    from optimizer_core.convert import convert
    from optimizer_core.errors import OptimizerError
    from optimizer_core.models import load_model
    from optimizer_core.precision import applicability

    try:
        loaded = load_model(data, name=name)
        fp32 = convert(loaded)
        rows = []
        for precision in PRECISIONS:
            try:
                applies, reason = applicability(precision, fp32, loaded)
            except OptimizerError as e:
                applies, reason = False, str(e)
            rows.append([precision, bool(applies), " ".join(str(reason).split())])
    except OptimizerError as e:
        return {"error": " ".join(str(e).split())}
    except MemoryError:
        return {"error": f"{name} needs more memory to load than the server allows for an inspection"}
    except Exception as e:  # a library failure: still one line for the user
        first = (str(e).strip().splitlines() or [""])[0][:300]
        return {"error": f"{name} could not be inspected: {type(e).__name__}: {first}"}
    classes = f", {loaded.n_classes} classes" if loaded.task == "multiclass" and loaded.n_classes else ""
    summary = f"{loaded.estimator} ({loaded.family}), {loaded.task}{classes}, {loaded.n_features} features"
    return {"summary": summary, "applicability": rows}


def inspect_isolated(data: bytes, name: str, *, timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
    """``inspect`` in a child process; a crash, a hang or an oversized model is reported, not suffered."""
    env = {k: os.environ[k] for k in _KEPT_ENV if k in os.environ}
    with tempfile.TemporaryDirectory(prefix="inference-optimizer-inspect-") as work:
        env["HOME"] = env["TMPDIR"] = work
        try:
            proc = subprocess.run(
                [sys.executable, "-I", "-m", "dashboard.model_check", name],
                input=data,
                capture_output=True,
                cwd=work,
                env=env,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {
                "error": f"inspecting {name} took longer than {timeout_s:.0f} s and was stopped: the server may "
                "be busy, try again",
                "transient": True,
            }
    if proc.returncode < 0:
        return {
            "error": f"{name} crashed the model parser while it was being inspected "
            f"(signal {-proc.returncode}): the file is probably malformed or hostile, or too large"
        }
    try:
        return json.loads(proc.stdout.decode("utf-8").strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = (proc.stderr.decode("utf-8", "replace").strip().splitlines() or ["no details"])[-1][:300]
        return {"error": f"{name} could not be inspected (exit {proc.returncode}): {tail}"}


def _limit_resources() -> None:
    from optimizer_core.limits import Limits

    limits = Limits.from_env()
    for name, value in (
        ("RLIMIT_AS", int(limits.worker_memory_mb * 2**20)),
        ("RLIMIT_CPU", int(TIMEOUT_S * (os.cpu_count() or 1))),
        ("RLIMIT_FSIZE", int(limits.worker_file_mb * 2**20)),
    ):
        kind = getattr(resource, name)
        soft, hard = resource.getrlimit(kind)
        resource.setrlimit(kind, (value if hard == resource.RLIM_INFINITY else min(value, hard), hard))


def main(argv: list[str]) -> int:
    name = argv[0] if argv else "the uploaded model"
    _limit_resources()
    data = sys.stdin.buffer.read()
    sys.stdout.write(json.dumps(inspect(data, name)) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
