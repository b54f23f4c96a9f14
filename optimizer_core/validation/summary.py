"""From the merged partial to the ValidationResult (figures, notes in the run's words, how each figure was
computed). The result as the CLI's plain-text table is a view: ``views/validation_table.py``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from optimizer_core import drift
from optimizer_core.csv_reader import _listing  # the run's way of listing values in a note
from optimizer_core.data import METRICS_SKIPPED
from optimizer_core.models.base import LoadedModel
from optimizer_core.validation.aggregate import ClassifierMetrics, DriftAggregate, Partial, RegressorMetrics
from optimizer_core.validation.result import ValidatedRow, ValidationResult
from optimizer_core.validation.sketch import RESOLUTION, FirstRows
from optimizer_core.validation.sources import DataFile

ONNX_NAME = "onnx"  # how notes name the ONNX file's side
P99_METHOD = (f"p99_abs is numpy's 99th percentile (linear interpolation) bounded from above: each of the two rows "
              f"it interpolates between is replaced by the largest drift in its bin of a mergeable histogram whose "
              f"bins are at most 2^-10 ({RESOLUTION:.2%}) of their values wide, so it is at most that fraction above "
              "the exact value, never below it, and the same for every engine")
MAX_REL_METHOD = ("max_rel is exact: the rows' (native size, drift) Pareto frontier is kept, so the largest drift "
                  "relative to max(prediction size, the predictions' RMS) is found once the RMS is known")


def build_result(partial: Partial, *, native: LoadedModel, files: Sequence[DataFile], engine: str, workers: int,
                 target: str | None, max_drift: float | None, onnx_description: dict[str, Any], model_path: str,
                 notes: Sequence[str], scoring_s: float, wall_s: float, environment: dict[str, Any],
                 created_at: str) -> ValidationResult:
    aggregate = partial.drift
    stats = aggregate.stats(native.task, max_drift)
    methods = {"p99_abs": P99_METHOD if not aggregate.p99_exact() else
               "p99_abs is exact: numpy's 99th percentile (linear interpolation); both rows around it fall in "
               "histogram bins holding a single value",
               "max_rel": MAX_REL_METHOD if not aggregate.frontier.coarsened else
               (f"max_rel is an upper bound: over {aggregate.frontier.sizes.size:,} (size, drift) points, sizes were "
                "rounded down to 2^-16 of their value, which can only raise it, by at most that fraction"),
               "mean_abs": "mean_abs sums per-batch sums: engines can differ in the last digits"}
    all_notes = list(notes) + _file_notes(files)
    metrics = None
    if target is not None and partial.target is not None:
        all_notes += _target_notes(partial, native, target)
        metrics, metric_notes, auc_bound = _metrics(partial, native)
        all_notes += list(dict.fromkeys(metric_notes))
        if auc_bound is not None:
            methods["roc_auc"] = (f"roc_auc comes from histograms of the scores (bins at most 2^-10 of min(p, 1 - p) "
                                  f"wide); pairs of rows in one bin count as ties, so it is within ±{rounded_up(auc_bound)} "
                                  "of the exact value" + (" (exact here)" if auc_bound == 0 else ""))
    all_notes += _non_finite_notes(aggregate, files)
    rows_by_file = partial.rows_by_file
    return ValidationResult(
        engine=engine, workers=workers, rows=stats.rows,
        files=tuple({"path": f.display, "format": f.format, "rows": rows_by_file.get(i, 0)} for i, f in enumerate(files)),
        model=native.describe() | {"path": model_path}, onnx=onnx_description, target=target, drift=stats,
        metrics=metrics, worst_rows=_worst_rows(aggregate, files, native.task), rows_per_s=stats.rows / max(scoring_s, 1e-9),
        wall_s=round(wall_s, 3), scoring_s=round(scoring_s, 3), methods=methods, notes=tuple(dict.fromkeys(all_notes)),
        environment=environment, created_at=created_at,
    )


def rounded_up(value: float, digits: int = 2) -> str:
    """``value`` in scientific notation with ``digits`` significant digits, rounded up (a bound printed rounded
    down would claim more than was shown: 5.0408e-05 is 5.1e-05). The float's shortest repr is rounded, so a
    bound that is exactly 5e-05 stays 5.0e-05."""
    from decimal import ROUND_CEILING, Decimal

    exact = Decimal(repr(float(value)))
    if not exact.is_finite() or exact <= 0:
        return f"{value:.{digits - 1}e}"
    up = exact.quantize(Decimal(1).scaleb(exact.adjusted() - (digits - 1)), rounding=ROUND_CEILING)
    return f"{float(up):.{digits - 1}e}"  # the float nearest a short decimal prints as that decimal


def _worst_rows(aggregate: DriftAggregate, files: Sequence[DataFile], task: str) -> tuple[ValidatedRow, ...]:
    worst = aggregate.worst
    if worst is None:
        return ()
    relative = task == "regression"
    scale = aggregate.scale
    sizes = drift.score_size(worst.native) if worst.native.size else np.empty(0)
    return tuple(
        ValidatedRow(
            file=files[int(worst.files[i])].display, row=int(worst.rows[i]) + 1,
            native=tuple(float(v) for v in worst.native[i]), onnx=tuple(float(v) for v in worst.onnx[i]),
            diff=float(worst.diffs[i]),
            rel_diff=float(worst.diffs[i] / max(sizes[i], scale)) if relative else None,
        )
        for i in range(worst.diffs.size)
    )


def _file_notes(files: Sequence[DataFile]) -> list[str]:
    """Each file's alignment notes, said once when every file shares them, else with the file's name."""
    shared = set(files[0].notes).intersection(*(set(f.notes) for f in files[1:])) if files else set()
    out = [n for n in (files[0].notes if files else ()) if n in shared]
    for f in files:
        out += [f"{f.display}: {n}" for n in f.notes if n not in shared]
    return out


def _target_notes(partial: Partial, native: LoadedModel, target: str) -> list[str]:
    counts = partial.target
    notes = []
    if counts.unknown and counts.unknown == counts.rows - counts.missing:
        return [f"{METRICS_SKIPPED}: none of the values in {target!r} ({_listing(counts.unknown_examples)}) is one of "
                f"the model's classes ({_listing(native.classes or ())}); check that this column holds the labels the "
                "model was trained on"]
    if counts.unknown:
        which = f"a {target!r} value that is not" if counts.unknown == 1 else f"{target!r} values that are not"
        notes.append(f"{_of_rows(counts.unknown, counts.rows)} {which} among the model's classes "
                     f"({_listing(counts.unknown_examples)}): left out of the metrics")
    if counts.infinite:
        notes.append(f"{_of_rows(counts.infinite, counts.rows)} an infinite target value: left out of the metrics")
    if counts.missing == counts.rows:
        notes.append(f"{METRICS_SKIPPED}: {target!r} is empty on every row")
    elif counts.missing:
        notes.append(f"{_of_rows(counts.missing, counts.rows)} no {target!r} value: left out of the metrics")
    return notes


def _of_rows(count: int, total: int) -> str:
    return f"{count:,} of {total:,} row{'s' if total != 1 else ''} {'has' if count == 1 else 'have'}"


def _metrics(partial: Partial, native: LoadedModel
             ) -> tuple[dict[str, dict[str, float]], list[str], float | None]:
    out: dict[str, dict[str, float]] = {}
    notes: list[str] = []
    bounds = []
    for name, side in (("native", partial.native_metrics), (ONNX_NAME, partial.onnx_metrics)):
        if isinstance(side, ClassifierMetrics):
            values, side_notes, bound = side.result(name, native.classes)
            if "roc_auc" in values:
                bounds.append(bound)
        elif isinstance(side, RegressorMetrics):
            values, side_notes = side.result(name)
        else:
            continue
        out[name] = values
        notes += side_notes
    return out, notes, max(bounds) if bounds else None


def _non_finite_notes(aggregate: DriftAggregate, files: Sequence[DataFile]) -> list[str]:
    total = aggregate.rows
    notes = []
    if aggregate.native_bad.count:
        notes.append(f"native predicts NaN or infinity on {drift._count_rows(aggregate.native_bad.count, total)} "
                     f"({_where(aggregate.native_bad, files)}): check those rows' features against the range the "
                     "model expects")
    if aggregate.apart.count:
        shared = aggregate.both_bad.count
        notes.append(f"{ONNX_NAME} and native disagree on NaN or infinite predictions on "
                     f"{drift._count_rows(aggregate.apart.count, total)} ({_where(aggregate.apart, files)}): counted "
                     "as infinite drift" + (f"; both predict NaN or infinity on {drift._count_rows(shared, total)} more"
                                            if shared else ""))
    elif aggregate.both_bad.count:
        notes.append(f"{ONNX_NAME} predicts NaN or infinity on exactly the rows native does: no drift there, but no "
                     "usable prediction either")
    return notes


def _where(rows: FirstRows, files: Sequence[DataFile]) -> str:
    shown = ", ".join(f"{files[f].display} row {r + 1:,}" for f, r in rows.where)
    return shown + (f" and {rows.count - len(rows.where):,} more" if rows.count > len(rows.where) else "")
