"""One candidate of `python -m benchmarks.run` timed alone, in a process of its own.

    python -m benchmarks.isolation --model xgboost --candidate fp32 [--budget-s 3] [--threads N]
                                   [--spinning off|on] [--native-threads N] [--onnx FILE]

prints one JSON line, ``{"p50_us": ..., "noisy": ..., "calls": ...}``: the candidate's batch-1 p50 measured by the same harness with no
other runner in the process, as a deployment runs one model. `benchmarks.run` compares it with the same
candidate's batch-1 p50 in its interleaved run (target: within 1.2x), which shows that the interleaving
does not make one runtime disturb the other (their threads, their caches). The native model is rebuilt
here from its seeded builder, so it is the same model the run measured; the fp32 candidate reads the run's
ONNX file (``--onnx``) when it is given, and the same seeded test rows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from optimizer_core.report import LatencyStats

CANDIDATES = ("native", "fp32")
DEFAULT_BUDGET_S = 3.0
TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Alone:
    p50_us: float | None
    error: str | None = None
    noisy: bool = False  # the harness flagged the measurement noisy (bench.noise_reasons)


def measure_alone(key: str, candidate: str, *, budget_s: float, threads: int, spinning: bool,
                  native_threads: int | None, onnx_path: str | None = None) -> LatencyStats:
    """The candidate's batch-1 latency, timed as the only runner of this process."""
    from pathlib import Path

    from benchmarks.reference_models import REFERENCE_MODELS, synthetic_data
    from benchmarks.run import _native_limits, convert_model, make_session
    from optimizer_core import bench

    if candidate == "fp32" and onnx_path:
        model, X = Path(onnx_path).read_bytes(), synthetic_data()[2]  # the rows every reference model is timed on
    else:
        estimator, X = REFERENCE_MODELS[key].build()
        if native_threads is not None and "n_jobs" in estimator.get_params():
            estimator.set_params(n_jobs=native_threads)
        model = convert_model(estimator) if candidate == "fp32" else b""
    if candidate == "native":
        runner = bench.native_runner("native", estimator.predict_proba)
    else:
        runner = bench.onnx_runner("fp32", make_session(model, threads, spinning), output=bench.SCORES_NAME)
    with _native_limits(native_threads):
        result = bench.benchmark([runner], X, (1,), budget_s=budget_s)
    return result.latency[runner.name][0]


def alone_in_subprocess(key: str, candidate: str, *, budget_s: float, threads: int, spinning: bool,
                        native_threads: int | None, onnx_path: str | None = None) -> Alone:
    """:func:`measure_alone` in a fresh Python process (none of this process's threads, caches or allocations)."""
    args = [sys.executable, "-m", "benchmarks.isolation", "--model", key, "--candidate", candidate,
            "--budget-s", f"{budget_s:g}", "--threads", str(threads), "--spinning", "on" if spinning else "off"]
    if native_threads is not None:
        args += ["--native-threads", str(native_threads)]
    if onnx_path:
        args += ["--onnx", onnx_path]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return Alone(None, f"took longer than {TIMEOUT_S:g} s")
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        return Alone(None, tail[:200])
    measured = json.loads(lines[-1])
    return Alone(float(measured["p50_us"]), noisy=bool(measured.get("noisy")))


def main(argv: Sequence[str] | None = None) -> int:
    from benchmarks.reference_models import REFERENCE_MODELS

    parser = argparse.ArgumentParser(prog="python -m benchmarks.isolation", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, choices=list(REFERENCE_MODELS))
    parser.add_argument("--candidate", required=True, choices=CANDIDATES)
    parser.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (fp32)")
    parser.add_argument("--spinning", choices=("off", "on"), default="off")
    parser.add_argument("--native-threads", type=int, default=None)
    parser.add_argument("--onnx", help="the run's fp32 ONNX file (fp32 only; default: convert the rebuilt model)")
    args = parser.parse_args(argv)
    stats = measure_alone(args.model, args.candidate, budget_s=args.budget_s, threads=args.threads,
                          spinning=args.spinning == "on", native_threads=args.native_threads, onnx_path=args.onnx)
    print(json.dumps({"p50_us": stats.p50_us, "noisy": stats.noisy, "calls": stats.calls}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
