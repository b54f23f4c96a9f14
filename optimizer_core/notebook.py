"""The notebook helpers' public import path: ``from optimizer_core.notebook import notebook_progress``.

They live in :mod:`optimizer_core.views.notebook` with the other views; this module keeps the path that
the README, docs/API.md and existing notebooks use.
"""

from optimizer_core.views.notebook import (
    KEY_FIGURES,
    NotebookProgress,
    notebook_progress,
    report_figures,
    report_html,
)

__all__ = ["KEY_FIGURES", "NotebookProgress", "notebook_progress", "report_figures", "report_html"]
