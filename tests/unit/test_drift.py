"""Drift statistics from quantile summaries."""

import numpy as np

from adspark.core.drift import ks_statistic, psi, score_quantiles


def test_same_law_has_no_drift_and_a_shift_has():
    rng = np.random.default_rng(0)
    ref = score_quantiles(rng.gamma(2.0, 1.0, 20_000))
    same = score_quantiles(rng.gamma(2.0, 1.0, 5_000))
    shifted = score_quantiles(rng.gamma(2.0, 1.0, 5_000) * 2.0)
    assert psi(ref, same) < 0.02 and ks_statistic(ref, same) < 0.05
    assert psi(ref, shifted) > 0.25 and ks_statistic(ref, shifted) > 0.25


def test_quantiles_ignore_non_finite_and_empty():
    assert score_quantiles(np.array([np.nan, np.inf])) == []
    q = score_quantiles(np.array([1.0, 2.0, np.nan]))
    assert len(q) == 101 and q[0] == 1.0 and q[-1] == 2.0
