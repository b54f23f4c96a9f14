"""Tables of display text the views share (the dashboard and report.html): the tuning table and the truncated
ensembles' table.

Tables of numbers derived from a report (metric deltas, the worst rows) are computed in
``optimizer_core.summary``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from optimizer_core.report import Report
from optimizer_core.tradeoffs import metric_label, primary_metric, trees_curve
from optimizer_core.tune import fastest_native
from optimizer_core.units import fmt_delta, fmt_diff, fmt_us


def _setting_text(value: Any) -> str:
    """One type per column (text), so the table converts to Arrow: "-" where a setting does not apply."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def tuning_table(report: Report) -> pd.DataFrame:
    """Per batch size: the recommended configuration and how it compares with native and ORT's defaults
    (all from the tuner's finalists round, measured side by side)."""
    rec = report.recommendation
    rows = [r for r in (report.tuning or {}).get("candidates", []) if r.get("final")]
    records = []
    for batch in sorted({int(r["batch_size"]) for r in rows}):
        at_batch = [r for r in rows if int(r["batch_size"]) == batch]
        picked = rec.configuration(batch) if rec else None
        chosen = next((r for r in at_batch if r["name"] == picked), None)
        native = fastest_native(at_batch)  # what the recommendation compares with
        default = min((r for r in at_batch if r.get("is_default")), key=lambda r: r["p50_us"], default=None)
        if chosen is None:
            continue
        settings = chosen.get("settings") or {}
        records.append({
            "batch size": batch,
            "recommended": chosen["name"],
            "p50": fmt_us(chosen["p50_us"]),
            "best native p50": f"{fmt_us(native['p50_us'])} ({native['name']})" if native else "n/a",
            "ORT defaults p50": fmt_us(default["p50_us"]) if default else "n/a",
            "speedup vs best native": f"{native['p50_us'] / chosen['p50_us']:.2f}x" if native else "n/a",
            "threads": _setting_text(settings.get("intra_op_threads")),
            "spinning": _setting_text(settings.get("allow_spinning")),
            "graph level": _setting_text(settings.get("graph_optimization")),
            "max drift": fmt_diff(chosen.get("drift", chosen["max_abs"])) if chosen.get("max_abs") is not None
            else "0 (native)",
        })
    return pd.DataFrame.from_records(records)


def truncation_table(report: Report, batch: int) -> pd.DataFrame:
    """One row per full or truncated float32 variant at ``batch``: trees kept, p50, drift, metric delta, checks."""
    metric = primary_metric(report)
    records = []
    for p in trees_curve(report, batch):
        v = report.variant(p.name)
        check = (v.verification or {}) if v else {}
        records.append({
            "variant": p.name,
            "trees kept": f"{p.trees_kept:,} of {p.trees_total:,}" if p.trees_kept is not None else "all",
            "p50": fmt_us(p.p50_us),
            "max drift vs full": fmt_diff(p.drift),
            f"Δ {metric_label(metric)}": fmt_delta(p.metric_delta, missing="—"),
            "verified vs native cut": "—" if not check else ("yes" if check.get("passed") else "NO"),
            "may be recommended": "yes" if p.passes else "no",
        })
    return pd.DataFrame.from_records(records)
