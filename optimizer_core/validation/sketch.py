"""Mergeable summaries of values too many to keep: a log-bucketed histogram (quantiles, ROC AUC), the
Pareto frontier that gives a relative drift whose scale is known only at the end, and the top-k rows.

Merging is order-independent (up to float rounding of sums), so one process and a cluster of workers
reach the same numbers from the same rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

MANTISSA_BITS = 10  # histogram bins are at most 2**-10 (0.1%) of their values' magnitude wide
RESOLUTION = 2.0**-MANTISSA_BITS
FRONTIER_LIMIT = 65_536  # points kept before the frontier's sizes are coarsened (see Frontier)
_COARSE_BITS = 16
_SIGN_OFF = np.int64(0x7FFFFFFFFFFFFFFF)


def float_keys(values: np.ndarray, mantissa_bits: int = MANTISSA_BITS) -> np.ndarray:
    """Monotone bin keys for float64 values (x <= y gives key(x) <= key(y)): the sign, exponent and the top
    ``mantissa_bits`` of the mantissa. Zero, each infinity and every power of two start a bin. No NaN."""
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.int64)
    magnitude = bits & _SIGN_OFF
    return np.where(bits < 0, -magnitude, magnitude) >> np.int64(52 - mantissa_bits)


_HALF_KEY = int(float_keys(np.array([0.5]))[0])


def probability_keys(p: np.ndarray) -> np.ndarray:
    """Monotone bin keys as fine near 1 as near 0: values above 0.5 are binned by their distance to 1
    (exact in float64 there), so 0.9999 and 0.99991 do not share a bin."""
    p = np.asarray(p, dtype=np.float64)
    upper = p > 0.5
    keys = float_keys(np.where(upper, 0.5, p))
    return np.where(upper, 2 * _HALF_KEY + 1 - float_keys(np.where(upper, 1.0 - p, 0.5)), keys)


@dataclass
class ExactSum:
    """A sum of floats kept exactly (Shewchuk's non-overlapping partials, as ``math.fsum``), so that adding
    the same numbers in any order, or merging partial sums in any order, gives the same correctly rounded
    total: engines that see the same batches in another order agree to the last digit."""

    partials: list[float] = field(default_factory=list)
    special: float = 0.0  # infinities (and NaN) kept apart: they would poison the partials

    @classmethod
    def of(cls, x: float) -> ExactSum:
        out = cls()
        out.add(x)
        return out

    def add(self, x: float) -> None:
        x = float(x)
        if not math.isfinite(x):
            self.special += x
            return
        i = 0
        for y in self.partials:
            if abs(x) < abs(y):
                x, y = y, x
            high = x + y
            low = y - (high - x)
            if low:
                self.partials[i] = low
                i += 1
            x = high
        self.partials[i:] = [x]

    def merge(self, other: ExactSum) -> ExactSum:
        out = ExactSum(list(self.partials), self.special + other.special)
        for x in other.partials:
            out.add(x)
        return out

    @property
    def value(self) -> float:
        return self.special if self.special else math.fsum(self.partials)


@dataclass
class Histogram:
    """Counts per bin, with the smallest and largest value each bin has seen (sparse, keys sorted)."""

    keys: np.ndarray
    counts: np.ndarray
    lows: np.ndarray
    highs: np.ndarray

    @classmethod
    def empty(cls) -> Histogram:
        return cls(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0), np.empty(0))

    @classmethod
    def of(cls, values: np.ndarray, keys: np.ndarray | None = None) -> Histogram:
        values = np.asarray(values, dtype=np.float64)
        keys = float_keys(values) if keys is None else keys
        return cls._reduce(keys, np.ones(values.size, np.int64), values, values)

    @classmethod
    def _reduce(cls, keys: np.ndarray, counts: np.ndarray, lows: np.ndarray, highs: np.ndarray) -> Histogram:
        if keys.size == 0:
            return cls.empty()
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        return cls(keys[starts], np.add.reduceat(counts[order], starts), np.minimum.reduceat(lows[order], starts),
                   np.maximum.reduceat(highs[order], starts))

    def merge(self, other: Histogram) -> Histogram:
        if other.keys.size == 0:
            return self
        if self.keys.size == 0:
            return other
        return self._reduce(np.concatenate([self.keys, other.keys]), np.concatenate([self.counts, other.counts]),
                            np.concatenate([self.lows, other.lows]), np.concatenate([self.highs, other.highs]))

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def quantile_bounds(self, q: float) -> tuple[float, float]:
        """(lower, upper) bounds of ``numpy.percentile(values, 100 * q)`` (linear interpolation between the
        two order statistics around rank (n - 1) * q): each order statistic lies between its bin's smallest
        and largest value, so the bounds are equal when those bins each hold one distinct value."""
        n = self.total
        if n == 0:
            raise ValueError("no values")
        h = (n - 1) * q
        below = math.floor(h)
        frac = h - below
        cumulative = np.cumsum(self.counts)
        lo_bin = int(np.searchsorted(cumulative, below, side="right"))
        hi_bin = int(np.searchsorted(cumulative, min(below + 1, n - 1), side="right"))
        return (_interpolate(self.lows[lo_bin], self.lows[hi_bin], frac),
                _interpolate(self.highs[lo_bin], self.highs[hi_bin], frac))


def _interpolate(low: float, high: float, frac: float) -> float:
    if frac == 0.0:
        return float(low)
    if math.isinf(high) or math.isinf(low):
        return math.inf
    return float(low + frac * (high - low))


def roc_auc_bounds(positives: Histogram, negatives: Histogram) -> tuple[float, float] | None:
    """ROC AUC (ties count one half, as sklearn's roc_auc_score) from the scores' histograms of positive and
    negative rows, and the most it can differ from the exact value: pairs of a positive and a negative in
    the same bin are counted as ties, which is exact only when that bin holds a single distinct value.
    None when either side has no rows."""
    p_total, n_total = positives.total, negatives.total
    if p_total == 0 or n_total == 0:
        return None
    keys = np.union1d(positives.keys, negatives.keys)
    pos = np.zeros(keys.size, np.float64)
    neg = np.zeros(keys.size, np.float64)
    pos[np.searchsorted(keys, positives.keys)] = positives.counts
    neg[np.searchsorted(keys, negatives.keys)] = negatives.counts
    low = np.full(keys.size, np.inf)
    high = np.full(keys.size, -np.inf)
    for h in (positives, negatives):
        at = np.searchsorted(keys, h.keys)
        low[at] = np.minimum(low[at], h.lows)
        high[at] = np.maximum(high[at], h.highs)
    negatives_below = np.cumsum(neg) - neg
    pairs = float(p_total) * float(n_total)
    auc = float(np.sum(pos * (negatives_below + 0.5 * neg)) / pairs)
    mixed = (pos > 0) & (neg > 0) & (low < high)
    return auc, float(0.5 * np.sum(pos[mixed] * neg[mixed]) / pairs)


@dataclass
class Frontier:
    """The (size, diff) points no other point beats on both counts (a size no larger, a diff no smaller).

    The relative drift of a row is diff / max(size, T), where T (the predictions' RMS) is known only
    when every row has been seen; its maximum over all rows is reached on this frontier whatever T is.
    Beyond FRONTIER_LIMIT points (rare: diffs growing in step with sizes over many rows), sizes are
    rounded down to 2**-16 of their value, which can only raise the maximum, by at most that fraction.
    """

    sizes: np.ndarray
    diffs: np.ndarray
    coarsened: bool = False

    @classmethod
    def empty(cls) -> Frontier:
        return cls(np.empty(0), np.empty(0))

    @classmethod
    def of(cls, sizes: np.ndarray, diffs: np.ndarray, coarsened: bool = False) -> Frontier:
        sizes = np.asarray(sizes, dtype=np.float64)
        diffs = np.asarray(diffs, dtype=np.float64)
        if coarsened:
            sizes = _round_down(sizes)
        order = np.lexsort((-diffs, sizes))
        sizes, diffs = sizes[order], diffs[order]
        best_before = np.r_[-np.inf, np.maximum.accumulate(diffs)[:-1]] if diffs.size else diffs
        keep = diffs > best_before
        frontier = cls(sizes[keep], diffs[keep], coarsened)
        if frontier.sizes.size > FRONTIER_LIMIT and not coarsened:
            return cls.of(frontier.sizes, frontier.diffs, coarsened=True)
        return frontier

    def merge(self, other: Frontier) -> Frontier:
        return self.of(np.concatenate([self.sizes, other.sizes]), np.concatenate([self.diffs, other.diffs]),
                       coarsened=self.coarsened or other.coarsened)

    def max_ratio(self, scale: float) -> float:
        """The largest diff / max(size, scale) over the points (0.0 without points)."""
        if self.sizes.size == 0:
            return 0.0
        return float(np.max(self.diffs / np.maximum(self.sizes, scale)))


def _round_down(sizes: np.ndarray) -> np.ndarray:
    keys = float_keys(np.maximum(sizes, 0.0), _COARSE_BITS) << np.int64(52 - _COARSE_BITS)
    return keys.view(np.float64)


@dataclass
class TopRows:
    """The k rows with the largest drift: ties go to the earlier file, then the earlier row."""

    diffs: np.ndarray
    files: np.ndarray
    rows: np.ndarray  # 0-based within the file
    native: np.ndarray  # [k, outputs]
    onnx: np.ndarray

    @classmethod
    def empty(cls, outputs: int) -> TopRows:
        return cls(np.empty(0), np.empty(0, np.int64), np.empty(0, np.int64), np.empty((0, outputs)),
                   np.empty((0, outputs)))

    @classmethod
    def of(cls, k: int, diffs: np.ndarray, file_index: int, first_row: int, native: np.ndarray,
           onnx: np.ndarray) -> TopRows:
        """The top ``k`` of one batch (rows ``first_row`` on of one file)."""
        n = diffs.size
        if n > k:
            threshold = np.partition(diffs, n - k)[n - k]
            above = np.flatnonzero(diffs > threshold)
            tied = np.flatnonzero(diffs == threshold)[: k - above.size]
            chosen = np.concatenate([above, tied])
        else:
            chosen = np.arange(n)
        chosen = chosen[np.lexsort((chosen, -diffs[chosen]))]
        return cls(diffs[chosen], np.full(chosen.size, file_index, np.int64), first_row + chosen.astype(np.int64),
                   native[chosen], onnx[chosen])

    def merge(self, other: TopRows, k: int) -> TopRows:
        diffs = np.concatenate([self.diffs, other.diffs])
        files = np.concatenate([self.files, other.files])
        rows = np.concatenate([self.rows, other.rows])
        order = np.lexsort((rows, files, -diffs))[:k]
        return TopRows(diffs[order], files[order], rows[order], np.concatenate([self.native, other.native])[order],
                       np.concatenate([self.onnx, other.onnx])[order])


@dataclass
class FirstRows:
    """How many rows matched, and the first few of them (file index, 0-based row) in file order."""

    count: int = 0
    where: tuple[tuple[int, int], ...] = ()

    def add(self, mask: np.ndarray, file_index: int, first_row: int, keep: int = 5) -> None:
        hits = np.flatnonzero(mask)
        if hits.size:
            self.count += int(hits.size)
            self.where = tuple(sorted(self.where + tuple((file_index, first_row + int(i)) for i in hits[:keep])))[:keep]

    def merge(self, other: FirstRows, keep: int = 5) -> FirstRows:
        return FirstRows(self.count + other.count, tuple(sorted(self.where + other.where))[:keep])
