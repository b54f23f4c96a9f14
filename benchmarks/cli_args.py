"""Argument types shared by the benchmark scripts, so they read --models and --batch-sizes like the CLI does."""

from __future__ import annotations

import argparse

from benchmarks.reference_models import REFERENCE_MODELS
from optimizer_core.config import parse_batch_sizes
from optimizer_core.errors import ConfigError

DEFAULT_BATCH_SIZES = "1,16,256,4096"


def batch_sizes(text: str) -> tuple[int, ...]:
    """--batch-sizes through the core's strict parser ("1,024" is refused, never read as 1 and 24)."""
    try:
        return parse_batch_sizes(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def model_keys(text: str) -> list[str]:
    """--models as a list of reference-model keys, refusing unknown ones by name."""
    keys = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in keys if k not in REFERENCE_MODELS]
    if unknown or not keys:
        named = f"unknown model {unknown[0]!r}" if unknown else "no model given"
        raise argparse.ArgumentTypeError(f"{named}: choose from {', '.join(REFERENCE_MODELS)}")
    return keys
