"""The night's own threshold (adspark.core.transductive) on mixtures with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from adspark.core.transductive import _cdf, night_threshold

LEVELS = np.linspace(0.0, 1.0, 1001)
REFERENCE = np.linspace(0.0, 1.0, 101)


def quantiles(x: np.ndarray, levels: np.ndarray = LEVELS) -> np.ndarray:
    return np.quantile(x, levels)


def reference(n: int = 5000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Normal scores (log-normal, like reconstruction errors) and their 101 percentiles."""
    x = np.random.default_rng(seed).lognormal(0.0, 0.5, n)
    return x, quantiles(x, REFERENCE)


def test_cdf_of_quantiles_interpolates_and_counts_ties() -> None:
    q = np.array([0.0, 1.0, 1.0, 1.0, 2.0])  # levels 0, .25, .5, .75, 1
    assert _cdf(q, np.array([-1.0, 0.5, 1.0, 1.5, 2.0, 3.0])).tolist() == [0.0, 0.125, 0.75, 0.875, 1.0, 1.0]


def test_a_night_like_the_validation_keeps_the_model_threshold() -> None:
    _, ref = reference()
    night = np.random.default_rng(1).lognormal(0.0, 0.5, 20_000)
    verdict = night_threshold(quantiles(night), night.size, ref, 5000)
    assert not verdict.applied
    assert verdict.normal_share == pytest.approx(1.0, abs=0.03)
    assert "within 4 standard errors" in verdict.reason


def test_a_few_anomalies_among_many_rows_keep_the_model_threshold() -> None:
    _, ref = reference()
    rng = np.random.default_rng(2)
    night = np.r_[rng.lognormal(0.0, 0.5, 20_000), rng.lognormal(3.0, 0.3, 20)]  # 0.1% anomalous
    assert not night_threshold(quantiles(night), night.size, ref, 5000).applied


def test_a_night_with_many_anomalies_gets_the_threshold_between_the_two_laws() -> None:
    _, ref = reference()
    rng = np.random.default_rng(3)
    normal, anomalous = rng.lognormal(0.0, 0.5, 7000), rng.lognormal(2.0, 0.5, 3000)
    night = np.r_[normal, anomalous]
    verdict = night_threshold(quantiles(night), night.size, ref, 5000)
    assert verdict.applied
    assert verdict.normal_share == pytest.approx(0.7, abs=0.03)
    # the two laws' densities cross at exp(1) (equal spreads on the log scale); F1 puts it near
    assert 1.8 < verdict.value < 3.6
    recall = (anomalous > verdict.value).mean()
    precision = (anomalous > verdict.value).sum() / (night > verdict.value).sum()
    assert recall > 0.9 and precision > 0.9
    assert verdict.precision == pytest.approx(precision, abs=0.05)
    assert verdict.recall == pytest.approx(recall, abs=0.08)  # pi0 is biased low by the min over levels


def test_the_guard_needs_more_evidence_with_few_validation_rows() -> None:
    rng = np.random.default_rng(4)
    night = np.r_[rng.lognormal(0.0, 0.5, 850), rng.lognormal(2.0, 0.5, 150)]  # 15% anomalous
    many = night_threshold(quantiles(night), night.size, reference(5000)[1], 5000)
    few = night_threshold(quantiles(night), night.size, reference(20)[1], 20)
    assert many.applied and many.z > 4
    assert not few.applied and few.z < many.z


def test_anomalies_that_score_like_normal_rows_are_not_claimed() -> None:
    """A night of normal rows from a wider law (no separable excess) must not pass the precision
    guard: the flagged rows would be mostly normal ones."""
    _, ref = reference()
    rng = np.random.default_rng(5)
    night = np.r_[rng.lognormal(0.0, 0.5, 6000), rng.lognormal(0.0, 0.55, 4000)]
    verdict = night_threshold(quantiles(night), night.size, ref, 5000)
    assert not verdict.applied


def test_degenerate_inputs_say_why() -> None:
    _, ref = reference()
    assert not night_threshold(np.array([1.0, 2.0]), 2, ref, 5000).applied
    assert not night_threshold(quantiles(np.ones(100)), 0, ref, 5000).applied
    assert not night_threshold(quantiles(np.arange(100.0)), 100, np.full(101, np.nan), 10).applied
