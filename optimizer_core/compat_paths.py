"""Where the classic ``InferenceOptimizer`` reads and writes model files.

Relative paths are under the optimizer's ``model_dir``. When ``quantize_model`` cannot apply a precision
(INT8 dynamic quantization leaves tree-ensemble operators unchanged) it writes no "quantized" file that is
the same model; instead it records, next to where that file would have been, which unchanged model the
name stands for. Loading that name later (in another process too) loads the unchanged model, with a
warning, after checking that the file is still the one recorded (same SHA-256).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optimizer_core.errors import InputError

__all__ = ["UNCHANGED_RECORD", "ModelDir"]

UNCHANGED_RECORD = "inference-optimizer-unchanged.json"  # {file name: the unchanged model it stands for}


def is_path(value: Any) -> bool:
    return isinstance(value, str) or hasattr(value, "__fspath__")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


@dataclass(frozen=True)
class ModelDir:
    """Resolves the paths the classic methods take. ``root`` None: relative paths are under the working
    directory (as every path is when no ``model_dir`` was given)."""

    root: Path | None = None
    given: Path | None = None  # model_dir as the caller wrote it (relative or absolute)

    @classmethod
    def create(cls, model_dir: str | os.PathLike[str] | None) -> ModelDir:
        if model_dir is None:
            return cls()
        given = Path(model_dir).expanduser()
        root = given.absolute()
        if root.exists() and not root.is_dir():
            raise InputError(f"model_dir {str(given)!r} is a file, not a folder: pass a folder for the ONNX models")
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"model_dir {str(given)!r} cannot be created ({e.strerror or e}): pass a folder you "
                             "can write to") from e
        return cls(root, given)

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """An absolute path: relative ones under ``model_dir``, except one that already starts with the
        relative ``model_dir`` as given (``os.path.join("data/models/onnx", "m.onnx")``): that one is
        relative to the working directory, never doubled into data/models/onnx/data/models/onnx/m.onnx."""
        p = Path(path).expanduser()
        if p.is_absolute() or self.root is None:
            return p.absolute()
        given = self.given
        if given is not None and not given.is_absolute() and p.parts[:len(given.parts)] == given.parts:
            return p.absolute()
        return self.root / p

    def write(self, path: str | os.PathLike[str], data: bytes) -> Path:
        """Write ``data`` atomically to ``path`` (resolved); a record that the name stood for an unchanged
        model is dropped, since a real file now holds it."""
        target = self.resolve(path)
        _atomic_write(target, data)
        self._forget(target)
        return target

    def existing(self, path: str | os.PathLike[str]) -> Path:
        """The file to read for ``path``: the file itself, or the unchanged model its name stands for
        (with a warning saying so). InputError, one line, when neither exists."""
        target = self.resolve(path)
        if target.exists():
            return target
        entry = self._records(target.parent).get(target.name)
        if entry is None:
            where = f" (relative paths are under model_dir {str(self.root)!r})" if self.root is not None else ""
            raise InputError(f"model file {str(target)!r} does not exist{where}: check the path")
        model = Path(entry["model"])
        model = model if model.is_absolute() else target.parent / model
        why = f"{target.name} was never written ({entry['reason']})"
        if not model.is_file():
            raise InputError(f"{why}, and the unchanged model it stands for, {str(model)!r}, is missing: convert "
                             "the model again")
        if _sha256(model) != entry["sha256"]:
            raise InputError(f"{why}, and the model it stood for, {str(model)!r}, has changed since: quantize the "
                             "new model again")
        warnings.warn(f"{why}: loading {model.name}, the unchanged model it stands for", UserWarning, stacklevel=3)
        return model

    def record_unchanged(self, output_path: str | os.PathLike[str], model: Path, reason: str) -> tuple[Path, bool]:
        """Record that ``output_path`` stands for the unchanged ``model``; remove an earlier file there (it
        no longer is what that name means). Returns (the resolved output path, whether a file was removed)."""
        target = self.resolve(output_path)
        if target == model:
            return target, False
        removed = target.is_file()
        if removed:
            target.unlink()
        records = self._records(target.parent)
        rel = os.path.relpath(model, target.parent) if model.parent == target.parent else str(model)
        records[target.name] = {"model": rel, "sha256": _sha256(model), "reason": reason}
        self._save(target.parent, records)
        return target, removed

    def _forget(self, target: Path) -> None:
        try:
            records = self._records(target.parent)
        except InputError:  # an unreadable record is reported when a name in it is loaded, not on every write
            return
        if records.pop(target.name, None) is not None:
            self._save(target.parent, records)

    @staticmethod
    def _records(folder: Path) -> dict[str, dict[str, str]]:
        path = folder / UNCHANGED_RECORD
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise InputError(f"{str(path)!r} cannot be read ({e}): delete it and quantize again") from e
        if not isinstance(records, dict) or not all(
                isinstance(v, dict) and {"model", "sha256", "reason"} <= set(v) for v in records.values()):
            raise InputError(f"{str(path)!r} is not a record this tool wrote: delete it and quantize again")
        return records

    @staticmethod
    def _save(folder: Path, records: dict[str, dict[str, str]]) -> None:
        path = folder / UNCHANGED_RECORD
        if not records:
            path.unlink(missing_ok=True)
            return
        _atomic_write(path, (json.dumps(records, indent=2, sort_keys=True) + "\n").encode())
