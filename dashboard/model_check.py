"""The Optimize page's pre-run look at an uploaded model, through the core's isolated inspection.

Model files are parsed by C++ code that a crafted file can crash, so the load, conversion and
applicability checks run in a worker process (``optimizer_core.jobs.inspect_model``), never in the
Streamlit server. This module only turns the outcome into what the page shows.
"""

from __future__ import annotations

from typing import Any

from optimizer_core import jobs
from optimizer_core.errors import JobTimeoutError, OptimizerError


def inspect_isolated(data: bytes, name: str, *, timeout_s: float = jobs.INSPECT_TIMEOUT_S) -> dict[str, Any]:
    """``{"summary", "applicability", "feature_names", "n_features"}`` for a good model (feature names empty
    when the model does not know them); ``{"error"}`` (one line, plus ``"transient"`` for a timeout, which is
    worth retrying and must not be cached) otherwise."""
    try:
        found = jobs.inspect_model(data, name, timeout_s=timeout_s)
    except JobTimeoutError as e:
        return {"error": str(e), "transient": True}
    except OptimizerError as e:
        return {"error": " ".join(str(e).split())}
    model = found["model"]
    classes = f", {model['n_classes']} classes" if model["task"] == "multiclass" and model.get("n_classes") else ""
    summary = f"{model['estimator']} ({model['family']}), {model['task']}{classes}, {model['n_features']} features"
    return {
        "summary": summary,
        "applicability": [tuple(row) for row in found["applicability"]],
        "feature_names": list(model.get("feature_names") or []),
        "n_features": model.get("n_features"),
        "trees": list(found.get("trees") or (False, "")),  # truncated ensembles: (applies, reason)
    }
