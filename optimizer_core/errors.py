"""One exception hierarchy for everything a user can get wrong (or a library can refuse).

Every message is one line that names the file, column or operator at fault and says what to do next.
The CLI turns any ``OptimizerError`` into that line on stderr and exit code 2; the dashboard into
``st.error``.
"""

from __future__ import annotations

import re


class OptimizerError(Exception):
    """Base class: a problem the user can act on. ``str(err)`` is the one-line message."""

    exit_code = 2


class InputError(OptimizerError):
    """Bad input data: the CSV (empty, missing columns, non-numeric values, unreadable...)."""


class ModelLoadError(OptimizerError):
    """The model file cannot be read: malformed, truncated, unknown format."""


class UnsupportedModelError(OptimizerError):
    """The model is readable but this tool cannot convert or run it (names the estimator/operator)."""


class UnsafeModelError(OptimizerError):
    """The model file would run code or read files when loaded (pickle without opt-in, untrusted
    skops types, ONNX external data or custom operator domains)."""


class ConversionError(OptimizerError):
    """A converter library failed on a model it claims to support."""


class ConfigError(OptimizerError):
    """An invalid option: unknown precision or provider name, bad batch sizes, bad budget."""


class ResourceLimitError(OptimizerError):
    """A job exceeded a limit: file size, memory, wall-clock time."""


class JobTimeoutError(ResourceLimitError):
    """A job or an inspection ran past its wall-clock limit and was stopped (may succeed when less busy)."""


class RuntimeNotInstalledError(OptimizerError):
    """Neither onnxruntime nor onnxruntime-gpu is importable."""


# --------------------------------------------------------------------------- one-line messages from libraries

_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ")
_SOURCE_LOCATION = re.compile(r"\S+\.(?:h|hpp|cc|cpp|cu):\d+ ")
_MAX_REASON = 200


def describe_ort_error(error: BaseException) -> str:
    """The essential part of an ONNX Runtime exception, on one line: without the ``[ONNXRuntimeError] : 1 :
    FAIL :`` prefix, C++ source locations and signatures, and failed-assertion expressions when ORT
    also says what was wrong in words."""
    text = " ".join(str(error).split()) or type(error).__name__
    text = _ORT_PREFIX.sub("", text)
    text = text.replace("Exception during initialization: ", "")
    text = _strip_cpp_location(text)
    _, was_false, rest = text.partition(" was false. ")
    if was_false and rest.strip():
        text = rest.strip()
    return shorten(text, _MAX_REASON)


def _strip_cpp_location(text: str) -> str:
    """Drop ``/path/file.h:126 ns::Class<T>::Class(const Info&, bool) [with T = float] `` from ``text``."""
    found = _SOURCE_LOCATION.search(text)
    if found is None:
        return text
    head, tail = text[: found.start()], text[found.end():]
    depth, end = 0, None
    for i, char in enumerate(tail):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                end = i + 1
                break
    if end is None:
        return head + tail
    tail = tail[end:].lstrip()
    if tail.startswith("[with "):
        tail = tail[tail.find("]") + 1:].lstrip() if "]" in tail else ""
    return head + tail


def shorten(text: str, limit: int) -> str:
    """``text`` up to ``limit`` characters: cut after its last full sentence that fits, else at a word
    with an ellipsis, never inside a word."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    sentence_end = cut.rfind(". ")
    if sentence_end >= limit // 3:
        return cut[: sentence_end + 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > 0 else cut).rstrip(" ,;:") + "…"
