"""ONNX Runtime's telemetry, switched off, as the dashboard switches off Streamlit's usage statistics.

ONNX Runtime 1.32 on Linux and macOS starts a telemetry provider when ``onnxruntime`` is imported: it writes
a session file (``$TMPDIR/.ses``), a device id and an event store (``~/.cache/Microsoft/DeveloperTools/
.onnxruntime``) and uploads events. ``ORT_DISABLE_TELEMETRY=1`` in the environment before that import
stops all of it: nothing is created or sent. ``optimizer_core`` sets it when it is imported (a user who
set the variable keeps their value), so every ONNX Runtime import in this process and the processes it
starts (job workers, the dashboard's server) comes after it; ``disable_events`` also switches the
events off through ONNX Runtime's own API, for a process that imported ``onnxruntime`` earlier.
"""

from __future__ import annotations

import os
from typing import Any

OPT_OUT = "ORT_DISABLE_TELEMETRY"


def opt_out() -> None:
    """Set ONNX Runtime's telemetry opt-out for this process and its children, unless the user set it."""
    os.environ.setdefault(OPT_OUT, "1")


def disable_events(ort: Any) -> None:
    """``onnxruntime.disable_telemetry_events()``, where this onnxruntime has it."""
    disable = getattr(ort, "disable_telemetry_events", None)
    if callable(disable):
        disable()
