"""The typed run configuration the CLI and the dashboard both build."""

from __future__ import annotations

import math
import numbers
import os
import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from optimizer_core.errors import ConfigError
from optimizer_core.variants import DEFAULT_PRECISIONS, PRECISIONS

DEFAULT_BATCH_SIZES = (1, 16, 256, 4096)
DEFAULT_MAX_DRIFT = 1e-4
MAX_BATCH_SIZE = 1_000_000
DEFAULT_TREE_SWEEP = ("25%", "50%", "75%")  # the dashboard's "trees kept" default: with native and fp32, five points
MAX_BUDGET_S = 24 * 3600.0  # a day of timing; larger values overflowed deadline arithmetic (time_t)

# How each field is spelled on the command line, so one message serves the CLI and the Python API.
_FLAGS = {"precisions": "--precision", "providers": "--provider", "batch_sizes": "--batch-sizes",
          "threads": "--threads", "budget_s": "--budget-s", "max_drift": "--max-drift", "tune": "--tune",
          "save_ort_optimized": "--save-ort-optimized", "trees": "--trees", "max_metric_loss": "--max-metric-loss"}


def max_threads() -> int:
    """More intra-op threads than this only oversubscribes the cores (and thousands exhaust memory)."""
    return max(64, 4 * (os.cpu_count() or 1))


@dataclass(frozen=True)
class OptimizeConfig:
    precisions: tuple[str, ...] = DEFAULT_PRECISIONS
    providers: tuple[str, ...] = ("auto",)
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    threads: int | None = None  # intra-op threads for the ONNX sessions; None = physical cores
    budget_s: float = 30.0  # wall-clock budget for timing (benchmark + runtime floor)
    max_drift: float | None = None  # the CI gate's tolerance; None = no gate
    recommend_tolerance: float | None = None  # drift allowed for a recommended variant; None: max_drift, else 1e-4
    calibration_rows: int = 512
    graph_optimization: str = "all"
    tune: bool = False
    seed: int = 0
    bench_rows: int = 20_000  # rows sampled for timing on large inputs
    save_ort_optimized: bool = False  # also keep ONNX Runtime's graph-optimized model per variant
    # truncated-ensemble variants: boosting rounds (or forest trees) to keep, as counts (100) or shares ("50%")
    trees: tuple[int | str, ...] = ()
    # a variant whose primary metric is at most this far below native's passes the gate and may be recommended
    max_metric_loss: float | None = None

    def __post_init__(self) -> None:
        # Normalised values are written back (frozen dataclass): a string or list becomes a tuple, numpy
        # integers become ints, so everything downstream sees the documented types.
        set_ = object.__setattr__
        set_(self, "precisions", _names(self.precisions, "precisions", "('fp32', 'int8')"))
        set_(self, "providers", _names(self.providers, "providers", "('auto',) or ('cuda', 'cpu')"))
        set_(self, "batch_sizes", _batch_sizes(self.batch_sizes))
        set_(self, "threads", _threads(self.threads))
        set_(self, "budget_s", _budget(self.budget_s))
        set_(self, "max_drift", _tolerance(self.max_drift, "max_drift", "leave it None for no gate"))
        set_(self, "recommend_tolerance", _tolerance(self.recommend_tolerance, "recommend_tolerance",
                                                      "leave it None to use max_drift or 1e-4"))
        set_(self, "calibration_rows", _whole(self.calibration_rows, "calibration_rows", 1, "512"))
        set_(self, "graph_optimization", _graph_level(self.graph_optimization))
        set_(self, "tune", _flag(self.tune, "tune"))
        set_(self, "seed", _whole(self.seed, "seed", 0, "0"))
        set_(self, "bench_rows", _whole(self.bench_rows, "bench_rows", 1, "20000"))
        set_(self, "save_ort_optimized", _flag(self.save_ort_optimized, "save_ort_optimized"))
        set_(self, "trees", _trees(self.trees))
        set_(self, "max_metric_loss", _tolerance(self.max_metric_loss, "max_metric_loss",
                                                  "leave it None to judge variants by drift alone"))
        unknown = [p for p in self.precisions if p not in PRECISIONS]
        if unknown:
            raise ConfigError(f"unknown precision {unknown[0]!r}: choose from {', '.join(PRECISIONS)}")

    @property
    def tolerance(self) -> float:
        """The drift a recommended variant may have: ``recommend_tolerance``, else the gate's ``max_drift``
        (the user's one stated tolerance), else 1e-4."""
        if self.recommend_tolerance is not None:
            return self.recommend_tolerance
        return self.max_drift if self.max_drift is not None else DEFAULT_MAX_DRIFT

    @property
    def tolerance_source(self) -> str:
        if self.recommend_tolerance is not None:
            return "recommend_tolerance"
        return "--max-drift" if self.max_drift is not None else "default"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _field(name: str) -> str:
    flag = _FLAGS.get(name)
    return f"{name} ({flag})" if flag else name


