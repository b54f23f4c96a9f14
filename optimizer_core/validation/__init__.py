"""validate(): drift of an ONNX file against its native model over data larger than one machine.

    from optimizer_core import validate
    result = validate("model.json", "model.onnx", ["s3://bucket/test/"], target="label", engine="ray")
    result.drift.max_abs, result.metrics, result.worst_rows
    result.write_out("out/")

Every row is scored by the native model (its production call) and by the ONNX file in ONNX Runtime, and
compared as ``run`` compares them; only mergeable aggregates leave the workers (``aggregate``), so the
caller's memory stays bounded whatever the data size. ``engine="local"`` does the work in this process;
``engine="ray"`` on Ray Data (``ray_engine``), locally or on a cluster (``ray_address``).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from optimizer_core.errors import ConfigError
from optimizer_core.validation.result import ValidatedRow, ValidationResult

__all__ = ["validate", "ValidationResult", "ValidatedRow", "ENGINES", "DEFAULT_BATCH_ROWS"]

ENGINES = ("local", "ray")
DEFAULT_BATCH_ROWS = 65_536
Progress = Callable[[str, float], None]


def default_engine(ray_address: str | None = None) -> str:
    """Ray when it is installed (or a cluster address is given), else the local engine."""
    from optimizer_core.validation.ray_engine import ray_installed

    return "ray" if ray_address or ray_installed() else "local"


def validate(
    model: str | os.PathLike[str] | bytes,
    onnx: str | os.PathLike[str] | bytes | Any,
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    engine: str | None = None,
    ray_address: str | None = None,
    target: str | None = None,
    max_drift: float | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    workers: int | None = None,
    allow_pickle: bool = False,
    progress: Progress | None = None,
    model_name: str | None = None,
    onnx_name: str | None = None,
) -> ValidationResult:
    """Compare ``onnx`` (a path, its bytes or an ``onnx.ModelProto``) with ``model`` (a model file's path or
    bytes) on every row of ``data`` (CSV/Parquet files, folders, globs, object-store URLs).

    ``engine``: "local" or "ray" (default: ray when installed); ``ray_address``: a cluster to join;
    ``workers``: Ray actors (default: one per CPU of the cluster). ``max_drift`` sets ``result.passed``.
    ``progress(stage, fraction)`` is called as the work advances. Raises ``OptimizerError`` subclasses for
    bad input, before the work starts wherever it can be known then.
    """
    from optimizer_core.environment import describe_environment
    from optimizer_core.validation import sources
    from optimizer_core.validation.scoring import Job, describe_onnx, load_onnx, onnx_columns

    started = time.perf_counter()
    say = progress or (lambda stage, fraction: None)
    engine = _engine(engine, ray_address)
    _check_options(batch_rows, max_drift, workers)
    say("loading the model and the ONNX file", 0.0)
    model_bytes, model_display = _read(model, model_name, "model file")
    onnx_bytes, onnx_display = _read(onnx, onnx_name, "ONNX file")
    from optimizer_core.models import load_model

    native = load_model(model_bytes, allow_pickle=allow_pickle, name=model_display)
    # run decides values-or-codes on a whole column; batches cannot, so validate takes codes only, where a number
    # can only be a code (and refuses a model whose stored categories are numbers)
    from optimizer_core.validation.category_codes import check_model

    category_note = check_model(native, model_display)
    onnx_model = load_onnx(onnx_bytes, onnx_display)
    onnx_columns(native, onnx_model, onnx_display)
    found, notes = sources.find_files(data)
    notes += [category_note] if category_note else []
    say(f"checking {len(found):,} data file{'s' if len(found) != 1 else ''}", 0.02)
    files = tuple(sources.inspect_file(f, native, target) for f in found)
    units = sources.plan_units(files, batch_rows * sources.UNIT_BATCHES)
    job = Job(model_display, onnx_display, files, target, batch_rows, allow_pickle)
    known_rows = sum(f.rows or 0 for f in files)
    what = f"{known_rows:,} rows" if all(f.rows is not None for f in files) else f"{len(files):,} files"
    scoring_started = time.perf_counter()
    last = [-1]

    def advance(fraction: float) -> None:
        step = math.floor(fraction * 10)  # a line per tenth of the work (a bar on a terminal)
        if step != last[0]:
            last[0] = step
            say(f"scoring {fraction:.0%} of {what} ({engine})", 0.05 + 0.93 * fraction)

    advance(0.0)
    if engine == "local":
        from optimizer_core.validation.local import run_local

        partial, used_workers = run_local(model_bytes, onnx_bytes, job, units, loaded=(native, onnx_model),
                                          advance=advance), 1
    else:
        from optimizer_core.validation.ray_engine import run_ray

        partial, used_workers = run_ray(model_bytes, onnx_bytes, job, units, address=ray_address,
                                        workers=workers, advance=advance)
    scoring_s = time.perf_counter() - scoring_started
    say("summarising", 0.99)
    from optimizer_core.validation.summary import build_result

    result = build_result(
        partial, native=native, files=files, engine=engine, workers=used_workers, target=target,
        max_drift=max_drift, onnx_description=describe_onnx(onnx_model) | {"path": onnx_display},
        model_path=model_display, notes=notes, scoring_s=scoring_s, wall_s=time.perf_counter() - started,
        environment=describe_environment(),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    say("done", 1.0)
    return result


def _engine(engine: str | None, ray_address: str | None) -> str:
    if engine is None or engine == "auto":
        return default_engine(ray_address)
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}: choose local or ray")
    if engine == "local" and ray_address:
        raise ConfigError("--ray-address is for --engine ray: drop it, or use --engine ray")
    if engine == "ray":
        from optimizer_core.validation.ray_engine import import_ray

        import_ray()  # not installed: one line, before any work
    return engine


def _check_options(batch_rows: int, max_drift: float | None, workers: int | None) -> None:
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise ConfigError(f"--batch-rows must be a whole number of at least 1 (got {batch_rows!r})")
    if max_drift is not None and not (isinstance(max_drift, int | float) and math.isfinite(max_drift)
                                      and max_drift >= 0):
        raise ConfigError(f"--max-drift must be a number of at least 0 (got {max_drift!r})")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"workers must be a whole number of at least 1 (got {workers!r})")


def _read(source: Any, name: str | None, what: str) -> tuple[bytes, str]:
    if hasattr(source, "SerializeToString"):  # an in-memory onnx.ModelProto
        return source.SerializeToString(), name or "the in-memory ONNX model"
    if not isinstance(source, bytes | bytearray | memoryview | str | os.PathLike):
        raise ConfigError(f"the {what} is a {type(source).__name__}: pass its path or its bytes (workers load it "
                          "from the bytes)")
    from optimizer_core.models import read_source

    return read_source(source, name, what)
