"""Python that loads a model file as its library does: the first lines of every deploy snippet that predicts
natively (a truncated ensemble's native equivalent), so that the snippet runs on its own.

The snippet's model variable is ``booster`` for a bare XGBoost or LightGBM Booster and ``model`` otherwise (a
scikit-learn wrapper, a scikit-learn estimator or pipeline), as the family modules write the prediction lines.
The file is named as the user gave it (``LoadedModel.source_name``); a model passed in memory has no file, and the
snippet says which object it means instead.
"""

from __future__ import annotations

from optimizer_core.models.base import LoadedModel

__all__ = ["loader_code", "model_variable"]

_X_COMMENT = "# X: the rows to score, a numpy array with the model's features in its order (as the ONNX input)"


def model_variable(model: LoadedModel) -> str:
    """The name the native prediction lines use for the model: ``booster`` or ``model``."""
    is_booster = model.family in ("xgboost", "lightgbm") and type(model.native).__name__ == "Booster"
    return "booster" if is_booster else "model"


def loader_code(model: LoadedModel) -> str:
    """Lines (ending in a newline) that import numpy and define ``model_variable(model)`` from the model's file."""
    var = model_variable(model)
    file = model.source_name
    lines = ["import numpy as np"]
    if file is None:
        lines += ["", f"# {var}: the fitted {model.estimator} passed to optimize() (it came from memory, not a file)"]
    elif model.format == "pickle":
        lines += ["import joblib", "",
                  f"{var} = joblib.load({file!r})  # a pickle runs code when loaded: trusted files only"]
    elif model.family == "xgboost":
        lines += ["from pathlib import Path", "", "import xgboost", ""]
        if var == "booster":
            lines += ["booster = xgboost.Booster()"]
        else:
            lines += [f"model = xgboost.{type(model.native).__name__}()"]
        lines += [f"{var}.load_model(bytearray(Path({file!r}).read_bytes()))  # JSON or UBJ, whatever the file's name"]
    elif model.family == "lightgbm":
        lines += ["import lightgbm", "", f"{var} = lightgbm.Booster(model_file={file!r})"]
    elif model.family == "sklearn":
        lines += ["import skops.io as sio", "",
                  f"untrusted = sio.get_untrusted_types(file={file!r})  # review them: a trusted type can run code",
                  f"model = sio.load({file!r}, trusted=untrusted)"]
    else:
        lines += ["", f"# {var}: {model.estimator}, loaded from {file}"]
    return "\n".join([*lines, _X_COMMENT]) + "\n"
