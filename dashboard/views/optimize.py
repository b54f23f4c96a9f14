"""Optimize: choose a model and a CSV (or the demo), set the run up, run it in a worker, show the results."""

from __future__ import annotations

import os
import time

import streamlit as st

from dashboard import render, state
from optimizer_core import jobs
from optimizer_core.config import (
    DEFAULT_BATCH_SIZES,
    DEFAULT_MAX_DRIFT,
    DEFAULT_PRECISIONS,
    DEFAULT_TREE_SWEEP,
    PRECISIONS,
    OptimizeConfig,
    parse_batch_sizes,
)
from optimizer_core.errors import ConfigError, OptimizerError
from optimizer_core.units import fmt_size

NO_TARGET = "(none)"
FORMATS = "XGBoost JSON/UBJ, LightGBM text, scikit-learn skops, ONNX"


# --------------------------------------------------------------------------- 1. model and data


def choose_inputs() -> state.Inputs | None:
    """The uploaded model and CSV, or the demo when nothing is uploaded."""
    with st.container(border=True):
        st.subheader("1 · Model and test data")
        nonce = state.upload_nonce()
        left, right = st.columns(2)
        with left:
            model_file = _uploader(
                "model",
                "Model file",
                nonce,
                help=f"{FORMATS}. The format is recognised from the content, not the file name. "
                + _limit_help(),
            )
            if state.pickle_allowed():
                st.caption(
                    f":material/warning: Accepted: {FORMATS}, and pickle/joblib, because this server was "
                    "started with --allow-pickle (loading one runs its code; it is only loaded inside an "
                    "isolated worker)."
                )
            else:
                st.caption(
                    f"Accepted: {FORMATS}. Pickle/joblib files are refused because loading one runs "
                    "arbitrary code; the server administrator can allow them with --allow-pickle."
                )
        with right:
            csv_file = _uploader(
                "csv",
                "Test data (CSV with a header row)",
                nonce,
                type=["csv", "tsv", "txt"],
                help="Columns are matched to the model's features by name; extra "
                "columns are ignored. Optionally one target column for metrics. " + _limit_help(),
            )
            st.caption("Every row is used to measure drift; timing samples at most 20,000 rows.")
        st.caption(
            f":material/upload_file: Files up to **{state.upload_limit_mb():,} MB** each. A larger file is not "
            "uploaded: the browser marks it with a red '!' and the page carries on without it. Upload a "
            "sample of the CSV's rows instead, or ask the server's administrator to raise the limit."
        )
        with st.container(horizontal=True, vertical_alignment="center"):
            for kind, title in state.DEMO_KINDS.items():
                st.button(
                    f"Load demo ({title})",
                    key=f"demo-{kind}",
                    on_click=state.choose_demo,
                    args=(kind,),
                    icon=":material/science:",
                )
        return _inputs(model_file, csv_file)


def _limit_help() -> str:
    """The upload limit for the uploaders' tooltips, with the administrator's fix."""
    return (
        f"Up to {state.upload_limit_mb():,} MB: a larger file shows a red '!' and is not uploaded. "
        "To raise the limit, start the server with a larger --server.maxUploadSize (MAX_UPLOAD_MB in "
        "dashboard/server_config.py for inference-optimizer dashboard); see docs/deploying.md."
    )


def _uploader(kind: str, label: str, nonce: int, **options) -> state.Upload | None:
    """A file uploader whose file outlives the widget: Streamlit empties the widget when the user visits
    another page, so the file is kept in the session and named below the empty widget."""
    key = f"{kind}-upload-{nonce}"
    file = st.file_uploader(label, key=key, on_change=state.keep_upload, args=(kind, key), **options)
    kept = state.uploaded(kind)
    if file is not None and (kept is None or (kept.name, len(kept.data)) != (file.name, file.size)):
        state.keep_upload(kind, key)  # the callback only runs on a change the browser reported
        kept = state.uploaded(kind)
    if file is None and kept is not None:
        with st.container(horizontal=True, vertical_alignment="center"):
            st.caption(
                f":material/attach_file: Using **{render.md_escape(kept.name)}** "
                f"({fmt_size(len(kept.data))}), uploaded earlier in this session."
            )
            st.button(
                "Remove",
                key=f"forget-{kind}",
                on_click=state.forget_upload,
                args=(kind,),
                icon=":material/close:",
                type="tertiary",
            )
    return kept