def _names(value: Any, name: str, example: str) -> tuple[str, ...]:
    """A tuple of names; one string is a comma-separated list ("fp32" or "fp32,int8"), never its letters."""
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{_field(name)} is {_shown(value)}: pass a tuple of names such as {example}")
    items = tuple(dict.fromkeys(v.strip() for v in value if v.strip()))
    if not items:
        what = f"at least one of {', '.join(PRECISIONS)}" if name == "precisions" else "'auto' or 'cpu'"
        raise ConfigError(f"no {name[:-1]} chosen in {_field(name)}: pick {what}")
    return items


def _batch_sizes(value: Any) -> tuple[int, ...]:
    if isinstance(value, str):
        return parse_batch_sizes(value)
    if _is_whole(value):
        value = (value,)
    fix = f"pass whole numbers from 1 to {MAX_BATCH_SIZE:,}, for example (1, 16, 256)"
    if hasattr(value, "tolist") and not isinstance(value, list | tuple):  # a numpy array
        value = value.tolist()
    if isinstance(value, range):
        value = list(value)
    if not isinstance(value, list | tuple) or not value:
        raise ConfigError(f"{_field('batch_sizes')} is {_shown(value)}: {fix}")
    bad = next((v for v in value if not _is_whole(v) or not 1 <= v <= MAX_BATCH_SIZE), None)
    if bad is not None:
        raise ConfigError(f"batch size {_shown(bad)} in {_field('batch_sizes')} is not allowed: {fix}")
    return tuple(sorted({int(v) for v in value}))  # as parse_batch_sizes reads typed text


def _threads(value: Any) -> int | None:
    if value is None:
        return None
    if not _is_whole(value) or value < 1:
        raise ConfigError(f"{_field('threads')} is {_shown(value)}: give a whole number of threads, at least 1 "
                          "(or None for one per physical core)")
    if value > max_threads():
        raise ConfigError(f"--threads {value} is more than this machine can use "
                          f"({os.cpu_count() or 1} logical cores): use at most {max_threads()}")
    return int(value)


def _budget(value: Any) -> float:
    fix = f"give a number of seconds above 0 and at most {MAX_BUDGET_S:,.0f} (24 hours)"
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{_field('budget_s')} is {_shown(value)}: {fix}")
    if value > MAX_BUDGET_S:
        raise ConfigError(f"{_field('budget_s')} {value:g} s is more than 24 hours: give at most "
                          f"{MAX_BUDGET_S:,.0f} seconds")
    return float(value)


def _tolerance(value: Any, name: str, alternative: str) -> float | None:
    if value is None:
        return None
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{_field(name)} is {_shown(value)}: give a finite number of at least 0, or {alternative}")
    return float(value)


def _whole(value: Any, name: str, minimum: int, example: str) -> int:
    if not _is_whole(value) or value < minimum:
        raise ConfigError(f"{_field(name)} is {_shown(value)}: give a whole number of at least {minimum} "
                          f"(default {example})")
    return int(value)


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ConfigError(f"{_field(name)} is {_shown(value)}: give True or False")
    return bool(value)


def _graph_level(value: Any) -> str:
    from optimizer_core.runtime import GRAPH_LEVELS

    if value not in GRAPH_LEVELS:
        raise ConfigError(f"unknown graph optimization level {_shown(value)} in graph_optimization: "
                          f"choose from {', '.join(GRAPH_LEVELS)}")
    return str(value)


def _is_whole(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)  # np.bool_ is not Integral


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_list(text: str, *, what: str) -> tuple[str, ...]:
    items = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    if not items:
        raise ConfigError(f"--{what} is empty: give a comma-separated list")
    return items


