"""Notebook face: Report._repr_html_, report.figures, the tqdm progress callback, and the quickstart
notebook executed end to end (so it can never rot)."""

from __future__ import annotations

import dataclasses
import io
import os
import re
from pathlib import Path

import nbformat
import plotly.graph_objects as go
import pytest

from optimizer_core import summary as S
from optimizer_core.notebook import KEY_FIGURES, notebook_progress, report_html
from optimizer_core.views import figures as F

try:
    from tests.core.report_factory import make_report
except ImportError:  # tests/ is not a package: pytest puts this folder on sys.path
    from report_factory import make_report

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "examples" / "quickstart.ipynb"
HOSTILE = "<script>alert(1)</script>"


def _without_scripts(html: str) -> str:
    return re.sub(r"<script\b.*?</script>", "", html, flags=re.S)


@pytest.fixture(scope="module")
def report():
    return make_report()


def test_repr_html_has_headline_variants_and_plotly_figures(report):
    html = report._repr_html_()
    text = _without_scripts(html)
    for label in S.HEADLINE_LABELS.values():
        assert label in text
    for v in report.variants:
        assert f"<td>{v.name}</td>" in text
    for b in (1, 64, 1024):
        assert f"p50 @ batch {b:,}" in text
    assert "not applicable" in text  # fp16 in the synthetic report: greyed out with its reason
    assert 'class="plotly-graph-div"' in html
    key = [t for t in report.figures if t.startswith(KEY_FIGURES)]
    assert html.count('class="plotly-graph-div"') == len(key)
    # plotly.js inline exactly once, nothing fetched from the network
    assert html.count("window.Plotly") >= 1
    assert html.count("/*! For license information please see plotly.min.js.LICENSE.txt */") <= 1
    assert "cdn.plot.ly" not in text and "https://" not in text


def test_repr_html_without_figures_is_light(report):
    html = report_html(report, figures=False)
    assert len(html) < 30_000
    assert "plotly-graph-div" not in html and "<script" not in html


def test_repr_html_escapes_report_strings():
    r = make_report(estimator=HOSTILE)
    renamed = tuple(dataclasses.replace(v, name=HOSTILE + v.name) if v.precision == "int8" else v
                    for v in r.variants)
    r = dataclasses.replace(r, variants=renamed)
    text = _without_scripts(report_html(r))
    assert HOSTILE not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_repr_html_marks_gpu_fallback(report):
    fp32 = dataclasses.replace(report.variant("fp32"), provider_requested="cuda",
                               provider_used="CPUExecutionProvider",
                               session_settings={"provider_resolved": "CUDAExecutionProvider"})
    r = dataclasses.replace(report, variants=tuple(fp32 if v.name == "fp32" else v for v in report.variants))
    assert "fell back from cuda" in report_html(r, figures=False)
    assert "fell back" not in report_html(report, figures=False)  # cpu requested, cpu used


def test_figures_property_is_all_figures(report):
    figs = report.figures
    assert list(figs) == list(F.all_figures(report))
    assert all(isinstance(f, go.Figure) for f in figs.values())


def test_partial_report_renders():
    r = make_report(with_latency=False, with_drift=False, with_recommendation=False)
    html = r._repr_html_()
    assert "Inference optimization report" in html


def test_notebook_progress_draws_one_bar_and_closes():
    out = io.StringIO()
    progress = notebook_progress("optimizing", file=out, mininterval=0)
    for stage, fraction in [("loading model", 0.0), ("converting", 0.05), ("benchmarking", 0.5),
                            ("benchmarking", 0.4), ("done", 1.0)]:
        progress(stage, fraction)
    assert progress.closed
    text = out.getvalue()
    assert "100%" in text and "benchmarking" in text
    progress("late", 0.5)  # ignored after close, no error


def test_notebook_progress_context_manager_closes_on_error():
    out = io.StringIO()
    with pytest.raises(RuntimeError), notebook_progress(file=out) as progress:
        progress("working", 0.3)
        raise RuntimeError("boom")
    assert progress.closed


def test_quickstart_is_stored_without_outputs():
    nb = nbformat.read(QUICKSTART, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, "strip the outputs before committing"


@pytest.mark.timeout(240)
def test_quickstart_executes(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    # the kernel must import this checkout even where the package is not installed
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(QUICKSTART, as_version=4)
    client = NotebookClient(nb, timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    saved = tmp_path / "model.onnx"
    assert saved.is_file() and saved.stat().st_size > 0
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o["data"].get("text/html", "") for o in outputs if o.output_type == "execute_result"]
    assert any("Inference optimization report" in h and "plotly-graph-div" in h for h in html)
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "largest difference from predict_proba" in printed