def _inputs(model: state.Upload | None, csv: state.Upload | None) -> state.Inputs | None:
    if model is not None and csv is not None:
        return state.Inputs.of(model, csv)
    if model is not None or csv is not None:
        missing = "test CSV" if model is not None else "model file"
        st.info(
            f"Upload the {missing} as well, or press a demo button to run the bundled demo. (A file shown "
            f"with a red '!' was not uploaded: it is over the {state.upload_limit_mb():,} MB limit.)",
            icon=":material/upload_file:",
        )
        return None
    try:
        inputs = state.demo_inputs(state.demo_kind())
    except (OptimizerError, OSError, ValueError) as e:
        st.error(f"The demo could not be prepared: {render.md_escape(state.one_line(e))}", icon=":material/error:")
        return None
    st.success(
        f"**Demo ready:** {inputs.description}. Press **Run** below, or upload your own model and CSV.",
        icon=":material/check_circle:",
    )
    return inputs


# --------------------------------------------------------------------------- 2. settings


def settings(inputs: state.Inputs, busy: bool) -> state.RunInputs | None:
    """The run's settings and the Run button; a click submits a job to the worker pool. Returns what a
    run would measure now (None when the model or CSV cannot run)."""
    check = state.model_check(
        inputs.model_sha256, inputs.model_bytes, inputs.model_name, state.pickle_allowed()
    )
    preview = state.csv_preview(inputs.csv_sha256, inputs.csv_bytes, inputs.csv_name)
    for problem in (check.error, preview.error):
        if problem:
            st.error(render.md_escape(problem), icon=":material/error:")
    if check.error or preview.error:
        return None

    with st.container(border=True):
        st.subheader("2 · What to measure")
        if check.summary:
            st.markdown(
                f"**Model:** {render.md_escape(check.summary)} · **data:** {render.md_escape(inputs.csv_name)}"
                + ("" if preview.complete else " (columns read from its first MiB)")
            )
        c1, c2, c3 = st.columns(3)
        with c1:
            target = _target(inputs, preview, check)
        with c2:
            precisions = _precisions(inputs, check)
        with c3:
            providers = _providers()
        d1, d2, d3 = st.columns(3)
        with d1:
            batch_sizes, batch_error = _batch_sizes()
        with d2:
            threads = _threads()
        with d3:
            budget = _budget()
        e1, e2 = st.columns([2, 1], vertical_alignment="center")
        with e2:
            max_drift = _max_drift()
        with e1:
            state.restore_setting("tune", False, lambda v: isinstance(v, bool))
            tune = st.toggle(
                "Auto-tune",
                key="tune",
                help="Search ONNX Runtime settings (threads, thread spinning, graph optimization level, execution "
                "mode, splitting a batch across cores) within the budget and recommend the fastest configuration "
                f"per batch size whose drift is within {max_drift:g} (the native model is always a candidate).",
            )
            state.remember_setting("tune", tune)
        f1, f2 = st.columns([2, 1])
        with f1:
            trees = _trees(inputs, check)
        with f2:
            max_metric_loss = _max_metric_loss(target)
        columns_problem = state.column_problem(preview.columns, check, target, inputs.csv_name)
        if columns_problem:
            st.error(render.md_escape(columns_problem), icon=":material/error:")
        blockers = _blockers(precisions, providers, batch_error, columns_problem)
        with st.container(horizontal=True, vertical_alignment="center"):
            clicked = st.button(
                "Run",
                type="primary",
                icon=":material/play_arrow:",
                key="run",
                disabled=busy or bool(blockers),
            )
            if busy:
                st.caption("A run is in progress: wait for it or cancel it below.")
            elif blockers:
                st.caption(":material/block: Run is disabled: " + "; ".join(blockers) + ".")
            else:
                st.caption(
                    f"Takes about {budget} s of timing plus conversion; the run continues if you switch "
                    "pages."
                )
    run = state.RunSettings(
        precisions=tuple(p for p in PRECISIONS if p in precisions),
        providers=tuple(providers),
        batch_sizes=batch_sizes,
        threads=threads,
        budget_s=budget,
        tune=bool(tune),
        target=target,
        max_drift=max_drift,
        trees=trees,
        max_metric_loss=max_metric_loss,
    )
    if clicked:
        _submit(inputs, run)
    return inputs.with_settings(run)


