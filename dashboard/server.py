"""Start the Streamlit dashboard with the project's settings, wherever it is launched from."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from dashboard.server_config import as_flags

ALLOW_PICKLE_ENV = "INFERENCE_OPTIMIZER_ALLOW_PICKLE"
HISTORY_DB_ENV = "INFERENCE_OPTIMIZER_HISTORY_DB"
# Stopping this command stops the server: these signals are passed on to Streamlit (SIGHUP as SIGTERM,
# which Streamlit handles), and Streamlit is killed if it has not exited this long after one.
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
STOP_GRACE_S = 10.0


def app_path() -> Path:
    return Path(__file__).with_name("app.py")


def command(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(app_path()),
            f"--server.address={host}", f"--server.port={port}", *as_flags()]


def launch(*, host: str, port: int, allow_pickle: bool = False, history_db: str | None = None) -> int:
    """Run the dashboard in the foreground; the pickle opt-in is a server setting, never a UI toggle."""
    env = dict(os.environ)
    env[ALLOW_PICKLE_ENV] = "1" if allow_pickle else "0"
    if history_db:
        env[HISTORY_DB_ENV] = str(Path(history_db).expanduser().resolve())
    print(f"inference-optimizer dashboard on {url_to_open(host, port)} (Ctrl+C to stop)", file=sys.stderr)
    return run_forwarding_signals(command(host, port), env)


def url_to_open(host: str, port: int) -> str:
    """What to type in a browser: a wildcard address listens everywhere but is not an address to open."""
    if host in ("0.0.0.0", "::", ""):
        return (f"http://127.0.0.1:{port} (listening on every interface: from another machine, "
                f"http://<this machine's name or address>:{port})")
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def run_forwarding_signals(argv: list[str], env: dict[str, str]) -> int:
    """Run ``argv`` in the foreground and pass SIGTERM/SIGINT/SIGHUP on to it, so that a supervisor,
    `kill` or Ctrl+C stopping this process also stops the server (it would otherwise be left running,
    re-parented to init). 0 when it was stopped by one of those signals, else its exit code."""
    children: list[subprocess.Popen] = []
    stopping: list[float] = []  # when the first stop signal arrived

    def forward(signum: int, _frame: FrameType | None) -> None:
        stopping.append(time.monotonic())
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM if signum == signal.SIGHUP else signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}  # before the child exists: no gap
    try:
        # its own process group: a terminal's Ctrl+C reaches only this process, which passes it on once
        # (the child used to get it twice and print "Stopping..." twice)
        children.append(subprocess.Popen(argv, env=env, process_group=0))
        if stopping:  # a signal came while it was starting
            forward(signal.SIGTERM, None)
        code = _wait(children[0], stopping)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if stopping else code


def _wait(child: subprocess.Popen, stopping: list[float]) -> int:
    """The child's exit code; it is killed when it outlives STOP_GRACE_S after a stop signal."""
    while True:
        try:
            return child.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            if stopping and time.monotonic() - stopping[0] > STOP_GRACE_S:
                child.kill()
