"""Score drift between a reference (validation scores at training time) and recent scores.

Both sides are summarized by quantiles, so neither has to be collected whole: the reference is
stored with the model (``val_score_quantiles``), the night's side comes from Spark's
``approxQuantile``.
"""

from __future__ import annotations

import numpy as np

QUANTILE_LEVELS = np.linspace(0.0, 1.0, 101)


def score_quantiles(scores: np.ndarray) -> list[float]:
    """The 101 percentiles of finite scores (the stored reference), ``[]`` when none."""
    s = np.asarray(scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    return [] if s.size == 0 else np.quantile(s, QUANTILE_LEVELS).tolist()


def _cdf(quantiles: np.ndarray, x: np.ndarray) -> np.ndarray:
    """CDF of the distribution described by equally spaced quantiles, evaluated at x."""
    q = np.maximum.accumulate(np.asarray(quantiles, dtype=np.float64))
    levels = np.linspace(0.0, 1.0, len(q))
    return np.interp(x, q, levels, left=0.0, right=1.0)


def psi(reference_q: np.ndarray, current_q: np.ndarray, bins: int = 10, eps: float = 1e-4) -> float:
    """Population stability index with bins at the reference deciles.

    Args:
        reference_q: Quantiles of the reference scores at equally spaced levels (incl. 0 and 1).
        current_q: Quantiles of the current scores, same convention.
        bins: Bins of equal reference mass.
        eps: Floor of a bin's share (avoids log 0).

    Returns:
        sum((c - r) * ln(c / r)); about 0 for the same law, > 0.25 is usually read as a shift.
    """
    ref = np.asarray(reference_q, dtype=np.float64)
    edges = np.interp(np.linspace(0, 1, bins + 1), np.linspace(0, 1, len(ref)), ref)[1:-1]
    r = np.diff(np.r_[0.0, _cdf(ref, edges), 1.0])
    c = np.diff(np.r_[0.0, _cdf(np.asarray(current_q, dtype=np.float64), edges), 1.0])
    r, c = np.clip(r, eps, None), np.clip(c, eps, None)
    return float(np.sum((c - r) * np.log(c / r)))


def ks_statistic(reference_q: np.ndarray, current_q: np.ndarray) -> float:
    """Largest gap between the two CDFs (Kolmogorov-Smirnov statistic) from their quantiles."""
    ref = np.asarray(reference_q, dtype=np.float64)
    cur = np.asarray(current_q, dtype=np.float64)
    grid = np.union1d(ref, cur)
    return float(np.max(np.abs(_cdf(ref, grid) - _cdf(cur, grid))))
