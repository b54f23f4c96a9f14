from optimizer_core.units import fmt_size


def test_sizes_use_decimal_units_everywhere():
    """Regression: the CLI printed KiB labelled "KB" (144.8 KB for 148,271 bytes) while the HTML report printed
    0.15 MB for the same file."""
    assert fmt_size(148_271) == "148.3 kB"
    assert fmt_size(2_500_000) == "2.50 MB"
    assert fmt_size(512) == "512 B"
    assert fmt_size(None) == "n/a" and fmt_size(None, missing="-") == "-"
