"""XGBoost's legacy binary model format, recognised so that it can be named (XGBoost 3 cannot read it).

Before XGBoost 2, ``save_model`` wrote this format for any name not ending in ``.json`` or ``.ubj`` (files
are typically ``.model``, ``.bin`` or ``.bst``). Its layout (xgboost ``src/learner.cc``, LearnerIO):
an optional ``binf`` magic, then the 136-byte ``LearnerModelParamLegacy`` struct (little-endian float32
``base_score``, uint32 ``num_feature``, int32 ``num_class``, int32 ``contain_extra_attrs``, int32
``contain_eval_metrics``, uint32 ``major_version``, uint32 ``minor_version``, 27 reserved int32), then the
objective and the booster name, each a uint64 length and its bytes. Files written before XGBoost 1.0
carry no version (zeros there). A Booster's raw memory snapshot puts ``CONFIG-offset:`` and an int64
before the same bytes.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

__all__ = ["LegacyModel", "read_header", "refusal"]

_MAGIC = b"binf"
_SNAPSHOT = b"CONFIG-offset:"
_PARAM = struct.Struct("<fIiiiII")
_PARAM_BYTES = 136
_BOOSTERS = frozenset({"gbtree", "gblinear", "dart"})
_OBJECTIVE = re.compile(r"[a-z]+:[a-z_]+")
_MAX_NAME = 64


@dataclass(frozen=True)
class LegacyModel:
    objective: str
    booster: str
    num_feature: int
    num_class: int
    version: str | None  # "1.7"; None for files written before XGBoost 1.0


def read_header(data: bytes) -> LegacyModel | None:
    """The header of a legacy binary XGBoost model, or None when ``data`` is not one."""
    offset = 0
    if data.startswith(_SNAPSHOT):
        offset = len(_SNAPSHOT) + 8
    if data[offset:offset + 4] == _MAGIC:
        offset += 4
    if len(data) < offset + _PARAM_BYTES + 16:
        return None
    _, num_feature, num_class, _, _, major, minor = _PARAM.unpack_from(data, offset)
    objective, offset = _name(data, offset + _PARAM_BYTES)
    booster, _ = _name(data, offset) if objective else (None, 0)
    if not objective or not _OBJECTIVE.fullmatch(objective) or booster not in _BOOSTERS or num_class < 0:
        return None
    version = f"{major}.{minor}" if 1 <= major < 100 and minor < 100 else None
    return LegacyModel(objective, booster, num_feature, num_class, version)


def _name(data: bytes, offset: int) -> tuple[str | None, int]:
    """A uint64-length-prefixed ASCII name at ``offset`` and the offset after it."""
    if len(data) < offset + 8:
        return None, offset
    (length,) = struct.unpack_from("<Q", data, offset)
    start = offset + 8
    if not 0 < length <= _MAX_NAME or len(data) < start + length:
        return None, offset
    raw = data[start:start + length]
    if not raw.isascii() or not raw.decode("ascii").isprintable():
        return None, offset
    return raw.decode("ascii"), start + length


def refusal(model: LegacyModel, name: str) -> str:
    """One line: what the file is, why it cannot be read here, and how to convert it."""
    written = f"written by XGBoost {model.version}" if model.version else "written by an XGBoost before 1.0"
    pin = f"xgboost=={model.version}.*" if model.version else "xgboost==0.90"
    classes = f", {model.num_class} classes" if model.num_class > 1 else ""
    return (
        f"{name} is an XGBoost model in the legacy binary format ({written}; objective {model.objective}, "
        f"{model.num_feature} features{classes}), which XGBoost 3 no longer reads (installed here: {_installed()}) "
        f"and this tool does not take: load it with the XGBoost version that wrote it (e.g. pip install '{pin}' in a separate "
        "environment), save it again with booster.save_model('model.json') and pass that file"
    )


def _installed() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("xgboost")
    except PackageNotFoundError:
        return "none"
