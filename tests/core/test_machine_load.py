from __future__ import annotations

import subprocess
import sys
import time

import pytest

from optimizer_core import machine_load
from optimizer_core.machine_load import CpuSnapshot, busy_note, other_cores_busy


def test_other_processes_busy_cores_exclude_our_own_cpu_time():
    start = CpuSnapshot(machine_busy_s=100.0, own_s=10.0, wall_s=0.0)
    end = CpuSnapshot(machine_busy_s=104.0, own_s=12.0, wall_s=2.0)
    assert other_cores_busy(start, end) == pytest.approx(1.0)  # 4 s busy, 2 s ours, over 2 s
    assert other_cores_busy(CpuSnapshot(None, 0, 0), end) is None


def test_busy_note_only_above_half_a_core():
    assert busy_note(0.2, 2) is None and busy_note(None, 2) is None
    note = busy_note(1.4, 2)
    assert "about 1.4 of its 2 cores" in note and "re-run on a quiet machine" in note


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_a_spinning_process_is_seen_as_a_busy_core():
    start = machine_load.snapshot()
    subprocess.run([sys.executable, "-c", "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.0: pass"],
                   check=True)
    time.sleep(0.05)
    assert other_cores_busy(start, machine_load.snapshot()) > 0.5
