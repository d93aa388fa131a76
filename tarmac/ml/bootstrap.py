"""How much better is the challenger, and is it more than noise? A paired bootstrap over test days.

Both models score the same test flights. Flights of one day share their weather and their
congestion, so they are not independent draws: the bootstrap resamples whole days with
replacement, and each resample weighs every flight by how many times its day was drawn. Both
models are judged on the same resample (paired), so what varies is the gain itself. The metrics
are computed with those weights in O(n) per resample from one sort of each model's scores:
ROC AUC as the weighted Mann-Whitney statistic (ties count one half), average precision over the
distinct scores, log loss and Brier score as weighted means; with equal weights they equal
scikit-learn's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Metrics where lower is better; every other metric is better higher.
LOWER_IS_BETTER = {"log_loss", "brier"}


class _Sorted:
    """One model's scores, sorted once: each distinct score and which rows hold it."""

    def __init__(self, probability: np.ndarray):
        self.p = np.clip(np.asarray(probability, dtype=float), 1e-6, 1 - 1e-6)
        self.values, self.inverse = np.unique(self.p, return_inverse=True)  # ascending

    def roc_auc(self, y: np.ndarray, w: np.ndarray) -> float:
        positives = np.bincount(self.inverse, weights=w * y, minlength=len(self.values))
        negatives = np.bincount(self.inverse, weights=w * (1 - y), minlength=len(self.values))
        below = np.cumsum(negatives) - negatives  # negatives with a lower score
        total = positives.sum() * negatives.sum()
        return float(np.sum(positives * (below + 0.5 * negatives)) / total) if total else float("nan")

    def average_precision(self, y: np.ndarray, w: np.ndarray) -> float:
        positives = np.bincount(self.inverse, weights=w * y, minlength=len(self.values))[::-1]  # descending
        negatives = np.bincount(self.inverse, weights=w * (1 - y), minlength=len(self.values))[::-1]
        tp, fp = np.cumsum(positives), np.cumsum(negatives)
        if tp[-1] == 0:
            return float("nan")
        flagged = tp + fp
        precision = np.divide(tp, flagged, out=np.zeros_like(tp), where=flagged > 0)
        return float(np.sum(positives / tp[-1] * precision))

    def log_loss(self, y: np.ndarray, w: np.ndarray) -> float:
        losses = -(y * np.log(self.p) + (1 - y) * np.log(1 - self.p))
        return float(np.sum(w * losses) / np.sum(w))

    def brier(self, y: np.ndarray, w: np.ndarray) -> float:
        return float(np.sum(w * (self.p - y) ** 2) / np.sum(w))

    def metric(self, name: str, y: np.ndarray, w: np.ndarray) -> float:
        return getattr(self, {"pr_auc": "average_precision"}.get(name, name))(y, w)


def weighted_metric(name: str, y, probability, weights=None) -> float:
    """One metric of one model with per-row weights (all 1 by default)."""
    y = np.asarray(y, dtype=float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
    return _Sorted(probability).metric(name, y, w)


@dataclass(frozen=True)
class Improvement:
    """The challenger's gain over the champion in `metric` (positive: better, whichever way the
    metric points), on the test days as they are, and its bootstrap interval."""

    metric: str
    estimate: float
    low: float
    high: float
    confidence: float
    resamples: int
    days: int

    def describe(self) -> str:
        return (f"gain in test {self.metric} over the champion {self.estimate:+.4f} "
                f"({self.confidence:.0%} interval {self.low:+.4f}..{self.high:+.4f} over {self.resamples} "
                f"resamples of {self.days} test days)")


def paired_bootstrap(
    metric: str, y, challenger, champion, days, resamples: int = 1000, confidence: float = 0.95, seed: int = 7
) -> Improvement:
    """The gain of `challenger` over `champion` scores on the same rows, with a percentile interval
    from `resamples` resamples of whole days (`days`: each row's day)."""
    y = np.asarray(y, dtype=float)
    day_of_row = np.unique(np.asarray(days), return_inverse=True)[1]
    n_days = int(day_of_row.max()) + 1 if len(day_of_row) else 0
    a, b = _Sorted(challenger), _Sorted(champion)
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0

    def gain(weights: np.ndarray) -> float:
        return sign * (a.metric(metric, y, weights) - b.metric(metric, y, weights))

    estimate = gain(np.ones_like(y))
    rng = np.random.default_rng(seed)
    draws = np.empty(resamples)
    for i in range(resamples):
        times_drawn = np.bincount(rng.integers(0, n_days, n_days), minlength=n_days)
        draws[i] = gain(times_drawn[day_of_row].astype(float))
    draws = draws[~np.isnan(draws)]
    tail = (1 - confidence) / 2
    low, high = (np.quantile(draws, [tail, 1 - tail]) if len(draws) else (float("nan"), float("nan")))
    return Improvement(metric, estimate, float(low), float(high), confidence, resamples, n_days)
