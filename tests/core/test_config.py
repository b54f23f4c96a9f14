"""Parsing what users type: batch sizes from the CLI and the dashboard alike, and OptimizeConfig's checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optimizer_core.config import MAX_BUDGET_S, OptimizeConfig, parse_batch_sizes
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


def test_a_comma_separates_sizes_unless_it_reads_as_a_typical_size_with_a_thousands_separator():
    """Regression: "1,256" was refused as "could be 1256", though nobody types 1256 with a separator."""
    assert parse_batch_sizes("1,256") == (1, 256)
    assert parse_batch_sizes("16,256") == (16, 256)
    assert parse_batch_sizes("1,512") == (1, 512)
    assert parse_batch_sizes("1,16,256,4096") == (1, 16, 256, 4096)
    assert parse_batch_sizes("64,128, 1,256") == (1, 64, 128, 256)
    for ambiguous in ("8,192", "16,384", "2,500", "1,500", "32,768"):  # powers of two >= 1024, multiples of 500
        a, b = ambiguous.split(",")
        with pytest.raises(ConfigError, match=f"could be {a}{b} or {a} and {b}"):
            parse_batch_sizes(ambiguous)
    with pytest.raises(ConfigError, match="could be 8192"):
        parse_batch_sizes("1,256, 8,192")  # every group is checked, not only the first
    for separated in ("10,000", "4,096"):
        with pytest.raises(ConfigError, match="without thousands separators"):
            parse_batch_sizes(separated)


def test_a_leading_zero_is_named_as_such_not_as_a_thousands_separator():
    with pytest.raises(ConfigError, match=r"'01' starts with 0: write the size without leading zeros \(1\)") as err:
        parse_batch_sizes("01")
    assert "thousands" not in str(err.value)


def test_the_recommendation_tolerance_follows_max_drift_unless_set():
    """Regression: --max-drift 0.1 gated int8 as passing while the recommendation refused it at a fixed 1e-4."""
    assert OptimizeConfig().tolerance == 1e-4 and OptimizeConfig().tolerance_source == "default"
    gated = OptimizeConfig(max_drift=0.1)
    assert gated.tolerance == 0.1 and gated.tolerance_source == "--max-drift"
    both = OptimizeConfig(max_drift=0.1, recommend_tolerance=1e-3)
    assert both.tolerance == 1e-3 and both.tolerance_source == "recommend_tolerance"
    with pytest.raises(ConfigError):
        OptimizeConfig(recommend_tolerance=-1)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"batch_sizes": (2.5,)}, r"batch size 2\.5 in batch_sizes \(--batch-sizes\)"),
        ({"batch_sizes": (True,)}, "batch size True"),
        ({"batch_sizes": (0,)}, "batch size 0"),
        ({"batch_sizes": ()}, "batch_sizes"),
        ({"batch_sizes": None}, "batch_sizes"),
        ({"bench_rows": 0}, "bench_rows is 0: give a whole number of at least 1"),
        ({"bench_rows": 10.5}, "bench_rows is 10.5"),
        ({"threads": 2.5}, r"threads \(--threads\) is 2\.5: give a whole number of threads"),
        ({"threads": 0}, "threads"),
        ({"seed": 1.5}, "seed is 1.5: give a whole number of at least 0"),
        ({"seed": -1}, "seed is -1"),
        ({"budget_s": math.inf}, r"budget_s \(--budget-s\) is inf: give a number of seconds"),
        ({"budget_s": math.nan}, "budget_s"),
        ({"budget_s": "5"}, "budget_s .* is '5'"),
        ({"budget_s": 1e12}, "more than 24 hours"),
        ({"budget_s": 0}, "budget_s"),
        ({"budget_s": True}, "budget_s"),
        ({"precisions": None}, r"precisions \(--precision\) is None: pass a tuple of names"),
        ({"precisions": ("fp32", 5)}, "precisions"),
        ({"precisions": ()}, "no precision chosen"),
        ({"precisions": "fp33"}, "unknown precision 'fp33'"),
        ({"providers": None}, r"providers \(--provider\) is None"),
        ({"providers": ""}, "no provider chosen"),
        ({"max_drift": "0.1"}, r"max_drift \(--max-drift\) is '0.1'"),
        ({"max_drift": math.nan}, "max_drift"),
        ({"recommend_tolerance": math.nan}, "recommend_tolerance is nan"),
        ({"calibration_rows": 0}, "calibration_rows"),
        ({"graph_optimization": "bogus"}, "unknown graph optimization level 'bogus'"),
        ({"tune": "yes"}, r"tune \(--tune\) is 'yes': give True or False"),
        ({"save_ort_optimized": 1}, "save_ort_optimized"),
    ],
)
def test_invalid_values_are_a_one_line_config_error_naming_the_field(kwargs, words):
    """Regression: these were accepted, then optimize() raised a raw ValueError/TypeError/OverflowError."""
    with pytest.raises(ConfigError, match=words) as err:
        OptimizeConfig(**kwargs)
    assert "\n" not in str(err.value)


def test_strings_lists_and_numpy_values_are_normalised():
    """Regression: precisions="fp32" was read letter by letter ("unknown precision 'f'")."""
    config = OptimizeConfig(precisions="fp32", providers="cpu", batch_sizes=16, threads=np.int64(2),
                            budget_s=np.float32(2.0), seed=np.int32(3), tune=np.bool_(True))
    assert config.precisions == ("fp32",) and config.providers == ("cpu",)
    assert config.batch_sizes == (16,) and config.threads == 2 and type(config.threads) is int
    assert config.budget_s == 2.0 and config.seed == 3 and config.tune is True
    assert OptimizeConfig(precisions="fp32, int8").precisions == ("fp32", "int8")
    assert OptimizeConfig(precisions=["fp32", "fp32"]).precisions == ("fp32",)
    assert OptimizeConfig(batch_sizes="1, 16").batch_sizes == (1, 16)
    assert OptimizeConfig(batch_sizes=[np.int64(4), 2]).batch_sizes == (2, 4)
    assert OptimizeConfig(budget_s=MAX_BUDGET_S).budget_s == MAX_BUDGET_S
    assert hash(OptimizeConfig(precisions=["fp32"])) == hash(OptimizeConfig(precisions=("fp32",)))


def test_a_config_survives_its_dict_round_trip():
    """The worker rebuilds the config from to_dict() (lists turned back into tuples)."""
    config = OptimizeConfig(precisions=("fp32", "int8"), batch_sizes=(1, 64), threads=2, budget_s=5, max_drift=0.01)
    data = {k: tuple(v) if isinstance(v, list) else v for k, v in config.to_dict().items()}
    assert OptimizeConfig(**data) == config


def test_sizes_typed_with_a_thousands_separator_are_refused_for_multiples_of_256_too():
    """Regression: '1,536' and '6,144' (3 x 512, 6 x 1,024) were silently read as two sizes each."""
    for text in ("1,536", "6,144", "1,280", "16,384", "2,500"):
        with pytest.raises(ConfigError, match="could be"):
            parse_batch_sizes(text)
    assert parse_batch_sizes("16,256") == (16, 256) and parse_batch_sizes("1,512") == (1, 512)


def test_api_batch_sizes_accept_ranges_and_arrays_sorted_and_deduplicated():
    """Regression: range(1, 3) and numpy arrays were refused, and tuples were neither sorted nor deduplicated."""
    import numpy as np

    assert OptimizeConfig(batch_sizes=range(1, 3)).batch_sizes == (1, 2)
    assert OptimizeConfig(batch_sizes=np.array([16, 1])).batch_sizes == (1, 16)
    assert OptimizeConfig(batch_sizes=(256, 1, 16, 16)).batch_sizes == (1, 16, 256)
    with pytest.raises(ConfigError, match="finite"):
        OptimizeConfig(max_drift=float("inf"))


def test_a_thousands_group_after_a_comma_is_named_as_such():
    """Regression: '4096,1,024' suggested '(24)' and '1,000,000' suggested '(1000)'."""
    for text in ("4096,1,024", "1,000,000"):
        with pytest.raises(ConfigError, match="thousands separator"):
            parse_batch_sizes(text)
