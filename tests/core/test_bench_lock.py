"""The machine-wide benchmark lock: two processes never time together."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("fcntl")

from optimizer_core import bench_lock  # noqa: E402
from optimizer_core.bench_lock import BenchmarkLockTimeout, benchmark_lock  # noqa: E402

# Loads bench_lock.py by path so the child starts fast and does not import the whole package.
_CHILD = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("bench_lock", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
lock_path, log_path, name, hold_s, ready = sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]), sys.argv[6]

def log(line):
    with open(log_path, "a") as f:
        f.write(line + "\\n")

with mod.benchmark_lock(lock_path, on_wait=lambda msg: log(f"WAIT {name} {msg}")):
    log(f"START {name} {time.time_ns()}")
    open(ready, "w").close()
    time.sleep(hold_s)
    log(f"END {name} {time.time_ns()}")
"""


def _spawn(tmp_path: Path, name: str, hold_s: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", _CHILD, bench_lock.__file__, str(tmp_path / "bench.lock"),
                             str(tmp_path / "log.txt"), name, str(hold_s), str(tmp_path / f"{name}.ready")])


def _wait_for(path: Path, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.01)


def test_two_processes_never_time_together(tmp_path: Path) -> None:
    first = _spawn(tmp_path, "first", 0.6)
    _wait_for(tmp_path / "first.ready")
    second = _spawn(tmp_path, "second", 0.1)
    assert first.wait(timeout=30) == 0 and second.wait(timeout=30) == 0

    lines = (tmp_path / "log.txt").read_text().splitlines()
    times = {(kind, name): int(value) for kind, name, value in
             (line.split() for line in lines if line.startswith(("START", "END")))}
    assert times[("END", "first")] <= times[("START", "second")]
    assert times[("START", "first")] < times[("END", "first")]
    waits = [line for line in lines if line.startswith("WAIT")]
    assert waits == [f"WAIT second waiting for another benchmark to finish (pid {first.pid})"]


def test_lock_records_the_holder_pid_and_times_out(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "bench.lock"
    messages: list[str] = []
    with benchmark_lock(path):
        assert path.read_text().strip() == str(os.getpid())
        # flock conflicts between two open file descriptions even within one process
        with pytest.raises(BenchmarkLockTimeout, match="still holds"), \
                benchmark_lock(path, on_wait=messages.append, timeout_s=0.2):
            pass
    assert messages == [f"waiting for another benchmark to finish (pid {os.getpid()})"]
    with benchmark_lock(path, on_wait=messages.append, timeout_s=0.2):
        pass
    assert len(messages) == 1  # free again: no waiting


def test_default_path_honours_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "nested" / "dir" / "my.lock"
    monkeypatch.setenv(bench_lock.LOCK_ENV, str(target))
    assert bench_lock.default_lock_path() == target
    with benchmark_lock() as held:
        assert held == target and target.exists()
    monkeypatch.delenv(bench_lock.LOCK_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert bench_lock.default_lock_path() == tmp_path / "cache" / "inference-optimizer" / "benchmark.lock"
