"""The ``validate`` command's plain-text table: the drift of the ONNX file against its native model, the metrics of
both sides and the worst rows, then the notes. ``inference-optimizer validate`` prints it."""

from __future__ import annotations

import math

import numpy as np

from optimizer_core.validation.result import ValidationResult
from optimizer_core.validation.summary import ONNX_NAME

SHOWN_WORST = 5


def format_summary(result: ValidationResult) -> str:
    model = result.model
    files = len(result.files)
    lines = [f"{model['estimator']} ({model['family']}, {model['task']}, {model['n_features']} features) against "
             f"{result.onnx.get('path')} on {result.rows:,} row{'s' if result.rows != 1 else ''} in {files:,} "
             f"file{'s' if files != 1 else ''}",
             f"engine {result.engine}: {result.workers} worker{'s' if result.workers != 1 else ''}, "
             f"{result.rows_per_s:,.0f} rows/s (scoring {result.scoring_s:.1f} s, total {result.wall_s:.1f} s)", ""]
    d = result.drift
    flips = "-" if d.label_flips is None else f"{d.label_flips:,}"
    header = ["drift", "max abs", "mean abs", "p99 abs (<=)", "max rel", "label flips"]
    row = ["onnx vs native", _num(d.max_abs), _num(d.mean_abs), _num(d.p99_abs), _num(d.max_rel), flips]
    lines += _table([header, row])
    gate = "max rel" if d.metric == "max_rel" else "max abs"
    lines.append(f"  gated value: {gate} = {d.describe()}")
    if result.metrics:
        names = list(dict.fromkeys(k for side in result.metrics.values() for k in side))
        native, onnx = result.metrics.get("native", {}), result.metrics.get(ONNX_NAME, {})
        table = [["metric", "native", "onnx", "onnx - native"]]
        for name in names:
            a, b = native.get(name), onnx.get(name)
            table.append([name, _metric(a), _metric(b), _num(b - a) if a is not None and b is not None else "-"])
        lines += ["", *_table(table)]
    if result.worst_rows:
        labels = result.score_labels()
        column = len(labels) - 1 if len(labels) <= 2 else None
        title = (f"score {labels[column]}" if column is not None and len(labels) == 2 else
                 "prediction" if column is not None else "scores of the class that differs most")
        table = [["worst rows", "row", f"native {title}", "onnx", "diff"]]
        for r in result.worst_rows[:SHOWN_WORST]:
            c = column if column is not None else int(np.argmax(np.abs(np.subtract(r.native, r.onnx))))
            table.append([r.file, f"{r.row:,}", _num(r.native[c]), _num(r.onnx[c]), _num(r.diff)])
        lines += ["", *_table(table)]
        if len(result.worst_rows) > SHOWN_WORST:
            lines.append(f"  ({len(result.worst_rows)} worst rows in validation.json and worst_rows.csv with --out)")
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    out.insert(1, "  ".join("-" * w for w in widths))
    return out


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "unbounded" if value > 0 else "-inf"
    return "0" if value == 0 else f"{value:.3g}"


def _metric(value: float | None) -> str:
    return "-" if value is None else f"{value:.6f}"
