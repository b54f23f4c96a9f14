"""inference-optimizer: turn a trained classical ML model into an optimized ONNX Runtime deployment,
and measure what that buys (latency, throughput, size) and what it costs (prediction drift).

Public API::

    from optimizer_core import optimize, OptimizeConfig
    report = optimize("model.json", "test.csv", OptimizeConfig(budget_s=20), target="label")
    report.write_out("out/")

    from optimizer_core import validate   # drift of an ONNX file over data of any size (local or Ray)
    result = validate("model.json", "model.onnx", ["test/*.parquet"], target="label", engine="local")

Names are imported on first use, so `import optimizer_core` stays cheap (the CLI starts fast).
"""

from __future__ import annotations

import importlib
from typing import Any

from optimizer_core import ort_telemetry

ort_telemetry.opt_out()  # before anything imports onnxruntime, which starts its telemetry on import

_EXPORTS = {
    "optimize": "optimizer_core.pipeline",
    "validate": "optimizer_core.validation",
    "ValidationResult": "optimizer_core.validation",
    "InferenceOptimizer": "optimizer_core.compat",
    "OptimizeConfig": "optimizer_core.config",
    "PRECISIONS": "optimizer_core.variants",
    "Report": "optimizer_core.report",
    "Dataset": "optimizer_core.data",
    "load_dataset": "optimizer_core.data",
    "LoadedModel": "optimizer_core.models",
    "load_model": "optimizer_core.models",
    "model_from_object": "optimizer_core.models",
    "convert": "optimizer_core.converters",
    "OptimizerError": "optimizer_core.errors",
    "InputError": "optimizer_core.errors",
    "ModelLoadError": "optimizer_core.errors",
    "UnsupportedModelError": "optimizer_core.errors",
    "UnsafeModelError": "optimizer_core.errors",
    "ConversionError": "optimizer_core.errors",
    "ConfigError": "optimizer_core.errors",
    "ResourceLimitError": "optimizer_core.errors",
    "RuntimeNotInstalledError": "optimizer_core.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'optimizer_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

