"""Wait, untimed, until this process's other threads have gone idle: the pause between two runners' blocks.

Libraries keep their worker threads running for a while after a call returns, ready for the next one:
the OpenMP threads of XGBoost, LightGBM and scikit-learn (libgomp spins about 300,000 times before it
sleeps: ~7.5 ms after each call on the reference machine), ONNX Runtime's intra-op pool when spinning
is allowed (~39 ms) and OpenBLAS's threads behind numpy (~100 ms after a multi-threaded product). Timed
in one process, runner after runner, those threads compete for the cores with whichever runner comes
next; a deployment runs one model alone and never sees that.

Linux says which threads are running (``/proc/self/task/*/stat``, state ``R``), so the wait ends as soon as
none is, typically within a millisecond. Elsewhere, the process's CPU time over short sleeps tells the
same more coarsely.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

IDLE_POLL_S = 0.0005  # how often the threads' states are read while waiting
IDLE_MAX_S = 0.25  # never wait longer (LLVM OpenMP's threads stay awake 200 ms by default: KMP_BLOCKTIME)
CPU_WINDOW_S = 0.01  # without /proc: sleep this long (CPU time is counted in scheduler ticks of ~4 ms)...
CPU_IDLE_SHARE = 0.2  # ...and call the threads idle when the process used less than this share of a core
_TASKS = "/proc/self/task"


@dataclass(frozen=True)
class IdleWait:
    waited_s: float
    idle: bool  # False: some thread was still running when ``max_s`` ran out


def busy_threads() -> int | None:
    """How many other threads of this process are running or waiting for a core right now (Linux), or None
    where the system does not say."""
    try:
        tids = os.listdir(_TASKS)
    except OSError:
        return None
    me = str(threading.get_native_id())
    busy = 0
    for tid in tids:
        if tid == me:
            continue
        try:
            with open(f"{_TASKS}/{tid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # the thread ended meanwhile
        end = stat.rfind(b")")  # the state follows the thread's name, which may hold spaces and brackets
        if stat[end + 2:end + 3] == b"R":
            busy += 1
    return busy


def wait_until_idle(max_s: float = IDLE_MAX_S) -> IdleWait:
    """Sleep until no other thread of this process runs (at most ``max_s``); returns how long that took."""
    start = time.perf_counter()
    if busy_threads() is None:
        return _wait_by_cpu_time(start, max_s)
    while True:
        busy = busy_threads()
        waited = time.perf_counter() - start
        if not busy:
            return IdleWait(waited, True)
        if waited >= max_s:
            return IdleWait(waited, False)
        time.sleep(IDLE_POLL_S)


def _wait_by_cpu_time(start: float, max_s: float) -> IdleWait:
    while True:
        cpu, window_start = time.process_time(), time.perf_counter()
        time.sleep(CPU_WINDOW_S)
        now = time.perf_counter()
        if time.process_time() - cpu < CPU_IDLE_SHARE * (now - window_start):
            return IdleWait(now - start, True)
        if now - start >= max_s:
            return IdleWait(now - start, False)
