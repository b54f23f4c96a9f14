"""inference-optimizer dashboard: `inference-optimizer dashboard` (or `streamlit run dashboard/app.py`).

Thin pages over the core: Optimize (run a model in an isolated worker, see the results; ``?job=ID`` keeps
the job in the address so a reload reconnects to it) and History (stored runs). A stored run is shared by
its address, ``/run?run=ID``: a hidden page drawn by the History page's script. Older links (``/?run=ID``,
``/history?run=ID``) open it too, and leaving it by any navigation drops the parameter, so a reload or a
bookmark of the page the user went to does not bring the run back.
"""

from __future__ import annotations

import streamlit as st

from dashboard import state

st.set_page_config(page_title="inference-optimizer", page_icon=":material/speed:", layout="wide")

HISTORY_SCRIPT = "views/history.py"
STORED_RUN_URL = "run"

opened_by_address = state.first_run()
stored_run = st.Page(
    HISTORY_SCRIPT,
    title="Stored run",
    icon=":material/description:",
    url_path=STORED_RUN_URL,
    visibility="hidden",
)
pages = [
    st.Page("views/optimize.py", title="Optimize", icon=":material/speed:", url_path="optimize", default=True),
    st.Page(HISTORY_SCRIPT, title="History", icon=":material/history:", url_path="history"),
    stored_run,
]
page = st.navigation(pages, position="top")


def route_stored_run(current: st.Page, first: bool) -> None:
    """?run=ID belongs to the stored-run page only: open it from a shared link, drop it everywhere else."""
    run_id = st.query_params.get(state.RUN_PARAM)
    if not run_id or current.url_path == STORED_RUN_URL:
        return
    if first:  # a link such as /?run=ID or /history?run=ID, opened in a new tab or reloaded
        st.switch_page(stored_run, query_params={state.RUN_PARAM: run_id})
    del st.query_params[state.RUN_PARAM]  # the user navigated away from the stored run


route_stored_run(page, opened_by_address)
state.adopt_url_job()
page.run()