def _target(inputs: state.Inputs, preview: state.CsvPreview, check: state.ModelCheck) -> str | None:
    """The target column, or None. The model's own feature columns are not offered."""
    options = [NO_TARGET, *state.target_choices(preview.columns, check)]
    guess = inputs.default_target or preview.guessed_target
    key = f"target-{inputs.csv_sha256[:12]}-{inputs.model_sha256[:12]}"
    state.restore_setting(key, guess if guess in options else NO_TARGET, lambda v: v in options)
    target = st.selectbox(
        "Target column",
        options,
        key=key,
        help="Optional: the true labels or values, for accuracy metrics. Without it "
        "only drift against the native model is measured.",
    )
    state.remember_setting(key, target)
    if len(options) - 1 < len(preview.columns):
        st.caption("The model's own feature columns are not offered as the target.")
    return None if target == NO_TARGET else target


def _batch_sizes() -> tuple[tuple[int, ...], str | None]:
    """The batch sizes typed in, and the error when the text is not a list of positive whole numbers."""
    state.restore_setting("batch-sizes", ", ".join(str(b) for b in DEFAULT_BATCH_SIZES), lambda v: isinstance(v, str))
    text = st.text_input(
        "Batch sizes (rows per call)",
        key="batch-sizes",
        placeholder="1, 16, 256, 4096",
        help="Whole numbers separated by commas or spaces, for example 1, 16, 256, 4096. Each variant is "
        "timed at each batch size.",
    )
    state.remember_setting("batch-sizes", text)
    try:
        sizes = parse_batch_sizes(text)
    except ConfigError as e:
        message = f"Batch sizes: {e}."
        st.error(message, icon=":material/error:")
        return (), message
    st.caption("Timed at " + " · ".join(f"{b:,}" for b in sizes) + " rows per call.")
    return sizes, None


def _threads() -> int:
    cores = os.cpu_count() or 1
    choices = [0, *sorted({1, 2, 4, 8, 16, 32, cores} & set(range(1, cores + 1)))]
    state.restore_setting("threads", 0, lambda v: v in choices)
    threads = st.selectbox(
        "ONNX Runtime threads",
        choices,
        key="threads",
        format_func=lambda n: "auto (one per physical core)" if n == 0 else f"{n}",
        help="Intra-op threads for each ONNX Runtime session.",
    )
    state.remember_setting("threads", threads)
    return int(threads)


DRIFT_TOLERANCES = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 5e-2, 1e-1)


def _max_drift() -> float:
    """The drift a recommended variant may have: absolute probability difference for classifiers, relative
    for regressors (the CLI's --max-drift)."""
    state.restore_setting("max-drift", DEFAULT_MAX_DRIFT, lambda v: v in DRIFT_TOLERANCES)
    value = st.selectbox(
        "Drift tolerance",
        DRIFT_TOLERANCES,
        key="max-drift",
        format_func=lambda x: f"{x:g}",
        help="The largest drift from the native model a recommended variant may have: the absolute score "
        "difference for classifiers (probabilities, or decision scores for SVMs and linear models without "
        "probabilities), the difference relative to the prediction for regressors (the CLI's "
        "--max-drift). Variants over it are still measured and shown, never recommended.",
    )
    state.remember_setting("max-drift", value)
    return float(value)


