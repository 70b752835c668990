"""The profile detector: the shape of a window's activity against the seasonal expectation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from adspark.core.alerts import AlertParams, alert_nights
from adspark.core.calibration import CalibrationParams
from adspark.core.generate import _daily_shape
from adspark.core.profile import (
    chi2_deviate,
    expected_counts,
    g_statistic,
    new_profile_buffer,
    window_profiles,
    window_profiles_many,
)
from adspark.core.streaming import BaselineParams


def test_g_statistic_known_answers() -> None:
    # 2 events where 1 + 1 were expected: G = 2 * 2 log 2
    np.testing.assert_allclose(g_statistic(np.array([[2.0, 0.0]]), np.array([[1.0, 1.0]])), [4 * np.log(2)])
    # the expected shape itself, at any level, gives 0; only proportions matter
    o = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(g_statistic(o, o * 7.0), [0.0], atol=1e-12)
    np.testing.assert_allclose(g_statistic(o, np.array([[1.0, 1.0, 1.0]])),
                               g_statistic(o, np.array([[5.0, 5.0, 5.0]])))
    # no events, a missing count or an unknown expectation: no verdict
    bad = g_statistic(np.array([[0.0, 0.0], [-1.0, 2.0], [1.0, 1.0]]), np.array([[1.0, 1.0], [1.0, 1.0], [1.0, -1.0]]))
    assert np.isnan(bad).all()


def test_chi2_deviate_is_about_normal_under_the_null() -> None:
    assert abs(chi2_deviate(np.array([23.0 * (1 - 2 / (9 * 23)) ** 3]), 23)[0]) < 1e-12
    rng = np.random.default_rng(0)
    z = chi2_deviate(rng.chisquare(23, 100_000), 23)
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1.0) < 0.02


def test_expected_counts_invert_the_anscombe_scale_and_need_a_warm_slot() -> None:
    loc = 2.0 * np.sqrt(np.array([4.0, 0.0]) + 0.375)
    e = expected_counts(loc, np.array([1e6, 1e6]), halflife=1e9)
    np.testing.assert_allclose(e, [4.0, 0.0], atol=1e-6)
    assert np.isnan(expected_counts(loc, np.array([0.0, 0.0]), 4.0)).all()
    # few visits: a quiet slot keeps a small positive expectation (one event there is possible)
    assert expected_counts(np.array([2.0 * np.sqrt(0.375)]), np.array([3.0]), 4.0)[0] > 0.1


def test_a_shifted_day_is_far_out_and_an_ordinary_one_is_not() -> None:
    rng = np.random.default_rng(1)
    e = 5.0 * _daily_shape(np.arange(24), 0.0)
    ordinary = chi2_deviate(g_statistic(rng.poisson(e, (500, 24)), np.tile(e, (500, 1))), 23)
    shifted = chi2_deviate(g_statistic(rng.poisson(5.0 * _daily_shape(np.arange(24), 10.0), (500, 24)),
                                       np.tile(e, (500, 1))), 23)
    assert np.quantile(ordinary, 0.99) < 3.5 and np.quantile(shifted, 0.05) > 5.0


def test_window_profiles_in_pieces_equal_at_once_and_gaps_give_no_verdict() -> None:
    rng = np.random.default_rng(2)
    w, s, m = 4, 2, 12
    obs = rng.poisson(3.0, m).astype(float)
    exp = np.full(m, 3.0)
    times = np.arange(m) * 3600.0
    starts = np.arange(0, m - w + 1, s) * 3600.0  # windows of 4 buckets every 2
    last = (starts / 3600).astype(int) + w - 1
    last_rows = np.array([last[0]] + [last[i] for i in range(1, len(last))])
    z_all, buf_all = window_profiles(new_profile_buffer(w), obs, exp, times, last_rows, starts, 3600)
    assert np.isfinite(z_all).all()
    cut = 6  # the first 6 buckets (windows 0..1), then the rest
    z1, buf = window_profiles(new_profile_buffer(w), obs[:cut], exp[:cut], times[:cut], last_rows[:2], starts[:2], 3600)
    z2, buf2 = window_profiles(buf, obs[cut:], exp[cut:], times[cut:], last_rows[2:] - cut, starts[2:], 3600)
    np.testing.assert_allclose(np.concatenate([z1, z2]), z_all)
    for k in buf_all:
        np.testing.assert_array_equal(buf2[k], buf_all[k])
    # a window whose buckets are not contiguous in time (an hour missing): no verdict
    holed = times.copy()
    holed[5:] += 3600.0
    z_hole, _ = window_profiles(new_profile_buffer(w), obs, exp, holed, last_rows, starts, 3600)
    assert np.isnan(z_hole[2])



def test_window_profiles_of_many_entities_equal_each_entity_alone() -> None:
    # three entities side by side (one with no new bucket, one continuing a filled buffer):
    # every deviate and buffer is the entity's own
    rng = np.random.default_rng(4)
    w, s = 4, 2
    warm = window_profiles(new_profile_buffer(w), np.full(4, 2.0), np.full(4, 2.0), np.arange(4) * 3600.0,
                           np.array([3]), np.array([0.0]), 3600)[1]
    entities = []
    for m, buffer, t0 in ((10, new_profile_buffer(w), 0.0), (0, new_profile_buffer(w), 0.0), (8, warm, 4 * 3600.0)):
        obs, exp = rng.poisson(3.0, m).astype(float), rng.uniform(1.0, 4.0, m)
        times = t0 + np.arange(m) * 3600.0
        if m:
            exp[1] = np.nan  # a slot that was not warm
        first = t0 - (w - 1) * 3600.0 if t0 else 0.0
        starts = np.arange(first, t0 + (m - w + 1) * 3600.0, s * 3600.0) if m else np.zeros(0)
        last = ((starts - t0) / 3600).astype(int) + w - 1
        entities.append((buffer, obs, exp, times, last, starts))
    alone = [window_profiles(b, o, e, t, last, st, 3600) for b, o, e, t, last, st in entities]
    rows = np.r_[0, np.cumsum([len(o) for _, o, *_ in entities])]
    last_rows = np.concatenate([last + rows[i] for i, (*_, last, _) in enumerate(entities)])
    z, after = window_profiles_many([b for b, *_ in entities], *(np.concatenate([x[k] for x in entities])
                                                                 for k in (1, 2, 3)), rows, last_rows,
                                    np.concatenate([x[5] for x in entities]), 3600)
    np.testing.assert_array_equal(z, np.concatenate([a[0] for a in alone]))
    assert np.isfinite(z).sum() >= 4
    for (_, buf), got in zip(alone, after, strict=True):
        for k in buf:
            np.testing.assert_array_equal(got[k], buf[k])

def _hourly_windows(days: int, shift_day: int | None, seed: int = 3) -> pd.DataFrame:
    """An entity with a steady daily profile (about 5 events an hour), one day shifted 10 hours."""
    rng = np.random.default_rng(seed)
    t = pd.date_range("2026-01-05", periods=24 * days, freq="h")
    rate = np.tile(5.0 * _daily_shape(np.arange(24), 0.0), days)
    if shift_day is not None:
        rate[24 * shift_day: 24 * (shift_day + 1)] = 5.0 * _daily_shape(np.arange(24), 10.0)
    x = rng.poisson(rate).astype(float)[:, None]
    w, s = 24, 6
    ends = [i for i in range(w - 1, len(t)) if i % s == s - 1]
    return pd.DataFrame({
        "window_start": [t[i - w + 1] for i in ends], "date": [t[i].date() for i in ends],
        "raw_values": [x[i - w + 1: i + 1].ravel() for i in ends], "model_score": np.nan,
        "top_features": [["event_count"]] * len(ends),
    })


def test_the_profile_detector_raises_a_shifted_day_and_nothing_else() -> None:
    params = AlertParams(features=("event_count",), n_steps=24, stride=6, bucket_seconds=3600,
                         detectors=("profile",), calibration=CalibrationParams(short=1, min_history=20),
                         baselines=BaselineParams(level_halflife=24))
    scored, states = alert_nights(_hourly_windows(28, shift_day=24), None, params)
    hits = scored[scored["is_anomaly"]]
    day = pd.Timestamp("2026-01-29")
    assert len(hits) >= 1 and (hits["window_start"] >= day - pd.Timedelta(hours=18)).all()
    assert (hits["window_start"] < day + pd.Timedelta(hours=24)).all()
    assert (hits["driver"] == "profile").all() and (hits["driver_feature"] == "event_count").all()
    assert hits["alert"].sum() == 1  # one alert for the day
    clean, _ = alert_nights(_hourly_windows(28, shift_day=None), None, params)
    assert not clean["is_anomaly"].any()
    # the state carries the last W buckets, and holds no NaN (stored as arrays of doubles)
    last = states[-1][1]
    assert last["profile_obs"].size == 24 and not any(np.isnan(v).any() for v in last.values())


def test_without_event_count_the_profile_gives_no_verdict() -> None:
    params = AlertParams(features=("value_mean",), n_steps=24, stride=6, bucket_seconds=3600, detectors=("profile",))
    scored, _ = alert_nights(_hourly_windows(6, None), None, params)
    assert (scored["p_value"] == 1.0).all() and not scored["is_anomaly"].any()
