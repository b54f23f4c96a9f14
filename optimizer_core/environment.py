"""What the results were measured on: versions, CPU, cores, providers; which onnxruntime is installed.

onnxruntime is imported lazily (``import_onnxruntime()``), never when ``optimizer_core`` is imported, and the
first import warns once when two onnxruntime distributions are installed together.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import warnings
from functools import cache
from typing import Any

from optimizer_core.errors import RuntimeNotInstalledError

_LIBRARIES = ("onnxruntime", "onnxruntime-gpu", "onnx", "onnxmltools", "skl2onnx", "scikit-learn",
              "xgboost", "lightgbm", "skops", "numpy", "inference-optimizer")

INSTALL_ADVICE = "ONNX Runtime is not installed: pip install 'inference-optimizer[cpu]' (or [gpu] for CUDA)"

# Distributions that all install the same `onnxruntime` module: more than one means the last one
# installed wins file by file, and CUDA (or OpenVINO, DirectML...) can silently vanish.
ORT_DISTRIBUTIONS = (
    "onnxruntime",
    "onnxruntime-gpu",
    "onnxruntime-openvino",
    "onnxruntime-directml",
    "onnxruntime-qnn",
    "onnxruntime-rocm",
    "onnxruntime-migraphx",
    "onnxruntime-silicon",
)

_ort_module: Any = None
_packages_checked = False


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


# --------------------------------------------------------------------------- import and packages

def import_onnxruntime() -> Any:
    """The onnxruntime module (imported on first use), warning once about conflicting packages."""
    global _ort_module, _packages_checked
    if not _packages_checked:
        _packages_checked = True
        message = package_conflict()
        if message:
            warnings.warn(message, RuntimeWarning, stacklevel=2)
    if _ort_module is None:
        try:
            import onnxruntime
        except ImportError as e:
            raise RuntimeNotInstalledError(INSTALL_ADVICE) from e
        from optimizer_core.ort_telemetry import disable_events

        disable_events(onnxruntime)
        _ort_module = onnxruntime
    return _ort_module


def installed_ort_distributions() -> tuple[str, ...]:
    """The onnxruntime distributions pip has installed (they all provide the same module)."""
    found = []
    for name in ORT_DISTRIBUTIONS:
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        found.append(name)
    return tuple(found)


def package_conflict() -> str | None:
    """One line explaining a conflicting onnxruntime install, or None when there is none."""
    found = installed_ort_distributions()
    if len(found) < 2:
        return None
    names = " and ".join(found)
    return (
        f"{names} are installed together: they provide the same 'onnxruntime' module, so CUDA (or "
        f"another accelerator) can silently vanish; run pip uninstall -y {' '.join(found)} and reinstall "
        "exactly one (pip install 'inference-optimizer[cpu]' or '[gpu]')"
    )


# --------------------------------------------------------------------------- the run's environment

def describe_environment() -> dict[str, Any]:
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
