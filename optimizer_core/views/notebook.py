"""Notebook face of the core: a Report's rich display and a progress bar that works in Jupyter.

``Report._repr_html_`` calls :func:`report_html`: the headline metrics, one row per variant
(precision, provider used, size, p50 at each batch size, drift, label flips) and the key figures,
built by the same :mod:`optimizer_core.views.figures` builders as report.html and the dashboard.

No network: plotly.js is embedded inline, once per displayed report (about 4.8 MB), and every figure
reuses it. ``report_html(report, figures=False)`` gives the light table-only view. ``report.figures``
returns every figure as a plotly object to show, restyle or save on its own.

:func:`notebook_progress` returns a ``progress(stage, fraction)`` callback for ``optimize()`` backed by
``tqdm.auto``: a widget bar in Jupyter when ipywidgets is installed, a text bar otherwise (terminals,
CI logs, notebooks without ipywidgets).
"""

from __future__ import annotations

import uuid
import warnings
from typing import TYPE_CHECKING, Any

from optimizer_core.views.html import e

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from optimizer_core.report import LatencyStats, Report, VariantResult

__all__ = ["KEY_FIGURES", "NotebookProgress", "notebook_progress", "report_figures", "report_html"]

# Figures shown inline, by title prefix in views.figures.all_figures() order; the rest are in report.figures.
KEY_FIGURES = ("Throughput vs batch size", "Latency vs batch size", "Latency vs drift", "Drift distribution",
               "Model size")
_PLOT_CONFIG = {"displaylogo": False, "responsive": True}

_CSS = """
.io-nb { font: 13px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: #1f2328; }
.io-nb h3 { font-size: 15px; margin: 4px 0 6px; }
.io-nb h4 { font-size: 13px; margin: 14px 0 4px; }
.io-nb .io-sub { color: #59636e; margin: 0 0 8px; }
.io-nb table { border-collapse: collapse; margin: 4px 0 8px; }
.io-nb th, .io-nb td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #d8dee4;
                       vertical-align: top; }
.io-nb th { background: #f6f8fa; font-weight: 600; white-space: nowrap; }
.io-nb td.num, .io-nb th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.io-nb tr.na td { color: #8c959f; }
.io-nb .io-warn { color: #9a6700; }
.io-nb .io-bad { color: #b00020; }
.io-nb .io-fig { border: 1px solid #d8dee4; border-radius: 6px; margin: 8px 0; }
.io-nb .io-muted { color: #59636e; }
"""

# plotly.min.js is a UMD bundle: where an AMD loader is present (the classic Notebook's require.js) it
# would register a module instead of setting window.Plotly. Hide `define` while it loads.
_JS_BEFORE = "window.__ioDefine = window.define; window.define = undefined;"
_JS_AFTER = "window.define = window.__ioDefine; delete window.__ioDefine;"


# --------------------------------------------------------------------------- figures


def report_figures(report: Report) -> dict[str, go.Figure]:
    """Every figure with something to show, title -> plotly figure (``views.figures.all_figures``)."""
    from optimizer_core.views.figures import all_figures

    return all_figures(report)


def _key_figures(report: Report) -> dict[str, go.Figure]:
    figs = report_figures(report)
    return {t: f for t, f in figs.items() if t.startswith(KEY_FIGURES)}


# --------------------------------------------------------------------------- html


def report_html(report: Report, *, figures: bool = True) -> str:
    """HTML for a notebook cell: headline, variants table, recommendation and (optionally) key figures.

    Self-contained and offline: with ``figures=True`` plotly.js is inlined once for all the figures.
    Every string taken from the report is escaped (model files and column names can be hostile).
    """
    from optimizer_core.summary import headline, truncation_headline

    m = report.model
    subtitle = " · ".join(e(x) for x in (m.get("estimator"), m.get("family"), m.get("task")) if x)
    rows = report.data.get("rows")
    if isinstance(rows, int):
        subtitle += f" · {rows:,} rows"
    if report.wall_s is not None:
        subtitle += f" · took {report.wall_s:,.1f} s"
    parts = [
        f"<style>{_CSS}</style>",
        f'<div class="io-nb"><h3>Inference optimization report</h3><p class="io-sub">{subtitle}</p>',
        _kv_table(headline(report)),
        *([f'<p class="io-muted">{e(t)}</p>'] if (t := truncation_headline(report)) else []),
        _variants_table(report),
        _recommendation(report),
    ]
    if figures:
        parts.append(_figures_html(report))
    parts.append('<p class="io-muted">Every figure: <code>report.figures</code> · the ONNX files: '
                 "<code>report.artifacts</code> · save everything: "
                 "<code>report.write_out(\"out/\")</code></p></div>")
    return "\n".join(parts)


def _kv_table(values: dict[str, str]) -> str:
    body = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in values.items())
    return f"<table>{body}</table>"


def _provider(v: VariantResult) -> str:
    from optimizer_core.views.text import provider_text

    text = e(provider_text(v))
    return f'<span class="io-warn">{text}</span>' if v.fell_back else text


def _p50(row: LatencyStats | None) -> str:
    from optimizer_core.units import fmt_us

    if row is None:
        return "—"
    cell = e(fmt_us(row.p50_us))
    if row.noisy:
        cell += f' <span class="io-warn" title="{e("; ".join(row.noise_reasons))}">noisy</span>'
    return cell


