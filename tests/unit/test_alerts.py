"""Adaptive alerts core: baselines, calibration, fusion, onsets, state carried across nights."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from adspark.core.alerts import (
    ALERT_COLUMNS,
    AlertParams,
    _window_evidence,
    alert_nights,
    alert_nights_many,
    new_state,
)
from adspark.core.calibration import (
    BINS,
    EDGES,
    CalibrationParams,
    alert_onsets,
    calibrate,
    calibrate_many,
    fuse,
    histogram_tail,
    new_calibration_state,
)
from adspark.core.streaming import (
    BaselineParams,
    count_z,
    effective_visits,
    from_model_scale,
    is_count,
    new_baseline_state,
    robust_step,
    run_baselines,
    run_baselines_many,
    seasonal_slots,
    seasonal_slots_of_seconds,
    silence_z,
    to_model_scale,
)


def test_robust_step_is_a_running_mean_first_and_resists_one_outlier() -> None:
    loc, mad, n = np.zeros(1), np.zeros(1), np.zeros(1)
    no = np.array([False])
    for x in (1.0, 3.0):
        loc, mad, n = robust_step(np.array([x]), loc, mad, n, halflife=100, clip=3.0, counts=no)
    assert loc[0] == pytest.approx(2.0) and n[0] == 2  # plain mean of 1 and 3
    for x in (1.0, 3.0, 1.0, 3.0):
        loc, mad, n = robust_step(np.array([x]), loc, mad, n, halflife=100, clip=3.0, counts=no)
    before = loc.copy()
    loc, _, _ = robust_step(np.array([1e6]), loc, mad, n, halflife=100, clip=3.0, counts=no)
    assert loc[0] - before[0] < 1.0  # winsorized: moved by at most alpha x clip x sigma
    # NaN cells are not learned
    loc2, _, n2 = robust_step(np.array([np.nan]), loc, mad, n, 100, 3.0, no)
    assert loc2[0] == loc[0] and n2[0] == n[0]


def test_count_scale_round_trips_and_counts_are_recognized() -> None:
    counts = np.array([True, False])
    v = np.array([[0.0, -2.0], [9.0, 3.5]])
    np.testing.assert_allclose(from_model_scale(to_model_scale(v, counts), counts), v)
    assert is_count("event_count") and is_count("category__fuel") and is_count("ip_distinct")
    assert not is_count("amount_sum") and not is_count("value_mean")


def test_sum_scales_round_trip() -> None:
    counts, sums = np.array([False, False]), np.array([True, False])
    v = np.array([[0.0, -2.0], [400.0, 3.5], [-9.0, 1.0]])
    for scale in ("linear", "sqrt", "log"):
        there = to_model_scale(v, counts, sums, scale)
        np.testing.assert_allclose(from_model_scale(there, counts, sums, scale), v, atol=1e-9)
        np.testing.assert_array_equal(there[:, 1], v[:, 1])  # other features as they are
    assert to_model_scale(v, counts, sums, "sqrt")[1, 0] == pytest.approx(20.0)
    assert to_model_scale(v, counts, sums, "log")[1, 0] == pytest.approx(np.log(401.0))


def test_count_z_equals_the_negative_binomial_of_scipy_stats() -> None:
    # count_z calls the ufuncs behind scipy.stats.nbinom (no argument checks): same numbers
    from scipy.special import ndtri
    from scipy.stats import nbinom

    rng = np.random.default_rng(3)
    x, loc = np.round(rng.uniform(0, 40, 200)), rng.uniform(1.3, 12.0, 200)
    sigma, n = rng.uniform(1.0, 2.5, 200), rng.uniform(1, 500, 200)
    m = np.maximum(effective_visits(n, 24.0), 1.0)
    mu = np.clip((loc / 2.0) ** 2 - 0.375, 0.0, None)
    r = np.maximum(np.minimum(mu * m + 0.5, np.maximum(mu, 1e-9) / np.maximum(sigma**2 - 1.0, 1e-9)), 1e-3)
    prob = r / (r + mu + 0.5 / m)
    half = 0.5 * nbinom.pmf(x, r, prob)
    upper, lower = nbinom.sf(x, r, prob) + half, nbinom.cdf(x, r, prob) - half
    want = np.where(upper < lower, -ndtri(np.clip(upper, 1e-300, 1.0)), ndtri(np.clip(lower, 1e-300, 1.0)))
    np.testing.assert_allclose(count_z(x, loc, sigma, n, 24.0), np.clip(want, -1e3, 1e3), rtol=1e-12)


def test_count_z_matches_the_poisson_tail_with_a_long_history() -> None:
    from scipy.stats import norm, poisson

    mu = 10.0
    loc = np.full(3, 2.0 * np.sqrt(mu + 0.375))
    n = np.full(3, 1e6)
    z = count_z(np.array([25.0, 10.0, 0.0]), loc, np.ones(3), n, halflife=1e6)
    upper = poisson.sf(25, mu) + 0.5 * poisson.pmf(25, mu)  # mid-p
    assert z[0] == pytest.approx(norm.isf(upper), rel=1e-3)
    assert abs(z[1]) < 0.2  # the expected count is unremarkable
    assert z[2] == pytest.approx(norm.ppf(0.5 * poisson.pmf(0, mu)), rel=1e-3)
    assert np.isnan(count_z(np.array([np.nan]), loc[:1], np.ones(1), n[:1], 1e6))[0]


def test_count_z_rare_category_and_quiet_slot() -> None:
    rare = 2.0 * np.sqrt(0.01 + 0.375)  # a category seen about once in 100 buckets
    quiet = 2.0 * np.sqrt(0.375)  # a slot that never had an event
    z = count_z(np.array([3.0, 1.0, 1.0]), np.array([rare, rare, quiet]), np.ones(3),
                np.array([1e4, 1e4, 5.0]), halflife=288.0)
    assert z[0] > 4.5  # three events of it in one bucket: rare for this rate (Anscombe z about 2.4)
    assert z[1] < 3.0  # one event: ordinary enough
    assert z[2] < 2.0  # one event in a slot seen 5 times: its law is wide (Gamma-Poisson predictive)
    # overdispersion shown by the Anscombe sigma widens the law
    busy = np.full(2, 2.0 * np.sqrt(20.375))
    poisson_z, wide_z = count_z(np.array([40.0, 40.0]), busy, np.array([1.0, 2.0]), np.full(2, 1e4), 288.0)
    assert wide_z < poisson_z - 1.0
    assert effective_visits(np.array([3.0, 1e9]), 4.0)[0] == 3.0
    assert effective_visits(np.array([1e9]), 4.0)[0] == pytest.approx(2.0 / (1 - 2 ** -0.25) - 1.0)


def test_weighted_step_learns_one_unit_deviation() -> None:
    rng = np.random.default_rng(3)
    loc, mad, n = np.zeros(1), np.zeros(1), np.zeros(1)
    no = np.array([False])
    for _ in range(4000):  # means of m events, m from 1 to 16: their spread is 1 / sqrt(m)
        m = float(rng.integers(1, 17))
        x = rng.normal(5.0, 1.0 / np.sqrt(m), 1)
        loc, mad, n = robust_step(x, loc, mad, n, halflife=500, clip=3.0, counts=no, weight=np.sqrt(m))
    assert loc[0] == pytest.approx(5.0, abs=0.1)
    assert np.sqrt(np.pi / 2) * mad[0] == pytest.approx(1.0, abs=0.1)  # the deviation of one event


def test_sustained_evidence_ignores_one_extreme_bucket() -> None:
    z = np.array([[0.5, 0.5], [20.0, 20.0], [0.2, 0.2], [2.5, 2.5], [2.5, 2.5], [2.5, 2.5], [2.5, 2.5]])
    owner = np.array([0, 0, 0, 1, 1, 1, 1])
    best, where = _window_evidence(z, owner, 2, sustained=np.array([False, True]), clip=3.0)
    assert best[0, 0] == 20.0 and where[0, 0] == 1  # peak
    assert best[0, 1] == pytest.approx((0.5 + 3.0 + 0.2) / np.sqrt(3))  # clipped, combined
    assert best[1, 1] == pytest.approx(2.5 * 4 / 2.0)  # a shift over the window adds up


def test_window_evidence_per_window_of_new_buckets() -> None:
    nan = np.nan
    # windows 0 and 3 own two buckets each, window 1 none (no new bucket), window 2 one without a verdict
    z = np.array([[-4.0, 1.0], [1.0, 1.0], [nan, nan], [2.0, nan], [-2.0, 3.0]])
    owner = np.array([0, 0, 2, 3, 3])
    best, where = _window_evidence(z, owner, 4)
    assert best[0, 0] == 4.0 and where[0, 0] == 0  # the peak |z|, negative or not
    assert best[0, 1] == pytest.approx(2.0 / np.sqrt(2)) and where[0, 1] == 0  # a tie: the first row
    assert np.isnan(best[1]).all() and (where[1] == -1).all()  # no new bucket: no evidence
    assert np.isnan(best[2]).all() and (where[2] == -1).all()  # no verdict on its bucket
    assert best[3, 0] == 2.0 and where[3, 0] == 3  # +2 and -2 cancel in the sum; the peak stays
    assert best[3, 1] == 3.0 and where[3, 1] == 4  # the NaN row is left out
    peak, _ = _window_evidence(z, owner, 4, combine=False)
    assert peak[0, 1] == 1.0


def test_seasonal_slots_hour_of_day_and_weekend() -> None:
    t = pd.DatetimeIndex(["2026-01-05 00:30", "2026-01-05 13:00", "2026-01-10 13:00"])  # Mon, Mon, Sat
    np.testing.assert_array_equal(seasonal_slots(t, 1800, "UTC"), [0, 13, 24 + 13])
    np.testing.assert_array_equal(seasonal_slots(t, 86400, "UTC"), [0, 0, 1])
    # the zone moves the hour: 13:00 UTC is 14:00 in Paris in January
    assert seasonal_slots(t[1:2], 3600, "Europe/Paris")[0] == 14
    # naive UTC times take an arithmetic path: the same slots as the calendar's
    many = pd.date_range("1969-12-25", periods=2000, freq="317min")
    for width in (300, 3600, 86400):
        np.testing.assert_array_equal(seasonal_slots(many, width, "UTC"),
                                      seasonal_slots(many.tz_localize("UTC"), width, "UTC"))
    # from epoch seconds (what the alert step holds): the same slots, in UTC and in a zone with DST
    seconds = many.to_numpy("datetime64[s]").astype(np.int64).astype(np.float64)
    for zone in ("UTC", "Europe/Paris"):
        for width in (300, 3600):
            np.testing.assert_array_equal(seasonal_slots_of_seconds(seconds, width, zone),
                                          seasonal_slots(many, width, zone))


def _daily_counts(days: int, rng: np.random.Generator) -> tuple[pd.DatetimeIndex, np.ndarray]:
    t = pd.date_range("2026-01-05", periods=24 * days, freq="1h")
    rate = 2.0 + 18.0 * np.exp(-0.5 * ((t.hour.to_numpy() - 12) / 3.0) ** 2)
    return t, rng.poisson(rate).astype(float)[:, None]


def test_seasonal_baseline_flags_a_drop_at_a_busy_hour_not_the_quiet_night() -> None:
    t, x = _daily_counts(15, np.random.default_rng(0))
    x[-12, 0] = 0.0  # noon of the last day: no events where about 20 are usual
    out, _ = run_baselines(x, seasonal_slots(t, 3600, "UTC"), np.array([True]),
                           new_baseline_state(1, 48), BaselineParams(level_halflife=24))
    z = out.z["seasonal"][:, 0]
    assert z[-12] < -5
    assert np.abs(z[24 * 7 : -24]).max() < 5  # a quiet night is normal for its slot
    assert out.expected_loc[-12, 0] > to_model_scale(np.array([[10.0]]), np.array([True]))[0, 0]


def test_silence_is_the_probability_of_the_whole_run_of_empty_buckets() -> None:
    from scipy.special import ndtri

    x = np.array([[0.0], [0.0], [0.0], [4.0], [0.0], [np.nan], [0.0]])
    zero_p = np.array([[np.exp(-2.0)], [np.exp(-2.0)], [np.nan], [0.1], [np.exp(-1.0)], [np.nan], [np.exp(-1.0)]])
    z, after = silence_z(x, zero_p, np.array([-3.0]))  # a run of log P -3 carried in
    want = [-ndtri(0.5 * np.exp(-5.0)), -ndtri(0.5 * np.exp(-7.0))]
    np.testing.assert_allclose(z[:2, 0], want, rtol=1e-12)
    assert np.isnan(z[2, 0])  # no law there: no verdict, and the run goes on
    assert np.isnan(z[3, 0])  # events end the run
    assert z[4, 0] == pytest.approx(-ndtri(0.5 * np.exp(-1.0)))  # a new run: one bucket, the zero's own mid-p
    assert np.isnan(z[5, 0])  # padding changes nothing
    assert z[6, 0] == pytest.approx(-ndtri(0.5 * np.exp(-2.0)))
    assert after[0] == pytest.approx(-2.0)
    # cut anywhere, the same deviates and the same run after
    z1, mid = silence_z(x[:4], zero_p[:4], np.array([-3.0]))
    z2, end = silence_z(x[4:], zero_p[4:], mid)
    np.testing.assert_array_equal(np.vstack([z1, z2]), z)
    assert end[0] == after[0]


def test_silence_adds_up_a_long_quiet_stretch_the_hours_alone_do_not_flag() -> None:
    t, x = _daily_counts(15, np.random.default_rng(6))
    x = np.round(x / 4.0)  # about 0.5 to 5 events an hour
    x[-15:, 0] = 0.0  # the last 15 hours without an event
    out, _ = run_baselines(x, seasonal_slots(t, 3600, "UTC"), np.array([True]),
                           new_baseline_state(1, 48), BaselineParams(level_halflife=24))
    assert np.nanmax(np.abs(out.z["seasonal"][-15:, 0])) < 3.5  # no single hour is alarming
    assert out.z["silence"][-1, 0] > 6  # the stretch is
    assert np.nanmax(out.z["silence"][:-15, 0]) < 3.5  # ordinary quiet hours are not


def test_silence_judges_the_entitys_activity_only() -> None:
    params = AlertParams(features=("event_count", "category__a", "amount_sum"), n_steps=4, stride=2, bucket_seconds=3600)
    assert params.silence_features.tolist() == [True, False, False]
    judged_elsewhere = dataclasses.replace(params, baseline_only=("amount_sum",))
    assert not judged_elsewhere.silence_features.any()


def test_level_of_counts_per_day_type_a_monday_after_a_quiet_weekend_is_normal() -> None:
    t = pd.date_range("2026-01-05", periods=24 * 29, freq="1h")  # 2026-01-05 is a Monday
    rate = 0.5 + 4.5 * np.exp(-0.5 * ((t.hour.to_numpy() - 12) / 3.0) ** 2)
    x = np.random.default_rng(3).poisson(rate).astype(float)[:, None]
    weekend = t.dayofweek.to_numpy() >= 5
    x[weekend, 0] = np.random.default_rng(4).poisson(0.1, weekend.sum())  # quiet on weekends
    slots = seasonal_slots(t, 3600, "UTC")
    out, _ = run_baselines(x, slots, np.array([True]), new_baseline_state(1, 48), BaselineParams(level_halflife=24))
    z = out.z["level"][:, 0]
    mondays = (t.dayofweek.to_numpy() == 0) & (t >= pd.Timestamp("2026-01-19"))
    assert np.nanmax(np.abs(z[mondays])) < 3  # compared with Friday's level (one level for all days: 4.2)
    # a busy Sunday is still news for the weekend level
    y = x.copy()
    sunday_noon = int(np.flatnonzero((t.dayofweek.to_numpy() == 6) & (t.hour.to_numpy() == 12))[-1])
    y[sunday_noon, 0] = 20.0
    out, _ = run_baselines(y, slots, np.array([True]), new_baseline_state(1, 48), BaselineParams(level_halflife=24))
    assert out.z["level"][sunday_noon, 0] > 5


def test_a_borrowed_seasonal_slot_is_not_the_buckets_own_shape() -> None:
    # weekend slots borrow the weekday slot of the same hour until warm: the seasonal z may use it,
    # but the profile (its only reader) gets no visits there, so no window shape mixes in a weekday
    t = pd.date_range("2026-01-05", periods=24 * 21, freq="1h")  # Monday 2026-01-05, three weeks
    x = np.random.default_rng(5).poisson(3.0, len(t)).astype(float)[:, None]
    slots = seasonal_slots(t, 3600, "UTC")
    params = BaselineParams(level_halflife=24, min_visits=3)
    out, _ = run_baselines(x, slots, np.array([True]), new_baseline_state(1, 48), params)
    day = t.dayofweek.to_numpy()
    first_weekend = (day >= 5) & (t < pd.Timestamp("2026-01-12"))
    second_weekend = (day >= 5) & (t >= pd.Timestamp("2026-01-17")) & (t < pd.Timestamp("2026-01-19"))
    assert np.isfinite(out.z["seasonal"][first_weekend, 0]).all()  # judged against the weekday slot
    assert (out.seasonal_visits[first_weekend, 0] == 0).all()
    # Saturdays and Sundays share the weekend slots: the second Saturday is their third visit
    # (two seen before it: still borrowed), the second Sunday their fourth (own and warm)
    assert (out.seasonal_visits[second_weekend & (day == 5), 0] == 0).all()
    assert (out.seasonal_visits[second_weekend & (day == 6), 0] == 3).all()
    weekdays = (day < 5) & (t >= pd.Timestamp("2026-01-08"))
    assert (out.seasonal_visits[weekdays, 0] >= 3).all()


def test_baselines_score_before_they_learn_and_carry_state() -> None:
    t, x = _daily_counts(6, np.random.default_rng(1))
    slots = seasonal_slots(t, 3600, "UTC")
    counts, params = np.array([True]), BaselineParams(level_halflife=24)
    whole, s_whole = run_baselines(x, slots, counts, new_baseline_state(1, 48), params)
    first, s1 = run_baselines(x[:70], slots[:70], counts, new_baseline_state(1, 48), params)
    second, s2 = run_baselines(x[70:], slots[70:], counts, s1, params)
    for name in whole.z:
        np.testing.assert_array_equal(whole.z[name], np.vstack([first.z[name], second.z[name]]))
    for k in s_whole:
        np.testing.assert_array_equal(s_whole[k], s2[k])
    # causal: changing a later value leaves earlier verdicts alone
    y = x.copy()
    y[100, 0] = 500.0
    other, _ = run_baselines(y, slots, counts, new_baseline_state(1, 48), params)
    for name in whole.z:
        np.testing.assert_array_equal(other.z[name][:101 - 1], whole.z[name][:100])
    assert other.z["extreme"][100, 0] > 1.0 and other.z["level"][100, 0] > 5


def test_calibration_known_answer_and_adaptation() -> None:
    from scipy.stats import norm
    from scipy.stats import t as student

    raw = np.array([1.0, 3.0, 1.0, 3.0])
    params = CalibrationParams(short=1, halflife=1e9, min_history=3, min_std=1e-9, tail="normal")
    p, state = calibrate(raw, new_calibration_state(1), params, log=False)
    assert (p[:3] == 1.0).all()  # no verdict before 3 scores
    # 4th: mean of (1, 3, 1) = 5/3, population variance 8/9 -> z = (3 - 5/3) / sqrt(8/9)
    z = (3 - 5 / 3) / np.sqrt(8 / 9)
    assert p[3] == pytest.approx(norm.sf(z))
    np.testing.assert_allclose(state["stats"], [2.0, 1.0, 4.0])
    # the default, Student's predictive law from 3 scores: t with 2 dof, scale sqrt(1 + 1/3)
    p, _ = calibrate(raw, new_calibration_state(1), CalibrationParams(short=1, halflife=1e9, min_history=3,
                                                                    min_std=1e-9, tail="student"), log=False)
    assert p[3] == pytest.approx(student.sf(z / np.sqrt(4 / 3), 2)) and p[3] > norm.sf(z)
    # a lasting shift alerts at its onset, then becomes the new normal
    params = CalibrationParams(short=1, halflife=20, min_history=10, min_std=0.05)
    raw = np.r_[np.random.default_rng(2).normal(1.0, 0.1, 200).clip(0), np.full(200, 3.0)]
    p, _ = calibrate(raw, new_calibration_state(1), params, log=False)
    assert p[200] < 1e-6 and p[-1] > 1e-2


def test_calibration_in_pieces_equals_calibration_at_once() -> None:
    params = CalibrationParams(short=3, halflife=50, min_history=5)
    raw = np.random.default_rng(3).gamma(2.0, 1.0, (120, 4))
    raw[17, 2] = np.nan
    whole, s_whole = calibrate(raw, new_calibration_state(3, 4), params)
    a, s_a = calibrate(raw[:50], new_calibration_state(3, 4), params)
    b, s_b = calibrate(raw[50:], s_a, params)
    np.testing.assert_allclose(whole, np.vstack([a, b]))
    for k in s_whole:
        np.testing.assert_allclose(s_whole[k], s_b[k])


def test_exponential_reference_tail_of_older_models_goes_through_their_two_quantiles() -> None:
    from adspark.core.calibration import exponential_tail_params, pareto_tail

    u, xi, sigma = exponential_tail_params(np.array(1.0), np.array(2.0))
    p = pareto_tail(np.array([0.5, 1.0, 2.0, 3.0, np.nan]), u, xi, sigma)
    np.testing.assert_allclose(p[:4], [1.0, 0.1, 0.01, 0.001])
    assert p[4] == 1.0


def test_fitted_error_tail_follows_a_power_law_where_the_exponential_is_far_too_thin() -> None:
    from scipy import stats

    from adspark.core.calibration import exponential_tail_params, fit_error_tails, pareto_tail

    rng = np.random.default_rng(3)
    n = 50_000
    heavy = stats.genpareto.rvs(0.5, scale=1.0, size=n, random_state=rng)  # P(> x) = (1 + x / 2) ** -2
    light = rng.exponential(2.0, n)
    few = np.r_[np.zeros(n - 3), 1.0, 2.0, 3.0]  # too few distinct excesses to fit a shape
    u, xi, sigma = fit_error_tails(np.c_[heavy, light, few])
    assert abs(xi[0] - 0.5) < 0.1 and xi[1] < 0.05 and xi[2] == 0.0
    for x in (50.0, 200.0):  # far beyond the 99th percentile (about 18): truth 1.5e-3, 1e-4
        truth = (1 + x / 2) ** -2
        got = pareto_tail(np.array(x), u[0], xi[0], sigma[0])
        assert truth / 2 < got < truth * 2, (x, got, truth)
        q90, q99 = np.quantile(heavy, [0.9, 0.99])
        thin = pareto_tail(np.array(x), *exponential_tail_params(q90, q99))
        assert thin < truth / 20  # what the older reference said: far too confident
    np.testing.assert_allclose(pareto_tail(np.array(20.0), u[1], xi[1], sigma[1]), np.exp(-10), rtol=0.3)
    assert pareto_tail(np.array(-1.0), u[0], xi[0], sigma[0]) == 1.0


def test_fusion_rules() -> None:
    p = np.array([[0.01, 0.5, 1.0], [1.0, 1.0, 1.0]])
    fused, driver = fuse(p, "bonferroni")
    np.testing.assert_allclose(fused, [0.03, 1.0])
    assert driver.tolist() == [0, 0]
    from scipy.stats import chi2

    fused, _ = fuse(p, "fisher")
    assert fused[0] == pytest.approx(chi2.sf(-2 * np.log([0.01, 0.5, 1.0]).sum(), 6))
    with pytest.raises(ValueError, match="unknown fusion rule"):
        fuse(p, "mean")


def test_only_detectors_that_judged_a_window_count_as_tests() -> None:
    from scipy.stats import chi2

    p = np.array([[0.01, 0.5, 1.0], [0.01, 1.0, 1.0], [1.0, 1.0, 1.0]])
    judged = np.array([[True, True, False], [True, False, False], [False, False, False]])
    fused, driver = fuse(p, "bonferroni", judged)
    np.testing.assert_allclose(fused, [0.02, 0.01, 1.0])  # 2 tests, 1 test, none
    assert driver.tolist()[:2] == [0, 0]
    fused, _ = fuse(p, "fisher", judged)
    assert fused[0] == pytest.approx(chi2.sf(-2 * np.log([0.01, 0.5]).sum(), 4))
    assert fused[1] == pytest.approx(0.01) and fused[2] == 1.0
    with pytest.raises(ValueError, match="judged has shape"):
        fuse(p, "bonferroni", judged[:, :2])


def test_alert_onsets_one_alert_per_run_also_across_nights() -> None:
    a = np.array([True, True, False, True, False, False, True])
    starts = np.arange(7.0)  # windows of one second, back to back
    alerts, last_end = alert_onsets(a, starts, 1.0)
    assert alerts.tolist() == [True, False, False, True, False, False, True]
    assert last_end == 7.0
    assert alert_onsets(a, starts, 1.0, last_end=0.0)[0].tolist()[0] is False  # the run started last night
    assert alert_onsets(a, starts + 5.0, 1.0, last_end=0.0)[0].tolist()[0] is True  # it ended long before


def test_alert_onsets_cooldown_keeps_a_run_that_resumes_soon_one_alert() -> None:
    a = np.array([True, False, True, False, False, False, True])
    starts = np.arange(7.0)
    assert alert_onsets(a, starts, 1.0, cooldown=1.0)[0].tolist() == [True] + [False] * 5 + [True]
    assert alert_onsets(a, starts, 1.0, cooldown=3.0)[0].tolist() == [True] + [False] * 6
    # overlapping windows (width 4, stride 2): a window that overlaps the last anomalous one is no new alert
    b = np.array([True, False, True, False, False, True])
    assert alert_onsets(b, 2.0 * np.arange(6), 4.0)[0].tolist() == [True, False, False, False, False, True]


def _windows(days: int, spike_at: int | None, seed: int = 0) -> tuple[pd.DataFrame, AlertParams]:
    """An entity's hourly counts cut into windows of 6 buckets, stride 3."""
    t, x = _daily_counts(days, np.random.default_rng(seed))
    if spike_at is not None:
        x[spike_at : spike_at + 3, 0] = 120.0
    w, s = 6, 3
    ends = [i for i in range(w - 1, len(t)) if i % s == s - 1]
    frame = pd.DataFrame({
        "window_start": [t[i - w + 1] for i in ends],
        "date": [t[i].date() for i in ends],
        "raw_values": [x[i - w + 1 : i + 1].ravel() for i in ends],
        "model_score": np.random.default_rng(seed + 1).gamma(4.0, 0.25, len(ends)),
        "top_features": [["event_count"]] * len(ends),
    })
    params = AlertParams(features=("event_count",), n_steps=w, stride=s, bucket_seconds=3600,
                         baselines=BaselineParams(level_halflife=24),
                         calibration=CalibrationParams(short=1, min_history=20), model_reference=1.0)
    return frame, params


