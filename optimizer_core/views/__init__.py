"""Views of a Report: everything that formats, draws or renders one, and nothing below imports them.

- ``text``: words every view shares (escaped labels, drift in words, the provider that ran a variant).
- ``figures/``: plotly figures, one module per subject (latency, throughput, size, drift, trade-offs,
  a tree ensemble's truncated variants).
- ``tables``: tables of display text (the tuning table, the truncated ensembles' table).
- ``html``: report.html, one self-contained page.
- ``notebook``: the Jupyter display (``Report._repr_html_``, ``report.figures``) and a progress bar.
- ``cli_table``: the CLI's plain-text table of a run; ``validation_table``: the ``validate`` command's.
- ``output``: the output folder (report.json, report.html, artifacts) that ``Report.write_out`` writes.

The numbers a view shows are derived in ``optimizer_core.summary`` (headline, crossover, Pareto front) and
``optimizer_core.tradeoffs`` (a tree ensemble's trade-offs), and formatted by ``optimizer_core.units``; a view
reads a Report and never recomputes a measurement.
"""
