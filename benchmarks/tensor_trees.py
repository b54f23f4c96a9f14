"""Tree ensembles on every provider: native, ONNX Runtime's TreeEnsemble graph and the tensor graphs (fp32, fp16).

    python -m benchmarks.tensor_trees [--models xgboost,lightgbm,random_forest] [--budget-s 60]
                                      [--batch-sizes 1,16,256,4096,65536] [--threads N]

For each reference model (benchmarks/reference_models.py): the native model on the CPU at its best thread count
(1 or every core, per batch size), the TreeEnsemble graph on ONNX Runtime's CPU provider, and the tensor fp32 and
fp16 graphs on every provider this ONNX Runtime build has among CPU, CUDA and TensorRT; where XGBoost has CUDA and a
device is present, native XGBoost on the GPU too. All of one model's runners are timed side by side by the product's
harness, interleaved, holding the machine-wide benchmark lock. Then file sizes, drift against native, and met / NOT
met for: the fp16 file at most 0.6x the TreeEnsemble file; where CUDA exists, tensor fp16 on CUDA at 65,536 rows at
least 5x faster than the best CPU option.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from benchmarks.cli_args import batch_sizes, model_keys
from benchmarks.reference_models import REFERENCE_MODELS, Reference
from optimizer_core import bench
from optimizer_core.bench_lock import benchmark_lock
from optimizer_core.report import DriftStats, LatencyStats

DEFAULT_BATCH_SIZES = "1,16,256,4096,65536"
TREE_MODELS = ("xgboost", "lightgbm", "random_forest")
TARGET_SIZE_RATIO = 0.6
TARGET_CUDA_SPEEDUP = 5.0
TARGET_BATCH = 65_536
GPU_PROVIDERS = {"CUDAExecutionProvider": "cuda", "TensorrtExecutionProvider": "tensorrt"}
CPU = "CPUExecutionProvider"


@dataclass(frozen=True)
class Measured:
    ref: Reference
    latency: dict[str, tuple[LatencyStats, ...]]
    sizes: dict[str, int]  # tree-ensemble, tensor fp32, tensor fp16, in bytes
    drift: dict[str, DriftStats]  # per ONNX graph, on the CPU, against native
    native_cpu: tuple[str, ...]  # the native CPU runners (thread counts)
    notes: tuple[str, ...]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tensor_trees", description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=model_keys, default=["xgboost"],
                        help=f"comma-separated tree models, from {', '.join(TREE_MODELS)} (default: xgboost)")
    parser.add_argument("--budget-s", type=float, default=60.0, help="timing budget per model (seconds)")
    parser.add_argument("--batch-sizes", type=batch_sizes, default=batch_sizes(DEFAULT_BATCH_SIZES))
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (default: cores)")
    args = parser.parse_args(argv)
    if args.budget_s <= 0:
        parser.error("--budget-s must be positive")
    other = [m for m in args.models if m not in TREE_MODELS]
    if other:
        parser.error(f"{other[0]} is not a tree model: choose from {', '.join(TREE_MODELS)}")
    return args


def physical_cores() -> int:
    from optimizer_core.environment import physical_cores as cores

    return cores()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _session(model: Any, provider: str, threads: int) -> tuple[Any, Any]:
    from optimizer_core.runtime import SessionSettings, create_session

    settings = SessionSettings(provider=provider, intra_op_threads=threads, allow_spinning=False)
    return create_session(model.SerializeToString(), settings)


def gpu_providers() -> list[str]:
    import onnxruntime as ort

    return [p for p in ort.get_available_providers() if p in GPU_PROVIDERS]


def measure(ref: Reference, sizes_batch: tuple[int, ...], budget_s: float, threads: int) -> Measured:
    from optimizer_core.converters import convert
    from optimizer_core.drift import compute_drift
    from optimizer_core.models import model_from_object, native_gpu
    from optimizer_core.tune import native_thread_variants
    from optimizer_core.variants import build_variant

    log(f"{ref.title}: training")
    estimator, X = ref.build()
    loaded = model_from_object(estimator)
    fp32 = convert(loaded)
    graphs = {"tree-ensemble": fp32}
    for precision, label in (("tensor", "tensor fp32"), ("fp16", "tensor fp16")):
        variant = build_variant(precision, fp32, loaded=loaded)
        if not variant.applicable:
            raise SystemExit(f"{ref.title}: {label} not applicable: {variant.notes[0]}")
        graphs[label] = variant.model
    native_scores = loaded.predict_scores(X)
    notes: list[str] = []
    runners = []
    native_cpu = []
    for name, clone in native_thread_variants(estimator, physical_cores()):
        runners.append(bench.native_runner(name, model_from_object(clone).predictor))
        native_cpu.append(name)
    if not native_cpu:
        runners.append(bench.native_runner("native", loaded.predictor))
        native_cpu.append("native")
    peer, why_not = native_gpu.cuda_peer(loaded)
    if peer is not None:
        runners.append(bench.native_runner(peer.name, peer.predictor))
    elif loaded.family == "xgboost":
        notes.append(f"native on the GPU: not timed ({why_not})")
    drift = {}
    for label, model in graphs.items():
        session, _ = _session(model, "cpu", threads)
        scores = np.concatenate([session.run(["scores"], {"input": X[i:i + 8192]})[0] for i in range(0, len(X), 8192)])
        drift[label] = compute_drift(native_scores, scores, loaded.task)
        runners.append(bench.onnx_runner(f"{label} cpu", session))
    for provider in gpu_providers():
        for label in ("tensor fp32", "tensor fp16"):
            session, info = _session(graphs[label], GPU_PROVIDERS[provider], threads)
            name = f"{label} {GPU_PROVIDERS[provider]}"
            if info.provider_used != provider:
                notes.append(f"{name}: fell back to {info.provider_used}: {'; '.join(info.notes)}")
            notes += [f"{name}: {n}" for n in info.notes if "fell back" in n or "took no nodes" in n]
            runners.append(bench.onnx_runner(name, session))
    log(f"{ref.title}: measuring {len(runners)} runners at {len(sizes_batch)} batch sizes ({budget_s:g} s)")
    result = bench.benchmark(runners, X, sizes_batch, budget_s=budget_s)
    sizes = {label: model.ByteSize() for label, model in graphs.items()}
    return Measured(ref, result.latency, sizes, drift, tuple(native_cpu), tuple(notes) + tuple(result.notes))


def fmt_us(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _at(m: Measured, name: str, batch: int) -> LatencyStats | None:
    return next((s for s in m.latency.get(name, ()) if s.batch_size == batch), None)


def _best_native(m: Measured, batch: int) -> tuple[str, LatencyStats] | None:
    found = [(n, s) for n in m.native_cpu if (s := _at(m, n, batch)) is not None]
    return min(found, key=lambda item: item[1].p50_us) if found else None


def _columns(m: Measured) -> list[str]:
    gpu = [n for n in m.latency if n.endswith((" cuda", " tensorrt")) or n == "native-cuda"]
    return ["tree-ensemble cpu", "tensor fp32 cpu", "tensor fp16 cpu", *gpu]


def table(results: Sequence[Measured], batches: Sequence[int]) -> list[str]:
    lines = []
    for m in results:
        columns = _columns(m)
        header = ("batch", "native cpu (best threads) µs", *[f"{c} µs" for c in columns], "fastest")
        lines += [f"{m.ref.title} (p50 per call; * noisy)", "| " + " | ".join(header) + " |",
                  "|" + "|".join("---" for _ in header) + "|"]
        for batch in batches:
            best = _best_native(m, batch)
            cells = [f"{batch:,}", f"{fmt_us(best[1].p50_us)} ({best[0]})" if best else "-"]
            timed = {best[0]: best[1]} if best else {}
            for c in columns:
                s = _at(m, c, batch)
                cells.append("-" if s is None else fmt_us(s.p50_us) + ("*" if s.noisy else ""))
                if s is not None:
                    timed[c] = s
            winner = min(timed.items(), key=lambda item: item[1].p50_us)[0] if timed else "-"
            lines.append("| " + " | ".join([*cells, winner]) + " |")
        lines.append("")
    return lines


def size_lines(results: Sequence[Measured]) -> list[str]:
    header = ("model", "graph", "file", "vs tree-ensemble", "max abs drift", "p99 abs drift", "label flips")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for m in results:
        base = m.sizes["tree-ensemble"]
        for label, size in m.sizes.items():
            d = m.drift[label]
            flips = "-" if d.label_flips is None else f"{d.label_flips:,} of {d.rows:,}"
            lines.append(f"| {m.ref.title} | {label} | {size / 1024:,.0f} kB | {size / base:.2f}x | "
                         f"{d.max_abs:.2g} | {d.p99_abs:.2g} | {flips} |")
    return lines


def target_lines(results: Sequence[Measured], batches: Sequence[int]) -> list[str]:
    lines = []
    for m in results:
        ratio = m.sizes["tensor fp16"] / m.sizes["tree-ensemble"]
        lines.append(f"{m.ref.title}: fp16 file {ratio:.2f}x the TreeEnsemble file (target <= {TARGET_SIZE_RATIO}x): "
                     f"{'met' if ratio <= TARGET_SIZE_RATIO else 'NOT met'}")
        cuda = _at(m, "tensor fp16 cuda", TARGET_BATCH)
        if not gpu_providers():
            continue
        cpu_options = [s for n in (*m.native_cpu, "tree-ensemble cpu", "tensor fp32 cpu", "tensor fp16 cpu")
                       if (s := _at(m, n, TARGET_BATCH)) is not None]
        if cuda is None or not cpu_options or TARGET_BATCH not in batches:
            lines.append(f"{m.ref.title}: tensor fp16 on CUDA at {TARGET_BATCH:,} rows: not measured (add "
                         f"{TARGET_BATCH} to --batch-sizes)")
            continue
        speedup = min(s.p50_us for s in cpu_options) / cuda.p50_us
        lines.append(f"{m.ref.title}: tensor fp16 on CUDA at {TARGET_BATCH:,} rows is {speedup:.1f}x faster than the "
                     f"best CPU option (target >= {TARGET_CUDA_SPEEDUP:g}x): "
                     f"{'met' if speedup >= TARGET_CUDA_SPEEDUP else 'NOT met'}")
    if not gpu_providers():
        lines.append("GPU columns: not measured here: they need onnxruntime-gpu (instead of onnxruntime) and an "
                     "NVIDIA GPU with CUDA; the CUDA speed target is checked only there")
    return lines


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "n/a"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import onnxruntime as ort

    threads = args.threads or physical_cores()
    started, load_before = time.perf_counter(), _load()
    with benchmark_lock(on_wait=log):
        results = [measure(REFERENCE_MODELS[key], args.batch_sizes, args.budget_s, threads) for key in args.models]
    print(f"tensor trees benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: onnxruntime {ort.__version__} "
          f"(providers: {', '.join(ort.get_available_providers())}), {physical_cores()} cores, intra-op threads "
          f"{threads}, budget {args.budget_s:g} s per model, wall {time.perf_counter() - started:.0f} s, load average "
          f"{load_before} before / {_load()} after")
    print("native cpu = the model's own predict at 1 thread or every core, the faster per batch size; tree-ensemble "
          "= the verified fp32 ONNX graph (ai.onnx.ml TreeEnsemble); tensor = the trees as standard ONNX operators")
    print()
    print("\n".join(table(results, args.batch_sizes)))
    print("File sizes and drift against native (on the reference model's 10,000 test rows, CPU provider):")
    print("\n".join(size_lines(results)))
    print()
    print("\n".join(target_lines(results, args.batch_sizes)))
    notes = [f"{m.ref.title}: {n}" for m in results for n in m.notes]
    if notes:
        print()
        print("\n".join(notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