def test_alert_nights_flag_a_spike_once_with_its_expected_range() -> None:
    spike = 24 * 12 + 13
    frame, params = _windows(14, spike)
    scored, states = alert_nights(frame, None, params)
    assert set(ALERT_COLUMNS) <= set(scored.columns) and len(states) == 14
    hits = scored[scored["alert"]]
    assert len(hits) >= 1
    first = hits.iloc[0]
    spike_time = pd.Timestamp("2026-01-05") + pd.Timedelta(hours=spike)
    assert first["window_start"] <= spike_time < first["window_start"] + pd.Timedelta(hours=6)
    assert first["driver"] in ("level", "diff", "seasonal", "extreme")
    assert first["driver_feature"] == "event_count" and first["actual"] == 120.0
    assert first["expected_low"] <= first["expected_high"] < 120.0
    assert (scored["p_value"] < params.level).sum() <= 4  # the spike's windows, no others
    # the clean series raises no alert at all
    clean, _ = alert_nights(_windows(14, None)[0], None, params)
    assert not clean["alert"].any()


def _measure_windows(days: int, seed: int) -> tuple[pd.DataFrame, AlertParams]:
    """Windows of 6 hourly buckets, stride 3, of a plain measure (:func:`_measure`), judged by
    the baselines, ``stuck`` and ``neighbor`` (whose buffer carries the last 72 buckets)."""
    t, x = _measure(24 * days, seed, decimals=1)
    w, s = 6, 3
    ends = [i for i in range(w - 1, len(t)) if i % s == s - 1]
    frame = pd.DataFrame({
        "window_start": [t[i - w + 1] for i in ends], "date": [t[i].date() for i in ends],
        "raw_values": [x[i - w + 1 : i + 1].ravel() for i in ends], "model_score": np.nan,
    })
    params = AlertParams(features=("value_mean",), n_steps=w, stride=s, bucket_seconds=3600,
                         detectors=("level", "diff", "seasonal", "extreme", "stuck", "neighbor"),
                         baselines=BaselineParams(level_halflife=24),
                         calibration=CalibrationParams(short=1, min_history=20), neighbor_horizon=72)
    return frame, params


