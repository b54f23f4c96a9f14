"""What the tests that start a real dashboard server share: a free port and an environment of its own."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated_env(home: Path) -> dict[str, str]:
    """This process's environment with the server's history, demo cache and benchmark lock under ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERENCE_OPTIMIZER_")}
    env.update(
        HOME=str(home),
        INFERENCE_OPTIMIZER_HISTORY_DB=str(home / "history.db"),
        INFERENCE_OPTIMIZER_CACHE=str(home / "cache"),
        INFERENCE_OPTIMIZER_LOCK=str(home / "bench.lock"),
    )
    return env
