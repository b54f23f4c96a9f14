"""What the results were measured on: versions, CPU, cores, providers."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from functools import cache
from typing import Any

_LIBRARIES = ("onnxruntime", "onnxruntime-gpu", "onnx", "onnxmltools", "skl2onnx", "scikit-learn",
              "xgboost", "lightgbm", "skops", "numpy", "inference-optimizer")


def physical_cores() -> int:
    try:
        import psutil

        return psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:
        return os.cpu_count() or 1


@cache
def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def library_versions() -> dict[str, str]:
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def describe_environment() -> dict[str, Any]:
    from optimizer_core.runtime import import_onnxruntime

    ort = import_onnxruntime()
    return {
        "onnxruntime": ort.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cores": physical_cores(),
        "logical_cores": os.cpu_count(),
        "available_providers": list(ort.get_available_providers()),
        "libraries": library_versions(),
    }
