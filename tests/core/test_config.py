"""Parsing what users type: batch sizes from the CLI and the dashboard alike."""

from __future__ import annotations

import pytest

from optimizer_core.config import OptimizeConfig, parse_batch_sizes
from optimizer_core.errors import ConfigError


def test_parse_batch_sizes_takes_exactly_the_numbers_typed():
    assert parse_batch_sizes("2") == (2,)
    assert parse_batch_sizes(" 16, 1,16 ;256  4_096 ") == (1, 16, 256, 4096)
    for bad, words in [
        ("", "no batch size given"),
        ("2, lots", "'lots' is not a positive whole number"),
        ("-5", "'-5' is not a positive whole number"),
        ("2.5", "'2.5' is not a positive whole number"),
        ("0", "0 is out of range"),
        ("1,024", r"'1,024': write sizes without thousands separators \(1024\)"),
        ("1, 16,384", r"'16,384' could be 16384 or 16 and 384"),
        ("007", "'007' starts with 0"),
        ("99999999", "out of range"),
    ]:
        with pytest.raises(ConfigError, match=words):
            parse_batch_sizes(bad)


def test_the_recommendation_tolerance_follows_max_drift_unless_set():
    """Regression: --max-drift 0.1 gated int8 as passing while the recommendation refused it at a fixed 1e-4."""
    assert OptimizeConfig().tolerance == 1e-4 and OptimizeConfig().tolerance_source == "default"
    gated = OptimizeConfig(max_drift=0.1)
    assert gated.tolerance == 0.1 and gated.tolerance_source == "--max-drift"
    both = OptimizeConfig(max_drift=0.1, recommend_tolerance=1e-3)
    assert both.tolerance == 1e-3 and both.tolerance_source == "recommend_tolerance"
    with pytest.raises(ConfigError):
        OptimizeConfig(recommend_tolerance=-1)
