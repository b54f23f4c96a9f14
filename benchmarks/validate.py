"""Rows per second and the driver's peak memory of `validate`, local engine against Ray, side by side.

    python -m benchmarks.validate [--rows 5000000] [--features 20] [--files 10] [--repeats 1] [--keep DIR]

Writes seeded synthetic Parquet data (float features f0..fN-1 with ~1% missing values and a 0/1 ``label``,
in ``--files`` files written in chunks) into a temporary folder, trains a small XGBoost model on its first rows
and converts it to ONNX with the project's converter, then runs ``validate`` on every row once per engine, each
in a fresh interpreter so that its peak RSS is that engine's driver alone:

- ``local``: the per-batch work in the driver process;
- ``ray``: a local Ray on this machine's cores (one worker per CPU), started and shut down inside the run.

Prints ``engine | wall s | rows/s | driver peak RSS MB | workers`` and the targets: Ray's wall time within
1.3x of local's, and the driver's peak RSS under 1 GB for both. The timed runs hold the machine-wide benchmark
lock; with ``--repeats`` above 1 the engines alternate and the median wall time counts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

TARGET_RATIO = 1.3
TARGET_RSS_MB = 1024.0
MISSING_SHARE = 0.01
TRAIN_ROWS = 20_000
WRITE_CHUNK_ROWS = 250_000
ROW_GROUP_ROWS = 125_000


def write_parquet(folder: Path, rows: int, features: int, files: int, seed: int = 0) -> list[Path]:
    """``rows`` seeded rows in ``files`` Parquet files, generated and written in chunks (bounded memory)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    names = [f"f{i}" for i in range(features)]
    schema = pa.schema([(n, pa.float64()) for n in names] + [("label", pa.int8())])
    weights = rng.normal(size=features)
    paths = []
    per_file = -(-rows // files)
    written = 0
    for index in range(files):
        path = folder / f"part-{index:04d}.parquet"
        target = min(per_file, rows - written)
        if target <= 0:
            break
        with pq.ParquetWriter(path, schema, compression="snappy") as writer:
            done = 0
            while done < target:
                n = min(WRITE_CHUNK_ROWS, target - done)
                X = rng.normal(size=(n, features))
                label = (X @ weights + rng.normal(scale=0.5, size=n) > 0).astype(np.int8)
                mask = rng.random((n, features)) < MISSING_SHARE
                arrays = [pa.array(X[:, j], mask=mask[:, j]) for j in range(features)] + [pa.array(label)]
                writer.write_table(pa.Table.from_arrays(arrays, schema=schema), row_group_size=ROW_GROUP_ROWS)
                done += n
        written += target
        paths.append(path)
    return paths


def train_model(first_file: Path, folder: Path, features: int) -> tuple[Path, Path]:
    """A small XGBoost classifier on the data's first rows, and its ONNX file from the project's converter."""
    import pyarrow.parquet as pq
    import xgboost

    from optimizer_core import convert, load_model

    frame = pq.ParquetFile(first_file).read_row_group(0).to_pandas().iloc[:TRAIN_ROWS]
    model = xgboost.XGBClassifier(n_estimators=100, max_depth=6, tree_method="hist", n_jobs=1)
    model.fit(frame[[f"f{i}" for i in range(features)]], frame["label"])
    model_path, onnx_path = folder / "model.json", folder / "model.onnx"
    model.save_model(model_path)
    onnx_path.write_bytes(convert(load_model(model_path)).SerializeToString())
    return model_path, onnx_path


# --------------------------------------------------------------------------- one engine (child side)


def _peak_rss_mb() -> float:
    """This process's peak RSS (Linux VmHWM, which starts afresh at exec; ru_maxrss elsewhere)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _child(engine: str, model: str, onnx: str, data: str) -> dict:
    from optimizer_core import validate

    started = time.perf_counter()
    result = validate(model, onnx, data, engine=engine, target="label")
    return {"engine": engine, "wall_s": time.perf_counter() - started, "scoring_s": result.scoring_s,
            "rows": result.rows, "rows_per_s": result.rows / (time.perf_counter() - started),
            "scoring_rows_per_s": result.rows_per_s, "workers": result.workers, "peak_rss_mb": _peak_rss_mb(),
            "max_abs": result.drift.max_abs, "p99_abs": result.drift.p99_abs, "mean_abs": result.drift.mean_abs,
            "label_flips": result.drift.label_flips, "accuracy": (result.metrics or {}).get("onnx", {}).get("accuracy")}


def measure(engine: str, model: Path, onnx: Path, data: Path) -> dict:
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.validate", "--child", engine, str(model), str(onnx),
                           str(data)], capture_output=True, text=True, env=env, cwd=root)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"engine": engine, "error": tail}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "n/a"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.validate", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--files", type=int, default=10, help="Parquet files to spread the rows over (default 10)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per engine, alternating (default 1)")
    parser.add_argument("--keep", help="write the data into this folder and keep it")
    parser.add_argument("--child", nargs=4, metavar=("ENGINE", "MODEL", "ONNX", "DATA"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(*args.child)))
        return 0

    from optimizer_core.bench_lock import benchmark_lock
    from optimizer_core.environment import physical_cores

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="validate-bench-"))
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict]] = {"local": [], "ray": []}
    try:
        started = time.perf_counter()
        files = write_parquet(data, args.rows, args.features, args.files)
        size_mb = sum(p.stat().st_size for p in files) / 2**20
        log(f"wrote {args.rows:,} rows x {args.features} features + label in {len(files)} Parquet files, "
            f"{size_mb:,.0f} MB, in {time.perf_counter() - started:.0f} s")
        model, onnx = train_model(files[0], work, args.features)
        log(f"trained XGBoost (100 trees, depth 6) on {TRAIN_ROWS:,} rows; ONNX file {onnx.stat().st_size:,} bytes")
        load_before = _load()
        timed = time.perf_counter()
        with benchmark_lock(on_wait=log):
            for repeat in range(args.repeats):
                for engine in ("local", "ray") if repeat % 2 == 0 else ("ray", "local"):
                    log(f"{engine} run {repeat + 1} of {args.repeats}")
                    runs[engine].append(measure(engine, model, onnx, data))
        wall = time.perf_counter() - timed
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    import onnxruntime

    print(f"validate benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {args.rows:,} rows x {args.features} features "
          f"in {args.files} Parquet files, XGBoost 100 trees; onnxruntime {onnxruntime.__version__}, "
          f"{physical_cores()} cores ({os.cpu_count()} logical), wall {wall:.0f} s, load average {load_before} before / "
          f"{_load()} after")
    print()
    print(f"{'engine':<6} | {'wall s':>7} | {'rows/s':>10} | {'scoring rows/s':>14} | {'driver peak RSS MB':>18} | workers")
    print(f"{'-' * 6}-+-{'-' * 7}-+-{'-' * 10}-+-{'-' * 14}-+-{'-' * 18}-+--------")
    summary: dict[str, dict] = {}
    for engine, results in runs.items():
        good = [r for r in results if "error" not in r]
        for r in results:
            if "error" in r:
                print(f"{engine:<6} | {'-':>7} | {'-':>10} | {'-':>14} | {'-':>18} | failed: {r['error']}")
        if not good:
            continue
        wall_s = statistics.median(r["wall_s"] for r in good)
        best = min(good, key=lambda r: abs(r["wall_s"] - wall_s))
        summary[engine] = {"wall_s": wall_s, "peak_rss_mb": max(r["peak_rss_mb"] for r in good), **{
            k: best[k] for k in ("rows", "workers", "max_abs", "p99_abs", "mean_abs", "label_flips", "accuracy")}}
        print(f"{engine:<6} | {wall_s:7.1f} | {best['rows'] / wall_s:10,.0f} | {best['scoring_rows_per_s']:14,.0f} | "
              f"{summary[engine]['peak_rss_mb']:18.0f} | {best['workers']}")
    print()
    if len(summary) < 2:
        print("a run failed: no comparison (see above)")
        return 1
    local, ray = summary["local"], summary["ray"]
    ratio = ray["wall_s"] / local["wall_s"]
    same = all(local[k] == ray[k] for k in ("rows", "max_abs", "p99_abs", "mean_abs", "label_flips", "accuracy"))
    print(f"ray / local wall time: {ratio:.2f}x (target <= {TARGET_RATIO}x): {'met' if ratio <= TARGET_RATIO else 'NOT met'}")
    peak = max(local["peak_rss_mb"], ray["peak_rss_mb"])
    print(f"driver peak RSS: local {local['peak_rss_mb']:.0f} MB, ray {ray['peak_rss_mb']:.0f} MB (target < "
          f"{TARGET_RSS_MB:.0f} MB): {'met' if peak < TARGET_RSS_MB else 'NOT met'}")
    print(f"same numbers from both engines (rows, max/p99/mean drift, flips, accuracy): {'yes' if same else 'NO'} "
          f"(max |onnx - native| {local['max_abs']:.3g}, {local['label_flips']} label flips)")
    print("wall s: the whole validate call in a fresh interpreter (loading, checking the files, for ray starting and "
          "stopping Ray and its workers); scoring rows/s: the scoring stage alone. The machine is shared: "
          "see the load average above.")
    return 0 if ratio <= TARGET_RATIO and peak < TARGET_RSS_MB and same else 1


if __name__ == "__main__":
    raise SystemExit(main())