TREE_SHARES = ("10%", "25%", "50%", "75%", "90%")
# "off" rather than None: Streamlit draws a selectbox whose value is None as empty ("Choose an option")
METRIC_OFF = "off"
METRIC_TOLERANCES = (METRIC_OFF, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05)


def _trees(inputs: state.Inputs, check: state.ModelCheck) -> tuple[str, ...]:
    """The truncated-ensemble variants to build (the CLI's --trees), offered for tree ensembles only."""
    applies, reason = check.trees
    if not applies:
        if reason:
            st.caption(f"Trees kept: not applicable to this model: {render.md_escape(reason)}")
        return ()
    key = f"trees-{inputs.model_sha256[:12]}"
    state.restore_setting(key, list(DEFAULT_TREE_SWEEP), lambda v: isinstance(v, list) and all(t in TREE_SHARES for t in v))
    chosen = st.multiselect(
        "Trees kept",
        TREE_SHARES,
        key=key,
        help="Truncated-ensemble variants: each keeps the first share of the model's boosting rounds (or forest "
        "trees). Fewer trees are faster; the drift against the full model and the change in the metric show what "
        "it costs. Each is checked against the library's own truncated prediction.",
    )
    state.remember_setting(key, chosen)
    st.caption(f"This model: {render.md_escape(reason)}. Each share is a variant, timed and measured like the others.")
    return tuple(t for t in TREE_SHARES if t in chosen)


def _max_metric_loss(target: str | None) -> float | None:
    """The metric tolerance (the CLI's --max-metric-loss): needs a target column."""
    state.restore_setting("max-metric-loss", METRIC_OFF, lambda v: v in METRIC_TOLERANCES)
    value = st.selectbox(
        "Metric tolerance",
        METRIC_TOLERANCES,
        key="max-metric-loss",
        format_func=lambda x: "off (drift only)" if x == METRIC_OFF else f"{x:g} of the primary metric",
        disabled=target is None,
        help="A variant whose primary metric (ROC AUC for binary, accuracy for multiclass, R² for regression) is at "
        "most this below the native model's may be recommended even when its drift is over the drift tolerance "
        "(the CLI's --max-metric-loss). Needs a target column.",
    )
    state.remember_setting("max-metric-loss", value)
    if target is None:
        st.caption("Choose a target column to judge variants by their metric.")
        return None
    return None if value == METRIC_OFF else float(value)


def _budget() -> int:
    state.restore_setting("budget", 30, lambda v: isinstance(v, int) and 5 <= v <= 300)
    budget = st.slider(
        "Timing budget (seconds)",
        min_value=5,
        max_value=300,
        step=5,
        key="budget",
        help="Wall-clock time for the benchmark; a longer budget gives tighter confidence intervals.",
    )
    state.remember_setting("budget", budget)
    return int(budget)


def _blockers(
    precisions: list[str],
    providers: list[str],
    batch_error: str | None,
    columns_problem: str | None,
) -> list[str]:
    """Why Run cannot start yet, in words (empty when it can)."""
    blockers = []
    if not precisions:
        blockers.append("choose at least one precision")
    if not providers:
        blockers.append("choose at least one execution provider")
    if batch_error:  # parse_batch_sizes refuses empty text too, so there is no separate "none given" case
        blockers.append("fix the batch sizes")
    if columns_problem:
        blockers.append("the CSV does not have the model's feature columns")
    return blockers


