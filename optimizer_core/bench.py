"""Latency and throughput for any runner, native or ONNX, measured by one harness.

Every runner is timed the same way: inputs are prepared before timing (contiguous arrays, a ring of
distinct batches so the same rows are not replayed from cache), a warm-up until timings settle, then
``time.perf_counter_ns`` around the call alone. Runners are measured in interleaved rounds of blocks
(A B C A B C ...) so that a drift of the machine's speed during the run does not bias their ratios. Before
each block the harness waits, untimed, until the previous runner's worker threads have gone idle
(``thread_idle``): spinning OpenMP or ONNX Runtime threads would otherwise slow the runner that follows,
which a deployment running one model alone never sees.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import DTypeLike
from scipy.special import betainc

from optimizer_core import thread_idle
from optimizer_core.report import P99_MIN_CALLS, P999_MIN_CALLS, FloorRow, LatencyStats

__all__ = [
    "DEFAULT_BATCH_SIZES",
    "BenchResult",
    "Runner",
    "benchmark",
    "bootstrap_median_ci",
    "downsample",
    "explain",
    "floor_session",
    "harness_overhead_ns",
    "measure_floor",
    "native_runner",
    "noise_reasons",
    "onnx_runner",
    "summarize",
    "trivial_model",
]

Progress = Callable[[str, float], None]

DEFAULT_BATCH_SIZES = (1, 16, 256, 4096)
SCORES_NAME = "scores"  # the ONNX output contract's scores tensor (converters/contract.py)

RING_BATCHES = 64  # distinct pre-built batches per batch size
RING_BYTES = 64 * 2**20  # ... unless their float64 copies would take more memory than this
WARMUP_MIN_CALLS = 20
WARMUP_MIN_S = 0.2
WARMUP_SHARE = 0.3  # at most this share of a runner's time at one batch size goes to warm-up
SETTLE_WINDOW = 10  # warm-up has settled when two consecutive windows' medians agree...
SETTLE_TOLERANCE = 0.10  # ...within this fraction
BLOCK_MIN_S = 0.02  # a block is long enough when it lasts this long...
BLOCK_MIN_CALLS = 10  # ...or holds this many calls
BLOCK_MAX_S = 0.04  # a block whose calls turn out slower than estimated ends after this much timed work
MIN_ROUNDS = 5  # blocks are sized so that min_calls takes at least this many rounds
LEAD_IN_MAX_S = 0.002  # untimed calls open each block when a call is cheaper than this...
LEAD_IN_S = 0.001  # ...for about this long (at least one call, however short the block: see _Cell.lead_in)
MAX_SAMPLES = 10_000
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_MAX_ELEMENTS = 200_000  # resampling beyond this uses the exact bootstrap distribution
NOISY_STD = 0.10  # pyperf: std above 10% of the mean
NOISY_EXTREME = 0.50  # pyperf: min or max more than 50% away from the mean
WIDE_CI = 0.20  # the median's 95% CI wider than 20% of the median
STABLE_MIN_CALLS = 10  # fewer timed calls than this are always flagged noisy
REPEATED_ROWS = "repeated rows"  # how the note on a batch larger than the data starts: a run note
PROGRESS_EVERY_S = 0.1
LARGE_BATCH = 128  # where intra-op threads start to matter
TREE_KERNEL_ROWS = 50  # ORT's TreeEnsemble switches its parallelization above 50 rows...
TREE_KERNEL_TREES = 80  # ...and 80 trees
FLOOR_DOMINATES = 2.0  # a p50 within 2x of the runtime floor is mostly runtime overhead
IDLE_MAX_SHARE = 0.25  # the waits for idle threads take at most this share of the budget...
IDLE_GIVE_UP = 3  # ...and stop after this many waits in a row found a thread still running


def _identity(batch: np.ndarray) -> Any:
    return batch


@dataclass(frozen=True)
class Runner:
    """Something to time: ``predict(prepare(batch))``; ``prepare`` runs before timing, never inside it."""

    name: str
    predict: Callable[[Any], Any]
    prepare: Callable[[np.ndarray], Any] = _identity


@dataclass(frozen=True)
class BenchResult:
    latency: dict[str, tuple[LatencyStats, ...]]  # runner name -> one per batch size, in order
    settings: dict[str, Any]
    notes: tuple[str, ...]
    wall_s: float


def onnx_runner(name: str, session: Any, input_dtype: DTypeLike | None = np.float32, *,
                output: str | None = None) -> Runner:
    """A runner for an ONNX Runtime session that requests only the scores output.

    ``input_dtype=None`` takes the dtype from the session's input (float64 for double models);
    ``output`` names the output to request when the graph does not follow the contract's ``scores``.
    """
    first = session.get_inputs()[0]
    if input_dtype is None:
        input_dtype = np.float64 if first.type == "tensor(double)" else np.float32
    dtype = np.dtype(input_dtype)
    outputs = [o.name for o in session.get_outputs()]
    if output is not None and output not in outputs:
        raise ValueError(f"the session has no output {output!r} (outputs: {', '.join(outputs)})")
    wanted = [output] if output else [SCORES_NAME] if SCORES_NAME in outputs else outputs[:1]
    input_name = first.name

    def prepare(batch: np.ndarray) -> dict[str, np.ndarray]:
        return {input_name: np.ascontiguousarray(batch, dtype=dtype)}

    return Runner(name=name, predict=functools.partial(session.run, wanted), prepare=prepare)


def native_runner(name: str, predict_fn: Callable[[np.ndarray], Any]) -> Runner:
    """A runner for a native predict function taking a float32 ``[B, F]`` array."""
    return Runner(name=name, predict=predict_fn)


# --------------------------------------------------------------------------------------------------
# statistics


def summarize(samples_ns: np.ndarray, batch_size: int, *, seed: int = 0) -> LatencyStats:
    """Latency statistics (microseconds) for per-call timings given in nanoseconds."""
    us = np.asarray(samples_ns, dtype=np.float64).ravel() / 1000.0
    if us.size == 0:
        raise ValueError("summarize() needs at least one timed call")
    n = int(us.size)
    mean = float(us.mean())
    std = float(us.std(ddof=1)) if n > 1 else 0.0
    p50, p90, p95, p99, p999 = (float(v) for v in np.percentile(us, [50, 90, 95, 99, 99.9]))
    ci_low, ci_high = bootstrap_median_ci(us, seed=seed)
    values = stability_values(us)
    reasons = noise_reasons(mean=float(values.mean()), std=float(values.std(ddof=1)) if values.size > 1 else 0.0,
                            min_us=float(values.min()), max_us=float(values.max()), p50=p50, ci=(ci_low, ci_high))
    if n < STABLE_MIN_CALLS:
        reasons = (f"only {n} timed call{'s' if n > 1 else ''}: too few to tell a steady time from a disturbed one",
                   *reasons)
    return LatencyStats(
        batch_size=int(batch_size),
        calls=n,
        mean_us=mean,
        std_us=std,
        min_us=float(us.min()),
        max_us=float(us.max()),
        p50_us=p50,
        p90_us=p90,
        p95_us=p95,
        p99_us=p99 if n >= P99_MIN_CALLS else None,
        p999_us=p999 if n >= P999_MIN_CALLS else None,
        rows_per_s=batch_size / (mean * 1e-6) if mean > 0 else float("inf"),
        p50_ci_low_us=ci_low,
        p50_ci_high_us=ci_high,
        noisy=bool(reasons),
        noise_reasons=reasons,
        samples_us=tuple(float(v) for v in downsample(us)),
        rows_per_s_p50=batch_size / (p50 * 1e-6) if p50 > 0 else float("inf"),
    )


def bootstrap_median_ci(samples: np.ndarray, *, seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES,
                        level: float = 0.95) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the median.

    Small samples are resampled (``resamples`` times, seeded, vectorized). Where that would draw more than
    ``BOOTSTRAP_MAX_ELEMENTS`` values, the interval is read from the exact bootstrap distribution of the
    median instead, the limit that infinitely many resamples converge to: the median of a resample is at
    most the j-th smallest value exactly when at least half the draws are, a binomial tail. That costs
    one sort, so 10,000 samples take about a millisecond instead of a second.
    """
    x = np.asarray(samples, dtype=np.float64).ravel()
    n = x.size
    if n < 2:
        return float(x[0]), float(x[0])
    tail = (1.0 - level) / 2
    if n * resamples > BOOTSTRAP_MAX_ELEMENTS:
        return _exact_bootstrap_median_ci(np.sort(x), tail)
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n), dtype=np.int32)
    low, high = np.percentile(np.median(x[idx], axis=1), [tail * 100, 100 - tail * 100])
    return float(low), float(high)


