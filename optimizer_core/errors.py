"""One exception hierarchy for everything a user can get wrong (or a library can refuse).

Every message is one line that names the file, column or operator at fault and says what to do next.
The CLI turns any ``OptimizerError`` into that line on stderr and exit code 2; the dashboard into
``st.error``.
"""

from __future__ import annotations


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