def parse_batch_sizes(text: str) -> tuple[int, ...]:
    """Batch sizes typed as "1, 16, 256, 4096": positive whole numbers, deduplicated and sorted.

    The CLI's --batch-sizes and the dashboard's field both use it. A comma separates sizes, except that
    "A,BBB" that reads as a typical size written with a thousands separator ("1,024", "16,384", "2,500")
    is refused as ambiguous. Raises ConfigError naming the bad entry and what to type instead.
    """
    example = "type whole numbers separated by commas, for example 1, 16, 256, 4096"
    for grouped in re.finditer(r"(?<![\d,])(\d{1,3}),(\d{3})(?![\d])", text):
        _refuse_thousands_separator(grouped.group(0), *grouped.groups())
    tokens = [t for t in re.split(r"[\s,;]+", text.strip()) if t]
    if not tokens:
        raise ConfigError(f"no batch size given: {example}")
    sizes = set()
    for token in tokens:
        digits = token.replace("_", "")
        if not digits.isascii() or not digits.isdigit():
            raise ConfigError(f"{token!r} is not a positive whole number: {example}")
        if len(digits) > 1 and digits.startswith("0"):
            if len(digits) == 3 and f",{token}" in text:  # "4096,1,024", "1,000,000": a thousands group
                raise ConfigError(f"',{token}' reads as part of a number written with a thousands separator: write "
                                  "sizes without separators (1024, not 1,024)")
            raise ConfigError(f"{token!r} starts with 0: write the size without leading zeros ({int(digits)})")
        size = int(digits)
        if not 1 <= size <= MAX_BATCH_SIZE:
            raise ConfigError(f"{token} is out of range: batch sizes go from 1 to {MAX_BATCH_SIZE:,}")
        sizes.add(size)
    return tuple(sorted(sizes))


def _refuse_thousands_separator(text: str, a: str, b: str) -> None:
    """Refuse "A,BBB" when it is most likely one size typed with a thousands separator; else it is two sizes."""
    if a.startswith("0"):
        return  # no number is written "0,BBB": two sizes (and the 0 is refused as out of range)
    if b.startswith("0"):
        raise ConfigError(f"{text!r}: write sizes without thousands separators ({a}{b})")
    joined = int(a + b)
    # sizes people write with a thousands separator: powers of two and multiples of 256 (1,536; 6,144) or of
    # 500 (2,500); "1,256" or "16,256" are two sizes
    typical = joined >= 1000 and (joined % 256 == 0 or joined % 500 == 0)
    if typical:  # "16,384": a power of two or a round number, so one size or two? Never guess.
        raise ConfigError(f"{text!r} could be {a}{b} or {a} and {b}: write {a}{b} for one size, "
                          f"or '{a}, {b}' (with a space) for two")


def _trees(value: Any) -> tuple[int | str, ...]:
    """Tree counts as given to OptimizeConfig: text ("25%, 50%"), or a sequence of whole numbers and "N%"."""
    if isinstance(value, str):
        return parse_trees(value) if value.strip() else ()
    if _is_whole(value):
        value = (value,)
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{_field('trees')} is {_shown(value)}: pass counts and percentages such as (100, '50%')")
    items: list[int | str] = []
    for item in value:
        if isinstance(item, str):
            items += parse_trees(item)
        elif _is_whole(item):
            items += parse_trees(str(int(item)))
        else:
            raise ConfigError(f"{_shown(item)} in {_field('trees')} is neither a whole number of trees nor a "
                              "percentage: write 100 or '50%'")
    return tuple(dict.fromkeys(items))


def parse_trees(text: str) -> tuple[int | str, ...]:
    """Tree counts typed as "25%, 50%, 100": whole numbers of boosting rounds (or forest trees) and percentages of
    the model's own, deduplicated in the order given. Percentages are kept as text ("12.5%") and resolved against
    the model when the run builds the variants. Raises ConfigError naming the bad entry."""
    example = "write whole numbers of rounds or percentages separated by commas, for example 25%, 50%, 75% or 50, 100"
    tokens = [t for t in re.split(r"[\s,;]+", text.strip()) if t]
    if not tokens:
        raise ConfigError(f"no tree count given: {example}")
    out: list[int | str] = []
    for token in tokens:
        if token.endswith("%"):
            number = token[:-1]
            try:
                share = float(number)
            except ValueError:
                raise ConfigError(f"{token!r} is not a percentage: {example}") from None
            if not re.fullmatch(r"\d+(\.\d+)?", number) or not 0 < share <= 100:
                raise ConfigError(f"{token!r} is out of range: a percentage of the trees is above 0% and at most "
                                  "100%")
            out.append(f"{share:g}%")
            continue
        if not token.isascii() or not token.isdigit():
            raise ConfigError(f"{token!r} is not a whole number of trees or a percentage: {example}")
        if int(token) < 1:
            raise ConfigError(f"{token!r} keeps no tree: keep at least 1 (or a percentage such as 50%)")
        out.append(int(token))
    return tuple(dict.fromkeys(out))
