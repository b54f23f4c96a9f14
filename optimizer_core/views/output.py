"""The output folder of a run: report.json, report.html and every artifact (one .onnx per variant, drift.csv),
written all or nothing by ``out_dir.write_files``.

``Report.write_out`` calls :func:`write_out`; it lives with the views because it renders report.html.
"""

from __future__ import annotations

import os
from pathlib import Path

from optimizer_core.errors import ConfigError
from optimizer_core.out_dir import write_files
from optimizer_core.report import Report
from optimizer_core.views.html import render_html


def write_out(report: Report, out_dir: str | os.PathLike[str], *, html: str | bool | None = True) -> Path:
    """Write report.json, report.html and every artifact into ``out_dir``, all or nothing.

    ``html``: True (or None) renders report.html (``views.html.render_html``), a string is written as it is,
    False leaves it out.

    A new or empty folder receives the files; a folder holding an earlier run's output is replaced;
    a folder holding anything else is refused with ConfigError (see ``optimizer_core.out_dir``).
    """
    missing = [v.artifact for v in report.variants if v.artifact and v.artifact not in report.artifacts]
    if missing:
        raise ConfigError(
            f"this report names model files it does not carry ({', '.join(missing[:3])}): a report read "
            "from JSON has none; export the run from the history (HistoryStore.load or 'inference-optimizer "
            "history export'), or save the JSON alone with to_json()"
        )
    files = {"report.json": report.to_json().encode("utf-8")}
    if html is None or (html is not False and not isinstance(html, str)):  # True, 1, None: render it
        html = render_html(report)
    if isinstance(html, str):
        files["report.html"] = html.encode("utf-8")
    files.update(report.artifacts)
    return write_files(out_dir, files)

