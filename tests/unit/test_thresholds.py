import numpy as np
import pytest
from scipy import stats

from adspark.core.thresholds import (
    fit_distribution,
    fit_quantile,
    fit_sigma,
    fit_supervised,
    fit_threshold,
    per_entity_thresholds,
    shrink,
    tail_probability,
)

RNG = np.random.default_rng(11)


def test_quantile_and_sigma_on_a_normal_law():
    x = RNG.normal(10, 2, 200_000)
    assert fit_quantile(x, 0.99).value == pytest.approx(stats.norm.ppf(0.99, 10, 2), abs=0.05)
    assert fit_sigma(x, 3).value == pytest.approx(16.0, abs=0.05)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        fit_quantile(x, 1.5)
    with pytest.raises(ValueError, match="no finite"):
        fit_sigma(np.array([np.nan, np.inf]))


@pytest.mark.parametrize(
    "law,params", [("gamma", (2.0, 0.0, 1.5)), ("lognorm", (0.6, 0.0, 1.0))]
)
def test_distribution_picks_the_generating_law(law, params):
    x = getattr(stats, law).rvs(*params, size=4000, random_state=3)
    t = fit_distribution(x, tail=1e-3)
    assert t.params["law"] == law
    truth = getattr(stats, law).isf(1e-3, *params)
    assert t.value == pytest.approx(truth, rel=0.15)
    # reading a score as a tail probability under the fitted law
    p = tail_probability(np.array([t.value]), t)
    assert p[0] == pytest.approx(1e-3, rel=1e-6)


def test_supervised_maximizes_f1():
    normal = RNG.normal(0, 1, 5000)
    anomalous = RNG.normal(5, 1, 100)
    scores = np.r_[normal, anomalous]
    labels = np.r_[np.zeros(5000), np.ones(100)]
    t = fit_supervised(scores, labels, beta=1.0)
    pred = scores > t.value
    tp = (pred & (labels == 1)).sum()
    f1 = 2 * tp / (pred.sum() + 100)
    assert f1 == pytest.approx(t.params["f_beta"], rel=1e-9)
    # no other cut does better
    for c in np.quantile(scores, np.linspace(0.9, 0.999, 50)):
        p = scores > c
        tp_c = (p & (labels == 1)).sum()
        assert 2 * tp_c / (p.sum() + 100) <= f1 + 1e-12
    recall_first = fit_supervised(scores, labels, beta=4.0)
    assert recall_first.value <= t.value
    with pytest.raises(ValueError, match="both"):
        fit_supervised(scores, np.zeros_like(scores))


def test_per_entity_shrinkage():
    entities = np.r_[["busy"] * 2000, ["quiet"] * 5]
    scores = np.r_[RNG.normal(10, 1, 2000), RNG.normal(0, 1, 5)]
    g = fit_threshold(scores, "quantile", q=0.99)
    t = per_entity_thresholds(entities, scores, "quantile", g, strength=50, min_scores=20, q=0.99)
    assert t["quiet"] == g.value
    local = fit_quantile(scores[:2000], 0.99).value
    assert t["busy"] == pytest.approx(shrink(local, 2000, g.value, 50))
    assert abs(t["busy"] - local) < abs(g.value - local)
    with pytest.raises(ValueError, match="unknown threshold method"):
        fit_threshold(scores, "magic")
