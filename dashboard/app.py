"""inference-optimizer dashboard: `inference-optimizer dashboard` (or `streamlit run dashboard/app.py`).

Thin pages over the core: Optimize (run a model in an isolated worker, see the results) and History
(stored runs; ``?run=ID`` opens one read-only, so a run can be shared by its address).
"""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="inference-optimizer", page_icon=":material/speed:", layout="wide")

shared_run = "run" in st.query_params  # a shared link (/?run=ID) lands on the stored run
pages = [
    st.Page(
        "views/optimize.py",
        title="Optimize",
        icon=":material/speed:",
        url_path="optimize",
        default=not shared_run,
    ),
    st.Page(
        "views/history.py", title="History", icon=":material/history:", url_path="history", default=shared_run
    ),
]
st.navigation(pages, position="top").run()