@pytest.mark.parametrize("case", ["counts", "measure"])
def test_nights_one_by_one_equal_the_range_and_reruns_are_identical(case: str) -> None:
    frame, params = _windows(6, 24 * 4 + 10) if case == "counts" else _measure_windows(6, 8)
    whole, states = alert_nights(frame, None, params)
    state, parts = None, []
    for day in sorted(frame["date"].unique()):
        scored, after = alert_nights(frame[frame["date"] == day], state, params)
        parts.append(scored)
        state = after[-1][1]
        # a rerun of the night from the state the range run kept for the night before
        days = [d for d, _ in states]
        before = states[days.index(day) - 1][1] if days.index(day) else None
        again, _ = alert_nights(frame[frame["date"] == day], before, params)
        pd.testing.assert_frame_equal(again, scored)
    one_by_one = pd.concat(parts, ignore_index=True)
    pd.testing.assert_frame_equal(one_by_one, whole)
    for k, v in states[-1][1].items():
        np.testing.assert_array_equal(v, state[k])
        assert not np.isnan(v).any(), f"state {k} holds NaN (stored as null)"
    if case == "measure":  # the neighbor's buffer is carried too
        assert np.isfinite(state["neighbor_t"]).sum() == 72


def test_new_state_shapes() -> None:
    params = AlertParams(features=("a", "b"), n_steps=4, stride=2, bucket_seconds=300)
    s = new_state(params)
    assert s["season_loc"].size == 2 * 24 * 2 and s["cal_model_stats"].size == 3
    assert s["cal_seasonal_stats"].size == 3 * 2 and s["cursor"][0] == -np.inf


