"""History: every finished run, stored in SQLite; open one read-only, delete, compare two.

This script also draws the hidden stored-run page (``/run?run=ID``, registered in dashboard/app.py): the
app keeps ``?run`` on that page only, so here the parameter means "show this run".
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import render, state
from optimizer_core import summary as S
from optimizer_core.errors import OptimizerError
from optimizer_core.history import compare_reports
from optimizer_core.units import fmt_diff, fmt_pct, fmt_us
from optimizer_core.views import figures as F

HISTORY_PAGE = "views/history.py"  # the History page (registered before the stored-run page on this script)
OPTIMIZE_PAGE = "views/optimize.py"


def _store():
    try:
        return state.history_store()
    except OptimizerError as e:
        st.error(render.md_escape(state.one_line(e)), icon=":material/error:")
        st.stop()


def _open_run(run_id: str) -> None:
    store = _store()
    try:
        report = store.load(run_id)
        summary = store.summary(run_id)
    except OptimizerError as e:
        st.error(render.md_escape(state.one_line(e)), icon=":material/error:")
        st.page_link(HISTORY_PAGE, label="All runs", icon=":material/arrow_back:", query_params={})
        return
    st.page_link(HISTORY_PAGE, label="All runs", icon=":material/arrow_back:", query_params={})
    st.title(f"Run {run_id}")
    st.caption("A stored run, read-only. This page's address opens it for anyone who can reach this server.")
    render.render_report(report, key=f"stored-{run_id}", model_name=summary.model_name)


@st.fragment(run_every=2.0)
def _watch_running() -> None:
    """Runs started on the Optimize page are saved when they finish; refresh the list when one does."""
    if not state.unfinished_jobs():
        st.rerun()
    st.info(
        "A run from this session is still in progress; it will be listed here when it finishes.",
        icon=":material/hourglass_top:",
    )


def _runs_table(runs) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "open": state.run_link(r.run_id),
                "created (UTC)": r.created_at.replace("T", " ")[:19],
                "model": r.model_name,
                "estimator": r.estimator,
                "task": r.task,
                "rows": r.rows,
                S.HEADLINE_LABELS["speedup"]: r.headline.get(S.HEADLINE_LABELS["speedup"]),
                S.HEADLINE_LABELS["drift"]: r.headline.get(S.HEADLINE_LABELS["drift"]),
                "recommended at batch 1": r.recommended_batch1,
                "run id": r.run_id,
            }
            for r in runs
        ]
    )


def _label(r) -> str:
    return f"{r.created_at.replace('T', ' ')[:16]} · {r.model_name} · {r.estimator} · {r.run_id}"


def _compare(store, runs) -> None:
    st.subheader("Compare two runs", divider="gray")
    by_id = {r.run_id: r for r in runs}
    ids = list(by_id)
    left, right = st.columns(2)
    with left:
        a = st.selectbox("Run A", ids, index=1, format_func=lambda i: _label(by_id[i]), key="compare-a")
    with right:
        b = st.selectbox("Run B", ids, index=0, format_func=lambda i: _label(by_id[i]), key="compare-b")
    if a == b:
        st.info("Pick two different runs.")
        return
    try:
        reports = store.load(a), store.load(b)  # once: each load copies the run's stored model files
        comparison = compare_reports(*reports, by_id[a], by_id[b])
    except OptimizerError as e:
        st.error(render.md_escape(state.one_line(e)), icon=":material/error:")
        return
    summaries = comparison.a, comparison.b
    unlike = render.different_work(*reports, *(s.model_name for s in summaries))
    if unlike:
        st.warning(unlike, icon=":material/warning:")
    figures = [F.throughput_vs_batch(report) for report in reports]
    render.share_y_range(figures)  # one scale: the two charts' heights compare by eye
    for col, name, summary, report, figure in zip(
        st.columns(2), ("A", "B"), summaries, reports, figures, strict=True
    ):
        with col, st.container(border=True):
            st.markdown(f"**Run {name}** · [open]({state.run_link(summary.run_id)})")
            st.caption(render.run_caption(report, summary.model_name))
            render.headline_metrics(report)
            render.chart(figure, key=f"compare-{name}-throughput")
    st.markdown("**p50 latency per call** (same variant and batch size in both runs)")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "batch size": size,
                    "variant": name,
                    "run A": fmt_us(pa) if pa else "—",
                    "run B": fmt_us(pb) if pb else "—",
                    "B vs A": _change(pa, pb),
                }
                for size, name, pa, pb in comparison.p50_us
            ]
        ),
        hide_index=True,
        key="compare-p50",
    )
    st.markdown("**Drift vs each run's native model**")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "variant": name,
                    "run A max |diff|": fmt_diff(da),
                    "run B max |diff|": fmt_diff(db),
                    "run A label flips": fmt_pct(fa),
                    "run B label flips": fmt_pct(fb),
                }
                for name, da, db, fa, fb in comparison.drift
            ]
        ),
        hide_index=True,
        key="compare-drift",
    )


def _change(a: float | None, b: float | None) -> str:
    """How run B's p50 compares with run A's, in words a reader cannot misread."""
    if not a or not b:
        return "—"
    ratio = b / a
    if abs(ratio - 1) < 0.005:
        return "same"
    return f"{ratio:.2f}x slower" if ratio > 1 else f"{1 / ratio:.2f}x faster"


def _delete(store, runs) -> None:
    st.subheader("Delete a run", divider="gray")
    if deleted := state.pop_deleted():
        st.success(deleted, icon=":material/delete:")
    by_id = {r.run_id: r for r in runs}
    pending = state.pending_delete()
    if pending and pending in by_id:
        st.warning(
            f"Delete run **{pending}** ({render.md_escape(by_id[pending].model_name)}) and its ONNX files? "
            "This cannot be undone.",
            icon=":material/warning:",
        )
        with st.container(horizontal=True):
            if st.button("Yes, delete", type="primary", key="delete-confirm"):
                try:
                    store.delete(pending)
                except OptimizerError as e:
                    st.error(render.md_escape(state.one_line(e)), icon=":material/error:")
                    state.set_pending_delete(None)
                    return
                state.say_deleted(f"Deleted run {pending} ({render.md_escape(by_id[pending].model_name)}).")
                state.set_pending_delete(None)
                st.rerun()
            if st.button("Cancel", key="delete-cancel"):
                state.set_pending_delete(None)
                st.rerun()
        return
    with st.container(horizontal=True, vertical_alignment="bottom"):
        victim = st.selectbox("Run", list(by_id), format_func=lambda i: _label(by_id[i]), key="delete-which")
        if st.button("Delete…", key="delete", icon=":material/delete:"):
            state.set_pending_delete(victim)
            st.rerun()


run_param = st.query_params.get(state.RUN_PARAM)
if run_param:
    _open_run(str(run_param))
    st.stop()

st.title("Run history")
store = _store()
# the file's name only: its folder on the server is no business of the people this page is shared with
st.caption(f"Every finished run is saved here automatically, in {render.md_escape(store.path.name)} on the server.")
if state.session_jobs() and state.unfinished_jobs():
    _watch_running()
runs = store.list_runs()
if not runs:
    st.info(
        "No runs yet. Runs finished on the Optimize page are saved here automatically.",
        icon=":material/history:",
    )
    st.page_link(OPTIMIZE_PAGE, label="Go to Optimize", icon=":material/speed:")
    st.stop()

st.dataframe(
    _runs_table(runs),
    hide_index=True,
    key="runs",
    column_config={
        "open": st.column_config.LinkColumn("open", display_text="open", width="small"),
        "rows": st.column_config.NumberColumn(format="localized"),
    },
)
st.caption("Open a run to see all its charts and downloads; its address can be shared.")
if len(runs) >= 2:
    _compare(store, runs)
_delete(store, runs)
