"""The truncated-ensemble pass: variants that keep the first k boosting rounds (or forest trees) of a tree
ensemble.

A tree ensemble's real trade-off is how many trees it evaluates: latency scales with the trees kept, while the
metric usually moves little past some point. Each variant cuts the *native* model (``models.trees``: XGBoost
``iteration_range``, LightGBM ``num_iteration``, scikit-learn ``estimators_[:k]``), converts the cut model with
the family's verified converter, and is then checked in the run against that native cut model (as fp32 is
checked against the full one) while its drift and metrics are measured against the full native model.

Which counts to build (``OptimizeConfig.trees``): whole numbers of units or percentages of the model's own
(``"50%"``), resolved here against the model; counts that keep every unit, or more than the model has, are
skipped with a note, never built under a misleading name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from optimizer_core.config import DEFAULT_TREE_SWEEP
from optimizer_core.errors import OptimizerError
from optimizer_core.models.base import LoadedModel
from optimizer_core.models.trees import Ensemble, ensemble_of, truncate
from optimizer_core.variants.tree_tensor import graph_kind

PRECISION = "fp32"  # truncated variants are float32 graphs from the family's verified converter
VERIFY_TOLERANCE = 1e-5  # as the full fp32 conversion is held to (pipeline.FP32_VERIFY_TOLERANCE)


@dataclass(frozen=True)
class TruncatedVariant:
    """One truncated ensemble: the ONNX graph of its first ``trees_kept`` units and the native model it must
    match. Shaped like ``variants.base.PrecisionVariant`` (precision, applicable, model, notes, nodes_changed,
    config), so the pipeline times and measures it like any variant."""

    name: str  # "rounds-100" (boosting) or "trees-50" (forests)
    trees_kept: int
    trees_total: int
    model: onnx.ModelProto | None = field(repr=False, compare=False)
    reference: LoadedModel | None = field(repr=False, compare=False)  # the native cut model (verification)
    reference_words: str = ""  # "XGBoost's own iteration_range=(0, 100)"
    native_code: str = ""  # Python predicting with the same trees natively
    notes: tuple[str, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)
    precision: str = PRECISION
    nodes_changed: tuple[str, ...] = ()

    @property
    def applicable(self) -> bool:
        return self.model is not None

    @property
    def graph(self) -> str | None:
        """"tree-ensemble": the family converter's graph of the cut trees."""
        return graph_kind(self.model)


def applicability(loaded: LoadedModel) -> tuple[bool, str, Ensemble | None]:
    """Whether the model's trees can be cut natively and converted, why, and how it is counted."""
    try:
        found = ensemble_of(loaded)
    except OptimizerError as e:
        return False, str(e), None
    per = f", {found.trees_per_unit} trees per round" if found.trees_per_unit > 1 else ""
    return True, f"{found.library} {found.unit}: {found.total:,}{per}", found


def resolve_counts(requested: tuple[int | str, ...], found: Ensemble) -> tuple[list[tuple[int, str]], list[str]]:
    """``requested`` counts and percentages as whole units to keep (k, what was asked), smallest first, and notes
    on what is not built (the whole model, more than it has, two requests naming the same count)."""
    unit = found.unit
    kept: dict[int, str] = {}
    notes = []
    for item in requested:
        if isinstance(item, str) and item.endswith("%"):
            share = float(item[:-1])
            k = max(1, math.floor(found.total * share / 100 + 0.5))
        else:
            k = int(item)
        asked = str(item)
        if k > found.total:
            notes.append(f"trees {asked}: not built, the model has only {found.total:,} {unit}")
        elif k == found.total:
            notes.append(f"trees {asked}: not built, {found.total:,} {unit} is the whole model (the fp32 variant)")
        elif k in kept:
            notes.append(f"trees {asked}: the same {k:,} {unit} as {kept[k]}, built once")
        else:
            kept[k] = asked
    return sorted(kept.items()), notes


def variant_name(found: Ensemble, k: int) -> str:
    return f"{found.unit}-{k}"


