"""inference-optimizer: turn a trained XGBoost, LightGBM, scikit-learn or ONNX model into an optimized ONNX
Runtime deployment, and measure what it buys (latency, throughput, size) and costs (prediction drift).

Exit codes: 0 done; 1 the gate failed (with --max-drift or --max-metric-loss: a requested ONNX variant drifted
more than --max-drift, or the default drift tolerance, and lost more than --max-metric-loss when given);
2 bad input or usage (the last line on stderr names the problem; --quiet leaves only that line);
130 stopped (Ctrl-C, SIGTERM, SIGHUP).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NoReturn

from optimizer_core.errors import ConfigError, OptimizerError
from optimizer_core.out_dir import creation_problem, out_dir_problem, write_file
from optimizer_core.variants import DEFAULT_PRECISIONS, PRECISIONS
from optimizer_core.views.cli_table import format_summary

EXIT_OK, EXIT_GATE, EXIT_BAD_INPUT = 0, 1, 2
DEFAULTS = {"precision": ",".join(DEFAULT_PRECISIONS), "provider": "auto", "batch_sizes": "1,16,256,4096"}


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
                     help=f"comma-separated variants: {','.join(PRECISIONS)} (default: "
                          f"{DEFAULTS['precision']}); tensor: a tree ensemble as standard ONNX operators, which GPUs "
                          "run (on a CPU it is slower than the TreeEnsemble graph); fp16 on a tree ensemble builds it "
                          "with float16 thresholds and leaves")
    run.add_argument("--provider", action="append",
                     help="comma-separated providers: auto, cpu, cuda, tensorrt, openvino, ... (default: auto)")
    run.add_argument("--batch-sizes", action="append",
                     help=f"comma-separated rows per call to time (default: {DEFAULTS['batch_sizes']})")
    run.add_argument("--trees", action="append",
                     help="truncated-ensemble variants of a tree ensemble: boosting rounds (or forest trees) to keep, "
                          "as counts or percentages of the model's own, e.g. 25%%,50%%,75%% or 50,100 (default: none)")
    run.add_argument("--threads", type=int, help="intra-op threads for ONNX Runtime (default: physical cores)")
    run.add_argument("--budget-s", type=float, default=30.0, help="seconds of timing budget (default: 30)")
    run.add_argument("--tune", action="store_true",
                     help="search threads, spinning, graph level, execution mode and batch splitting within the "
                          "budget; recommend per batch size and write deploy.py for the tuned session (with --out)")
    run.add_argument("--max-drift", type=float,
                     help="gate: exit 1 when a requested ONNX variant drifts more than this from native "
                          "(absolute score difference: probabilities, or decision scores; relative for "
                          "regressors); also the tolerance the "
                          "recommendation uses (default 1e-4, which the gate uses when only --max-metric-loss is "
                          "given)")
    run.add_argument("--max-metric-loss", type=float,
                     help="a variant whose primary metric (ROC AUC for binary, accuracy for multiclass, R2 for "
                          "regression; needs --target) is at most this below the native model's passes the gate and "
                          "may be recommended even when it drifts more than --max-drift; given alone, it turns the "
                          "gate on (exit 1 when a variant drifts more than the default 1e-4 and loses more than "
                          "this)")
    run.add_argument("--allow-pickle", action="store_true",
                     help="allow pickle/joblib model files (they run code when loaded: trusted files only)")
    run.add_argument("--out", help="folder for report.json, report.html, one .onnx per variant, drift.csv and "
                                   "deploy.py (when an ONNX variant is recommended); must be new, empty or an earlier run's "
                                   "output")
    run.add_argument("--demo", nargs="?", const="xgboost", choices=("xgboost", "mlp"),
                     help="use the bundled demo model and CSV with its target column (xgboost or mlp; "
                          "instead of MODEL and DATA)")
    run.add_argument("--save-ort-optimized", action="store_true",
                     help="also write ONNX Runtime's graph-optimized model per variant (*.ort-optimized.onnx)")
    run.add_argument("--no-history", action="store_true", help="do not store this run in the run history")
    run.add_argument("--quiet", action="store_true", help="no progress lines on stderr (errors stay one line)")

    val = sub.add_parser("validate", help="drift of an ONNX file against its native model over CSV/Parquet data "
                                          "of any size (one process, or Ray Data on a laptop or a cluster)")
    val.add_argument("model", help="the native model file (XGBoost JSON/UBJ, LightGBM text, skops, ONNX)")
    val.add_argument("onnx", help="the ONNX file to check against it (as 'convert' or 'run --out' wrote it)")
    val.add_argument("data", nargs="+", help="CSV or Parquet files, folders of them, globs, or object-store URLs "
                                             "(s3://, gs://, ...)")
    val.add_argument("--engine", choices=("local", "ray"),
                     help="local: this process; ray: Ray Data workers (default: ray when installed, else local)")
    val.add_argument("--ray-address", help="Ray cluster to run on (e.g. ray://HOST:10001 or auto; default: a local "
                                           "Ray on this machine's cores)")
    val.add_argument("--target", help="target column (adds accuracy/F1/AUC/log loss or RMSE/MAE/R2 of both models)")
    val.add_argument("--max-drift", type=float,
                     help="gate: exit 1 when the drift exceeds this (absolute probability difference; relative for "
                          "regressors)")
    val.add_argument("--batch-rows", type=int, default=65_536, help="rows scored per batch (default: 65536)")
    val.add_argument("--out", help="folder for validation.json and worst_rows.csv; must be new, empty or an earlier "
                                   "output")
    val.add_argument("--allow-pickle", action="store_true",
                     help="allow a pickle/joblib model file (it runs code when loaded: trusted files only)")
    val.add_argument("--quiet", action="store_true", help="no progress lines on stderr (errors stay one line)")

    conv = sub.add_parser("convert", help="convert a model to ONNX: input 'input' float32 [N, features], "
                                          "output 'scores' (probabilities or decision scores [N, classes], or "
                                          "predictions [N, 1])")
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
        if args.command == "validate":
            return _validate(args)
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
        trees=_trees(args.trees),
        max_metric_loss=args.max_metric_loss,
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
    if config.max_drift is not None or config.max_metric_loss is not None:
        return _gate(report, config)
    return EXIT_OK


def _gate(report, config) -> int:
    """The CI gate, active when --max-drift or --max-metric-loss is given: a requested variant passes within the
    drift tolerance (--max-drift, else the default the run uses) or within --max-metric-loss of the native model's
    primary metric."""
    from optimizer_core.config import DEFAULT_MAX_DRIFT
    from optimizer_core.pipeline import drift_failures

    max_drift = config.max_drift if config.max_drift is not None else DEFAULT_MAX_DRIFT
    drift_words = f"--max-drift {max_drift:g}" if config.max_drift is not None else f"the default drift tolerance {max_drift:g}"
    task = report.model.get("task")
    failing = drift_failures(report, max_drift, config.precisions, config.max_metric_loss)
    if failing:
        if config.max_metric_loss is None:
            worst = ", ".join(f"{v.name} drifts {v.drift.describe()}" for v in failing)
            print(f"gate failed: {worst} (over {drift_words})", file=sys.stderr)
        else:
            worst = ", ".join(f"{v.name} drifts {v.drift.describe()} and {_metric_loss_words(v, task)}"
                              for v in failing)
            print(f"gate failed: {worst} (over {drift_words} and --max-metric-loss {config.max_metric_loss:g})",
                  file=sys.stderr)
        return EXIT_GATE
    gated = [v for v in report.variants if (v.precision in config.precisions or v.trees_kept is not None)
             and v.precision != "native" and v.drift is not None]
    if gated:
        _say(f"gate passed: {_gate_words(gated, config, task, max_drift, drift_words)}")
    else:
        _say(f"gate: nothing to check: none of the requested precisions ({', '.join(config.precisions)}) "
             "applies to this model")
    return EXIT_OK


def _metric_loss_words(variant, task: str | None) -> str:
    """'loses 0.0299 of ROC AUC', 'gains 0.001 of accuracy' or 'its ROC AUC was not measured'."""
    from optimizer_core.metric_tolerance import METRIC_WORDS, PRIMARY_METRICS

    metric = METRIC_WORDS.get(PRIMARY_METRICS.get(task or "", ""), "primary metric")
    delta = variant.metric_delta
    if delta is None:
        return f"its {metric} was not measured"
    return f"loses {-delta:.4g} of {metric}" if delta < 0 else f"gains {delta:.4g} of {metric}"


def _gate_words(gated, config, task: str | None, max_drift: float, drift_words: str) -> str:
    """'fp32, rounds-100 within --max-drift 0.0001; rounds-50 within --max-metric-loss 0.001 (roc_auc -0.0004)'."""
    by_drift = [v.name for v in gated if v.drift.value <= max_drift]
    text = f"{', '.join(by_drift)} within {drift_words}" if by_drift else ""
    by_metric = [v for v in gated if v.drift.value > max_drift]
    if by_metric:
        from optimizer_core.metric_tolerance import PRIMARY_METRICS

        metric = PRIMARY_METRICS.get(task or "", "primary metric")
        listed = ", ".join(f"{v.name} ({v.metric_delta:+.4g})" for v in by_metric)
        text += ("; " if text else "") + f"{listed} within --max-metric-loss {config.max_metric_loss:g} ({metric} delta)"
    return text


def _trees(given: list[str] | None) -> tuple[int | str, ...]:
    from optimizer_core.config import parse_trees

    if not given:
        return ()
    try:
        return parse_trees(",".join(given))
    except ConfigError as e:
        raise ConfigError(f"--trees: {e}") from e


def _validate(args: argparse.Namespace) -> int:
    from optimizer_core.validation import validate
    from optimizer_core.views.validation_table import format_summary

    out = Path(args.out) if args.out else None
    if out is not None and (problem := out_dir_problem(out)):
        raise ConfigError(problem)
    with _progress_bar(disabled=args.quiet) as progress, _sigterm_as_interrupt():
        result = validate(args.model, args.onnx, args.data, engine=args.engine, ray_address=args.ray_address,
                          target=args.target, max_drift=args.max_drift, batch_rows=args.batch_rows,
                          allow_pickle=args.allow_pickle, progress=progress)
    _say(format_summary(result))
    if out is not None:
        result.write_out(out)
        _say(f"\nwrote to {out}/: validation.json, worst_rows.csv")
    if args.max_drift is not None:
        if not result.passed:
            print(f"gate failed: the ONNX file drifts {result.drift.describe()} (over --max-drift {args.max_drift:g})",
                  file=sys.stderr)
            return EXIT_GATE
        _say(f"gate passed: within --max-drift {args.max_drift:g}")
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
    from optimizer_core.categories import contract_note
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
    kinds = {"probabilities": "probabilities", "decision": "decision scores (not probabilities)"}
    shape = (f"{kinds[loaded.scores_kind]} [N, {loaded.n_outputs}]" if loaded.task != "regression"
             else "predictions [N, 1]")
    print(f"wrote {out}: {loaded.estimator} ({loaded.task}), input 'input' float32 [N, {loaded.n_features}], "
          f"output 'scores' {shape}")
    if codes := contract_note(loaded.stored_categories, loaded.feature_names):
        print(f"note: {codes}")
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


if __name__ == "__main__":
    raise SystemExit(main())
