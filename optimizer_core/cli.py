"""inference-optimizer: turn a trained XGBoost, LightGBM, scikit-learn or ONNX model into an optimized ONNX
Runtime deployment, and measure what it buys (latency, throughput, size) and costs (prediction drift).

Exit codes: 0 done; 1 a requested ONNX variant drifted more than --max-drift (the gate);
2 bad input or usage (the last line on stderr names the problem; --quiet leaves only that line);
130 stopped (Ctrl-C, SIGTERM, SIGHUP).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NoReturn

from optimizer_core.errors import ConfigError, OptimizerError
from optimizer_core.out_dir import creation_problem, out_dir_problem, write_file

EXIT_OK, EXIT_GATE, EXIT_BAD_INPUT = 0, 1, 2
DEFAULTS = {"precision": "fp32,fp64,fp16,int8,int8-static", "provider": "auto", "batch_sizes": "1,16,256,4096"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not argparse's usage block
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="inference-optimizer", description=" ".join(__doc__.split("\n\n")[0].split()),
                     epilog=" ".join(__doc__.split("\n\n")[1].split()))
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="optimize a model and measure every variant against it")
    run.add_argument("model", nargs="?", help="model file (XGBoost JSON/UBJ, LightGBM text, skops, ONNX)")
    run.add_argument("data", nargs="?", help="CSV of test rows with a header")
    run.add_argument("--target", help="target column in the CSV (enables accuracy/F1/AUC or RMSE/MAE/R2)")
    # list options may be repeated: "--precision fp32 --precision int8" means both (argparse kept the last)
    run.add_argument("--precision", action="append",
                     help=f"comma-separated variants: fp32,fp64,fp16,int8,int8-static (default: {DEFAULTS['precision']})")
    run.add_argument("--provider", action="append",
                     help="comma-separated providers: auto, cpu, cuda, tensorrt, openvino, ... (default: auto)")
    run.add_argument("--batch-sizes", action="append",
                     help=f"comma-separated rows per call to time (default: {DEFAULTS['batch_sizes']})")
    run.add_argument("--threads", type=int, help="intra-op threads for ONNX Runtime (default: physical cores)")
    run.add_argument("--budget-s", type=float, default=30.0, help="seconds of timing budget (default: 30)")
    run.add_argument("--tune", action="store_true",
                     help="search threads, spinning, graph level, execution mode and batch splitting within the "
                          "budget; recommend per batch size and write deploy.py (with --out)")
    run.add_argument("--max-drift", type=float,
                     help="gate: exit 1 when a requested ONNX variant drifts more than this from native "
                          "(absolute probability difference; relative for regressors); also the tolerance the "
                          "recommendation uses (default 1e-4)")
    run.add_argument("--allow-pickle", action="store_true",
                     help="allow pickle/joblib model files (they run code when loaded: trusted files only)")
    run.add_argument("--out", help="folder for report.json, report.html, one .onnx per variant, drift.csv and "
                                   "(with --tune) deploy.py; must be new, empty or an earlier run's output")
    run.add_argument("--demo", nargs="?", const="xgboost", choices=("xgboost", "mlp"),
                     help="use the bundled demo model and CSV with its target column (xgboost or mlp; "
                          "instead of MODEL and DATA)")
    run.add_argument("--save-ort-optimized", action="store_true",
                     help="also write ONNX Runtime's graph-optimized model per variant (*.ort-optimized.onnx)")
    run.add_argument("--no-history", action="store_true", help="do not store this run in the run history")
    run.add_argument("--quiet", action="store_true", help="no progress lines on stderr (errors stay one line)")

    conv = sub.add_parser("convert", help="convert a model to ONNX: input 'input' float32 [N, features], "
                                          "output 'scores' (probabilities [N, classes] or predictions [N, 1])")
    conv.add_argument("model", help="model file (XGBoost JSON/UBJ, LightGBM text, skops, ONNX)")
    conv.add_argument("--out", required=True, help="path of the .onnx file to write")
    conv.add_argument("--allow-pickle", action="store_true",
                      help="allow pickle/joblib model files (they run code when loaded: trusted files only)")

    dash = sub.add_parser("dashboard", help="start the Streamlit dashboard")
    dash.add_argument("--host", default="127.0.0.1",
                      help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0: every interface)")
    dash.add_argument("--port", type=int, default=8501, help="port to listen on (default: 8501)")
    dash.add_argument("--allow-pickle", action="store_true",
                      help="let users upload pickle/joblib models (they run code on this server)")
    dash.add_argument("--history-db", help="SQLite file for run history (default: INFERENCE_OPTIMIZER_HISTORY_DB "
                                           "or per-user)")

    sub.add_parser("providers", help="list execution providers and whether this install has them")

    hist = sub.add_parser("history", help="list, show, export or delete stored runs (shared with the dashboard)")
    hist.add_argument("action", nargs="?", default="list", choices=("list", "show", "export", "delete"),
                      help="list: stored runs (default); show ID: the run's table; export ID --out DIR: its "
                           "report and model files; delete ID: remove it")
    hist.add_argument("run_id", nargs="?", help="run id (from the list)")
    hist.add_argument("--db", help="SQLite history file (default: INFERENCE_OPTIMIZER_HISTORY_DB or per-user)")
    hist.add_argument("--out", help="folder for 'export'")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `inference-optimizer history list | head`: the reader left, nothing is wrong
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "convert":
            return _convert(args)
        if args.command == "dashboard":
            return _dashboard(args)
        if args.command == "providers":
            return _providers()
        if args.command == "history":
            return _history(args)
    except OptimizerError as e:
        _fail(str(e))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        _fail("out of memory: try a smaller CSV or fewer batch sizes")
    except BrokenPipeError:
        raise  # main() ends quietly: the output's reader left
    except Exception as e:  # a library failure we did not anticipate: still one line, never a traceback
        if os.environ.get("INFERENCE_OPTIMIZER_DEBUG"):
            raise
        _fail(f"unexpected {type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:300]} "
              "(set INFERENCE_OPTIMIZER_DEBUG=1 for details)")
    return EXIT_BAD_INPUT


def _fail(message: str) -> NoReturn:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    raise SystemExit(EXIT_BAD_INPUT)


def _run(args: argparse.Namespace) -> int:
    from optimizer_core.config import OptimizeConfig, parse_list
    from optimizer_core.pipeline import drift_failures

    model_path, data_path, target = args.model, args.data, args.target
    if args.demo and (model_path or data_path):
        raise ConfigError("--demo runs the bundled demo model and CSV: leave out MODEL and DATA, or drop --demo")
    if args.demo:
        from optimizer_core.demo import demo_files

        demo = demo_files(args.demo)
        model_path, data_path = str(demo.model_path), str(demo.csv_path)
        target = target or demo.target
    if not model_path or not data_path:
        raise ConfigError("run needs MODEL and DATA (or --demo): inference-optimizer run model.json test.csv")
    for path, what in ((model_path, "model file"), (data_path, "CSV file")):
        if not os.path.exists(path):  # found here, before the worker starts and prints progress
            raise ConfigError(f"{what} {path} does not exist: check the path")
    config = OptimizeConfig(
        precisions=parse_list(_joined(args, "precision"), what="precision"),
        providers=parse_list(_joined(args, "provider"), what="provider"),
        batch_sizes=_batch_sizes(_joined(args, "batch_sizes")),
        threads=args.threads,
        budget_s=args.budget_s,
        max_drift=args.max_drift,
        tune=args.tune,
        save_ort_optimized=args.save_ort_optimized,
    )
    from optimizer_core.runtime import resolve_provider

    for provider in config.providers:
        resolve_provider(provider)  # unknown names fail here, before any work
    out = Path(args.out) if args.out else None
    if out is not None and (problem := out_dir_problem(out)):
        raise ConfigError(problem)
    report = _run_isolated(model_path, data_path, config, target, allow_pickle=args.allow_pickle, quiet=args.quiet)
    _say(format_summary(report))
    if not args.no_history:
        _store(report, model_name=Path(model_path).name)
    if out is not None:
        report.write_out(out)
        written = ", ".join(sorted({"report.json", "report.html", *report.artifacts}))
        _say(f"\nwrote to {out}/: {written}")
    if config.max_drift is not None:
        failing = drift_failures(report, config.max_drift, config.precisions)
        if failing:
            worst = ", ".join(f"{v.name} drifts {v.drift.describe()}" for v in failing)
            print(f"gate failed: {worst} (over --max-drift {config.max_drift:g})", file=sys.stderr)
            return EXIT_GATE
        gated = [v.name for v in report.variants if v.precision in config.precisions and v.drift is not None]
        if gated:
            _say(f"gate passed: {', '.join(gated)} within --max-drift {config.max_drift:g}")
        else:
            _say(f"gate: nothing to check: none of the requested precisions ({', '.join(config.precisions)}) "
                 "applies to this model")
    return EXIT_OK


def _say(text: str) -> None:
    """Print to stdout; a reader that left (`run ... | head`) must not stop the run before it writes --out,
    stores the run and decides the gate's exit code."""
    with contextlib.suppress(BrokenPipeError):
        print(text, flush=True)