def test_alert_nights_on_no_windows() -> None:
    params = AlertParams(features=("a",), n_steps=2, stride=1, bucket_seconds=3600)
    empty = pd.DataFrame({"window_start": pd.Series(dtype="datetime64[ns]"), "date": pd.Series(dtype=object),
                          "raw_values": [], "model_score": [], "top_features": []})
    scored, states = alert_nights(empty, None, params)
    assert scored.empty and states == []


def test_in_sample_model_scores_do_not_enter_the_calibration() -> None:
    frame, params = _windows(4, None)
    last_day = frame["date"].max()
    masked = dataclasses.replace(params, detectors=("model",), model_out_of_sample=last_day)
    _, states = alert_nights(frame, None, masked)
    learned = states[-1][1]["cal_model_stats"][2]
    assert learned == (frame["date"] == last_day).sum()


def test_alerts_config_is_strict() -> None:
    from adspark.config import AlertsConfig

    with pytest.raises(ValueError, match="detectors listed twice"):
        AlertsConfig(detectors=["model", "model"])
    with pytest.raises(ValueError, match="unknown time zone"):
        AlertsConfig(timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="Input should be"):
        AlertsConfig(detectors=["pca"])


def test_the_model_per_feature_names_the_feature_whose_error_jumped() -> None:
    frame, params = _windows(14, None)
    two = dataclasses.replace(params, features=("event_count", "other"), detectors=("model",),
                              model_feature_reference=(1.0, 1.0))
    rng = np.random.default_rng(5)
    errors = rng.gamma(4.0, 0.25, (len(frame), 2))
    errors[-5, 1] = 60.0  # one window: the second feature's error alone jumps
    frame = frame.assign(
        raw_values=[np.c_[v, np.zeros_like(v)].ravel() for v in frame["raw_values"]],
        feature_errors=list(errors),
    )
    scored, states = alert_nights(frame, None, two)
    assert states[-1][1]["cal_model_stats"].size == 3 * 2  # calibrated per feature
    hit = scored.iloc[len(frame) - 5]
    assert hit["is_anomaly"] and hit["driver"] == "model" and hit["driver_feature"] == "other"
    assert scored["is_anomaly"].sum() <= 2


