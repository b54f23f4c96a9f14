"""Auto-tune on the reference models: tuned recommendation vs ORT's default settings vs native.

`python -m benchmarks.tuned [--models xgboost,mlp] [--budget-s 40] [--batch-sizes 1,16,256,4096]`

Everything in one table is measured in one run, side by side (the tuner's finalists round): native,
the fp32 variant with ONNX Runtime's default session settings, and the recommended configuration.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from benchmarks.cli_args import DEFAULT_BATCH_SIZES, batch_sizes, model_keys
from benchmarks.reference_models import REFERENCE_MODELS
from optimizer_core import OptimizeConfig, optimize


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tuned", description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=model_keys, default=list(REFERENCE_MODELS),
                        help=f"comma-separated, from {', '.join(REFERENCE_MODELS)}")
    parser.add_argument("--budget-s", type=float, default=40.0, help="timing budget per model (seconds)")
    parser.add_argument("--batch-sizes", type=batch_sizes, default=batch_sizes(DEFAULT_BATCH_SIZES))
    args = parser.parse_args(argv)
    if args.budget_s <= 0:
        parser.error("--budget-s must be positive")
    return args


def _row(rows: list[dict[str, Any]], batch: int, pick) -> dict[str, Any] | None:
    candidates = [r for r in rows if r["batch_size"] == batch and pick(r)]
    return min(candidates, key=lambda r: r["p50_us"]) if candidates else None


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    header = ("model", "batch", "native p50 µs", "default ORT p50 µs", "tuned pick", "tuned p50 µs",
              "tuned/floor", "vs faster of default & native")
    lines = [" | ".join(header), " | ".join("---" for _ in header)]
    targets = []
    for key in args.models:
        ref = REFERENCE_MODELS[key]
        print(f"[{time.strftime('%H:%M:%S')}] {ref.title}: training and tuning...", file=sys.stderr)
        estimator, X = ref.build()
        config = OptimizeConfig(precisions=("fp32",), batch_sizes=args.batch_sizes, budget_s=args.budget_s, tune=True)
        report = optimize(estimator, X[:5000], config)
        rows = list(report.tuning["candidates"])
        floor = {f.batch_size: f.p50_us for f in report.runtime_floor}
        for batch in args.batch_sizes:
            final = [r for r in rows if r["batch_size"] == batch and r.get("final")]
            native = _row(final, batch, lambda r: r["precision"] == "native")
            default = _row(final, batch, lambda r: r.get("is_default"))
            picked_name = report.recommendation.configuration(batch) if report.recommendation else None
            picked = next((r for r in final if r["name"] == picked_name), None)
            if not (native and default and picked):
                continue
            best_baseline = min(native["p50_us"], default["p50_us"])
            ratio = picked["p50_us"] / best_baseline
            to_floor = picked["p50_us"] / floor[batch] if batch in floor and picked["precision"] != "native" else None
            lines.append(" | ".join((ref.title, str(batch), _fmt(native["p50_us"]), _fmt(default["p50_us"]),
                                     picked["name"], _fmt(picked["p50_us"]),
                                     "-" if to_floor is None else f"{to_floor:.2f}x", f"{ratio:.2f}x")))
            if batch == 1 and to_floor is not None:
                targets.append(f"{ref.title} batch 1: tuned ONNX within {to_floor:.2f}x of the ORT floor "
                               f"(target <= 1.5x): {'met' if to_floor <= 1.5 else 'NOT met'}")
            targets.append(f"{ref.title} batch {batch}: recommendation {ratio:.2f}x the faster of default ORT and "
                           f"native (target <= 1.0x within noise): {'met' if ratio <= 1.05 else 'NOT met'}")
            if key == "xgboost" and batch == 4096:
                best_onnx = _row(final, batch, lambda r: r["precision"] != "native")
                tuned_vs_native = best_onnx["p50_us"] / native["p50_us"] if best_onnx else float("nan")
                targets.append(f"XGBoost batch 4096: best tuned ORT is {tuned_vs_native:.2f}x native XGBoost "
                               f"(target <= 1.2x; default ORT {default['p50_us'] / native['p50_us']:.2f}x): "
                               f"{'met' if tuned_vs_native <= 1.2 else 'NOT met'}")
    print("\n".join(lines))
    print()
    print("\n".join(targets))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