def build_truncated(loaded: LoadedModel, requested: tuple[int | str, ...]) -> tuple[list[TruncatedVariant], list[str]]:
    """The truncated variants ``requested`` asks for, and the run notes about them (what was skipped and why)."""
    if not requested:
        return [], []
    ok, reason, found = applicability(loaded)
    if not ok or found is None:
        return [], [f"trees: no truncated variants: {reason}"]
    from optimizer_core.converters import convert

    counts, notes = resolve_counts(requested, found)
    variants = []
    for k, asked in counts:
        name = variant_name(found, k)
        config = {"trees_kept": k, "trees_total": found.total, "unit": found.unit,
                  "trees_per_unit": found.trees_per_unit, "requested": asked, "dtype": "float32"}
        try:
            cut = truncate(loaded, found, k)
            model = convert(cut.loaded)
        except OptimizerError as e:
            variants.append(TruncatedVariant(name, k, found.total, None, None, notes=(f"could not be built: {e}",),
                                             config=config))
            continue
        described = found.describe(k)
        variant_notes = (f"{described}, converted with the {loaded.family} converter", )
        variants.append(TruncatedVariant(name, k, found.total, model, cut.loaded, cut.reference, cut.native_code,
                                         notes=variant_notes, config=config))
    return variants, notes


def verify(name: str, variant: TruncatedVariant, scores: np.ndarray, reference: np.ndarray, task: str
           ) -> tuple[dict[str, Any], str]:
    """Compare the variant's ONNX scores with its native cut model's (``reference``, every row): the verification
    as a dict (``reference``, ``max_abs`` or ``max_rel``, ``rows``, ``passed``) and a sentence for the run's
    notes."""
    from optimizer_core import drift

    stats = drift.compute_drift(reference, scores, task, tolerance=VERIFY_TOLERANCE)
    value = stats.value
    result = {"reference": variant.reference_words, stats.metric: None if math.isinf(value) else value,
              "rows": stats.rows, "tolerance": VERIFY_TOLERANCE, "passed": bool(value <= VERIFY_TOLERANCE)}
    if result["passed"]:
        note = (f"verification: {name} matches {variant.reference_words} within {stats.describe()} on "
                f"{stats.rows:,} row{'' if stats.rows == 1 else 's'}")
    else:
        note = (f"verification: {name} differs from {variant.reference_words} by up to {stats.describe()}, "
                f"more than the expected {VERIFY_TOLERANCE:g}: when fp32 differs as much from the full model, float32 "
                "rounding of the data is the cause (both graphs compare in float32); otherwise this graph does not "
                "match the trees it is named after")
    return result, note


def deploy_snippets(result: Any, variant: TruncatedVariant, settings: dict[str, Any]) -> dict[str, str]:
    """``{"onnx": ..., "native": ...}``: Python that loads the variant's ONNX file with the session settings it
    was timed with, and Python that predicts with the same trees in the native library."""
    from optimizer_core.tune import Candidate, deployment_snippet

    candidate = Candidate(name=result.name, variant=result.name, precision=PRECISION, settings=settings)
    header = f"# {result.name}: {variant.notes[0] if variant.notes else ''}\n"
    return {"onnx": header + deployment_snippet(candidate, {result.name: result}), "native": variant.native_code}


__all__ = ["TruncatedVariant", "applicability", "build_truncated", "resolve_counts", "verify", "DEFAULT_TREE_SWEEP"]


def finish_results(prepared: list[Any], results: list[Any], X: np.ndarray, task: str,
                   predict_native: Any, settings: dict[str, Any]) -> tuple[list[Any], list[str]]:
    """Verify each truncated variant measured in the run against its native cut model, and attach its deploy
    snippets. ``prepared``: the pipeline's sessions (``.name``, ``.variant``, ``.scores``, ``.provider``);
    ``results``: the run's VariantResults. Returns the results updated, and notes for the run."""
    from dataclasses import replace

    by_name = {item.name: item for item in prepared}
    references: dict[str, np.ndarray] = {}  # one native prediction per variant, whatever the providers
    notes: list[str] = []
    out = []
    for result in results:
        item = by_name.get(result.name)
        variant = getattr(item, "variant", None)
        if not isinstance(variant, TruncatedVariant) or item.scores is None or variant.reference is None:
            out.append(result)
            continue
        if variant.name not in references:
            references[variant.name] = predict_native(variant.reference, X)
        verification, note = verify(result.name, variant, item.scores, references[variant.name], task)
        notes.append(note)
        snippets = deploy_snippets(result, variant, {**settings, "provider": item.provider})
        out.append(replace(result, verification=verification, deploy=snippets))
    return out, notes