def test_a_state_of_another_layout_restarts_only_the_pieces_that_changed() -> None:
    frame, params = _windows(3, None)
    _, states = alert_nights(frame, None, params)  # the model calibrated as one series
    per_feature = dataclasses.replace(params, model_feature_reference=(1.0,))
    widened = dataclasses.replace(params, features=("event_count", "b"))
    from adspark.core.alerts import conform_state

    kept = conform_state(states[-1][1], per_feature)
    assert (kept["level_loc"] == states[-1][1]["level_loc"]).all()  # same layout: carried on
    restarted = conform_state(states[-1][1], widened)
    assert restarted["level_n"].tolist() == [0.0, 0.0] and restarted["cursor"][0] == states[-1][1]["cursor"][0]


def test_empirical_tail_learns_each_series_own_tail() -> None:
    """A heavy-tailed series (log-normal scores) stops alarming at its ordinary large values,
    a light-tailed one keeps alarming at a clear outlier; both flag a far outlier."""
    rng = np.random.default_rng(0)
    raw = np.c_[np.abs(rng.normal(size=3000)), rng.lognormal(0.0, 1.0, 3000)]
    raw[2900, 0], raw[2950, 1] = 8.0, 200.0
    emp = CalibrationParams(short=1, min_history=30, tail="empirical")
    stu = CalibrationParams(short=1, min_history=30, tail="student")
    p_emp, state = calibrate(raw, new_calibration_state(1, 2, "empirical"), emp, log=False)
    p_stu, _ = calibrate(raw, new_calibration_state(1, 2, "student"), stu, log=False)
    assert state["stats"].shape == ((3 + BINS) * 2,) and np.isfinite(state["stats"]).all()
    ordinary = np.ones(3000, bool)
    ordinary[[2900, 2950]] = False
    # about 3000 x 1e-4 = 0.3 ordinary scores should be below 1e-4; the Student law finds dozens
    assert (p_stu[ordinary, 1] < 1e-4).sum() > 20
    assert (p_emp[ordinary, 1] < 1e-4).sum() <= 3
    assert (p_emp >= p_stu).all()  # never below the Student law
    assert p_emp[2900, 0] < 1e-5 and p_emp[2950, 1] < 1e-5