def _precisions(inputs: state.Inputs, check: state.ModelCheck) -> list[str]:
    applies = {p: ok for p, ok, _ in check.applicability}
    key = f"precisions-{inputs.model_sha256[:12]}"
    state.restore_setting(
        key,
        [p for p in DEFAULT_PRECISIONS if applies.get(p, True)],
        lambda v: isinstance(v, list) and all(p in PRECISIONS for p in v),
    )
    chosen = st.multiselect(
        "Precisions",
        PRECISIONS,
        key=key,
        format_func=lambda p: p if applies.get(p, True) else f"{p} (not applicable)",
        help="fp32 is the faithful conversion; fp64 keeps double precision; fp16, int8 (dynamic) and "
        "int8-static (calibrated on the CSV) trade accuracy for size or speed. For tree ensembles, tensor rewrites "
        "the trees with standard ONNX operators and fp16 builds that graph with float16 thresholds and leaves: "
        "GPUs (CUDA, TensorRT) can run them, while ONNX Runtime's TreeEnsemble operator only runs on the CPU. "
        "On a CPU expect them to be slower than fp32's TreeEnsemble graph; their value is on a GPU.",
    )
    state.remember_setting(key, chosen)
    if check.deferred:
        st.caption(f"Applicability: {check.deferred}.")
    usable = [(p, reason) for p, ok, reason in check.applicability if ok]
    unusable = [(p, reason) for p, ok, reason in check.applicability if not ok]
    if usable:
        st.caption("Applies to this model: " + "; ".join(f"**{p}** ({reason})" for p, reason in usable))
    if unusable:
        with st.expander("Not applicable to this model: " + ", ".join(p for p, _ in unusable)):
            st.markdown("\n".join(f"- **{p}**: not applicable — {reason}" for p, reason in unusable))
    return chosen


def _providers() -> list[str]:
    """The chosen providers, each ONNX Runtime provider once ('auto' may be the CPU too)."""
    table = state.providers()
    options = ["auto", *[p.short for p in table if p.available]]
    auto_means = state.auto_provider()
    state.restore_setting("providers", ["auto"], lambda v: isinstance(v, list) and all(p in options for p in v))
    chosen = st.multiselect(
        "Execution providers",
        options,
        key="providers",
        format_func=lambda s: f"auto ({auto_means})" if s == "auto" else s,
        help="Each precision runs on each chosen provider. 'auto' is the best available accelerator, "
        "else the CPU.",
    )
    state.remember_setting("providers", chosen)
    distinct, dropped = state.distinct_providers(chosen)
    for extra, kept in dropped:
        st.caption(
            f":material/info: **{extra}** and **{kept}** both run on "
            f"{state.resolved_provider(kept).removesuffix('ExecutionProvider')}: it is measured once, as "
            f"**{kept}**."
        )
    missing = [p for p in table if not p.available]
    if missing:
        with st.expander(f"Not available in this install ({len(missing)})"):
            st.markdown("\n".join(f"- **{p.short}**: {p.reason}" for p in missing))
    return distinct


def _submit(inputs: state.Inputs, run: state.RunSettings) -> None:
    try:
        config = OptimizeConfig(
            precisions=run.precisions,
            providers=run.providers,
            batch_sizes=run.batch_sizes,
            threads=run.threads or None,
            budget_s=float(run.budget_s),
            tune=run.tune,
            max_drift=run.max_drift,
            trees=run.trees,
            max_metric_loss=run.max_metric_loss,
        )
        request = jobs.JobRequest(
            model_bytes=inputs.model_bytes,
            model_name=inputs.model_name,
            csv_bytes=inputs.csv_bytes,
            csv_name=inputs.csv_name,
            config=config,
            target=run.target,
            allow_pickle=state.pickle_allowed(),
        )
        state.submit(request, inputs.model_name, inputs.csv_name, inputs.demo, inputs.with_settings(run))
    except OptimizerError as e:
        st.error(render.md_escape(state.one_line(e)), icon=":material/error:")
        return
    st.rerun()  # redraw with the Run button disabled and the progress shown


# --------------------------------------------------------------------------- 3. progress and results


