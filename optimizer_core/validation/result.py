"""The result of a validation: a frozen dataclass, its validation.json and the worst rows as CSV."""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optimizer_core.report import DriftStats, _to_plain

SCHEMA_VERSION = 1
JSON_NAME = "validation.json"
WORST_CSV_NAME = "worst_rows.csv"


@dataclass(frozen=True)
class ValidatedRow:
    """One of the rows where the ONNX file's scores are furthest from the native model's."""

    file: str
    row: int  # 1-based data row of the file (the first row after a CSV's header is 1)
    native: tuple[float, ...]
    onnx: tuple[float, ...]
    diff: float  # largest absolute score difference in the row
    rel_diff: float | None = None  # regressors: relative to the prediction's size, or the predictions' RMS


@dataclass(frozen=True)
class ValidationResult:
    """Drift of an ONNX file against its native model over every row of the data, and the target metrics."""

    engine: str  # "local" | "ray"
    workers: int
    rows: int
    files: tuple[dict[str, Any], ...]  # {path, format, rows}
    model: dict[str, Any]
    onnx: dict[str, Any]
    target: str | None
    drift: DriftStats
    metrics: dict[str, dict[str, float]] | None  # {"native": {...}, "onnx": {...}} with a target
    worst_rows: tuple[ValidatedRow, ...]
    rows_per_s: float  # rows scored (both models) per second of the scoring stage
    wall_s: float
    scoring_s: float
    methods: dict[str, str] = field(default_factory=dict)  # how figures that are not exact were computed
    notes: tuple[str, ...] = ()
    environment: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    schema_version: int = SCHEMA_VERSION

    @property
    def passed(self) -> bool | None:
        """Whether the drift is within the tolerance asked for (None: none was asked for)."""
        return self.drift.passed

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False, default=str)

    def worst_rows_csv(self) -> bytes:
        """The worst rows as CSV: file, row, diff (and rel_diff for regressors), then the native and ONNX
        scores (one column per class for classifiers)."""
        labels = self.score_labels()
        relative = self.model.get("task") == "regression"
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["file", "row", "diff", *(["rel_diff"] if relative else []),
                         *[f"native_{c}" for c in labels], *[f"onnx_{c}" for c in labels]])
        for r in self.worst_rows:
            writer.writerow([r.file, r.row, _g(r.diff), *([_g(r.rel_diff)] if relative else []),
                             *[_g(v) for v in r.native], *[_g(v) for v in r.onnx]])
        return buffer.getvalue().encode("utf-8")

    def score_labels(self) -> list[str]:
        """Names of the score columns: the classes, or "prediction" for a regressor."""
        classes = self.model.get("classes")
        return [str(c) for c in classes] if classes else ["prediction"]

    def write_out(self, out_dir: str | os.PathLike[str]) -> Path:
        """Write validation.json and worst_rows.csv into ``out_dir``, all or nothing (see ``out_dir``)."""
        from optimizer_core.out_dir import write_files

        return write_files(out_dir, {JSON_NAME: self.to_json().encode("utf-8"), WORST_CSV_NAME: self.worst_rows_csv()})


def _g(value: float | None) -> str:
    return "" if value is None else f"{value:.9g}"