def test_histogram_tail_known_answers() -> None:
    hist = np.zeros((BINS, 1))
    hist[:10, 0] = 1.0  # mass spread evenly over the first ten bins
    inside = histogram_tail(np.array([EDGES[5]]), hist, 1e-3)
    assert inside[0] == pytest.approx(0.5)
    q90, q99 = EDGES[9], EDGES[9] + 0.9 * (EDGES[10] - EDGES[9])
    far = q99 + 2 * (q99 - q90)
    assert histogram_tail(np.array([far]), hist, 1e-3)[0] == pytest.approx(1e-4)


def _amount_windows(days: int, big_event_at: int, shift_from: int, seed: int = 5) -> tuple[pd.DataFrame, AlertParams]:
    """Hourly ``event_count, amount_sum, amount_mean`` of log-normal amounts, windows of 24 stride 6;
    one event 150x the usual amount at ``big_event_at``, amounts x4 from ``shift_from`` on."""
    rng = np.random.default_rng(seed)
    t = pd.date_range("2026-01-05", periods=24 * days, freq="1h")
    rows = []
    for i in range(len(t)):
        amounts = rng.lognormal(3.0, 0.9, rng.poisson(6.0))
        if i == big_event_at and len(amounts):
            amounts[0] = 150.0 * np.exp(3.0)
        if i >= shift_from:
            amounts = amounts * 4.0
        rows.append([len(amounts), amounts.sum(), amounts.mean() if len(amounts) else np.nan])
    x = np.array(rows)
    w, s = 24, 6
    ends = [i for i in range(w - 1, len(t)) if i % s == s - 1]
    frame = pd.DataFrame({
        "window_start": [t[i - w + 1] for i in ends], "date": [t[i].date() for i in ends],
        "raw_values": [x[i - w + 1 : i + 1].ravel() for i in ends], "model_score": np.nan,
    })
    params = AlertParams(features=("event_count", "amount_sum", "amount_mean"), n_steps=w, stride=s,
                         bucket_seconds=3600, detectors=("level", "diff", "seasonal", "extreme"))
    return frame, params


def test_a_lasting_shift_of_amounts_alerts_one_large_event_does_not() -> None:
    big, shift = 24 * 16 + 10, 24 * 19 + 9
    frame, params = _amount_windows(21, big, shift)
    t0 = pd.Timestamp("2026-01-05")
    end = frame["window_start"] + pd.Timedelta(hours=24)
    has_big = (frame["window_start"] <= t0 + pd.Timedelta(hours=big)) & (end > t0 + pd.Timedelta(hours=big))
    scored, _ = alert_nights(frame, None, params)
    before = (scored["window_start"] >= t0 + pd.Timedelta(days=10)) & (end <= t0 + pd.Timedelta(hours=shift))
    assert has_big[before].any() and not scored.loc[before, "is_anomaly"].any()
    after = scored[end > t0 + pd.Timedelta(hours=shift)]
    assert after["alert"].sum() >= 1
    first = after[after["alert"]].iloc[0]
    assert first["driver_feature"] == "amount_mean"
    # what was normal, on the amounts' own scale: the mean of a log-normal(3, 0.9) amount is 30
    assert first["expected_low"] < 30.0 < first["expected_high"] < first["actual"]
    # judged bucket by bucket (peak evidence), the one large event alarms
    peak, _ = alert_nights(frame, None, dataclasses.replace(params, measure_evidence="peak"))
    assert peak.loc[has_big, "is_anomaly"].any()


def test_a_clipped_history_keeps_a_sustained_anomaly_improbable_while_it_lasts() -> None:
    rng = np.random.default_rng(3)
    raw = np.concatenate([rng.gamma(4.0, 0.25, 300), np.full(60, 50.0), rng.gamma(4.0, 0.25, 50)])
    plain = CalibrationParams(short=1, min_history=30)
    clipped = dataclasses.replace(plain, learn_clip=3.0)
    p_plain, _ = calibrate(raw, new_calibration_state(1), plain)
    p_clip, after = calibrate(raw, new_calibration_state(1), clipped)
    fault = slice(300, 360)
    assert (p_plain[fault] < 1e-5).sum() < 20  # the plain history learns the fault within a few windows
    assert (p_clip[fault] < 1e-5).all()  # the clipped one keeps it improbable for all 60
    assert (p_clip[360:] > 1e-3).all()  # and the normal scores after it are ordinary again
    np.testing.assert_allclose(p_plain[:300], p_clip[:300], rtol=0.02)  # ordinary scores: barely touched
    assert np.isfinite(after["stats"]).all()