@st.fragment(run_every=1.0)
def progress(job_id: str) -> None:
    """Polls the worker once a second without rerunning the page; reruns the page when the job ends."""
    status = jobs.get_manager().get(job_id)
    if status is None or status.state in ("done", "failed"):
        st.rerun()
    label = "Waiting for a free worker…" if status.state == "queued" else f"Running — {status.stage}"
    box = st.status(label, state="running", expanded=True)  # not `with`: leaving it would mark it complete
    box.progress(min(max(status.fraction, 0.0), 1.0), text=f"{status.fraction:.0%} · {status.stage}")
    if status.started_at is not None:
        box.caption(
            f"{time.time() - status.started_at:,.0f} s elapsed. The run continues if you change settings "
            "or switch pages, and is saved to History when it finishes."
        )
    box.button(
        "Cancel run",
        key=f"cancel-{job_id}",
        on_click=jobs.get_manager().cancel,
        args=(job_id,),
        icon=":material/stop:",
    )


def results(job_id: str, outcome: state.Outcome, current: state.RunInputs | None) -> None:
    """The job's progress, failure or results; results whose inputs differ from the form's are marked."""
    status = outcome.status
    if status.state in ("queued", "running"):
        progress(job_id)
    elif status.state == "failed":
        if status.message == "cancelled":
            st.warning("The run was cancelled.", icon=":material/stop_circle:")
        else:
            st.error(f"The run failed: {render.md_escape(status.message)}", icon=":material/error:")
    elif outcome.report is not None:
        meta = state.job_meta(job_id)
        st.header("Results", divider="gray")
        if meta is not None and meta.inputs is not None:
            _stale_warning(meta.inputs, current)
        if outcome.saved_run_id:
            st.caption(
                f"Saved to History as run `{outcome.saved_run_id}` · "
                f"[shareable link]({state.run_link(outcome.saved_run_id)})"
            )
        elif outcome.save_error:
            st.warning(
                f"The run could not be saved to History: {render.md_escape(outcome.save_error)}",
                icon=":material/warning:",
            )
        render.render_report(
            outcome.report, key=f"job-{job_id}", model_name=meta.model_name if meta else None
        )


def _stale_warning(before: state.RunInputs, now: state.RunInputs | None) -> None:
    """Say so when the results below were measured with other inputs than the form holds now (the results
    stay: users compare)."""
    changed = state.changed_inputs(before, now)
    if not changed:
        return
    sizes = before.settings.batch_sizes
    batches = f"batch size{'s' if len(sizes) > 1 else ''} " + ", ".join(f"{b:,}" for b in sizes)
    st.warning(
        f"**These results are from the previous run** (model {render.md_escape(before.model_name)}, data "
        f"{render.md_escape(before.csv_name)}, {batches}). Changed since: {', '.join(changed)}. "
        "Press **Run** to measure the current settings.",
        icon=":material/history:",
    )


# --------------------------------------------------------------------------- the page

st.title("Optimize a model for ONNX Runtime")
st.caption(
    "Converts a trained model to ONNX, builds precision variants and measures each one against the native "
    "model on this machine: latency, throughput, size and how far the predictions drift."
)

lost = state.lost_job()
if lost:
    st.info(
        f"The run in this page's address (job `{lost}`) is no longer on the server; finished runs are "
        "listed in History.",
        icon=":material/info:",
    )
active = state.active_job()
outcome = state.collect(active) if active else None
if outcome is not None and outcome.status is None:  # the server restarted or forgot the job
    state.clear_active_job()
    active, outcome = None, None
state.show_job_in_url(active)  # a reload of this tab reconnects to the job (dashboard/app.py)
if active and active == state.adopted_job() and outcome is not None and not outcome.finished:
    st.info(
        f"Reconnected to the run started before this page was reloaded (job `{active}`): its progress is "
        "shown below, and its results will be when it finishes. The settings on this page are a fresh form, "
        "not that run's: its own settings are in its results.",
        icon=":material/sync:",
    )

chosen = choose_inputs()
current = settings(chosen, busy=outcome is not None and not outcome.finished) if chosen is not None else None
if active and outcome is not None:
    results(active, outcome, current)
