"""The native model on the GPU, as a peer of the native CPU model: "ONNX on a GPU" is compared with the library's
own GPU predictor, not only with its CPU one.

Today that is XGBoost (``device="cuda"``), when its build has CUDA support and a CUDA device is present. Nothing
here is guessed: without both, ``cuda_peer`` returns None and the reason, and no GPU row is reported.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from optimizer_core.models.base import LoadedModel

NAME = "native-cuda"


@dataclass(frozen=True)
class NativePeer:
    name: str
    predictor: Callable[[np.ndarray], np.ndarray]
    note: str


def cuda_devices() -> list[str]:
    """The CUDA devices ``nvidia-smi -L`` lists (empty without the NVIDIA driver or a device)."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return []
    try:
        listed = subprocess.run([tool, "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in listed.stdout.splitlines() if line.startswith("GPU ")]


def xgboost_has_cuda() -> bool:
    try:
        import xgboost
    except ImportError:
        return False
    return bool(xgboost.build_info().get("USE_CUDA"))


def cuda_peer(loaded: LoadedModel) -> tuple[NativePeer | None, str]:
    """XGBoost's own CUDA predictor for ``loaded``, or None and why there is none."""
    if loaded.family != "xgboost":
        return None, f"no native GPU predictor is timed for {loaded.family} models"
    if not xgboost_has_cuda():
        return None, "this xgboost build has no CUDA support, so the native model is timed on the CPU only"
    devices = cuda_devices()
    if not devices:
        return None, "no CUDA device found (nvidia-smi lists none), so the native model is timed on the CPU only"
    from optimizer_core.models import model_from_object

    native = loaded.native
    if hasattr(native, "set_params"):
        clone: Any = copy.deepcopy(native).set_params(device="cuda")
    else:
        clone = native.copy()
        clone.set_param({"device": "cuda"})
    predictor = model_from_object(clone).predictor
    return NativePeer(NAME, predictor, f"{loaded.estimator} predicting with xgboost itself on {devices[0]} "
                                       "(device='cuda'); each call's rows come from host memory (numpy), as for "
                                       "the ONNX sessions"), ""


__all__ = ["NAME", "NativePeer", "cuda_devices", "cuda_peer", "xgboost_has_cuda"]
