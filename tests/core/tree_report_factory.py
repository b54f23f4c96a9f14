"""A synthetic Report of a tree ensemble with truncated variants, for tests of the metric tolerance and the
trade-off views.

``make_tree_report()`` starts from ``report_factory.make_report`` (native, fp32, fp16 not applicable) and adds
``rounds-25``, ``rounds-50`` and ``rounds-75`` of a 100-round model: latency scales with the rounds kept, drift
and metric loss grow as fewer are kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from optimizer_core.metric_tolerance import metric_delta
from optimizer_core.report import DriftStats, Report, VariantResult
from optimizer_core.tune import recommend
from tests.core.report_factory import make_latency, make_report

TOTAL = 100
# rounds kept -> (max drift, metric loss)
CUTS = {25: (0.2, 0.012), 50: (0.05, 0.0015), 75: (0.01, 0.0004)}


def make_tree_report(task: str = "binary", *, cuts: Sequence[int] = (25, 50, 75), with_target: bool = True,
                     max_metric_loss: float | None = None, tolerance: float = 1e-4) -> Report:
    base = make_report(task, variants=("native", "fp32", "fp16"), with_recommendation=False)
    fp32 = base.variant("fp32")
    native = base.native
    assert fp32 is not None and native is not None and fp32.drift is not None
    key = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}[task]
    variants = [dataclasses.replace(native, metrics=native.metrics if with_target else None)]
    variants.append(dataclasses.replace(fp32, metrics=fp32.metrics if with_target else None,
                                        metric_delta=metric_delta(fp32.metrics, native.metrics, task)
                                        if with_target else None))
    variants.append(base.variant("fp16"))
    for k in cuts:
        drift, loss = CUTS[k]
        share = k / TOTAL
        latency = tuple(make_latency(row.batch_size, row.p50_us * share, calls=row.calls, seed=k + i)
                        for i, row in enumerate(fp32.latency))
        metrics = dict(fp32.metrics or {})
        metrics[key] = (native.metrics or {})[key] - loss
        stats = dataclasses.replace(fp32.drift, max_abs=drift, max_rel=drift, p99_abs=drift / 2, mean_abs=drift / 10,
                                    passed=False, tolerance=tolerance)
        assert isinstance(stats, DriftStats)
        variants.append(VariantResult(
            name=f"rounds-{k}", precision="fp32", provider_requested="cpu", provider_used="CPUExecutionProvider",
            applicable=True, notes=(f"the first {k} of {TOTAL} boosting rounds",), artifact=f"rounds-{k}.onnx",
            size_bytes=int((fp32.size_bytes or 0) * share), latency=latency, drift=stats,
            metrics=metrics if with_target else None, trees_kept=k, trees_total=TOTAL,
            metric_delta=-loss if with_target else None,
            verification={"reference": f"XGBoost's own iteration_range=(0, {k})", "max_abs": 1e-7, "passed": True},
            deploy={"onnx": f'session = ort.InferenceSession("rounds-{k}.onnx")\n',
                    "native": f"scores = model.predict_proba(X, iteration_range=(0, {k}))\n"},
        ))
    config = dict(base.config, trees=["25%", "50%", "75%"], max_metric_loss=max_metric_loss, max_drift=None)
    report = dataclasses.replace(base, variants=tuple(variants), config=config,
                                 artifacts={**base.artifacts, **{f"rounds-{k}.onnx": b"onnx" for k in cuts}})
    return dataclasses.replace(report, recommendation=recommend(report, tolerance=tolerance,
                                                                max_metric_loss=max_metric_loss))
