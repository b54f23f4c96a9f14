"""Auto-tune: search session configurations, keep the Pareto front, recommend per batch size.

Search space: each ONNX variant within the drift tolerance x intra-op threads (1..cores) x thread
spinning x graph optimization level (x execution mode), plus splitting a large batch across cores
into single-threaded runs of one shared session, plus the native model. Every candidate gets a short
measurement; the best few per batch size (with native and ORT's default settings always among them)
are measured again, longer and side by side (successive halving). Candidates whose drift is over the
tolerance are dropped before any timing is spent on them. The native model is always a finalist, so
the recommendation is never slower than keeping it (within measurement noise).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from optimizer_core import bench
from optimizer_core.native_threads import setting_words
from optimizer_core.report import LatencyStats, Recommendation, Report, VariantResult

Progress = Callable[[str, float], None]
DEFAULT_FINALISTS = 3
SPLIT_MIN_ROWS_PER_WORKER = 64


@dataclass(frozen=True)
class Candidate:
    """One configuration to time: a variant on a provider with explicit session settings."""

    name: str
    variant: str  # the VariantResult it derives from ("native" for the native model)
    precision: str
    settings: dict[str, Any] = field(default_factory=dict)
    split_workers: int = 1  # >1: the batch is split across this many threads over one session
    is_default: bool = False  # ORT's default settings (the baseline the tuning must beat)


@dataclass
class _Built:
    candidate: Candidate
    runner: bench.Runner
    max_abs: float | None
    size_bytes: int | None
    drift: float | None = None
    metric_delta: float | None = None  # primary metric minus native's (the --max-metric-loss rule)


def variant_within(variant: VariantResult, tolerance: float, max_metric_loss: float | None = None) -> bool:
    """Whether a variant may be recommended: native always; an ONNX variant when its drift is known and within
    ``tolerance``, or its primary metric within ``max_metric_loss`` of native's (the same rule as
    :func:`row_within`, for a variant)."""
    from optimizer_core.metric_tolerance import loss_within

    if variant.precision == "native":
        return True
    if loss_within(variant.metric_delta, max_metric_loss):
        return True
    return variant.drift is not None and variant.drift.value <= tolerance


def _drift_words(variant: VariantResult) -> str:
    d = variant.drift
    if d is None:
        return "its drift was not measured"
    words = f"drifts up to {d.describe()}"
    if d.label_flip_rate:
        words += f" and flips {d.label_flip_rate:.2%} of labels"
    return words


# --------------------------------------------------------------------------- recommendation rules

def recommend(report: Report, *, tolerance: float, source: str = "default",
              max_metric_loss: float | None = None, snippets: dict[str, str] | None = None) -> Recommendation | None:
    """Pick, for each measured batch size, the fastest variant whose drift is within ``tolerance``.

    Uses the tuning candidates (and their deploy snippets) when the run was tuned, the variants' own measurements
    otherwise, with ``snippets`` (variant name -> Python, :func:`variant_snippets`) for the recommendation's
    "how to use it".
    """
    duplicates = fallback_duplicates(report.variants)
    if report.tuning and report.tuning.get("candidates"):
        tuned = [r for r in finalist_rows(report.tuning["candidates"]) if r.get("variant") not in duplicates]
        return recommend_from_candidates(tuned, report.variants, tolerance=tolerance, source=source,
                                         snippets=report.tuning.get("snippets", {}), max_metric_loss=max_metric_loss,
                                         task=report.model.get("task"))
    return recommend_from_candidates(measured_rows(report), report.variants, tolerance=tolerance, source=source,
                                     snippets=snippets, max_metric_loss=max_metric_loss,
                                     task=report.model.get("task"))


def variant_snippets(variants: Sequence[VariantResult], settings: dict[str, dict[str, Any]],
                     encode_lines: Sequence[str] = ()) -> dict[str, str]:
    """An untuned run's deploy snippets: for each timed ONNX variant, Python that recreates the session it was
    timed with (``settings``: variant name -> its settings as a tuning candidate's, with its provider), after
    ``encode_lines`` when the model takes category codes."""
    by_name = {v.name: v for v in variants}
    return {v.name: deployment_snippet(Candidate(v.name, v.name, v.precision, settings[v.name]), by_name,
                                       encode_lines)
            for v in variants if v.precision != "native" and v.name in settings and v.latency}


def measured_rows(report: Report) -> list[dict[str, Any]]:
    """An untuned run's measurements as candidate rows, one per (variant or native configuration, batch size),
    without the fallen-back duplicates: what its recommendation and headline compare. A native configuration
    ("native t1") is a configuration of the native variant, as in a tuned run."""
    duplicates = fallback_duplicates(report.variants)
    native_name = report.native.name if report.native else "native"
    measured = [(v, v.name) for v in report.variants if v.name not in duplicates]
    measured += [(v, native_name) for v in report.native_configurations]
    return [
        {"name": v.name, "variant": variant, "precision": v.precision, "batch_size": s.batch_size,
         "p50_us": s.p50_us, "calls": s.calls, "max_abs": v.drift.max_abs if v.drift else (0.0 if v.precision == "native" else None),
         "drift": v.drift.value if v.drift else (0.0 if v.precision == "native" else None),
         "metric_delta": v.metric_delta}
        for v, variant in measured for s in v.latency
    ]


def fallback_duplicates(variants: Sequence[VariantResult]) -> set[str]:
    """Variants that fell back onto a provider another variant of the same precision ran on as asked:
    the same session twice, so recommending one of them over the other would only pick noise."""
    direct = {(v.precision, v.provider_used) for v in variants if v.provider_used and not v.fell_back}
    return {v.name for v in variants if v.fell_back and (v.precision, v.provider_used) in direct}


def recommend_from_candidates(rows: Sequence[dict[str, Any]], variants: Sequence[VariantResult], *,
                              tolerance: float, snippets: dict[str, str] | None = None,
                              source: str = "default", max_metric_loss: float | None = None,
                              task: str | None = None) -> Recommendation | None:
    """The fastest candidate within tolerance per batch size, with the reason in words.

    ``rows``: one dict per measured (candidate, batch size) with name, variant, precision, batch_size,
    p50_us and max_abs (None = not measured). Native rows are always eligible.
    """
    by_variant = {v.name: v for v in variants}
    batch_sizes = sorted({int(r["batch_size"]) for r in rows})
    if not batch_sizes:
        return None
    by_batch: dict[str, str] = {}  # batch size -> configuration name (the variant's name when untuned)
    variant_of: dict[str, str] = {}  # batch size -> variant name
    details: dict[str, str] = {}
    stated = _tolerance_words(tolerance, source)
    if max_metric_loss is not None:
        from optimizer_core.metric_tolerance import describe

        stated += f" or {describe(task or '', max_metric_loss)}"
    for batch in batch_sizes:
        timed = [r for r in rows if int(r["batch_size"]) == batch and r.get("p50_us") is not None]
        eligible = [r for r in timed if row_within(r, tolerance, max_metric_loss)]
        if not eligible:
            continue
        best = min(eligible, key=lambda r: r["p50_us"])
        by_batch[str(batch)] = best["name"]
        variant_of[str(batch)] = best.get("variant") or best["name"]
        base = fastest_native(timed)
        text = f"{best['name']}: p50 {best['p50_us']:,.1f} µs"
        if best["precision"] == "native":
            text += ", no ONNX configuration within tolerance is faster than the native model here"
            threads = best["name"].removeprefix("native t")
            if threads.isdigit():
                text += (f" (keep the native model, set to {threads} thread{'s' if threads != '1' else ''}: "
                         f"{setting_words(int(threads))})")
        elif base is not None:
            text += f", {base['p50_us'] / best['p50_us']:.1f}x faster than {base['name']}"
        faster_rejected = {}
        for r in timed:
            if not row_within(r, tolerance, max_metric_loss) and r["p50_us"] < best["p50_us"]:
                faster_rejected.setdefault(r["variant"], r)
        for variant_name, r in faster_rejected.items():
            variant = by_variant.get(variant_name)
            if max_metric_loss is not None:  # two tolerances: say what it misses each by, with its own numbers
                text += (f"; {variant_name} would be faster ({r['p50_us']:,.1f} µs) but "
                         f"{_both_tolerances_words(r, tolerance, max_metric_loss, task)}")
                continue
            words = _drift_words(variant) if variant else f"drifts up to {r.get('max_abs')}"
            text += f"; {variant_name} would be faster ({r['p50_us']:,.1f} µs) but {words}, over {stated}"
        details[str(batch)] = text
    if not by_batch:
        return None
    thin = [b for b in by_batch if _pick_calls(rows, b, by_batch[b]) < bench.STABLE_MIN_CALLS]
    for b in thin:
        details[b] += (f" (rests on {_pick_calls(rows, b, by_batch[b])} timed call(s), fewer than "
                       f"{bench.STABLE_MIN_CALLS}: noise, not a measurement to deploy on; re-run with a larger timing "
                       "budget)")
    picks = list(dict.fromkeys(by_batch.values()))
    if len(picks) == 1:
        reason = f"{picks[0]} is the fastest within {stated} at every measured batch size"
    else:
        reason = (f"fastest measured configuration within {stated} at each batch size "
                  f"(native always a candidate): " + ", ".join(f"batch {b}: {n}" for b, n in by_batch.items()))
    if thin:
        reason += (f"; batch {', '.join(thin)}: fewer than {bench.STABLE_MIN_CALLS} timed calls behind the pick, "
                   "so it is noise: re-run with a larger timing budget (--budget-s)")
    snippet = None
    if snippets and all(by_batch.get(str(b)) is not None for b in batch_sizes) and not any(
            n in snippets for n in picks):
        reason += "; no deploy.py: the native model is the pick at every batch size"
    if snippets:
        first_onnx = next((n for n in picks if n in snippets), None)
        snippet = snippets.get(first_onnx) if first_onnx else None
        if snippet and first_onnx:
            covered = ", ".join(b for b, n in by_batch.items() if n == first_onnx)
            others = "; ".join(f"batch {b}: {n}" for b, n in by_batch.items() if n != first_onnx)
            header = f"# {first_onnx}: the recommended configuration at batch size {covered}"
            if others:
                header += f"\n# other batch sizes were measured faster with: {others}"
            snippet = f"{header}\n{snippet}"
    return Recommendation(by_batch_size=variant_of, reason=reason, details=details, snippet=snippet,
                          configuration_by_batch_size=by_batch, tolerance=tolerance, max_metric_loss=max_metric_loss)


def _both_tolerances_words(row: dict[str, Any], tolerance: float, max_metric_loss: float, task: str | None) -> str:
    """'loses 0.0039 ROC AUC (tolerance 0.001) and drifts 0.35 (tolerance 0.0001)': a rejected row against both
    tolerances of a run with --max-metric-loss."""
    from optimizer_core.metric_tolerance import METRIC_WORDS, PRIMARY_METRICS

    name = METRIC_WORDS.get(PRIMARY_METRICS.get(task or "", ""), "primary metric")
    delta = row.get("metric_delta")
    if delta is None:
        metric = f"its {name} was not measured (no target column)"
    elif delta < 0:
        metric = f"loses {-delta:.2g} {name}"
    else:
        metric = f"changes the {name} by {delta:+.2g}"
    drift = row.get("drift", row.get("max_abs"))
    drifts = "its drift was not measured" if drift is None else f"drifts {drift:.2g}"
    return f"{metric} (tolerance {max_metric_loss:g}) and {drifts} (tolerance {tolerance:g})"


def _pick_calls(rows: Sequence[dict[str, Any]], batch: str, name: str) -> int:
    """Timed calls behind a pick (rows without a count, from older reports, count as enough)."""
    calls = [r.get("calls") for r in rows if str(r["batch_size"]) == batch and r["name"] == name]
    known = [int(c) for c in calls if c is not None]
    return min(known) if known else bench.STABLE_MIN_CALLS


def _tolerance_words(tolerance: float, source: str) -> str:
    if source == "default":
        return f"the default drift tolerance {tolerance:g} (set it with --max-drift, or 'Drift tolerance' in the dashboard)"
    if source == "--max-drift":
        return f"the drift tolerance {tolerance:g} (--max-drift, or 'Drift tolerance' in the dashboard)"
    return f"the drift tolerance {tolerance:g} ({source})"


def mark_recommended(candidates: Sequence[dict[str, Any]], recommendation: Recommendation | None) -> None:
    """Flag the finalists the run's recommendation picked (``recommended``), so report.json, the tuning table
    and the charts point at the same configurations as the recommendation itself."""
    picked = set(recommendation.configurations().items()) if recommendation else set()
    for row in candidates:
        row["recommended"] = (str(row["batch_size"]), row["name"]) in picked and bool(row.get("final"))


def finalist_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Only candidates re-measured in the finalists round compete: a short first-round number is too
    noisy to recommend on, and the finalists were measured side by side with native."""
    final = [r for r in rows if r.get("final")]
    return final or list(rows)


def row_within(row: dict[str, Any], tolerance: float, max_metric_loss: float | None = None) -> bool:
    """Whether a candidate row may be recommended: native always; an ONNX row when its drift is known and
    within ``tolerance``, or its primary metric (``metric_delta``) within ``max_metric_loss`` of native's."""
    from optimizer_core.metric_tolerance import row_metric_within

    if row["precision"] == "native":
        return True
    if row_metric_within(row, max_metric_loss):
        return True
    value = row.get("drift", row.get("max_abs"))  # "drift": the value tolerances apply to (DriftStats.value)
    return value is not None and value <= tolerance


def fastest_native(rows: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The fastest native configuration among measured rows of one batch size (lowest p50), or None: what an ONNX
    pick is compared with by the recommendation, the headline's speedup and the tuning table (a tuned run measures
    native at several thread counts, and its default threads can be far slower on a busy machine)."""
    return min((r for r in rows if r.get("precision") == "native" and r.get("p50_us") is not None),
               key=lambda r: r["p50_us"], default=None)


# --------------------------------------------------------------------------- Pareto front

PARETO_KEYS = ("p50_us", "p99_us", "max_abs", "size_bytes")


def pareto_front(rows: Sequence[dict[str, Any]], keys: Sequence[str] = PARETO_KEYS) -> list[int]:
    """Indices of rows no other row dominates (<= on every key, < on one). Missing values count as worst."""
    def vector(row: dict[str, Any]) -> tuple[float, ...]:
        return tuple(math.inf if row.get(k) is None else float(row[k]) for k in keys)

    vectors = [vector(r) for r in rows]
    front = []
    for i, v in enumerate(vectors):
        dominated = any(
            all(o <= s for o, s in zip(other, v, strict=True)) and any(o < s for o, s in zip(other, v, strict=True))
            for j, other in enumerate(vectors) if j != i
        )
        if not dominated:
            front.append(i)
    return front


# --------------------------------------------------------------------------- search space

def candidate_grid(variants: Sequence[VariantResult], *, cores: int, provider: str,
                   batch_sizes: Sequence[int]) -> list[Candidate]:
    """Every configuration to try for the given (already drift-filtered) ONNX variants.

    ``provider`` applies to variants that do not name the provider they were requested on.
    """
    threads = sorted({1, cores} | ({max(1, cores // 2)} if cores > 2 else set()))
    out: list[Candidate] = []
    for v in variants:
        provider = v.provider_requested or provider
        out.append(Candidate(f"{v.name} ORT defaults", v.name, v.precision,
                             _settings(provider, cores, True, "all", "sequential"), is_default=True))
        for t in threads:
            for spin in (False, True):
                for level in ("basic", "all"):
                    if t == cores and spin and level == "all":
                        continue  # that is ORT's default, already in
                    out.append(Candidate(_name(v.name, t, spin, level, "sequential"), v.name, v.precision,
                                         _settings(provider, t, spin, level, "sequential")))
        if cores > 1:  # ONNX Runtime runs a parallel-mode session sequentially unless it has inter-op threads
            out.append(Candidate(_name(v.name, cores, False, "all", "parallel"), v.name, v.precision,
                                 _settings(provider, cores, False, "all", "parallel", inter_op_threads=cores)))
            if max(batch_sizes) >= SPLIT_MIN_ROWS_PER_WORKER * 2:
                out.append(Candidate(f"{v.name} split x{cores} (1 thread each)", v.name, v.precision,
                                     _settings(provider, 1, False, "all", "sequential"), split_workers=cores))
    return out


def _settings(provider: str, threads: int, spin: bool, level: str, mode: str, *,
              inter_op_threads: int = 1) -> dict[str, Any]:
    return {"provider": provider, "intra_op_threads": threads, "inter_op_threads": inter_op_threads,
            "execution_mode": mode, "graph_optimization": level, "allow_spinning": spin}


def _name(variant: str, threads: int, spin: bool, level: str, mode: str) -> str:
    return f"{variant} t{threads} {'spin' if spin else 'nospin'} {level}" + (" parallel" if mode == "parallel" else "")


# --------------------------------------------------------------------------- the search

@dataclass(frozen=True)
class TuneResult:
    candidates: tuple[dict[str, Any], ...]
    snippets: dict[str, str]
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"candidates": list(self.candidates), "snippets": self.snippets, "notes": list(self.notes)}


def tune(
    *,
    native_predict: Callable[[np.ndarray], Any],
    native_threaded: Sequence[tuple[str, Callable[[np.ndarray], Any]]] = (),
    variants: Sequence[VariantResult],
    models: dict[str, bytes],
    X: np.ndarray,
    batch_sizes: Sequence[int],
    budget_s: float,
    tolerance: float,
    cores: int,
    max_metric_loss: float | None = None,
    provider: str = "cpu",
    finalists: int = DEFAULT_FINALISTS,
    progress: Progress | None = None,
    seed: int = 0,
    encode_lines: Sequence[str] = (),
) -> TuneResult:
    """Search configurations within ``budget_s`` and return every measured candidate.

    ``variants``: the run's measured variants (drift known); ``models``: variant name -> ONNX bytes;
    ``encode_lines``: Python defining ``encode(rows)``, the step the snippets need before ``predict``
    (mapping category values to the codes the model takes).
    """
    from optimizer_core.runtime import SessionSettings, create_session

    report_progress = progress or (lambda stage, fraction: None)
    def within(v: VariantResult) -> bool:
        return variant_within(v, tolerance, max_metric_loss)

    eligible = [v for v in variants if v.precision != "native" and v.name in models and within(v)]
    dropped = [v for v in variants if v.precision != "native" and v.name in models and not within(v)]
    notes = [f"{v.name} not tuned: {_drift_words(v)}, over the tolerance {tolerance:g}" for v in dropped]
    grid = candidate_grid(eligible, cores=cores, provider=provider, batch_sizes=batch_sizes)
    by_name = {v.name: v for v in variants}
    sessions: dict[tuple, Any] = {}
    pools: list[ThreadPoolExecutor] = []
    native_size = by_name["native"].size_bytes if "native" in by_name else None
    built = [_Built(Candidate("native", "native", "native"), bench.native_runner("native", native_predict), 0.0,
                    native_size)]
    built += [_Built(Candidate(name, "native", "native", {"threads": name.rsplit("t", 1)[-1]}),
                     bench.native_runner(name, predict), 0.0, native_size) for name, predict in native_threaded]
    for i, cand in enumerate(grid):
        report_progress(f"tuning: creating session {i + 1}/{len(grid)}", 0.05 * i / max(len(grid), 1))
        key = (cand.variant, tuple(sorted(cand.settings.items())))
        if key not in sessions:
            sessions[key] = create_session(models[cand.variant], SessionSettings(**cand.settings))[0]
        session = sessions[key]
        runner = (_split_runner(cand.name, session, cand.split_workers, pools) if cand.split_workers > 1
                  else bench.onnx_runner(cand.name, session, None))
        v = by_name[cand.variant]
        built.append(_Built(cand, runner, v.drift.max_abs if v.drift else None, v.size_bytes,
                            v.drift.value if v.drift else None, v.metric_delta))
    try:
        rows = _successive_halving(built, X, batch_sizes, budget_s, finalists, report_progress, seed)
    finally:
        for pool in pools:
            pool.shutdown(wait=False)
    for batch in {r["batch_size"] for r in rows}:  # a front per batch size: rows of other sizes are other work
        at_batch = [i for i, r in enumerate(rows) if r["batch_size"] == batch]
        for index in pareto_front([rows[i] for i in at_batch]):
            rows[at_batch[index]]["pareto"] = True
    snippets = {c.candidate.name: deployment_snippet(c.candidate, by_name, encode_lines) for c in built
                if c.candidate.precision != "native"}
    snippets = {name: code for name, code in snippets.items() if any(r["name"] == name for r in rows)}
    return TuneResult(tuple(rows), snippets, tuple(notes))


def _successive_halving(built: list[_Built], X: np.ndarray, batch_sizes: Sequence[int], budget_s: float,
                        finalists: int, progress: Progress, seed: int) -> list[dict[str, Any]]:
    short_budget = budget_s * 0.4

    def short_progress(stage: str, fraction: float) -> None:
        progress(f"tuning (short runs): {stage}", 0.05 + 0.4 * fraction)

    first = bench.benchmark([b.runner for b in built], X, batch_sizes, budget_s=short_budget, min_calls=50,
                            max_calls=300, progress=short_progress, seed=seed)
    rows: list[dict[str, Any]] = []
    final_budget = (budget_s - short_budget) / len(batch_sizes)
    for bi, batch in enumerate(batch_sizes):
        stats = {b.candidate.name: _at(first.latency[b.candidate.name], batch) for b in built}
        ranked = sorted((b for b in built if stats[b.candidate.name] is not None),
                        key=lambda b: stats[b.candidate.name].p50_us)
        chosen = [b for b in ranked if b.candidate.precision != "native"][:finalists]
        chosen += [b for b in built if (b.candidate.precision == "native" or b.candidate.is_default)
                   and b not in chosen]

        def final_progress(stage: str, fraction: float, bi: int = bi, batch: int = batch) -> None:
            progress(f"tuning (finalists, batch {batch}): {stage}", 0.45 + 0.55 * (bi + fraction) / len(batch_sizes))

        second = bench.benchmark([b.runner for b in chosen], X, [batch], budget_s=final_budget,
                                 progress=final_progress, seed=seed + 1)
        final = {b.candidate.name: _at(second.latency[b.candidate.name], batch) for b in chosen}
        for b in built:
            s = final.get(b.candidate.name) or stats[b.candidate.name]
            if s is None:
                continue
            rows.append(_row(b, s, batch, final=b.candidate.name in final))
    return rows


def _at(rows: tuple[LatencyStats, ...], batch: int) -> LatencyStats | None:
    return next((s for s in rows if s.batch_size == batch and s.calls > 0), None)


def _row(b: _Built, s: LatencyStats, batch: int, *, final: bool) -> dict[str, Any]:
    c = b.candidate
    return {"name": c.name, "variant": c.variant, "precision": c.precision, "batch_size": batch,
            "settings": c.settings, "split_workers": c.split_workers, "is_default": c.is_default,
            "p50_us": s.p50_us, "p99_us": s.p99_us, "calls": s.calls, "rows_per_s": s.rows_per_s,
            "max_abs": b.max_abs, "drift": 0.0 if c.precision == "native" else b.drift,
            "size_bytes": b.size_bytes, "metric_delta": b.metric_delta, "final": final, "pareto": False,
            "recommended": False}


def _split_runner(name: str, session: Any, workers: int, pools: list[ThreadPoolExecutor]) -> bench.Runner:
    """Split each batch into ``workers`` contiguous parts run concurrently on one shared session.

    ONNX Runtime's ``run`` is thread-safe and releases the GIL, so single-threaded runs of one
    session use all cores without intra-op threads spinning against each other.
    """
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="io-split")
    pools.append(pool)
    base = bench.onnx_runner(name, session, None)

    def prepare(batch: np.ndarray) -> list[Any]:
        parts = np.array_split(batch, min(workers, batch.shape[0]))
        return [base.prepare(part) for part in parts if part.shape[0]]

    def predict(feeds: list[Any]) -> list[Any]:
        if len(feeds) == 1:
            return [base.predict(feeds[0])]
        futures = [pool.submit(base.predict, feed) for feed in feeds]
        return [f.result() for f in futures]

    return bench.Runner(name=name, predict=predict, prepare=prepare)


def deploy_script(snippet: str) -> str:
    """The snippet as deploy.py, written next to the .onnx files: it loads them from its own folder, so it
    runs from any working directory."""
    script = re.sub(r'ort\.InferenceSession\("([^"]+)"', r'ort.InferenceSession(str(HERE / "\1")', snippet)
    return script.replace("import onnxruntime as ort\n",
                          "import onnxruntime as ort\nfrom pathlib import Path\n\n"
                          "HERE = Path(__file__).resolve().parent  # the .onnx file sits next to this script\n", 1)


def deployment_snippet(candidate: Candidate, variants: dict[str, VariantResult],
                       encode_lines: Sequence[str] = ()) -> str:
    """Python that recreates the candidate's ONNX Runtime session for production (after ``encode_lines``, the
    model's input step, when it has one)."""
    from optimizer_core.runtime import resolve_provider

    s = candidate.settings
    variant = variants.get(candidate.variant)
    artifact = variant.artifact if variant and variant.artifact else f"{candidate.variant}.onnx"
    dtype = "float64" if candidate.precision == "fp64" else "float32"
    level = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
             "layout": "ORT_ENABLE_LAYOUT", "all": "ORT_ENABLE_ALL"}[s.get("graph_optimization", "all")]
    mode = "ORT_PARALLEL" if s.get("execution_mode") == "parallel" else "ORT_SEQUENTIAL"
    spin = "1" if s.get("allow_spinning") else "0"
    lines = [
        "import numpy as np",
        "import onnxruntime as ort",
        "",
        "so = ort.SessionOptions()",
        f"so.intra_op_num_threads = {s.get('intra_op_threads', 1)}",
        f"so.inter_op_num_threads = {s.get('inter_op_threads', 1)}",
        f"so.execution_mode = ort.ExecutionMode.{mode}",
        f"so.graph_optimization_level = ort.GraphOptimizationLevel.{level}",
        f'so.add_session_config_entry("session.intra_op.allow_spinning", "{spin}")',
        f'session = ort.InferenceSession("{artifact}", so, providers=["{resolve_provider(s.get("provider", "cpu"))}"])',
        "",
        *encode_lines,
    ]
    if candidate.split_workers > 1:
        lines += [
            "from concurrent.futures import ThreadPoolExecutor",
            f"pool = ThreadPoolExecutor({candidate.split_workers})",
            "",
            "def predict(X):",
            f'    parts = np.array_split(np.ascontiguousarray(X, dtype=np.{dtype}), {candidate.split_workers})',
            '    outs = pool.map(lambda p: session.run(["scores"], {"input": p})[0], parts)',
            "    return np.concatenate(list(outs))",
        ]
    else:
        lines += [
            "def predict(X):",
            f'    return session.run(["scores"], {{"input": np.ascontiguousarray(X, dtype=np.{dtype})}})[0]',
        ]
    if encode_lines:
        lines += ["", "", "# scores = predict(encode(rows)) for rows of raw category values (rows that already hold the codes skip encode)"]
    return "\n".join(lines) + "\n"