def _measure(n: int, seed: int, decimals: int | None = None) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """An hourly measure around 50 (rounded to ``decimals`` when given), shape (n, 1)."""
    t = pd.date_range("2026-01-05", periods=n, freq="1h")
    x = 50.0 + np.random.default_rng(seed).normal(0.0, 5.0, n)
    return t, (np.round(x, decimals) if decimals is not None else x)[:, None]


def test_stuck_flags_a_measure_that_stalls_longer_than_ever_not_its_usual_stalls() -> None:
    params = BaselineParams(level_halflife=24)
    t, x = _measure(24 * 8, 0)
    x[150:160, 0] = x[149, 0]  # the sensor freezes for 10 hours
    out, state = run_baselines(x, seasonal_slots(t, 3600, "UTC"), np.array([False]), new_baseline_state(1, 48), params)
    z = out.z["stuck"][:, 0]
    assert np.isnan(z[:150]).all()  # no value ever repeated before: no verdict
    assert z[150] > 1.5 and z[152] > 4 and np.all(np.diff(z[150:160]) > 0)  # ever less likely
    assert np.isnan(z[160:]).all() and state["longest"][0] == 11.0
    # a coarse sensor repeats itself now and then: stalls as long as it has shown are no news,
    # a longer one is, less loudly than for a series that never repeats
    t, y = _measure(24 * 8, 1, decimals=0)
    longest = int(run_baselines(y[:150], seasonal_slots(t[:150], 3600, "UTC"), np.array([False]),
                                new_baseline_state(1, 48), params)[1]["longest"][0])
    assert longest >= 2
    y[150:150 + longest, 0] = y[149, 0]
    out, _ = run_baselines(y, seasonal_slots(t, 3600, "UTC"), np.array([False]), new_baseline_state(1, 48), params)
    assert np.isnan(out.z["stuck"][150:149 + longest, 0]).all()
    y[150:160, 0] = y[149, 0]
    out, _ = run_baselines(y, seasonal_slots(t, 3600, "UTC"), np.array([False]), new_baseline_state(1, 48), params)
    coarse = out.z["stuck"][159, 0]
    assert 0 < coarse < z[159]


def test_stuck_leaves_counts_and_sums_to_the_level() -> None:
    t, x = _daily_counts(6, np.random.default_rng(2))
    x[100:120, 0] = 0.0  # a long quiet stretch
    both = np.hstack([x, x * 3.5])
    out, _ = run_baselines(both, seasonal_slots(t, 3600, "UTC"), np.array([True, False]),
                           new_baseline_state(2, 48), BaselineParams(level_halflife=24),
                           sums=np.array([False, True]))
    assert np.isnan(out.z["stuck"]).all()


def test_a_frozen_measure_alerts_through_the_stuck_detector() -> None:
    t, x = _measure(24 * 10, 3)
    x[24 * 8 : 24 * 8 + 8, 0] = x[24 * 8 - 1, 0]
    frame = pd.DataFrame({
        "window_start": t, "date": [v.date() for v in t], "raw_values": list(x),
        "model_score": np.nan, "top_features": [[]] * len(t),
    })
    params = AlertParams(features=("value_mean",), n_steps=1, stride=1, bucket_seconds=3600,
                         detectors=("level", "diff", "seasonal", "extreme", "stuck"),
                         baselines=BaselineParams(level_halflife=24, min_buckets=24))
    frozen = (frame["window_start"] >= t[24 * 8]) & (frame["window_start"] < t[24 * 8 + 8])
    scored, _ = alert_nights(frame, None, params)
    hits = scored[scored["alert"] & frozen.to_numpy()]
    assert len(hits) == 1 and hits.iloc[0]["driver"] == "stuck" and hits.iloc[0]["driver_feature"] == "value_mean"
    assert pd.Timestamp(hits.iloc[0]["window_start"]) <= t[24 * 8 + 4]  # by the 5th equal value
    assert (scored["driver"] == "stuck").sum() == frozen.sum()  # it judges the 8 repeats, nothing else
    # without it the frozen value, a usual one, raises nothing
    quiet, _ = alert_nights(frame, None, dataclasses.replace(params, detectors=("level", "diff", "seasonal", "extreme")))
    assert not quiet["alert"][frozen.to_numpy()].any()


def test_the_stuck_detector_keeps_no_calibration_state() -> None:
    params = AlertParams(features=("value_mean",), n_steps=1, stride=1, bucket_seconds=3600,
                         detectors=("level", "stuck"))
    state = new_state(params)
    assert "cal_level_stats" in state and not any(k.startswith("cal_stuck") for k in state)
    assert {"run", "longest", "repeats", "transitions"} <= set(state)


def test_baselines_of_many_entities_equal_each_entity_alone() -> None:
    # entities of different lengths (one with no bucket at all), warm and cold states, missing
    # values, counts, sums and event-weighted means: one time loop, the same numbers
    features = ("event_count", "amount_sum", "amount_mean", "latency")
    counts = np.array([is_count(f) for f in features])
    sums, means = np.array([False, True, False, False]), np.array([False, False, True, False])
    rng = np.random.default_rng(11)
    params = BaselineParams(level_halflife=24, min_buckets=6, min_visits=2)
    values, slots, states, events = [], [], [], []
    for n, warm in ((90, 0), (37, 50), (0, 0), (61, 120)):
        t = pd.date_range("2026-01-05", periods=warm + n, freq="1h")
        x = np.column_stack([rng.poisson(5.0, warm + n), rng.gamma(2.0, 30.0, warm + n),
                             rng.gamma(2.0, 6.0, warm + n), np.round(rng.normal(50, 5, warm + n))])
        x[rng.random(warm + n) < 0.05, 2] = np.nan
        s = seasonal_slots(t, 3600, "UTC")
        state = new_baseline_state(len(features), 48)
        if warm:
            _, state = run_baselines(x[:warm], s[:warm], counts, state, params, sums, "sqrt", means, x[:warm, 0])
        values.append(x[warm:]), slots.append(s[warm:]), states.append(state), events.append(x[warm:, 0])
    together = run_baselines_many(values, slots, counts, states, params, sums, "sqrt", means, events)
    for e, (out, after) in enumerate(together):
        alone, alone_after = run_baselines(values[e], slots[e], counts, states[e], params, sums, "sqrt", means,
                                           events[e])
        for name in alone.z:
            np.testing.assert_array_equal(out.z[name], alone.z[name], err_msg=f"entity {e} {name}")
        np.testing.assert_array_equal(out.expected_loc, alone.expected_loc)
        np.testing.assert_array_equal(out.expected_sigma, alone.expected_sigma)
        np.testing.assert_array_equal(out.seasonal_visits, alone.seasonal_visits)
        assert after.keys() == alone_after.keys()
        for k in after:
            np.testing.assert_array_equal(after[k], alone_after[k], err_msg=f"entity {e} state {k}")
    assert together[2][0].z["level"].shape == (0, len(features))
    assert run_baselines_many([], [], counts, [], params) == []
    np.testing.assert_array_equal(together[2][1]["seen"], states[2]["seen"])  # no bucket: nothing learned