def _joined(args: argparse.Namespace, name: str) -> str:
    """A repeatable list option's values as one comma-separated list, or its default."""
    given = getattr(args, name)
    return ", ".join(given) if given else DEFAULTS[name]


def _batch_sizes(text: str) -> tuple[int, ...]:
    from optimizer_core.config import parse_batch_sizes

    try:
        return parse_batch_sizes(text)
    except ConfigError as e:
        raise ConfigError(f"--batch-sizes: {e}") from e


def _run_isolated(model_path: str, data_path: str, config, target: str | None, *, allow_pickle: bool,
                  quiet: bool):
    """Run the job in an isolated worker: a parser crash or hang on a hostile file ends the worker,
    not this process, and still comes back as one line (exit 2)."""
    import time

    from optimizer_core.jobs import JobManager, JobRequest

    manager = JobManager(max_concurrent=1)
    request = JobRequest(model_name=model_path, csv_name=data_path, model_path=model_path, csv_path=data_path,
                         config=config, target=target, allow_pickle=allow_pickle)
    job_id = manager.submit(request)
    with _progress_bar(disabled=quiet) as progress, _sigterm_as_interrupt():
        try:
            while True:
                status = manager.get(job_id)
                if status.state in ("done", "failed"):
                    break
                if status.stage:
                    progress(status.stage, status.fraction)
                time.sleep(0.1)
        except BaseException:
            manager.cancel(job_id)
            with contextlib.suppress(Exception):
                manager.wait(job_id, timeout_s=5)  # the worker is killed and its folder removed
            raise
    if status.state == "failed":
        raise OptimizerError(status.message or "the run failed")
    return status.report


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a supervisor, `timeout`, `kill`) and SIGHUP (a closed terminal) stop the run like Ctrl-C:
    worker killed, nothing left behind."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    stops = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {sig: signal.signal(sig, interrupt) for sig in stops}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _store(report, *, model_name: str) -> None:
    """Keep the run in the history the dashboard shows; a history problem never fails the run."""
    from optimizer_core.history import HistoryStore

    try:
        store = HistoryStore()
        run_id = store.save(report, model_name=model_name)
        _say(f"stored as run {run_id} in {store.path} (inference-optimizer history show {run_id})")
    except (OptimizerError, OSError) as e:
        print(f"warning: the run was not stored in the history: {' '.join(str(e).split())}", file=sys.stderr)


