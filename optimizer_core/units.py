"""Sizes as the CLI, the dashboard and the HTML report print them: decimal units (1 kB = 1,000 bytes)."""

from __future__ import annotations


def fmt_size(size_bytes: float | None, *, missing: str = "n/a") -> str:
    """148,271 -> "148.3 kB"; 2,500,000 -> "2.50 MB"; 512 -> "512 B"."""
    if size_bytes is None:
        return missing
    if size_bytes < 1_000:
        return f"{size_bytes:,.0f} B"
    if size_bytes < 1_000_000:
        return f"{size_bytes / 1_000:.1f} kB"
    return f"{size_bytes / 1_000_000:,.2f} MB"
