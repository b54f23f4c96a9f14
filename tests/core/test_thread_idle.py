"""The wait for idle threads: a library's spinning worker threads are seen, and waited out."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer_core import thread_idle


def _spinning_session():
    """An ONNX Runtime session whose intra-op worker thread spins after each run (ORT's own default)."""
    from optimizer_core.bench import trivial_model
    from optimizer_core.runtime import SessionSettings, create_session

    session, _ = create_session(trivial_model(4).SerializeToString(),
                                SessionSettings(intra_op_threads=2, allow_spinning=True))
    return session


@pytest.mark.skipif(thread_idle.busy_threads() is None, reason="needs /proc (Linux)")
def test_a_spinning_library_thread_is_seen_and_waited_out() -> None:
    session = _spinning_session()
    X = np.ones((512, 4), dtype=np.float32)
    seen_busy = False
    for _ in range(20):  # its worker spins for tens of milliseconds after a run
        session.run(None, {"input": X})
        seen_busy = seen_busy or bool(thread_idle.busy_threads())
    assert seen_busy
    result = thread_idle.wait_until_idle(max_s=5.0)
    assert result.idle and result.waited_s > 0


def test_without_proc_the_process_cpu_time_decides(monkeypatch) -> None:
    monkeypatch.setattr(thread_idle, "busy_threads", lambda: None)
    result = thread_idle.wait_until_idle(max_s=1.0)
    assert result.idle
    assert result.waited_s >= thread_idle.CPU_WINDOW_S * 0.9  # at least one window was slept, untimed


def test_the_wait_gives_up_at_its_limit(monkeypatch) -> None:
    monkeypatch.setattr(thread_idle, "busy_threads", lambda: 1)
    result = thread_idle.wait_until_idle(max_s=0.01)
    assert not result.idle and result.waited_s >= 0.01