def _history(args: argparse.Namespace) -> int:
    from optimizer_core.history import HistoryStore, default_path

    path = Path(args.db).expanduser() if args.db else default_path()
    if not path.exists():  # reading an empty history must not create one (or its folders)
        if args.action == "list":
            print(f"no stored runs in {path}")
            return EXIT_OK
        raise ConfigError(f"no run history at {path}: runs are stored there by 'inference-optimizer run' "
                          "and the dashboard (or pass --db PATH)")
    store = HistoryStore(path)
    if args.action == "list":
        runs = store.list_runs()
        if not runs:
            print(f"no stored runs in {store.path}")
        for r in runs:
            print(f"{r.run_id}  {r.created_at}  {r.model_name}  {r.estimator or '-'} ({r.task or '-'})  "
                  f"{r.rows or 0:,} rows  variants: {', '.join(r.variants)}")
        return EXIT_OK
    if not args.run_id:
        raise ConfigError(f"history {args.action} needs a run id: see 'inference-optimizer history list'")
    if args.action == "show":
        print(format_summary(store.load(args.run_id)))
    elif args.action == "export":
        if not args.out:
            raise ConfigError("history export needs --out DIR")
        report = store.load(args.run_id)
        report.write_out(args.out)
        written = ", ".join(sorted({"report.json", "report.html", *report.artifacts}))
        print(f"wrote to {args.out}/: {written}")
    elif args.action == "delete":
        if not store.delete(args.run_id):
            raise ConfigError(f"no stored run {args.run_id!r}: see 'inference-optimizer history list'")
        print(f"deleted run {args.run_id}")
    return EXIT_OK