def _drift(v: VariantResult) -> tuple[str, str]:
    from optimizer_core.units import fmt_pct
    from optimizer_core.views.text import fmt_drift

    if v.precision == "native":
        return "reference", "reference"
    d = v.drift
    if d is None:
        return "—", "—"
    cell = e(fmt_drift(d))
    if d.passed is False:
        cell += ' <span class="io-bad">over tolerance</span>'
    flips = "n/a" if d.label_flips is None else f"{d.label_flips:,} ({fmt_pct(d.label_flip_rate)})"
    return cell, e(flips)


def _variants_table(report: Report) -> str:
    from optimizer_core.summary import batch_sizes, is_native_configuration, listed_variants
    from optimizer_core.units import fmt_mb

    sizes = batch_sizes(report)
    head = ["variant", "precision", "provider used", "size", *[f"p50 @ batch {b:,}" for b in sizes],
            "max drift vs native", "label flips"]
    numeric = set(range(3, 5 + len(sizes)))
    th = "".join(f'<th{" class=num" if i in numeric else ""}>{e(h)}</th>' for i, h in enumerate(head))
    body = []
    for v in listed_variants(report):
        drift, flips = ("—", "—") if is_native_configuration(report, v) else _drift(v)  # "native t1": timed only
        if v.applicable:
            cells = [e(v.name), e(v.precision), _provider(v), e(fmt_mb(v.size_bytes)),
                     *[_p50(v.latency_at(b)) for b in sizes], drift, flips]
            tds = "".join(f'<td{" class=num" if i in numeric else ""}>{c}</td>' for i, c in enumerate(cells))
            body.append(f"<tr>{tds}</tr>")
        else:
            why = v.notes[0] if v.notes else "does not apply to this model"
            body.append(f'<tr class="na"><td>{e(v.name)}</td><td>{e(v.precision)}</td>'
                        f'<td colspan="{len(head) - 2}">not applicable: {e(why)}</td></tr>')
    return f"<h4>Variants</h4><table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _recommendation(report: Report) -> str:
    rec = report.recommendation
    if rec is None:
        return ""
    items = sorted(rec.configurations().items(), key=lambda kv: (0, int(kv[0]), "") if kv[0].isdigit()
                   else (1, 0, kv[0]))
    picks = ", ".join(f"batch {e(b)}: <b>{e(name)}</b>" for b, name in items)
    text = f"<h4>Recommendation</h4><p>{picks}</p>" if picks else "<h4>Recommendation</h4>"
    return text + (f'<p class="io-muted">{e(rec.reason)}</p>' if rec.reason else "")


def _figures_html(report: Report) -> str:
    from plotly.offline import get_plotlyjs

    figs = _key_figures(report)
    if not figs:
        return '<p class="io-muted">Nothing to plot in this report.</p>'
    prefix = f"io-{uuid.uuid4().hex[:8]}"
    blocks = [
        f'<div class="io-fig" aria-label="{e(title)}">'
        + fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"{prefix}-{i}", config=_PLOT_CONFIG,
                      default_width="100%", default_height="420px")
        + "</div>"
        for i, (title, fig) in enumerate(figs.items())
    ]
    script = (f'<script type="text/javascript">{_JS_BEFORE}</script>'
              f'<script type="text/javascript">{get_plotlyjs()}</script>'
              f'<script type="text/javascript">{_JS_AFTER}</script>')
    return "<h4>Key figures</h4>" + script + "\n".join(blocks)


# --------------------------------------------------------------------------- progress


class NotebookProgress:
    """A ``progress(stage, fraction)`` callback drawing one tqdm.auto bar (0-100 %).

    The bar is created on the first call and closed when the fraction reaches 1 (or by ``close()``, or
    at the end of a ``with`` block), so an exception mid-run does not leave a half-drawn bar open.
    """

    def __init__(self, desc: str = "optimizing", *, leave: bool = True, **tqdm_kwargs: Any):
        self.desc = desc
        self.leave = leave
        self.tqdm_kwargs = tqdm_kwargs
        self._bar: Any = None
        self.closed = False

    def _make(self) -> Any:
        with warnings.catch_warnings():
            # tqdm.auto warns and falls back to a text bar in notebooks without ipywidgets: that is fine.
            warnings.simplefilter("ignore")
            from tqdm.auto import tqdm

            return tqdm(total=100, desc=self.desc, leave=self.leave, unit="%",
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}", **self.tqdm_kwargs)

    def __call__(self, stage: str, fraction: float) -> None:
        if self.closed:
            return
        if self._bar is None:
            self._bar = self._make()
        value = int(round(min(max(float(fraction), 0.0), 1.0) * 100))
        self._bar.set_description_str(f"{self.desc}: {stage}" if stage else self.desc, refresh=False)
        if value > self._bar.n:
            self._bar.update(value - self._bar.n)
        else:
            self._bar.refresh()
        if value >= 100:
            self.close()

    def close(self) -> None:
        if self._bar is not None and not self.closed:
            self._bar.close()
        self.closed = True

    def __enter__(self) -> NotebookProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def notebook_progress(desc: str = "optimizing", *, leave: bool = True,
                      **tqdm_kwargs: Any) -> NotebookProgress:
    """A progress callback for ``optimize(..., progress=notebook_progress())``.

    Uses ``tqdm.auto``: a widget in Jupyter (with ipywidgets installed), a text bar elsewhere.
    Extra keyword arguments go to tqdm (e.g. ``file=sys.stdout``, ``disable=True``).
    """
    return NotebookProgress(desc, leave=leave, **tqdm_kwargs)
