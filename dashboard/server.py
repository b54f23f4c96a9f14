"""Start the Streamlit dashboard with the project's settings, wherever it is launched from."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dashboard.server_config import as_flags

ALLOW_PICKLE_ENV = "INFERENCE_OPTIMIZER_ALLOW_PICKLE"
HISTORY_DB_ENV = "INFERENCE_OPTIMIZER_HISTORY_DB"


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
    print(f"inference-optimizer dashboard on http://{host}:{port} (Ctrl+C to stop)", file=sys.stderr)
    try:
        return subprocess.call(command(host, port), env=env)
    except KeyboardInterrupt:
        return 0