def test_alerts_of_many_entities_equal_each_entity_alone() -> None:
    # entities with different nights (one skips two, one starts from a state of earlier nights)
    # go through the nights together; each result equals its own alert_nights
    base, params = _amount_windows(9, big_event_at=24 * 6 + 3, shift_from=24 * 8)
    params = dataclasses.replace(params, detectors=("level", "diff", "seasonal", "extreme", "stuck", "profile"))
    skipping, _ = _amount_windows(9, big_event_at=24 * 2, shift_from=24 * 5, seed=6)
    days = sorted(skipping["date"].unique())
    skipping = skipping[~skipping["date"].isin(days[3:5])]
    late, _ = _amount_windows(9, big_event_at=24 * 7, shift_from=24 * 99, seed=7)
    _, kept = alert_nights(late[late["date"] < days[4]], None, params)
    windows = {"a": base, "b": skipping, "c": late[late["date"] >= days[4]]}
    states = {"c": kept[-1][1]}
    together = alert_nights_many(windows, states, params)
    for key, frame in windows.items():
        scored, after = alert_nights(frame, states.get(key), params)
        pd.testing.assert_frame_equal(together[key][0], scored, check_exact=True)
        assert [d for d, _ in together[key][1]] == [d for d, _ in after]
        for (_, s1), (_, s2) in zip(together[key][1], after, strict=True):
            for k in s2:
                np.testing.assert_array_equal(s1[k], s2[k], err_msg=f"{key} state {k}")
    assert together["a"][0]["alert"].any()  # the data does raise alerts


@pytest.mark.parametrize("tail", ["student", "empirical"])
def test_calibration_of_many_entities_equals_each_entity_alone(tail: str) -> None:
    params = CalibrationParams(short=3, min_history=5, tail=tail)
    rng = np.random.default_rng(4)
    raws = [rng.gamma(2.0, 1.0, (n, 3)) for n in (40, 7, 25)]
    raws[1][2, 1] = np.nan  # no score: nothing learned
    states = [new_calibration_state(3, 3, tail) for _ in raws]
    _, states[2] = calibrate(rng.gamma(2.0, 1.0, (30, 3)), states[2], params)  # a warm entity
    together = calibrate_many(raws, states, params)
    for raw, state, (p, after) in zip(raws, states, together, strict=True):
        alone, alone_after = calibrate(raw, state, params)
        assert p.shape == raw.shape
        np.testing.assert_array_equal(p, alone)
        for k in ("recent", "stats"):
            np.testing.assert_array_equal(after[k], alone_after[k])


def test_a_measure_sitting_on_one_value_is_judged_against_its_rounding_noise() -> None:
    # 0 but for a spike to 20 every 100 buckets: the robust deviation is 0, so without a floor each
    # spike's z grows to the cap as the deviation decays; the values' resolution (the smallest
    # change seen, 20) bounds it at 20 / (20 / sqrt(12)) = sqrt(12)
    t = pd.date_range("2026-01-05", periods=1000, freq="1h")
    x = np.zeros((len(t), 1))
    spikes = np.arange(50, len(t), 100)
    x[spikes, 0] = 20.0
    slots = seasonal_slots(t, 3600, "UTC")
    counts = np.array([False])
    floored, state = run_baselines(x, slots, counts, new_baseline_state(1, 48), BaselineParams(level_halflife=24))
    bare, _ = run_baselines(x, slots, counts, new_baseline_state(1, 48),
                            BaselineParams(level_halflife=24, resolution_floor=False))
    assert state["step"][0] == 20.0
    late = spikes[spikes > 300]
    np.testing.assert_allclose(floored.z["level"][late, 0], np.sqrt(12.0))
    assert np.all(bare.z["level"][late, 0] >= 999.0)  # at the z cap (1000)
    # before the first change there is no resolution: the same verdicts as without the floor
    first = spikes[0]
    np.testing.assert_array_equal(floored.z["level"][: first + 1], bare.z["level"][: first + 1])


def test_the_resolution_is_the_smallest_change_between_consecutive_values() -> None:
    t = pd.date_range("2026-01-05", periods=8, freq="1h")
    x = np.array([[5.0], [5.0], [np.nan], [7.0], [6.5], [6.5], [9.0], [np.nan]])
    _, state = run_baselines(x, seasonal_slots(t, 3600, "UTC"), np.array([False]), new_baseline_state(1, 48),
                             BaselineParams())
    assert state["step"][0] == 0.5  # 5 -> 7 across the gap, 7 -> 6.5, 6.5 -> 9; repeats and gaps are no change
    # carried: a night cut anywhere learns the same
    a, s1 = run_baselines(x[:4], seasonal_slots(t[:4], 3600, "UTC"), np.array([False]), new_baseline_state(1, 48),
                          BaselineParams())
    _, s2 = run_baselines(x[4:], seasonal_slots(t[4:], 3600, "UTC"), np.array([False]), s1, BaselineParams())
    assert s1["step"][0] == 2.0 and s2["step"][0] == 0.5


def test_extreme_is_a_test_in_the_fusion_only_where_a_value_left_the_running_range() -> None:
    # inside the entity's range its p is 1 by construction: counted, it would only double the
    # other detectors' p (Bonferroni over two tests instead of one)
    frame, params = _windows(14, 24 * 12 + 13)
    p = {}
    for detectors in (("level", "extreme"), ("level",), ("extreme",)):
        scored, _ = alert_nights(frame, None, dataclasses.replace(params, detectors=detectors))
        p[detectors] = scored["p_value"].to_numpy()
    both, level, extreme = p[("level", "extreme")], p[("level",)], p[("extreme",)]
    beyond = extreme < 1.0
    assert 0 < beyond.sum() < 0.2 * len(beyond) and (level < 0.5).sum() > 20
    np.testing.assert_allclose(both[~beyond], level[~beyond], rtol=1e-12)
    np.testing.assert_allclose(both[beyond], np.minimum(1.0, 2.0 * np.minimum(level, extreme)[beyond]), rtol=1e-12)
    assert both.min() < params.level  # the spike still alerts
