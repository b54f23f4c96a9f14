"""Numbers as people read them, the same in the CLI, the dashboard, report.html and the run history: sizes in
decimal units (1 kB = 1,000 bytes), durations, rates, score differences and shares."""

from __future__ import annotations

import math


def fmt_size(size_bytes: float | None, *, missing: str = "n/a") -> str:
    """148,271 -> "148.3 kB"; 2,500,000 -> "2.50 MB"; 512 -> "512 B"."""
    if size_bytes is None:
        return missing
    if size_bytes < 1_000:
        return f"{size_bytes:,.0f} B"
    if size_bytes < 1_000_000:
        return f"{size_bytes / 1_000:.1f} kB"
    return f"{size_bytes / 1_000_000:,.2f} MB"


def fmt_us(us: float | None) -> str:
    if us is None or not math.isfinite(us):
        return "n/a"
    if us >= 1e6:
        return f"{us / 1e6:.2f} s"
    if us >= 1e3:
        return f"{us / 1e3:.2f} ms"
    return f"{us:.1f} µs" if us >= 10 else f"{us:.2f} µs"


def fmt_rows_per_s(rate: float | None) -> str:
    if rate is None or not math.isfinite(rate):
        return "n/a"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if rate >= scale:
            return f"{rate / scale:.2f}{suffix} rows/s"
    return f"{rate:.1f} rows/s"


def fmt_mb(size_bytes: float | None) -> str:
    """A file size in decimal units (kB under 1 MB), the same as the CLI prints."""
    return fmt_size(size_bytes)


def fmt_diff(x: float | None) -> str:
    if x is None:
        return "n/a"
    if not math.isfinite(x):
        return "unbounded"  # NaN or infinity on one side only (see the run's notes)
    return "0" if x == 0 else f"{x:.2e}"


def fmt_pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.2%}"


# A metric is a sum over rows: two equal models can differ by a rounding error (-1.11e-16), which is not a loss.
DELTA_ZERO = 1e-12


def clean_delta(x: float | None) -> float | None:
    """A metric delta with rounding noise (|x| < DELTA_ZERO) snapped to 0.0."""
    if x is None or not math.isfinite(x):
        return x
    return 0.0 if abs(x) < DELTA_ZERO else x


def fmt_delta(x: float | None, *, missing: str = "n/a") -> str:
    """A metric's change against the native model: "-0.0039", "+0.0012", and "±0" for no change (rounding noise
    under DELTA_ZERO included; a change too small for four decimals keeps its sign and digits: "-2.0e-06")."""
    x = clean_delta(x)
    if x is None:
        return missing
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "±0"
    return f"{x:+.4f}" if abs(x) >= 5e-5 else f"{x:+.1e}"
