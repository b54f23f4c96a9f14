"""`inference-optimizer dashboard` stops its Streamlit server when it is stopped itself."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.server_env import free_port, isolated_env

ROOT = Path(__file__).resolve().parents[2]


def _serving(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stopping_the_command_stops_the_streamlit_server(signum, tmp_path):
    port = free_port()
    env = isolated_env(tmp_path)
    log = (tmp_path / "server.log").open("w")
    wrapper = subprocess.Popen(
        [sys.executable, "-m", "optimizer_core.cli", "dashboard", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so cleanup below reaches a leaked server too
    )
    try:
        deadline = time.monotonic() + 90
        while not _serving(port):
            assert wrapper.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the dashboard did not start"
            time.sleep(0.5)

        wrapper.send_signal(signum)  # only the wrapper, as `kill PID` or a process supervisor does
        assert wrapper.wait(timeout=20) == 0
        deadline = time.monotonic() + 10
        while _listening(port):
            assert time.monotonic() < deadline, f"the server still listens on {port} after the command ended"
            time.sleep(0.25)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(wrapper.pid, signal.SIGKILL)
        wrapper.wait(timeout=10)
        log.close()


def test_the_printed_url_is_one_a_browser_can_open():
    from dashboard.server import url_to_open

    assert url_to_open("127.0.0.1", 8501) == "http://127.0.0.1:8501"
    wildcard = url_to_open("0.0.0.0", 8632)
    assert wildcard.startswith("http://127.0.0.1:8632 ") and "every interface" in wildcard
    assert url_to_open("::1", 80) == "http://[::1]:80"