def _exact_bootstrap_median_ci(sorted_x: np.ndarray, tail: float) -> tuple[float, float]:
    n = sorted_x.size
    p = np.arange(1, n + 1) / n  # chance that one draw is at most sorted_x[j]
    # P(median* <= x_j) = P(Binomial(n, p_j) >= m) = I_p(m, n - m + 1); for even n the median averages the
    # (n/2)-th and (n/2 + 1)-th values: the lower one bounds the low end and the upper one the high end
    low_m, high_m = (n + 1) // 2, n // 2 + 1
    cdf_low = betainc(low_m, n - low_m + 1, p)
    cdf_high = betainc(high_m, n - high_m + 1, p)
    low = min(int(np.searchsorted(cdf_low, tail)), n - 1)
    high = min(int(np.searchsorted(cdf_high, 1 - tail)), n - 1)
    return float(sorted_x[low]), float(sorted_x[high])


STABILITY_VALUES = 50


def stability_values(us: np.ndarray, target: int = STABILITY_VALUES) -> np.ndarray:
    """Means of consecutive groups of calls, in timing order: what pyperf's rules judge.

    pyperf applies its instability rules to values that each average many loops; applied to single
    calls of a few microseconds they would flag nearly every measurement (one descheduled call is
    enough). Grouping into about ``target`` consecutive means keeps the rules' meaning: a machine
    whose speed drifted during the measurement.
    """
    group = max(1, us.size // target)
    usable = (us.size // group) * group
    return us[:usable].reshape(-1, group).mean(axis=1)


IMPLAUSIBLE_RATIO = 1.5  # a call on fewer rows this much slower than one on more rows was disturbed


def flag_implausible(rows: tuple[LatencyStats, ...]) -> tuple[LatencyStats, ...]:
    """Mark noisy a batch size whose p50 exceeds a larger batch size's p50 by IMPLAUSIBLE_RATIO: more rows per
    call never make a call faster like that, so the slower cell was measured on a disturbed machine."""
    out = []
    for row in rows:
        larger = [r for r in rows if r.batch_size > row.batch_size and r.p50_us > 0]
        faster = min(larger, key=lambda r: r.p50_us, default=None)
        if faster is not None and row.p50_us > IMPLAUSIBLE_RATIO * faster.p50_us:
            reason = (f"its p50 is {row.p50_us / faster.p50_us:.1f}x the p50 at the larger batch size "
                      f"{faster.batch_size:,}: the calls were disturbed")
            row = dataclasses.replace(row, noisy=True, noise_reasons=(reason, *row.noise_reasons))
        out.append(row)
    return tuple(out)


def noise_reasons(*, mean: float, std: float, min_us: float, max_us: float, p50: float,
                  ci: tuple[float, float]) -> tuple[str, ...]:
    """pyperf's instability rules (on ``stability_values``), plus a wide median CI, in words."""
    if mean <= 0:
        return ()
    reasons = []
    if std > NOISY_STD * mean:
        reasons.append(f"the standard deviation is {std / mean:.0%} of the mean (more than {NOISY_STD:.0%})")
    if min_us < (1 - NOISY_EXTREME) * mean:
        reasons.append(f"the fastest group of calls is {(mean - min_us) / mean:.0%} below the mean "
                       f"(more than {NOISY_EXTREME:.0%})")
    if max_us > (1 + NOISY_EXTREME) * mean:
        reasons.append(f"the slowest group of calls is {(max_us - mean) / mean:.0%} above the mean "
                       f"(more than {NOISY_EXTREME:.0%})")
    width = ci[1] - ci[0]
    if p50 > 0 and width > WIDE_CI * p50:
        reasons.append(f"the 95% confidence interval of the median is {width / p50:.0%} of the median "
                       f"(more than {WIDE_CI:.0%})")
    return tuple(reasons)


def downsample(values: np.ndarray, limit: int = MAX_SAMPLES) -> np.ndarray:
    """At most ``limit`` values, evenly strided, in their original order, keeping the min and the max."""
    x = np.asarray(values).ravel()
    if x.size <= limit:
        return x
    extremes = np.array([int(np.argmin(x)), int(np.argmax(x))])
    strided = np.linspace(0, x.size - 1, limit - 2).round().astype(np.int64)
    return x[np.unique(np.concatenate([strided, extremes]))]


# --------------------------------------------------------------------------------------------------
# the timing harness


def _time_calls(predict: Callable[[Any], Any], inputs: Sequence[Any], start: int, calls: int,
                out: list[int], max_ns: float = math.inf) -> int:
    """Time up to ``calls`` calls rotating over ``inputs`` from ``start``, appending ns to ``out``.

    Stops early once the timed calls add up to ``max_ns`` (so an unexpectedly slow call cannot stretch a
    block far past its share); returns the index of the next input.
    """
    clock = time.perf_counter_ns
    append = out.append
    k = len(inputs)
    i = start
    spent = 0
    for _ in range(calls):
        x = inputs[i]
        i = i + 1 if i + 1 < k else 0
        t0 = clock()
        predict(x)
        elapsed = clock() - t0
        append(elapsed)
        spent += elapsed
        if spent >= max_ns:
            break
    return i


def harness_overhead_ns(calls: int = 20_000) -> float:
    """Median nanoseconds the timing loop itself reports around a no-op call (what every sample carries)."""
    samples: list[int] = []
    inputs = [None] * 8
    with _gc_paused():
        _time_calls(_noop, inputs, 0, 1000, [])
        _time_calls(_noop, inputs, 0, calls, samples)
    return float(np.median(samples))


def _noop(x: Any) -> None:
    return None


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector so a collection does not land inside a timed call."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _batch_ring(X: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Distinct contiguous batches of ``X``: row slices (views) from different starting rows.

    When ``X`` has fewer rows than a batch, its rows are repeated (``np.resize``) to fill it, and the
    batches start at different rows of that cycle.
    """
    n, n_features = X.shape
    by_memory = RING_BYTES // max(1, batch_size * n_features * 8)  # room for a float64 copy per runner
    if n >= batch_size:
        count = max(1, min(RING_BATCHES, by_memory, n - batch_size + 1))
        starts = np.sort(rng.choice(n - batch_size + 1, size=count, replace=False))
        base = X
    else:
        count = max(1, min(RING_BATCHES, by_memory, n))
        starts = np.arange(count)
        base = np.resize(X, (batch_size + count - 1, n_features))
    return [base[int(s): int(s) + batch_size] for s in starts]


@dataclass
class _Cell:
    """One runner at one batch size while it is being measured."""

    runner: Runner
    inputs: list[Any]
    samples: list[int] = field(default_factory=list)
    next_input: int = 0
    est_ns: float = 0.0
    warmup_calls: int = 0
    warmup_s: float = 0.0
    settled: bool = False
    blocks: int = 0

    def run(self, calls: int, out: list[int], max_s: float = math.inf) -> None:
        self.next_input = _time_calls(self.runner.predict, self.inputs, self.next_input, calls, out, max_s * 1e9)

    def lead_in(self) -> None:
        """Untimed calls after another runner's block: its caches, branch history and thread pools take a
        few calls to come back (seen: 65 µs, then 13 µs, then a steady 9 µs for a 9 µs call). Not capped by
        the block's size: the tuner's 10-call blocks with 2 lead-in calls measured a 14 µs call at 19-20 µs."""
        self.run(max(1, int(LEAD_IN_S / max(self.est_ns / 1e9, 1e-9))), [])


class _Clock:
    """The run's budget and its throttled progress reports."""

    def __init__(self, budget_s: float, progress: Progress | None):
        self.start = time.perf_counter()
        self.deadline = self.start + budget_s
        self.budget_s = budget_s
        self.progress = progress
        self._last = -math.inf
        self._fraction = 0.0

    def now(self) -> float:
        return time.perf_counter()

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def report(self, stage: str, *, force: bool = False, fraction: float | None = None) -> None:
        now = time.perf_counter()
        if self.progress is None or (not force and now - self._last < PROGRESS_EVERY_S):
            return
        self._last = now
        value = (now - self.start) / self.budget_s if fraction is None else fraction
        self._fraction = max(self._fraction, min(1.0, value))
        self.progress(stage, self._fraction)


class _IdleWaits:
    """The untimed wait before a runner's warm-up or block until the other threads of the process are idle.

    It stops waiting (with a note) when threads stay busy for IDLE_GIVE_UP waits in a row, or once the waits
    add up to ``max_total_s``: something that never rests must not eat the measurement's budget."""

    def __init__(self, max_total_s: float = math.inf) -> None:
        self.max_total_s = max_total_s
        self.waits = 0
        self.waited_s = 0.0
        self.still_busy = 0  # waits that ended at thread_idle.IDLE_MAX_S with a thread still running
        self.gave_up = False
        self._busy_in_a_row = 0

    def __call__(self) -> None:
        if self.gave_up:
            return
        result = thread_idle.wait_until_idle(min(thread_idle.IDLE_MAX_S, self.max_total_s - self.waited_s))
        self.waits += 1
        self.waited_s += result.waited_s
        if self.waited_s >= self.max_total_s:
            self.gave_up = True
        if result.idle:
            self._busy_in_a_row = 0
            return
        self.still_busy += 1
        self._busy_in_a_row += 1
        self.gave_up = self._busy_in_a_row >= IDLE_GIVE_UP

    def notes(self) -> list[str]:
        limit = f"{thread_idle.IDLE_MAX_S * 1000:g} ms"
        if self.gave_up:
            why = (f"the waits added up to {IDLE_MAX_SHARE:.0%} of the budget" if self.waited_s >= self.max_total_s
                   else f"threads were still running after {limit} {IDLE_GIVE_UP} times in a row")
            return [f"the harness stopped waiting for this process's other threads to go idle before each block ({why}; "
                    f"{self.waited_s:.1f} s over {self.waits:,} waits): from then on the runners may have disturbed "
                    "one another"]
        if self.still_busy:
            return [f"other threads of this process were still running {limit} after the previous block before "
                    f"{self.still_busy:,} of {self.waits:,} blocks: the runners may have disturbed one another there"]
        return []


def _window(count: int) -> int:
    return max(SETTLE_WINDOW, count // 4)


def _settled(samples: list[int]) -> bool:
    """The median of the latest window agrees with the window before it (windows grow with the count)."""
    w = _window(len(samples))
    if len(samples) < 2 * w:
        return False
    last = float(np.median(samples[-w:]))
    before = float(np.median(samples[-2 * w:-w]))
    return before > 0 and abs(last / before - 1) <= SETTLE_TOLERANCE


def _warm_up(cell: _Cell, cap_s: float) -> None:
    """Untimed calls until timings settle (>= 20 calls and >= 200 ms), or until ``cap_s`` is spent."""
    timings: list[int] = []
    start = time.perf_counter()
    cell.run(1, timings)  # always at least one call: it also gives the first estimate of a call's cost
    while True:
        elapsed = time.perf_counter() - start
        est_s = max(float(np.median(timings[-_window(len(timings)):])) / 1e9, 1e-9)
        cell.settled = len(timings) >= WARMUP_MIN_CALLS and elapsed >= WARMUP_MIN_S and _settled(timings)
        if cell.settled or elapsed + est_s > cap_s:
            break
        # check again after a quarter more calls, at most ~50 ms later, never past the cap
        chunk = min(_window(len(timings)), int(0.05 / est_s), int((cap_s - elapsed) / est_s))
        cell.run(max(1, chunk), timings, max_s=cap_s - elapsed)
    cell.warmup_calls = len(timings)
    cell.warmup_s = time.perf_counter() - start
    cell.est_ns = float(np.median(timings[-_window(len(timings)):]))


def _block_calls(est_ns: float, min_calls: int) -> int:
    """Calls in one block: >= BLOCK_MIN_S long or >= BLOCK_MIN_CALLS calls, and min_calls in >= MIN_ROUNDS."""
    by_time = math.ceil(BLOCK_MIN_S / max(est_ns / 1e9, 1e-9))
    most = max(BLOCK_MIN_CALLS, math.ceil(min_calls / MIN_ROUNDS))
    return max(1, min(by_time, most))


def _measure_rounds(cells: list[_Cell], share_end: float, min_calls: int, max_calls: int,
                    clock: _Clock, stage: str, wait_idle: _IdleWaits | None = None) -> int:
    """Interleaved rounds of blocks (A B C A B C ...) until every runner has max_calls or time is up.

    ``wait_idle`` (several runners) is called before each block: an untimed wait for the previous runner's
    threads to go idle, whose time comes out of the share like any other."""
    rounds = 0
    while True:
        active = [c for c in cells if len(c.samples) < max_calls]
        if not active:
            return rounds
        ran = False
        for position, cell in enumerate(active):
            # the runners still to go in this round share what is left equally
            fair_s = (share_end - time.perf_counter()) / (len(active) - position)
            calls = min(_block_calls(cell.est_ns, min_calls), max_calls - len(cell.samples),
                        int(fair_s / max(cell.est_ns / 1e9, 1e-9)))
            if calls <= 0:
                if cell.samples:
                    continue
                calls = 1  # every runner gets at least one timed call at every batch size
            if wait_idle is not None and len(active) > 1:
                wait_idle()  # its time comes out of the share: the block shrinks to what is left (>= 1 call)
                fair_s = (share_end - time.perf_counter()) / (len(active) - position)
                calls = max(1, min(calls, int(fair_s / max(cell.est_ns / 1e9, 1e-9))))
            block: list[int] = []
            with _gc_paused():
                if cell.est_ns / 1e9 < LEAD_IN_MAX_S:
                    cell.lead_in()
                cell.run(calls, block, max_s=min(BLOCK_MAX_S, max(fair_s, BLOCK_MIN_S)))
            cell.samples.extend(block)
            cell.est_ns = float(np.median(block))
            cell.blocks += 1
            ran = True
            clock.report(f"{stage}: {cell.runner.name}")
        if not ran:
            return rounds
        rounds += 1


def _batch_weight(batch_size: int) -> float:
    # larger batches cost more per call and need more time for the same number of calls
    return 1.0 + math.log2(batch_size) / 4


def benchmark(
    runners: Sequence[Runner],
    X: np.ndarray,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    *,
    budget_s: float,
    min_calls: int = 1000,
    max_calls: int = 5000,
    progress: Progress | None = None,
    seed: int = 0,
) -> BenchResult:
    """Measure every runner at every batch size within ``budget_s`` seconds of wall time.

    Batch sizes are measured in order; each gets a share of what is left of the budget weighted by
    ``1 + log2(batch)/4``, so time a cheap batch size does not need flows to the next ones. Within a batch
    size, runners are warmed up, then measured in interleaved rounds of blocks until each has
    ``max_calls`` timed calls (enough for p99.9) or the share is spent. ``min_calls`` is the target
    below which the result carries a note (and sizes the blocks: it takes at least 5 rounds).
    """
    _check_args(runners, X, batch_sizes, budget_s, min_calls, max_calls)
    clock = _Clock(budget_s, progress)
    data = np.ascontiguousarray(X, dtype=np.float32)
    rng = np.random.default_rng(seed)
    weights = [_batch_weight(b) for b in batch_sizes]
    latency: dict[str, list[LatencyStats]] = {r.name: [] for r in runners}
    notes: list[str] = []
    per_batch: dict[str, dict[str, Any]] = {}
    overhead = harness_overhead_ns(2000)
    wait_idle = _IdleWaits(max_total_s=budget_s * IDLE_MAX_SHARE)
    wait_idle()  # whatever ran before this benchmark (a previous one, the drift pass) has its threads idle first
    several = len(runners) > 1
    clock.report("benchmark: starting", force=True)
    for index, batch_size in enumerate(batch_sizes):
        stage = f"batch {batch_size}"
        ring = _batch_ring(data, batch_size, rng)
        if data.shape[0] < batch_size:
            notes.append(f"{REPEATED_ROWS}: the data has {data.shape[0]:,} row{'' if data.shape[0] == 1 else 's'}, "
                         "fewer than batch size "
                         f"{batch_size:,}, so rows are repeated to fill each batch")
        cells = [_Cell(r, _prepare(r, ring, batch_size)) for r in runners]
        del ring
        batch_start = time.perf_counter()
        share = max(0.0, clock.left()) * weights[index] / sum(weights[index:])
        warm_cap = share * WARMUP_SHARE / len(cells)
        for cell in cells:
            clock.report(f"{stage}: warming up {cell.runner.name}")
            if several:
                wait_idle()
            _warm_up(cell, warm_cap)
        rounds = _measure_rounds(cells, batch_start + share, min_calls, max_calls, clock, stage,
                                 wait_idle if several else None)
        for cell in cells:
            latency[cell.runner.name].append(summarize(np.asarray(cell.samples, dtype=np.int64), batch_size,
                                                       seed=seed))
            notes.extend(_cell_notes(cell, batch_size, min_calls))
        per_batch[str(batch_size)] = {
            "share_s": round(share, 4),
            "used_s": round(time.perf_counter() - batch_start, 4),
            "rounds": rounds,
            "ring_batches": len(cells[0].inputs),
            "warmup_calls": {c.runner.name: c.warmup_calls for c in cells},
            "blocks": {c.runner.name: c.blocks for c in cells},
        }
        del cells
        clock.report(f"{stage}: done", force=True)
    settings = {
        "interleave": "blocks",
        "block_min_ms": BLOCK_MIN_S * 1000,
        "block_min_calls": BLOCK_MIN_CALLS,
        "block_max_ms": BLOCK_MAX_S * 1000,
        "block_lead_in": f"untimed calls for {LEAD_IN_S * 1000:g} ms (at least 1) "
                         f"when a call takes under {LEAD_IN_MAX_S * 1000:g} ms",
        "rounds": {b: v["rounds"] for b, v in per_batch.items()},
        "warmup": {"min_calls": WARMUP_MIN_CALLS, "min_ms": WARMUP_MIN_S * 1000, "max_share": WARMUP_SHARE,
                   "settle": f"median of the last {SETTLE_WINDOW} calls within {SETTLE_TOLERANCE:.0%}"},
        "budget_s": budget_s,
        "batch_weight": "1 + log2(batch)/4 of the remaining budget",
        "min_calls": min_calls,
        "max_calls": max_calls,
        "timer": "time.perf_counter_ns around the call alone",
        "gc": "paused during timed blocks",
        "idle_wait": f"untimed wait before each runner's warm-up and block until the process's other threads are idle "
                  f"(at most {thread_idle.IDLE_MAX_S * 1000:g} ms): spinning worker threads of the previous runner "
                  "would slow the next one",
        "idle_waits": wait_idle.waits,
        "idle_wait_s": round(wait_idle.waited_s, 4),
        "idle_wait_still_busy": wait_idle.still_busy,
        "harness_overhead_ns": round(overhead, 1),
        "seed": seed,
        "per_batch": per_batch,
    }
    notes.extend(wait_idle.notes())
    clock.report("benchmark: done", force=True, fraction=1.0)
    return BenchResult(
        latency={name: flag_implausible(tuple(rows)) for name, rows in latency.items()},
        settings=settings,
        notes=tuple(dict.fromkeys(notes)),
        wall_s=time.perf_counter() - clock.start,
    )


def _check_args(runners: Sequence[Runner], X: np.ndarray, batch_sizes: Sequence[int], budget_s: float,
                min_calls: int, max_calls: int) -> None:
    if not runners:
        raise ValueError("benchmark() needs at least one runner")
    names = [r.name for r in runners]
    if len(set(names)) != len(names):
        raise ValueError(f"runner names must be unique, got {names}")
    if np.ndim(X) != 2 or np.shape(X)[0] == 0:
        raise ValueError(f"X must be a non-empty 2-D array [rows, features], got shape {np.shape(X)}")
    if not batch_sizes or any(int(b) != b or b < 1 for b in batch_sizes):
        raise ValueError(f"batch sizes must be positive integers, got {tuple(batch_sizes)}")
    if not budget_s > 0:
        raise ValueError(f"budget_s must be positive, got {budget_s}")
    if min_calls < 1 or max_calls < 1:
        raise ValueError("min_calls and max_calls must be at least 1")


def _prepare(runner: Runner, ring: list[np.ndarray], batch_size: int) -> list[Any]:
    try:
        return [runner.prepare(batch) for batch in ring]
    except Exception as e:
        e.add_note(f"while preparing inputs for {runner.name!r} at batch size {batch_size}")
        raise


def _cell_notes(cell: _Cell, batch_size: int, min_calls: int) -> list[str]:
    notes = []
    name, calls = cell.runner.name, len(cell.samples)
    if calls < min_calls:
        missing = []
        if calls < P99_MIN_CALLS:
            missing.append("p99")
        if calls < P999_MIN_CALLS:
            missing.append("p99.9")
        notes.append(f"{name} at batch {batch_size}: {calls:,} timed calls, fewer than the {min_calls:,} "
                     f"targeted: the budget ran out (raise the budget for tighter numbers)"
                     + (f"; {' and '.join(missing)} not reported (insufficient samples)" if missing else ""))
    if not cell.settled and cell.warmup_calls >= WARMUP_MIN_CALLS and cell.warmup_s >= WARMUP_MIN_S:
        notes.append(f"{name} at batch {batch_size}: timings had not settled after {cell.warmup_calls:,} warm-up "
                     f"calls ({cell.warmup_s:.1f} s): the median still moved by more than "
                     f"{SETTLE_TOLERANCE:.0%} between windows, so the machine's speed may be drifting")
    return notes


# --------------------------------------------------------------------------------------------------
# the runtime floor


def trivial_model(n_features: int) -> Any:
    """A float32 ``[N, n_features] -> [N, 1]`` ReduceSum graph: ORT's per-call cost with input reading."""
    from onnx import TensorProto, helper

    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    node = helper.make_node("ReduceSum", ["input", "axes"], [SCORES_NAME], keepdims=1)
    graph = helper.make_graph(
        [node], "runtime_floor",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", n_features])],
        [helper.make_tensor_value_info(SCORES_NAME, TensorProto.FLOAT, ["N", 1])],
        initializer=[axes],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as e:
        from optimizer_core.errors import RuntimeNotInstalledError

        raise RuntimeNotInstalledError(
            "onnxruntime is not installed: pip install onnxruntime (or onnxruntime-gpu)") from e
    return onnxruntime


def floor_session(n_features: int, *, intra_op_threads: int, allow_spinning: bool = False) -> Any:
    """A CPU session on the trivial graph, configured like the sessions it is compared with."""
    ort = _import_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    spin = "1" if allow_spinning else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", spin)
    options.add_session_config_entry("session.inter_op.allow_spinning", spin)
    return ort.InferenceSession(trivial_model(n_features).SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def measure_floor(
    n_features: int,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    *,
    budget_s: float,
    intra_op_threads: int,
    allow_spinning: bool = False,
    progress: Progress | None = None,
    seed: int = 0,
) -> tuple[FloorRow, ...]:
    """ONNX Runtime's own per-call cost on a trivial graph with the same input shape, same harness."""
    session = floor_session(n_features, intra_op_threads=intra_op_threads, allow_spinning=allow_spinning)
    rows = max(batch_sizes) + RING_BATCHES - 1
    rows = max(1, min(rows, RING_BYTES // max(1, n_features * 4)))
    X = np.random.default_rng(seed).standard_normal((rows, n_features), dtype=np.float32)
    def floor_progress(stage: str, fraction: float) -> None:
        if progress is not None:
            progress(f"runtime floor: {stage.removeprefix('benchmark: ')}", fraction)

    result = benchmark([onnx_runner("runtime floor", session)], X, batch_sizes, budget_s=budget_s,
                       progress=floor_progress, seed=seed)
    return tuple(FloorRow(batch_size=s.batch_size, p50_us=s.p50_us, calls=s.calls)
                 for s in result.latency["runtime floor"])


# --------------------------------------------------------------------------------------------------
# explanations


def explain(native_name: str, latency: dict[str, tuple[LatencyStats, ...]], floor: tuple[FloorRow, ...],
            context: dict[str, Any], *, other_natives: Sequence[str] = ()) -> tuple[str, ...]:
    """Say, per batch size, which runner is faster, and why a variant slower than native likely is.

    ``other_natives``: names in ``latency`` that are the native model in other thread settings ("native t1");
    at each batch size the variants are compared with the fastest native configuration, as the headline is.

    ``context`` keys (all optional):
      ``intra_op_threads`` (int) and ``cores`` (int): threads below cores slow large batches;
      ``tree_model`` (bool) and ``n_trees`` (int): ORT's tree kernel strategy above 50 rows and 80 trees;
      ``trees`` ({variant name: trees in its graph}): a truncated ensemble's own count, where it differs;
      ``provider_fallback`` ({variant name: provider actually used}): the requested provider fell back;
      ``precisions`` ({variant name: "fp16" | "int8" | ...}): precisions with known CPU costs;
      ``graphs`` ({variant name: "tensor" | "tree-ensemble"}) and ``providers_used`` ({variant name: ORT provider}):
      a tensor graph of trees run on the CPU is slower there by design.
    The runtime floor (``floor``) explains a variant whose p50 is within 2x of it.
    """
    native = {s.batch_size: s for s in latency.get(native_name, ())}
    if not native:
        return (f"no measurement of {native_name!r}: nothing to compare the ONNX variants against",)
    natives = (native_name, *other_natives)
    floors = {f.batch_size: f for f in floor}
    lines: list[str] = []
    for batch_size, default in native.items():
        variants = {name: s for name, rows in latency.items() if name not in natives
                    for s in rows if s.batch_size == batch_size}
        if not variants:
            continue
        configurations = {name: s for name in natives for s in latency.get(name, ()) if s.batch_size == batch_size}
        base_name, base = min(configurations.items(), key=lambda item: item[1].p50_us)
        if base_name != native_name and not _overlap(default, base):
            lines.append(f"batch {batch_size}: {native_name} at its default threads takes {_us(default.p50_us)}, "
                         f"{_ratio(default.p50_us / base.p50_us)} the {_us(base.p50_us)} of {base_name}: the "
                         f"comparisons use {base_name}, the faster native configuration")
        lines.append(_comparison_line(batch_size, base_name, base, variants))
        for name, stats in variants.items():
            if stats.p50_us > base.p50_us and not _overlap(stats, base):
                causes = _causes(name, stats, floors.get(batch_size), context)
                lines.append(f"batch {batch_size}: {name} is {_ratio(stats.p50_us / base.p50_us)} slower than "
                             f"{base_name}; likely cause: " + ("; ".join(causes) if causes else
                                                               _kernel_words(context, name)))
    return tuple(lines)


def _comparison_line(batch_size: int, native_name: str, base: LatencyStats,
                     variants: dict[str, LatencyStats]) -> str:
    best_name, best = min(variants.items(), key=lambda item: item[1].p50_us)
    which = ", the fastest ONNX variant" if len(variants) > 1 else ""
    if best.p50_us < base.p50_us:
        line = (f"batch {batch_size}: {best_name} is {_ratio(base.p50_us / best.p50_us)} faster than "
                f"{native_name} (p50 {_us(best.p50_us)} vs {_us(base.p50_us)})")
    else:
        line = (f"batch {batch_size}: {native_name} is {_ratio(best.p50_us / base.p50_us)} faster than "
                f"{best_name}{which} (p50 {_us(base.p50_us)} vs {_us(best.p50_us)})")
    if _overlap(best, base):
        line += ", within measurement noise (the 95% intervals of the medians overlap)"
    noisy = [name for name, stats in ((native_name, base), (best_name, best)) if stats.noisy]
    if noisy:
        line += (f"; {' and '.join(noisy)} measured noisy here ({(base if base.noisy else best).noise_reasons[0]}), "
                 "so treat this ratio as rough")
    return line


def _causes(name: str, stats: LatencyStats, floor: FloorRow | None, context: dict[str, Any]) -> list[str]:
    causes = []
    batch = stats.batch_size
    fallback = (context.get("provider_fallback") or {}).get(name)
    if fallback:
        causes.append(f"the requested execution provider was not available, it ran on {fallback}")
    if floor is not None and floor.p50_us > 0 and stats.p50_us <= FLOOR_DOMINATES * floor.p50_us:
        causes.append(f"ONNX Runtime's own per-call cost dominates: a trivial graph of the same input shape "
                      f"takes {_us(floor.p50_us)} ({floor.p50_us / stats.p50_us:.0%} of this variant's p50)")
    threads, cores = context.get("intra_op_threads"), context.get("cores")
    if batch >= LARGE_BATCH and threads and cores and threads < cores:
        causes.append(f"ONNX Runtime uses {threads} intra-op thread{'s' if threads != 1 else ''} of "
                      f"{cores} cores while the native library may use them all (try --threads {cores})")
    n_trees = (context.get("trees") or {}).get(name) or context.get("n_trees")  # a truncated variant's own
    ran_on = (context.get("providers_used") or {}).get(name, "CPUExecutionProvider")
    tensor = (context.get("graphs") or {}).get(name) == "tensor" and ran_on == "CPUExecutionProvider"
    if tensor:
        from optimizer_core.variants.tree_tensor import CPU_REASON

        causes.append(f"it is the tensor graph of the trees, run on the CPU: {CPU_REASON} (it is built for GPUs, "
                      "which have no TreeEnsemble kernel)")
    elif context.get("tree_model") and n_trees and n_trees > TREE_KERNEL_TREES and batch > TREE_KERNEL_ROWS:
        causes.append(f"ONNX Runtime's tree-ensemble kernel switches strategy above {TREE_KERNEL_ROWS} rows and "
                      f"{TREE_KERNEL_TREES} trees ({n_trees} trees here): it walks every tree row by row, "
                      "where the native library uses its own blocked, cache-friendly traversal")
    precision = (context.get("precisions") or {}).get(name)
    if precision == "fp16" and not tensor:
        causes.append("fp16 has few CPU kernels in ONNX Runtime: Cast nodes convert to float32 and back")
    elif precision in ("int8", "int8-static"):
        causes.append("int8 adds QuantizeLinear/DequantizeLinear work around the quantized operators")
    return causes


def _kernel_words(context: dict[str, Any], name: str) -> str:
    """When no setting explains it: name what the variant's graph is made of (its operators are not timed one
    by one, so this says where to look, not where the time went)."""
    ops = (context.get("ops") or {}).get(name) or []
    if not ops:
        return "none visible from the run's settings"
    return (f"none of the settings (threads, runtime floor, provider) explains it; its graph is mostly "
            f"{', '.join(ops)} (operators not timed one by one: ONNX Runtime's profiler, "
            "SessionOptions.enable_profiling, shows where the time goes)")


def _overlap(a: LatencyStats, b: LatencyStats) -> bool:
    return a.p50_ci_low_us <= b.p50_ci_high_us and b.p50_ci_low_us <= a.p50_ci_high_us


def _ratio(value: float) -> str:
    return f"{value:.2f}x" if value < 1.095 else f"{value:.1f}x"


def _us(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f} µs"
    return f"{value:.1f} µs" if value >= 10 else f"{value:.2f} µs"
