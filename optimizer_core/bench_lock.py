"""One benchmark at a time per machine: two timing runs side by side would skew each other's numbers.

``benchmark_lock()`` holds an exclusive ``fcntl.flock`` on a per-user lock file for the duration of the
timing. The lock is released by the kernel when the holder exits, even on a crash, so it never goes
stale. Where ``fcntl`` does not exist (Windows) the lock is a no-op.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["LOCK_ENV", "BenchmarkLockTimeout", "benchmark_lock", "default_lock_path"]

LOCK_ENV = "INFERENCE_OPTIMIZER_LOCK"
POLL_S = 0.05

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class BenchmarkLockTimeout(TimeoutError):
    """Another benchmark held the machine-wide lock for longer than the caller was willing to wait."""


def default_lock_path() -> Path:
    """$INFERENCE_OPTIMIZER_LOCK, else $XDG_CACHE_HOME (or ~/.cache)/inference-optimizer/benchmark.lock."""
    explicit = os.environ.get(LOCK_ENV)
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "inference-optimizer" / "benchmark.lock"


@contextlib.contextmanager
def benchmark_lock(
    path: str | os.PathLike[str] | None = None,
    on_wait: Callable[[str], None] | None = None,
    timeout_s: float | None = None,
) -> Iterator[Path]:
    """Hold the machine-wide benchmark lock; ``on_wait(message)`` is called once if we have to wait.

    Raises ``BenchmarkLockTimeout`` when ``timeout_s`` passes before the lock is free. If the lock file
    cannot be created (read-only home, for example) the benchmark runs unlocked with a warning.
    """
    lock_path = Path(path).expanduser() if path is not None else default_lock_path()
    fd = _open(lock_path)
    if fd is None:
        yield lock_path
        return
    try:
        _acquire(fd, on_wait, timeout_s)
        _write_pid(fd)
        try:
            yield lock_path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _open(lock_path: Path) -> int | None:
    if fcntl is None:  # pragma: no cover - Windows
        return None
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        warnings.warn(f"cannot create the benchmark lock file {lock_path} ({e.strerror or e}): running "
                      f"without it; set {LOCK_ENV} to a writable path", RuntimeWarning, stacklevel=3)
        return None


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _acquire(fd: int, on_wait: Callable[[str], None] | None, timeout_s: float | None) -> None:
    if _try_lock(fd):
        return
    holder = _read_pid(fd)
    if on_wait is not None:
        on_wait(f"waiting for another benchmark to finish (pid {holder or 'unknown'})")
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while not _try_lock(fd):  # poll rather than block so that the timeout can be honoured
        if deadline is not None and time.monotonic() >= deadline:
            raise BenchmarkLockTimeout(
                f"another benchmark (pid {holder or 'unknown'}) still holds the benchmark lock after "
                f"{timeout_s:g} s: wait for it to finish, or run again later")
        time.sleep(POLL_S)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _write_pid(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
