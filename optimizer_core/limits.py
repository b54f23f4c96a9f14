"""Configurable resource limits for untrusted jobs (environment variables, with sane defaults)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from optimizer_core.errors import ResourceLimitError


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return float(raw)
    except ValueError:
        return default


@dataclass(frozen=True)
class Limits:
    max_model_mb: float = 500.0
    max_csv_mb: float = 2048.0
    worker_memory_mb: float = 8192.0  # address-space cap inside a worker process
    worker_file_mb: float = 4096.0  # largest file a worker may write
    job_timeout_s: float = 900.0  # wall clock for one job beyond its timing budget

    @classmethod
    def from_env(cls) -> Limits:
        d = cls()
        return cls(
            max_model_mb=_env_number("INFERENCE_OPTIMIZER_MAX_MODEL_MB", d.max_model_mb),
            max_csv_mb=_env_number("INFERENCE_OPTIMIZER_MAX_CSV_MB", d.max_csv_mb),
            worker_memory_mb=_env_number("INFERENCE_OPTIMIZER_WORKER_MEMORY_MB", d.worker_memory_mb),
            worker_file_mb=_env_number("INFERENCE_OPTIMIZER_WORKER_FILE_MB", d.worker_file_mb),
            job_timeout_s=_env_number("INFERENCE_OPTIMIZER_JOB_TIMEOUT_S", d.job_timeout_s),
        )

    def check_sizes(self, *, model_bytes: int, csv_bytes: int) -> None:
        if model_bytes > self.max_model_mb * 2**20:
            raise ResourceLimitError(
                f"the model file is {_over(model_bytes, self.max_model_mb)} (raise the environment variable "
                "INFERENCE_OPTIMIZER_MAX_MODEL_MB, in MiB, where the tool runs to allow it)"
            )
        if csv_bytes > self.max_csv_mb * 2**20:
            raise ResourceLimitError(
                f"the CSV is {_over(csv_bytes, self.max_csv_mb)} (raise the environment variable "
                "INFERENCE_OPTIMIZER_MAX_CSV_MB, in MiB, where the tool runs, or sample the rows)"
            )


def _over(size_bytes: int, limit_mib: float) -> str:
    """"2.10 MB, over the 2.10 MB limit" can't happen: sizes in the units every other message uses (decimal),
    with the exact bytes when the rounded figures would read the same."""
    from optimizer_core.units import fmt_size

    limit_bytes = int(limit_mib * 2**20)
    size, limit = fmt_size(size_bytes), fmt_size(limit_bytes)
    if size == limit:
        return f"{size_bytes:,} bytes, over the {limit_bytes:,}-byte limit"
    return f"{size}, over the {limit} limit"
