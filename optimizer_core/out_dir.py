"""Writing a run's files into the folder the user named, without ever deleting files that are not ours.

A new or empty folder receives the files; a folder holding only an earlier run's files is replaced as a
whole (atomically); anything else is refused before a run starts, so ``--out .`` in a project folder
cannot wipe it.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from optimizer_core.errors import ConfigError

FIXED_NAMES = frozenset({"report.json", "report.html", "drift.csv", "deploy.py", "validation.json", "worst_rows.csv"})
MARKERS = frozenset({"report.json", "validation.json"})  # a folder holding one of these is an earlier output
_umask_lock = threading.Lock()


def is_output_file(name: str) -> bool:
    """A file name this tool writes into an output folder."""
    return name in FIXED_NAMES or (name.endswith(".onnx") and not name.startswith("."))


def out_dir_problem(out_dir: str | os.PathLike[str], *, flag: str = "--out") -> str | None:
    """Why ``out_dir`` cannot receive a run's files, or None when it can (``flag`` names it in the message)."""
    target = Path(out_dir)
    if not target.exists():
        return creation_problem(target, flag)
    if not target.is_dir():
        return f"{flag} {target} exists and is not a folder: choose a folder path"
    entries = sorted(p.name for p in target.iterdir())
    if not entries:
        return None
    foreign = [name for name in entries if not is_output_file(name)]
    if not MARKERS & set(entries) or foreign:
        shown = ", ".join(repr(n) for n in (foreign or entries)[:3])
        more = "" if len(foreign or entries) <= 3 else ", ..."
        return (f"{flag} {target} is not empty and is not an earlier inference-optimizer output (it holds {shown}{more}): "
                "choose a new or empty folder; nothing was written")
    return None


def creation_problem(target: Path, flag: str) -> str | None:
    """Why a folder that does not exist yet could not be created there, judged by its nearest existing parent
    (None when it exists already or can be created)."""
    if target.exists():
        return None if target.is_dir() else f"{flag} {target} is a file, not a folder; choose another path"
    parent = target.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"{flag} {target} cannot be created: {parent} is a file, not a folder; choose another path"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{flag} {target} cannot be created: {parent} is not writable; choose a folder you can write to"
    try:  # permissions do not tell everything (root, /proc, read-only mounts): try it, and leave nothing
        os.rmdir(tempfile.mkdtemp(prefix=".inference-optimizer-probe-", dir=parent))
    except OSError as e:
        return f"{flag} {target} cannot be created in {parent} ({e.strerror or e}); choose another folder"
    return None


def default_mode(kind: str) -> int:
    """Permissions a new file ("file") or folder ("dir") gets under the process umask."""
    with _umask_lock:
        mask = os.umask(0)
        os.umask(mask)
    return (0o777 if kind == "dir" else 0o666) & ~mask


def write_files(out_dir: str | os.PathLike[str], files: Mapping[str, bytes]) -> Path:
    """Write ``files`` (plain names -> bytes) into ``out_dir``; all or nothing where the OS allows it.

    Raises ConfigError when ``out_dir`` holds files this tool did not write (see ``out_dir_problem``).
    """
    for name in files:
        if Path(name).name != name or name.startswith(".") or not is_output_file(name):
            raise ValueError(f"output file name {name!r} must be a plain report or model file name")
    target = Path(out_dir).resolve()
    problem = out_dir_problem(target, flag="the output folder")
    if problem:
        raise ConfigError(problem)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    except OSError as e:
        raise ConfigError(f"cannot create the output folder {target} ({e.strerror or e}): choose another path; "
                          "nothing was written") from e
    try:
        for name, blob in files.items():
            (tmp / name).write_bytes(blob)
        if not target.exists():
            tmp.chmod(default_mode("dir"))
            tmp.rename(target)
        elif not any(target.iterdir()):
            _move_into(tmp, target)
        else:  # an earlier run's output: swap the whole folder, keeping its permissions
            tmp.chmod(stat.S_IMODE(target.stat().st_mode))
            backup = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            backup.rmdir()
            target.rename(backup)
            tmp.rename(target)
            shutil.rmtree(backup, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _move_into(tmp: Path, target: Path) -> None:
    moved: list[Path] = []
    try:
        for path in sorted(tmp.iterdir()):
            os.replace(path, target / path.name)
            moved.append(target / path.name)
    except BaseException:
        for path in moved:
            path.unlink(missing_ok=True)
        raise
    tmp.rmdir()


def write_file(path: str | os.PathLike[str], blob: bytes) -> Path:
    """Write one file atomically, with the umask's usual permissions."""
    return write_atomically(path, lambda tmp: Path(tmp).write_bytes(blob))


def write_atomically(path: str | os.PathLike[str], write: Callable[[str], object]) -> Path:
    """Let ``write(tmp_path)`` fill a temporary sibling, then rename it to ``path``: readers never see
    half a file, and a failure leaves nothing. The file gets the umask's usual permissions."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=out.suffix, dir=out.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, default_mode("file"))
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
