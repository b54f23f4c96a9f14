"""The Ray engine: the same per-batch work on Ray Data, one actor per worker holding the native model and one
ONNX Runtime session, on a local Ray (started here and shut down after) or a cluster by address.

The work units (a CSV file, a run of a Parquet file's row groups) are a Ray dataset; ``map_batches`` hands
them to an actor pool, and each actor reads its unit itself (so every row keeps its file and row number,
which ``read_parquet``/``read_csv`` blocks do not carry) and returns one small partial aggregate. The driver
merges partials as they stream back: it never holds rows, whatever the data size.

Workers get the model and the ONNX file as bytes in the actor's constructor; they need inference-optimizer
installed (the same version), and for object-store URLs the credentials, like any Ray reader.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from optimizer_core import errors
from optimizer_core.errors import ConfigError, OptimizerError
from optimizer_core.validation.aggregate import Partial
from optimizer_core.validation.scoring import Job, Scorer
from optimizer_core.validation.sources import WorkUnit

INSTALL_ADVICE = "--engine ray needs Ray: pip install 'inference-optimizer[scale]' (or use --engine local)"
CPUS_PER_WORKER = 1
_LOCAL_OBJECT_STORE = 256 << 20  # bytes; the data never goes through it, only the two files and the partials


def ray_installed() -> bool:
    return importlib.util.find_spec("ray") is not None


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401 - the [data] extra
    except ImportError as e:
        raise ConfigError(INSTALL_ADVICE) from e
    return ray


class ValidationActor:
    """One worker: the models loaded once, then units scored on request."""

    def __init__(self, model_bytes: bytes, onnx_bytes: bytes, job: Job, units: Sequence[WorkUnit]):
        self.units = units
        self.scorer: Scorer | None = None
        self.error = ""
        try:
            self.scorer = Scorer(model_bytes, onnx_bytes, job)
        except OptimizerError as e:
            self.error = _problem(e)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        partials: list[Partial | None] = []
        problems: list[str] = []
        for index in batch["unit"]:
            if self.scorer is None:
                partials.append(None)
                problems.append(self.error)
                continue
            try:
                partials.append(self.scorer.score_unit(self.units[int(index)]))
                problems.append("")
            except (OptimizerError, MemoryError) as e:
                partials.append(None)
                problems.append(_problem(e))
        column = np.empty(len(partials), dtype=object)
        column[:] = partials
        return {"unit": np.asarray(batch["unit"]), "partial": column, "problem": np.array(problems, dtype=object)}


def _problem(error: BaseException) -> str:
    if isinstance(error, MemoryError):
        return "ResourceLimitError\na Ray worker ran out of memory: use a smaller --batch-rows"
    return f"{type(error).__name__}\n{error}"


def _raise_problem(problem: str) -> None:
    kind, _, message = problem.partition("\n")
    error_type = getattr(errors, kind, OptimizerError)
    if not (isinstance(error_type, type) and issubclass(error_type, OptimizerError)):
        error_type = OptimizerError
    raise error_type(message)


def run_ray(model_bytes: bytes, onnx_bytes: bytes, job: Job, units: Sequence[WorkUnit], *,
            address: str | None = None, workers: int | None = None,
            advance: Callable[[float], None] | None = None) -> tuple[Partial, int]:
    """Score ``units`` on Ray Data; returns the merged partial and the number of workers. A Ray already
    initialised in this process is used as it is (and left running); otherwise one is started (or the cluster
    at ``address`` joined) and shut down at the end, whatever happens."""
    ray = import_ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # never phone home
    started = False
    if not ray.is_initialized():
        _init(ray, address, extra_bytes=len(model_bytes) + len(onnx_bytes))
        started = True
    try:
        _quiet(ray)
        cpus = int(ray.cluster_resources().get("CPU", CPUS_PER_WORKER))
        size = max(1, min(workers or max(cpus // CPUS_PER_WORKER, 1), len(units)))
        dataset = ray.data.from_items([{"unit": i} for i in range(len(units))], override_num_blocks=len(units))
        scored = _map_batches(dataset, ray, ValidationActor, fn_constructor_args=(model_bytes, onnx_bytes, job,
                                                                                  tuple(units)),
                              batch_size=1, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=size),
                              num_cpus=CPUS_PER_WORKER)
        total = sum(u.weight for u in units) or 1
        done = 0
        merged: Partial | None = None
        try:
            for batch in scored.iter_batches(batch_size=None, batch_format="numpy"):
                for index, partial, problem in zip(batch["unit"], batch["partial"], batch["problem"], strict=True):
                    if problem:
                        _raise_problem(problem)
                    merged = partial if merged is None else merged.merge(partial)
                    done += units[int(index)].weight
                if advance is not None:
                    advance(done / total)
        except OptimizerError:
            raise
        except Exception as e:  # a worker that died (killed, out of memory) or a Ray failure
            raise OptimizerError(f"the Ray job failed ({type(e).__name__}: {_first_line(e)}): see the Ray logs, or "
                                 "run with --engine local") from e
        if merged is None:
            raise OptimizerError("the Ray job returned no results")
        return merged, size
    finally:
        if started:
            ray.shutdown()


def _map_batches(dataset: Any, ray: Any, fn: Any, **options: Any) -> Any:
    """``dataset.map_batches`` with actors that are not restarted: a worker that dies fails the validation in
    one line (Ray's default restarts it without end, and logs that its constructor arguments may be lost).
    Ray 2.60 takes ``max_restarts`` only through its deprecated remote-args keywords, hence the fallback."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*")
            return dataset.map_batches(fn, max_restarts=0, **options)
    except TypeError:
        return dataset.map_batches(fn, **options)


def _init(ray: Any, address: str | None, *, extra_bytes: int) -> None:
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    if address is None:  # a local Ray: small object store, only the files and partials go through it
        options["object_store_memory"] = _LOCAL_OBJECT_STORE + 4 * extra_bytes
    try:  # "local": a new Ray of our own, never one found on the machine (ray.init()'s default)
        ray.init(address=address or "local", **options)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise ConfigError(f"cannot start {where} ({type(e).__name__}: {_first_line(e)}): check the address "
                          "(ray://HOST:10001 for Ray Client, HOST:6379 on a cluster node, or 'auto')") from e


def _quiet(ray: Any) -> None:
    """No progress bars or execution logs from Ray Data: the CLI prints one line per stage."""
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    if hasattr(context, "print_on_execution_start"):
        context.print_on_execution_start = False


def _first_line(e: BaseException) -> str:
    lines = [line for line in str(e).strip().splitlines() if line.strip()]
    return lines[0][:200] if lines else type(e).__name__