def _convert(args: argparse.Namespace) -> int:
    from optimizer_core.converters import convert
    from optimizer_core.converters.verify import verify_conversion
    from optimizer_core.models import load_model

    out = Path(args.out)
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder: give the path of the .onnx file to write")
    if out.exists() and Path(args.model).exists() and os.path.samefile(out, args.model):
        raise ConfigError(f"--out {out} is the model file itself: writing there would replace your model; "
                          "give another path, for example model.onnx")
    if problem := creation_problem(out.parent, f"--out {out}: the folder"):
        raise ConfigError(problem)
    loaded = load_model(args.model, allow_pickle=args.allow_pickle)
    proto = convert(loaded)
    warnings = verify_conversion(loaded, proto)  # a file ONNX Runtime cannot run is never written
    try:
        write_file(out, proto.SerializeToString())
    except OSError as e:
        raise ConfigError(f"cannot write {out} ({e.strerror or e}): choose another path") from e
    shape = f"probabilities [N, {loaded.n_outputs}]" if loaded.task != "regression" else "predictions [N, 1]"
    print(f"wrote {out}: {loaded.estimator} ({loaded.task}), input 'input' float32 [N, {loaded.n_features}], "
          f"output 'scores' {shape}")
    for warning in warnings:  # synthetic rows: a warning, not a failure (exit 1 is the --max-drift gate)
        print(f"warning: {warning}", file=sys.stderr)
    if out.suffix.lower() != ".onnx":
        print(f"note: {out.name} holds an ONNX model although its name does not end in .onnx", file=sys.stderr)
    return EXIT_OK


def _dashboard(args: argparse.Namespace) -> int:
    from dashboard.server import launch

    return launch(host=args.host, port=args.port, allow_pickle=args.allow_pickle, history_db=args.history_db)


def _providers() -> int:
    from optimizer_core.runtime import provider_table

    for p in provider_table():
        state = "available" if p.available else f"unavailable: {p.reason}"
        print(f"{p.short:<10} {p.ort_name:<32} {state}")
    return EXIT_OK


