"""How busy the rest of the machine was while we timed: other processes' CPU use, in cores.

Timings taken while other processes compete for the cores are slower and noisier; multi-threaded
native libraries (OpenMP in XGBoost and LightGBM, joblib in scikit-learn) can slow down a hundredfold
when a thread they wait for is descheduled. A report says so instead of presenting such numbers plainly.
Linux only (``/proc/stat``); elsewhere nothing is measured.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

BUSY_NOTE = "the machine was busy while timing"  # how the note starts: the report shows it as a warning
BUSY_CORES = 0.5  # other processes using more than half a core on average: the timings are affected


@dataclass(frozen=True)
class CpuSnapshot:
    machine_busy_s: float | None  # every process's CPU time (plus steal) since boot, None when unknown
    own_s: float  # this process's CPU time
    wall_s: float


def snapshot() -> CpuSnapshot:
    return CpuSnapshot(_machine_busy_s(), time.process_time(), time.perf_counter())


def other_cores_busy(start: CpuSnapshot, end: CpuSnapshot) -> float | None:
    """Average number of cores other processes (and the hypervisor's steal) kept busy between two snapshots."""
    wall = end.wall_s - start.wall_s
    if start.machine_busy_s is None or end.machine_busy_s is None or wall <= 0:
        return None
    others = (end.machine_busy_s - start.machine_busy_s) - (end.own_s - start.own_s)
    return max(0.0, others / wall)


def busy_note(cores_busy: float | None, cores: int) -> str | None:
    if cores_busy is None or cores_busy <= BUSY_CORES:
        return None
    return (f"{BUSY_NOTE}: other processes kept about {cores_busy:.1f} of its {cores} cores "
            "busy on average, which slows every measurement here and can slow multi-threaded native libraries "
            "(OpenMP, joblib) a hundredfold: re-run on a quiet machine before quoting these numbers")


def _machine_busy_s() -> float | None:
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if len(fields) < 8 or fields[0] != "cpu":
        return None
    values = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    busy = values[0] + values[1] + values[2] + values[5] + values[6] + values[7]
    return busy / os.sysconf("SC_CLK_TCK")
