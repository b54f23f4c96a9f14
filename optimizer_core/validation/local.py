"""The local engine: the per-batch work in this process, unit after unit (the reference for every engine); the
ONNX session's slices of a batch run side by side on the machine's cores."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from optimizer_core.models import LoadedModel
from optimizer_core.validation.aggregate import Partial
from optimizer_core.validation.scoring import Job, Scorer
from optimizer_core.validation.sources import WorkUnit

Advance = Callable[[float], None]  # told the fraction of the work done


def run_local(model_bytes: bytes, onnx_bytes: bytes, job: Job, units: Sequence[WorkUnit], *,
              loaded: tuple[LoadedModel, LoadedModel] | None = None, advance: Advance | None = None) -> Partial:
    from optimizer_core.environment import physical_cores

    scorer = Scorer(model_bytes, onnx_bytes, job, loaded=loaded, concurrency=physical_cores())
    total = sum(u.weight for u in units) or 1
    done = 0
    merged: Partial | None = None
    try:
        for unit in units:
            def within(rows: int, unit: WorkUnit = unit, before: int = done) -> None:
                if advance is not None and job.files[unit.file_index].format == "parquet":
                    advance((before + min(rows, unit.weight)) / total)

            partial = scorer.score_unit(unit, within)
            merged = partial if merged is None else merged.merge(partial)
            done += unit.weight
            if advance is not None:
                advance(done / total)
    finally:
        scorer.close()
    if merged is None:
        raise ValueError("no work units")
    return merged
