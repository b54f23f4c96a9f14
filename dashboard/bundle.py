"""The "Download everything" zip: exactly what the CLI writes into --out (report.json, report.html, one .onnx per
variant, drift.csv, deploy.py when present), written by the core's writer (``Report.write_out``) into a temporary
folder and zipped with the same file names the reports use."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

from optimizer_core.report import Report


def out_folder_zip(report: Report, html: str | None = None) -> bytes:
    """The run's --out folder as a zip, files at its root. ``html``: report.html already rendered (else rendered
    here). Raises ConfigError when the report does not carry its model files (a report read from JSON)."""
    with tempfile.TemporaryDirectory(prefix="io-zip-") as tmp:
        folder = report.write_out(Path(tmp) / "out", html=html if html is not None else True)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(folder.iterdir()):
                if path.is_file():
                    zf.write(path, arcname=path.name)
        return buffer.getvalue()
