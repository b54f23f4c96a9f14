"""The typed run configuration the CLI and the dashboard both build."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from typing import Any

from optimizer_core.errors import ConfigError

PRECISIONS = ("fp32", "fp64", "fp16", "int8", "int8-static")
DEFAULT_PRECISIONS = PRECISIONS
DEFAULT_BATCH_SIZES = (1, 16, 256, 4096)
DEFAULT_MAX_DRIFT = 1e-4
MAX_BATCH_SIZE = 1_000_000


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

    def __post_init__(self) -> None:
        unknown = [p for p in self.precisions if p not in PRECISIONS]
        if unknown:
            raise ConfigError(f"unknown precision {unknown[0]!r}: choose from {', '.join(PRECISIONS)}")
        if not self.precisions:
            raise ConfigError(f"no precision chosen: pick at least one of {', '.join(PRECISIONS)}")
        if not self.providers:
            raise ConfigError("no provider chosen: use 'auto' or 'cpu'")
        if not self.batch_sizes or any(b < 1 or b > MAX_BATCH_SIZE for b in self.batch_sizes):
            raise ConfigError(f"batch sizes must be whole numbers from 1 to {MAX_BATCH_SIZE:,}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError("--threads must be at least 1")
        if self.threads is not None and self.threads > max_threads():
            raise ConfigError(f"--threads {self.threads} is more than this machine can use "
                              f"({os.cpu_count() or 1} logical cores): use at most {max_threads()}")
        if not (self.budget_s > 0):
            raise ConfigError("--budget-s must be a positive number of seconds")
        if self.max_drift is not None and not (self.max_drift >= 0):
            raise ConfigError("--max-drift must be a non-negative number")
        if self.recommend_tolerance is not None and not (self.recommend_tolerance >= 0):
            raise ConfigError("recommend_tolerance must be a non-negative number")
        if self.calibration_rows < 1:
            raise ConfigError("calibration rows must be at least 1")

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


def parse_list(text: str, *, what: str) -> tuple[str, ...]:
    items = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    if not items:
        raise ConfigError(f"--{what} is empty: give a comma-separated list")
    return items


def parse_batch_sizes(text: str) -> tuple[int, ...]:
    """Batch sizes typed as "1, 16, 256, 4096": positive whole numbers, deduplicated and sorted.

    The CLI's --batch-sizes and the dashboard's field both use it. Raises ConfigError naming the bad entry
    and what to type instead.
    """
    example = "type whole numbers separated by commas, for example 1, 16, 256, 4096"
    grouped = re.search(r"(?<![\d,])(\d{1,3}),(\d{3})(?![\d])", text)
    if grouped:  # "16,384": one size with a thousands separator, or two sizes? Never guess.
        a, b = grouped.groups()
        if b.startswith("0"):
            raise ConfigError(f"{grouped.group(0)!r}: write sizes without thousands separators ({a}{b})")
        raise ConfigError(f"{grouped.group(0)!r} could be {a}{b} or {a} and {b}: write {a}{b} for one size, "
                         f"or '{a}, {b}' (with a space) for two")
    tokens = [t for t in re.split(r"[\s,;]+", text.strip()) if t]
    if not tokens:
        raise ConfigError(f"no batch size given: {example}")
    sizes = set()
    for token in tokens:
        digits = token.replace("_", "")
        if not digits.isascii() or not digits.isdigit():
            raise ConfigError(f"{token!r} is not a positive whole number: {example}")
        if len(digits) > 1 and digits.startswith("0"):
            raise ConfigError(
                f"{token!r} starts with 0: write sizes without thousands separators (1024, not 1,024)"
            )
        size = int(digits)
        if not 1 <= size <= MAX_BATCH_SIZE:
            raise ConfigError(f"{token} is out of range: batch sizes go from 1 to {MAX_BATCH_SIZE:,}")
        sizes.add(size)
    return tuple(sorted(sizes))


