"""Load a model from a path, bytes or a live object; the format is sniffed from the content.

Each family lives in its own module exposing ``load(data, fmt, source) -> LoadedModel`` (for the file formats
it owns), ``matches(obj) -> bool`` and ``from_object(obj, ...) -> LoadedModel``. Adding a family means
one new module and one line in ``_FAMILY_MODULES`` / ``_FORMAT_OWNERS``.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from optimizer_core.errors import ModelLoadError, OptimizerError, UnsafeModelError, UnsupportedModelError
from optimizer_core.models.base import LoadedModel, Task

__all__ = ["LoadedModel", "Task", "load_model", "model_from_object", "sniff_format", "SourceInfo"]

# family name -> module (imported lazily: xgboost and lightgbm are heavy)
_FAMILY_MODULES = {
    "xgboost": "optimizer_core.models.xgboost",
    "lightgbm": "optimizer_core.models.lightgbm",
    "sklearn": "optimizer_core.models.sklearn",
    "onnx": "optimizer_core.models.onnx",
}
# sniffed file format -> family that reads it
_FORMAT_OWNERS = {
    "xgboost-json": "xgboost",
    "xgboost-ubj": "xgboost",
    "lightgbm-text": "lightgbm",
    "skops": "sklearn",
    "onnx": "onnx",
}

PICKLE_ADVICE = (
    "pickle and joblib files run arbitrary code when loaded, so they are refused by default. "
    "Save the model safely instead (XGBoost: model.save_model('model.json'); LightGBM: "
    "booster.save_model('model.txt'); scikit-learn: skops.io.dump(model, 'model.skops')), "
    "or, only for a file you trust, allow pickles (CLI: --allow-pickle; dashboard: start it with "
    "--allow-pickle; Python API: allow_pickle=True)."
)


class SourceInfo:
    """Size and hash of the bytes a model came from (None for live objects)."""

    def __init__(self, data: bytes | None, name: str | None = None):
        self.data = data
        self.name = name
        self.size = len(data) if data is not None else 0
        self.sha256 = hashlib.sha256(data).hexdigest() if data is not None else ""


def _family(name: str) -> Any:
    return importlib.import_module(_FAMILY_MODULES[name])


_COMPRESSED_JOBLIB_MAGICS = (
    b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda",  # zlib
    b"\x1f\x8b",  # gzip
    b"BZh",  # bz2
    b"\xfd7zXZ",  # xz
    b"\x5d\x00\x00",  # lzma
    b"\x04\x22\x4d\x18",  # lz4
)


def sniff_format(data: bytes, name: str = "the model file") -> str:
    """Name the model format from the bytes alone.

    Returns one of ``pickle``, ``skops``, ``xgboost-json``, ``xgboost-ubj``, ``lightgbm-text``,
    ``onnx``; raises ``ModelLoadError`` when the content is none of them.
    """
    if not data:
        raise ModelLoadError(f"{name} is empty (0 bytes): export the model again and use the saved file")
    head = data[:64]
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "pickle"
    if head.startswith(_COMPRESSED_JOBLIB_MAGICS):
        return "pickle"
    if head.startswith(b"PK\x03\x04"):
        return "skops"
    stripped = data[:4096].lstrip()
    if stripped.startswith(b"tree\n") or stripped.startswith(b"tree\r\n"):
        return "lightgbm-text"
    if _looks_like_ubjson(data):
        return "xgboost-ubj"
    if stripped.startswith(b"{"):
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise ModelLoadError(
                f"{name} starts like JSON but is not valid JSON ({type(e).__name__}): it may be "
                "truncated; save it again with XGBoost's save_model('model.json')"
            ) from e
        if isinstance(doc, dict) and "learner" in doc:
            return "xgboost-json"
        raise ModelLoadError(
            f"{name} is JSON but not an XGBoost model (no 'learner' key): "
            "save it with XGBoost's save_model('model.json')"
        )
    # Protocol-0/1 pickles start with an opcode such as '(' or 'c' followed by a module path.
    if head[:1] in (b"(", b"c", b"]", b"}") and b"\n" in head and b"." in data[-2:]:
        return "pickle"
    if _looks_like_onnx(data):
        return "onnx"
    from optimizer_core.models import xgboost_legacy

    legacy = xgboost_legacy.read_header(data)
    if legacy is not None:
        raise UnsupportedModelError(xgboost_legacy.refusal(legacy, name))
    raise ModelLoadError(
        f"{name} is not a recognised model format (XGBoost JSON/UBJ, LightGBM text, skops, ONNX, "
        "or pickle with opt-in): check that the right file was chosen and that it is not truncated"
    )


def _looks_like_ubjson(data: bytes) -> bool:
    # A UBJSON object opens with '{' and a typed key length (i, U, I, l or L), unlike JSON's '{"'.
    return data[:1] == b"{" and data[1:2] in (b"i", b"U", b"I", b"l", b"L") and b"learner" in data[:64]


def _looks_like_onnx(data: bytes) -> bool:
    # ModelProto serialises ir_version (field 1, varint) first in practice; confirm by parsing.
    if data[:1] != b"\x08":
        return False
    try:
        import onnx

        proto = onnx.ModelProto()
        proto.ParseFromString(data)
    except Exception:
        return False
    return proto.HasField("graph") and proto.ir_version > 0


def read_source(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview, name: str | None = None,
    what: str = "model file",
) -> tuple[bytes, str]:
    """The bytes of a model file given as a path or bytes, and the name messages use for it; ``ModelLoadError``
    naming ``what`` when the path is a folder, missing or unreadable."""
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source), name or ("the uploaded model" if what == "model file" else f"the {what}")
    path = Path(source)
    try:
        if path.is_dir():
            raise ModelLoadError(f"{path} is a folder, not a {what}: pass the saved file itself")
        return path.read_bytes(), name or str(path)
    except FileNotFoundError as e:
        raise ModelLoadError(f"{what} {path} does not exist: check the path") from e
    except PermissionError as e:
        raise ModelLoadError(f"{what} {path} cannot be read (permission denied)") from e
    except OSError as e:
        raise ModelLoadError(f"{what} {path} cannot be read: {e.strerror or e}") from e
    except ValueError as e:  # e.g. an embedded NUL byte
        raise ModelLoadError(f"{str(path)!r} is not a usable file path ({e})") from e


def load_model(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview,
    *,
    allow_pickle: bool = False,
    name: str | None = None,
) -> LoadedModel:
    """Load a model file (path or bytes), sniffing its format from the content, not the name.

    Pickle/joblib files are refused unless ``allow_pickle=True`` because loading one runs code.
    ``name`` is how messages refer to the file (defaults to its path); it is also the model's ``source_name``
    (the file deploy snippets load), which bytes without a name do not have.
    """
    model = _load(source, allow_pickle=allow_pickle, name=name)
    given = isinstance(source, bytes | bytearray | memoryview)
    return replace(model, source_name=name if name is not None else None if given else os.fspath(source))


def _load(source: str | os.PathLike[str] | bytes | bytearray | memoryview, *, allow_pickle: bool,
          name: str | None) -> LoadedModel:
    data, name = read_source(source, name)
    fmt = sniff_format(data, name)
    if fmt == "pickle":
        if not allow_pickle:
            raise UnsafeModelError(f"{name} is a pickle/joblib file: {PICKLE_ADVICE}")
        obj = _unpickle(data, name)
        model = model_from_object(obj, source=SourceInfo(data, name), fmt="pickle")
        if model.family != "sklearn":
            return model
        from optimizer_core.models import saved_versions

        # through the registry: models.sklearn imports this package (SourceInfo), so a direct import is a circle
        return _family("sklearn").with_version_note(model, saved_versions.pickle_versions(data))
    family = _FORMAT_OWNERS[fmt]
    try:
        return _family(family).load(data, fmt, SourceInfo(data, name))
    except (OptimizerError, MemoryError):
        raise
    except Exception as e:  # a parser error from the library: the file is malformed
        raise ModelLoadError(
            f"{name} looks like a {fmt} model but {family} could not read it "
            f"({type(e).__name__}: {_first_line(e)}): the file may be truncated or from an "
            "incompatible version; save it again"
        ) from e


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


def _unpickle(data: bytes, name: str) -> Any:
    import joblib

    try:
        return joblib.load(io.BytesIO(data))
    except Exception as e:
        from optimizer_core.models import saved_versions

        versions = saved_versions.saved_with(saved_versions.pickle_versions(data))
        if versions:
            versions = (f": {versions}; load it with the library versions that pickled it and save it in the model's "
                        "own format (scikit-learn: skops.io.dump), or refit it here")
        raise ModelLoadError(
            f"{name} is a pickle/joblib file that could not be loaded ({_first_line(e)}){versions}"
        ) from e


def model_from_object(obj: Any, *, source: SourceInfo | None = None, fmt: str = "memory") -> LoadedModel:
    """Wrap a live estimator/booster/ModelProto (from memory or an opted-in pickle)."""
    source = source or SourceInfo(None)
    for family in _FAMILY_MODULES:
        module = _family_if_importable(family)
        if module is not None and module.matches(obj):
            return module.from_object(obj, source=source, fmt=fmt)
    raise UnsupportedModelError(
        f"{type(obj).__module__}.{type(obj).__name__} is not a supported model: pass a fitted "
        "XGBoost, LightGBM or scikit-learn estimator, or an ONNX model"
    )


def _family_if_importable(family: str) -> Any | None:
    try:
        return _family(family)
    except ImportError:
        return None
