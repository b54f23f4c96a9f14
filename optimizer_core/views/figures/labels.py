"""Text labels next to scatter points that do not collide: each label takes the first free place around its point
(above, below, right, left, ...) in the plot's own geometry (log axes compared in log space), and a label with no
free place is left off (the point's name stays in the legend and the hover). QA: "rounds-100" and "fp32" at nearly
the same latency and metric printed over each other as "rounds-1fp32"."""

from __future__ import annotations

import math
from collections.abc import Sequence

# the plot area a figure usually gets (px): labels are placed in this geometry, not in data units
PLOT_WIDTH_PX = 900.0
PLOT_HEIGHT_PX = 300.0
CHAR_PX = 6.2  # a 10 px font's average character width
LINE_PX = 13.0
MARKER_PX = 14.0
_GAP_PX = 4.0

# plotly's textposition -> where the label's centre sits relative to the point, in units of (label width / 2 +
# marker radius, label height / 2 + marker radius); tried in this order
_PLACES: tuple[tuple[str, int, int], ...] = (
    ("top center", 0, 1),
    ("bottom center", 0, -1),
    ("middle right", 1, 0),
    ("middle left", -1, 0),
    ("top right", 1, 1),
    ("bottom right", 1, -1),
    ("top left", -1, 1),
    ("bottom left", -1, -1),
)

_Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in px


def _scaled(values: Sequence[float], log: bool, size: float) -> list[float]:
    vs = [math.log10(v) if log and v > 0 else (v if not log else 0.0) for v in values]
    lo, hi = min(vs), max(vs)
    span = hi - lo
    return [size / 2 if span == 0 else (v - lo) / span * size for v in vs]


def _overlaps(a: _Box, b: _Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def label_positions(xs: Sequence[float], ys: Sequence[float], texts: Sequence[str], *, x_log: bool = False,
                    y_log: bool = False, order: Sequence[int] | None = None) -> list[str | None]:
    """For each point, the plotly ``textposition`` of its label, or None where every place would overlap another
    label or another point's marker. ``order``: the indices in the order they choose (first choice first; the
    rest follow in index order)."""
    n = len(xs)
    if n == 0:
        return []
    px = _scaled(xs, x_log, PLOT_WIDTH_PX)
    py = _scaled(ys, y_log, PLOT_HEIGHT_PX)
    half = MARKER_PX / 2
    markers = [(px[i] - half, py[i] - half, px[i] + half, py[i] + half) for i in range(n)]
    ranked = list(dict.fromkeys([*(order or ()), *range(n)]))
    placed: list[_Box] = []
    out: list[str | None] = [None] * n
    for i in ranked:
        w, h = len(texts[i]) * CHAR_PX, LINE_PX
        for position, dx, dy in _PLACES:
            cx = px[i] + dx * (w / 2 + half + _GAP_PX)
            cy = py[i] + dy * (h / 2 + half + _GAP_PX)
            box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
            if any(_overlaps(box, other) for other in placed):
                continue
            if any(_overlaps(box, m) for j, m in enumerate(markers) if j != i):
                continue
            out[i] = position
            placed.append(box)
            break
    return out


__all__ = ["label_positions"]
