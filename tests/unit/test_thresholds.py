import numpy as np
import pytest
from scipy import stats

from adspark.core.thresholds import (
    fit_distribution,
    fit_pot,
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


@pytest.mark.parametrize("law,params", [("expon", (0.0, 2.0)), ("pareto", (3.0, 0.0, 1.0)), ("lognorm", (2.5, 0.0, 1e-4))])
def test_pot_finds_the_tail_quantile_of_light_and_heavy_tails(law, params):
    x = getattr(stats, law).rvs(*params, size=200_000, random_state=3)
    true = getattr(stats, law).isf(1e-4, *params)
    th = fit_pot(x, tail=1e-4, level=0.99)
    assert th.method == "pot" and th.params["peaks"] == pytest.approx(2000, abs=2)
    assert th.value == pytest.approx(true, rel=0.25)  # beyond every quantile the sample can give reliably
    if law == "pareto":
        assert th.params["xi"] == pytest.approx(1 / 3, abs=0.1)  # the GPD shape of a Pareto(3) tail


def test_pot_stays_sane_where_a_bulk_fit_extrapolates_wildly():
    # reconstruction-error-like scores: a huge dynamic range (the bulk near 1e-5, a tail to 1e-1)
    x = np.exp(RNG.normal(-11, 2.5, 20_000))
    pot = fit_threshold(x, "pot", tail=1e-3, level=0.98).value
    assert np.quantile(x, 0.995) < pot < 10 * x.max()
    assert np.mean(x > pot) < 0.003


def test_pot_rejects_bad_options_and_falls_back_without_distinct_peaks():
    x = RNG.normal(size=1000)
    few = fit_pot(x[:50], tail=1e-3, level=0.98)
    assert few.params["fallback"].startswith("quantile (50 scores") and few.value == pytest.approx(
        np.quantile(x[:50], 1 - 1e-3))
    with pytest.raises(ValueError, match="1 - level"):
        fit_pot(x, tail=0.05, level=0.98)
    flat = np.r_[np.zeros(990), np.ones(10)]
    th = fit_pot(flat, tail=1e-3, level=0.98)
    assert th.params["fallback"].startswith("quantile") and th.value == pytest.approx(1.0)


def test_pot_config_is_checked_before_spark():
    from adspark.config import PotThreshold

    assert PotThreshold(tail=1e-3, level=0.99).options() == {"tail": 1e-3, "level": 0.99}
    with pytest.raises(ValueError, match="below 1 - level"):
        PotThreshold(tail=0.05, level=0.98)


def test_robust_threshold_on_log_scores_known_answer_and_raw_fallback():
    from adspark.core.thresholds import fit_robust

    s = np.exp(np.array([0.0, 1.0, 2.0, 3.0, 4.0]))  # log: median 2, MAD 1
    t = fit_robust(s, k=2.0)
    assert t.method == "robust" and t.params["scale"] == "log"
    assert t.value == pytest.approx(np.exp(2.0 + 2.0 * 1.4826))
    raw = fit_robust(np.array([-1.0, 0.0, 1.0, 2.0, 3.0]), k=1.0)  # not all positive: raw scale
    assert raw.params["scale"] == "raw" and raw.value == pytest.approx(1.0 + 1.4826)
    # a heavy upper tail does not drag it up as far as an extreme-tail fit would
    rng = np.random.default_rng(0)
    scores = np.r_[rng.lognormal(0, 0.3, 2000), rng.lognormal(3, 0.3, 20)]
    assert fit_robust(scores).value < np.quantile(scores, 0.999)
    assert fit_threshold(scores, "robust", k=3.0).value == fit_robust(scores, 3.0).value
