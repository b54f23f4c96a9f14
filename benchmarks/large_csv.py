"""Peak memory and wall time of reading and optimizing a large CSV (issue 7: bounded memory).

    python -m benchmarks.large_csv [--rows 1000000] [--cols 50] [--model xgboost|onnx] [--keep DIR]

Writes a synthetic CSV (float features col0..colN-1 with ~1% empty cells, and a 0/1 ``label``) into a
temporary folder, trains a small model on a few thousand rows, then measures each step in its own
subprocess so that the peak RSS is that step's alone:

- ``load_dataset``: the CSV read into the aligned float64 matrix;
- ``optimize``: the whole pipeline (fp32 variant, batch sizes 1 and 256, budget 5 s) on that CSV.

Prints ``step | wall s | peak RSS MB`` and the target line ``peak RSS N MB (target < 1500 MB)``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_MB = 1500.0
MISSING_SHARE = 0.01
TRAIN_ROWS = 5_000
WRITE_CHUNK_ROWS = 100_000


def write_csv(path: Path, rows: int, cols: int, seed: int = 0) -> None:
    """Synthetic CSV written in chunks (the generator itself stays small)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    names = [f"col{i}" for i in range(cols)] + ["label"]
    schema = pa.schema([(n, pa.float64()) for n in names[:-1]] + [("label", pa.int8())])
    with pacsv.CSVWriter(str(path), schema) as writer:
        for start in range(0, rows, WRITE_CHUNK_ROWS):
            n = min(WRITE_CHUNK_ROWS, rows - start)
            X = np.round(rng.normal(size=(n, cols)), 4)
            label = (X[:, 0] + 0.5 * X[:, 1] - X[:, 2] > 0).astype(np.int8)
            mask = rng.random((n, cols)) < MISSING_SHARE
            arrays = [pa.array(X[:, j], mask=mask[:, j]) for j in range(cols)] + [pa.array(label)]
            writer.write_batch(pa.record_batch(arrays, schema=schema))


def train_model(csv_path: Path, out_dir: Path, cols: int, family: str) -> Path:
    """A small model trained on the CSV's first rows, saved as a file the CLI could read too."""
    import pandas as pd

    frame = pd.read_csv(csv_path, nrows=TRAIN_ROWS)
    X, y = frame[[f"col{i}" for i in range(cols)]], frame["label"].to_numpy()
    if family == "xgboost":
        import xgboost

        model = xgboost.XGBClassifier(n_estimators=20, max_depth=4, tree_method="hist")
        model.fit(X, y)
        path = out_dir / "model.json"
        model.save_model(path)
        return path
    from skl2onnx import to_onnx
    from sklearn.tree import DecisionTreeClassifier

    tree = DecisionTreeClassifier(max_depth=6, random_state=0).fit(X.fillna(0.0), y)
    proto = to_onnx(tree, X.to_numpy(dtype=np.float32)[:1], options={id(tree): {"zipmap": False}},
                    target_opset={"": 17, "ai.onnx.ml": 3})
    path = out_dir / "model.onnx"
    path.write_bytes(proto.SerializeToString())
    return path


# --------------------------------------------------------------------------- measured steps (child side)


def _peak_rss_mb() -> float:
    """This process's peak RSS. Linux: VmHWM, which starts afresh at exec (ru_maxrss does not: after
    fork+exec it still carries the parent's high-water mark)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _child(step: str, model_path: str, csv_path: str) -> dict:
    import optimizer_core
    from optimizer_core.config import OptimizeConfig

    start_rss = _peak_rss_mb()
    started = time.perf_counter()
    info: dict = {}
    if step == "load_dataset":
        from optimizer_core.data import load_dataset
        from optimizer_core.models import load_model

        loaded = load_model(model_path)
        stages: list[float] = []
        ds = load_dataset(csv_path, loaded, target="label", progress=lambda stage, f: stages.append(f))
        info = {"rows": ds.rows, "shape": list(ds.X.shape), "progress_calls": len(stages),
                "c_contiguous": bool(ds.X.flags.c_contiguous), "dtype": str(ds.X.dtype)}
    elif step == "optimize":
        config = OptimizeConfig(precisions=("fp32",), batch_sizes=(1, 256), budget_s=5)
        report = optimizer_core.optimize(model_path, csv_path, config, target="label")
        fp32 = next(v for v in report.variants if v.precision == "fp32")
        info = {"rows": report.data["rows"], "fp32_max_abs": fp32.drift.max_abs if fp32.drift else None,
                "artifacts_mb": round(sum(len(b) for b in report.artifacts.values()) / 2**20, 1)}
    else:
        raise SystemExit(f"unknown step {step}")
    return {"step": step, "wall_s": time.perf_counter() - started, "peak_rss_mb": _peak_rss_mb(),
            "rss_at_start_mb": round(start_rss), **info}


def measure(step: str, model_path: Path, csv_path: Path) -> dict:
    """Run one step in a fresh interpreter and return its JSON line."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.large_csv", "--child", step, str(model_path), str(csv_path)],
        capture_output=True, text=True, env=env, cwd=root,
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"step": step, "error": tail}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.large_csv", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cols", type=int, default=50)
    parser.add_argument("--model", choices=("xgboost", "onnx"), default="xgboost",
                        help="xgboost (default) or an ONNX decision tree made with skl2onnx")
    parser.add_argument("--keep", help="write the files into this folder and keep them")
    parser.add_argument("--child", nargs=3, metavar=("STEP", "MODEL", "CSV"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(*args.child)))
        return 0

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="large-csv-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        csv_path = work / "data.csv"
        started = time.perf_counter()
        write_csv(csv_path, args.rows, args.cols)
        size_mb = csv_path.stat().st_size / 2**20
        print(f"wrote {csv_path.name}: {args.rows:,} rows x {args.cols} columns + label, {size_mb:,.0f} MB "
              f"in {time.perf_counter() - started:.1f} s")
        model_path = train_model(csv_path, work, args.cols, args.model)
        print(f"trained {args.model} model on {TRAIN_ROWS:,} rows: {model_path.name}\n")
        results = [measure(step, model_path, csv_path) for step in ("load_dataset", "optimize")]
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print(f"{'step':<14} | {'wall s':>7} | {'peak RSS MB':>11} | notes")
    print(f"{'-' * 14}-+-{'-' * 7}-+-{'-' * 11}-+------")
    for r in results:
        if "error" in r:
            print(f"{r['step']:<14} | {'-':>7} | {'-':>11} | failed: {r['error']}")
            continue
        extra = {k: v for k, v in r.items() if k not in ("step", "wall_s", "peak_rss_mb")}
        print(f"{r['step']:<14} | {r['wall_s']:7.1f} | {r['peak_rss_mb']:11.0f} | "
              + ", ".join(f"{k}={v}" for k, v in extra.items()))
    measured = [r["peak_rss_mb"] for r in results if "peak_rss_mb" in r]
    if not measured:
        return 1
    peak = max(measured)
    verdict = "met" if peak < TARGET_MB and len(measured) == len(results) else "NOT met"
    print(f"\npeak RSS {peak:.0f} MB (target < {TARGET_MB:.0f} MB): {verdict}")
    return 0 if verdict == "met" else 1


if __name__ == "__main__":
    raise SystemExit(main())
