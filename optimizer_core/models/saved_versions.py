"""Which library versions wrote a skops or pickle file, so that a load that fails names them.

scikit-learn stores its version in every estimator's state (``_sklearn_version``), and skops its own in the
file's schema. Both are read from the bytes without loading anything: the skops schema is JSON, and in a
pickle the version is a short string right after the ``_sklearn_version`` key (compressed joblib files
are decompressed, up to a bound, to find it).
"""

from __future__ import annotations

import bz2
import io
import json
import lzma
import re
import zipfile
import zlib
from importlib.metadata import PackageNotFoundError, version

__all__ = ["skops_versions", "pickle_versions", "installed", "saved_with", "mismatch"]

_KEY = b"_sklearn_version"
_VERSION = re.compile(rb"\d+\.\d+(?:\.\d+)?(?:(?:\.|-)?(?:post|dev|rc|a|b)\d*)?")
_MAX_INFLATED = 64 << 20  # bytes of a compressed joblib file searched for the version


def skops_versions(data: bytes) -> dict[str, str]:
    """{"scikit-learn": ..., "skops": ...} as far as the skops file's schema says."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read("schema.json"))
    except Exception:  # noqa: BLE001 - unreadable: nothing to say
        return {}
    found: dict[str, str] = {}
    if isinstance(schema, dict) and isinstance(schema.get("_skops_version"), str):
        found["skops"] = schema["_skops_version"][:40]
    content = schema.get("content") if isinstance(schema, dict) else None
    inner = content.get("content") if isinstance(content, dict) else None
    node = inner.get("_sklearn_version") if isinstance(inner, dict) else None
    if isinstance(node, dict) and isinstance(node.get("content"), str):
        try:
            text = json.loads(node["content"])
        except ValueError:
            text = None
        if isinstance(text, str) and _VERSION.fullmatch(text.encode()):
            found["scikit-learn"] = text
    return found


def pickle_versions(data: bytes) -> dict[str, str]:
    """{"scikit-learn": ...} when a pickled estimator in ``data`` (plain or joblib-compressed) records it."""
    for stream in (data, _inflated(data)):
        at = stream.find(_KEY) if stream else -1
        if at >= 0:
            found = _VERSION.search(stream, at + len(_KEY), at + len(_KEY) + 24)
            if found:
                return {"scikit-learn": found.group().decode()}
    return {}


def _inflated(data: bytes) -> bytes:
    for decompressor in (lambda: zlib.decompressobj(zlib.MAX_WBITS | 32), bz2.BZ2Decompressor,
                         lzma.LZMADecompressor):
        try:
            return decompressor().decompress(data, _MAX_INFLATED)
        except Exception:  # noqa: BLE001 - not this compression
            continue
    return b""


def installed(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def saved_with(saved: dict[str, str]) -> str:
    """"it was saved with scikit-learn 1.5.2 (skops 0.9.0) and scikit-learn 1.9.1 is installed here"."""
    sklearn = saved.get("scikit-learn")
    if not sklearn:
        here = installed("scikit-learn")
        return f"scikit-learn {here} is installed here" if here else ""
    tool = f" (skops {saved['skops']})" if saved.get("skops") else ""
    return f"it was saved with scikit-learn {sklearn}{tool} and scikit-learn {installed('scikit-learn')} is installed here"


def mismatch(saved: dict[str, str]) -> bool:
    """Whether the file's scikit-learn version differs from the installed one."""
    sklearn = saved.get("scikit-learn")
    return bool(sklearn) and sklearn != installed("scikit-learn")