class _progress_bar:
    """tqdm bar on a terminal; one line per stage otherwise (CI logs)."""

    def __init__(self, *, disabled: bool):
        self.disabled = disabled
        self.bar = None
        self.last_stage = ""

    def __enter__(self):
        if not self.disabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=100, file=sys.stderr, bar_format="{l_bar}{bar}| {elapsed}<{remaining}")
        return self.update

    def update(self, stage: str, fraction: float) -> None:
        if self.disabled:
            return
        if self.bar is not None:
            self.bar.set_description_str(stage[:40])
            self.bar.n = round(fraction * 100)
            self.bar.refresh()
        elif stage.split(":")[0] != self.last_stage:
            self.last_stage = stage.split(":")[0]
            print(f"[{fraction:4.0%}] {stage}", file=sys.stderr)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
        return False


def format_summary(report) -> str:
    """Plain-text table: one row per variant (and per native configuration: "native t1"), p50 per batch size,
    drift, size and, when the run had a target column, the variant's metrics."""
    native_configurations = tuple(getattr(report, "native_configurations", ()))
    listed = []
    for v in report.variants:
        listed.append(v)
        if v.precision == "native":
            listed += native_configurations  # right under the native variant they are configurations of
    batches = sorted({row.batch_size for v in listed for row in v.latency})
    relative = any(v.drift and v.drift.metric == "max_rel" for v in report.variants)
    metric_names = list(dict.fromkeys(k for v in report.variants for k in (v.metrics or {})))
    header = ["variant", "provider", "size", *[f"p50@{b} µs" for b in batches],
              "max drift (rel)" if relative else "max drift", "flips", *metric_names]
    rows = []
    noisy = False
    for v in listed:
        if not v.applicable:
            rows.append([v.name, "-", "n/a", *["-" for _ in batches], "-", "-", *["-" for _ in metric_names]])
            continue
        provider = (v.provider_used or "-").replace("ExecutionProvider", "")
        cells = [v.name, provider + (" (fallback)" if v.fell_back else ""), _size(v.size_bytes)]
        for b in batches:
            row = v.latency_at(b)
            cells.append(f"{row.p50_us:,.1f}" + ("*" if row.noisy else "") if row else "-")
            noisy = noisy or bool(row and row.noisy)
        cells.append(("unbounded" if math.isinf(v.drift.value) else f"{v.drift.value:.2e}") if v.drift else "-")
        cells.append(str(v.drift.label_flips) if v.drift and v.drift.label_flips is not None else "-")
        cells += [_metric((v.metrics or {}).get(name)) for name in metric_names]
        rows.append(cells)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    model = report.model
    title = (f"{model['estimator']} ({model['family']}, {model['task']}, {model['n_features']} features) on "
             f"{report.data['rows']:,} row{'' if report.data['rows'] == 1 else 's'}")
    out = [title, *lines]
    drift_kind = ("largest difference from the native prediction relative to its size" if relative
                  else "largest absolute difference from the native model's scores")
    out.append(f"  max drift = {drift_kind}")
    if metric_names:
        target = report.data.get("target")
        out.append(f"  {', '.join(metric_names)} = each variant's predictions scored against the target column"
                   + (f" {target!r}" if target else ""))
    if noisy:
        out.append("  * noisy: the calls' timings spread widely (a busy machine or too few calls); ratios that use "
                   "them are unreliable: re-run on a quiet machine or with a larger --budget-s")
    for v in report.variants:
        if not v.applicable:
            out.append(f"  {v.name}: not applicable: {'; '.join(v.notes)}")
        elif v.fell_back:
            out.append(f"  {v.name}: asked for {v.provider_wanted}, which could not run here: ran on {v.provider_used}")
    out += [f"  {line}" for line in report.explanations]
    if report.recommendation:
        out.append(f"recommendation: {report.recommendation.reason}")
    out += [f"note: {n}" for n in report.notes]
    return "\n".join(out)


def _metric(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.1f}"


def _size(size_bytes: int | None) -> str:
    from optimizer_core.units import fmt_size

    return fmt_size(size_bytes, missing="-")


if __name__ == "__main__":
    raise SystemExit(main())
