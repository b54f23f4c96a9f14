"""The dashboard's pages, run by st.navigation from dashboard/app.py.

Not named pages/: Streamlit would also discover that folder as a legacy multipage app, and a direct
link such as /history would then run the page without app.py (no page config, no navigation).
"""
