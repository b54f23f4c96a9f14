"""Words every view shares: report text escaped for plotly labels, drift in words, which provider ran a variant.

Numbers on their own are formatted by ``optimizer_core.units``.
"""

from __future__ import annotations

import html
from typing import Any

from optimizer_core.report import DriftStats, VariantResult
from optimizer_core.units import fmt_diff

# the heading over summary.variant_explanations (the dashboard's Details tab and report.html)
EXPLANATIONS_HEADING = "Where each variant wins and why some are slower"

# report.model["scores"] in words (reports written before the field have none: probabilities then)
SCORES_SHOWN = {"probabilities": "probabilities", "decision": "decision scores (not probabilities)"}


def label(text: Any) -> str:
    """Escape report-provided text for plotly labels (plotly renders a subset of HTML)."""
    return html.escape(str(text), quote=False)


def fmt_drift(d: DriftStats) -> str:
    """The drift the tolerance is checked against: absolute for classifiers, relative (and absolute) for regressors."""
    if d.metric == "max_rel":
        return f"{fmt_diff(d.max_rel)} relative ({fmt_diff(d.max_abs)} absolute)"
    return fmt_diff(d.max_abs)


def provider_text(v: VariantResult) -> str:
    """Which execution provider ran a variant, naming a fallback: one wording for every table."""
    req, used = v.provider_requested, v.provider_used
    if v.precision == "native":
        return f"{used or 'native'} (own runtime)"
    if v.fell_back:
        return f"{used} (fell back from {v.provider_wanted})"
    if used:
        return used
    return f"{req} (not run)" if req else "n/a"
