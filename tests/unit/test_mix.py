"""The ``mix`` baseline: a category value's count judged given its bucket's events."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtri
from scipy.stats import betabinom

from adspark.core.alerts import AlertParams, alert_nights
from adspark.core.calibration import CalibrationParams
from adspark.core.streaming import (
    MIX_EXACT_EVENTS,
    BaselineParams,
    betabinom_z,
    is_count,
    mix_range,
    mix_z,
    new_baseline_state,
    run_baselines,
    run_baselines_many,
    seasonal_slots,
)

FEATURES = ("event_count", "category__rare", "category__common", "amount_sum")


def _mid_p_z(x: float, n: int, a: float, b: float) -> float:
    """The signed mid-p deviate from scipy's beta-binomial (moderate tails only)."""
    lower = betabinom.cdf(x - 1, n, a, b) + 0.5 * betabinom.pmf(x, n, a, b)
    upper = 1.0 - lower
    return float(ndtri(lower) if lower < upper else -ndtri(upper))


def test_betabinom_z_equals_scipy_and_keeps_the_digits_of_tiny_tails() -> None:
    cases = [(0, 7, 0.5, 216.0), (1, 7, 2.0, 300.0), (10, 10, 30.0, 3.0), (2, 5, 5.0, 5.0), (3, 12, 2.0, 6.0)]
    x, n, a, b = (np.array(c, dtype=float) for c in zip(*cases))
    np.testing.assert_allclose(betabinom_z(x, n, a, b), [_mid_p_z(*c) for c in cases], rtol=1e-9)
    # four of seven events of a value seen 8 times in 5,200: the upper tail is about 1e-10,
    # summed from the probabilities (scipy's 1 - cdf keeps about 6 digits of it)
    z = betabinom_z(np.array([4.0]), np.array([7.0]), np.array([8.5]), np.array([5196.5]))[0]
    tail = sum(betabinom.pmf(k, 7, 8.5, 5196.5) for k in (5, 6, 7)) + 0.5 * betabinom.pmf(4, 7, 8.5, 5196.5)
    assert z == pytest.approx(-ndtri(tail), rel=1e-9) and z > 6
    # beyond the exact range: the Gamma-Poisson law on the rarer side, close to the exact deviate,
    # for a rare value (a single event is no news) and for the majority value
    big = MIX_EXACT_EVENTS + 44
    for x, a, b in ((1, 4.3, 4876.0), (3, 4.3, 4876.0), (290, 9000.0, 400.0), (280, 9000.0, 400.0)):
        approx = betabinom_z(np.array([float(x)]), np.array([float(big)]), np.array([a]), np.array([b]))[0]
        assert approx == pytest.approx(_mid_p_z(x, big, a, b), abs=0.15), (x, a, b)
    # summed in small chunks (memory), the same deviates
    rng = np.random.default_rng(1)
    many = rng.integers(1, MIX_EXACT_EVENTS + 1, 500).astype(float)
    hits = np.minimum(rng.poisson(many * 0.05), many).astype(float)
    np.testing.assert_array_equal(betabinom_z(hits, many, np.full(500, 3.0), np.full(500, 60.0), chunk=300),
                                  betabinom_z(hits, many, np.full(500, 3.0), np.full(500, 60.0)))
    # no trials or missing inputs: no verdict
    assert np.isnan(betabinom_z(np.array([0.0, np.nan]), np.array([0.0, 3.0]), np.ones(2), np.ones(2))).all()


def test_mix_z_learns_the_share_from_decayed_counts_and_can_be_cut_anywhere() -> None:
    x = np.array([[1.0], [0.0], [3.0], [np.nan], [0.0], [2.0]])
    events = np.array([[10.0], [0.0], [4.0], [np.nan], [5.0], [2.0]])
    present = np.array([[True], [True], [True], [False], [True], [True]])
    judged = np.ones_like(present)
    z, prior, c, e = mix_z(x, events, present, judged, np.array([2.0]), np.array([100.0]), halflife=1.0)
    # bucket 2 is judged with the counts decayed twice (half-life 1 bucket) plus what buckets 0-1 added
    c2, e2 = 2.0 / 4 + 1.0 / 2 + 0.0, 100.0 / 4 + 10.0 / 2 + 0.0
    assert z[2, 0] == pytest.approx(betabinom_z(np.array([3.0]), np.array([4.0]), np.array([c2 + 0.5]),
                                                np.array([e2 - c2 + 0.5]))[0])
    assert np.isnan(z[1, 0]) and np.isnan(z[3, 0])  # an empty bucket and padding: no verdict
    np.testing.assert_allclose(prior[2, 0], [c2 + 0.5, e2 - c2 + 0.5])
    assert np.isfinite(prior[1, 0]).all() and np.isnan(prior[3, 0]).all()  # an empty bucket has a law, padding none
    lo, hi = mix_range(np.array(4.0), prior[2, 0])
    assert 0.0 <= lo < 4.0 * (c2 + 0.5) / (e2 + 1.0) < hi
    # padding neither decays nor adds: the counts after equal the run without it
    keep = present[:, 0]
    _, _, c_kept, e_kept = mix_z(x[keep], events[keep], present[keep], judged[keep], np.array([2.0]),
                                 np.array([100.0]), 1.0)
    assert (c[0], e[0]) == (c_kept[0], e_kept[0])
    # cut anywhere: the same deviates and the same counts after
    z1, _, c_mid, e_mid = mix_z(x[:3], events[:3], present[:3], judged[:3], np.array([2.0]), np.array([100.0]), 1.0)
    z2, _, c_end, e_end = mix_z(x[3:], events[3:], present[3:], judged[3:], c_mid, e_mid, 1.0)
    np.testing.assert_array_equal(np.vstack([z1, z2]), z)
    assert (c_end[0], e_end[0]) == (c[0], e[0])


def _entity(days: int, seed: int) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Hourly buckets of one entity: busy days, quiet nights, a value with a share of 0.2%."""
    rng = np.random.default_rng(seed)
    t = pd.date_range("2026-01-05", periods=24 * days, freq="1h")
    rate = 1.0 + 9.0 * np.exp(-0.5 * ((t.hour.to_numpy() - 13) / 3.0) ** 2)
    events = rng.poisson(rate).astype(float)
    rare = rng.binomial(events.astype(int), 0.002).astype(float)
    common = rng.binomial((events - rare).astype(int), 0.6).astype(float)
    amount = rng.gamma(2.0, 20.0, len(t)) * events
    return t, np.column_stack([events, rare, common, amount])


def _baselines(x: np.ndarray, t: pd.DatetimeIndex, shares: np.ndarray | None):
    counts = np.array([is_count(f) for f in FEATURES])
    sums = np.array([f.endswith("_sum") for f in FEATURES])
    params = BaselineParams(level_halflife=24, mix_halflife=24 * 7)
    return run_baselines(x, seasonal_slots(t, 3600, "UTC"), counts, new_baseline_state(len(FEATURES), 48), params,
                         sums, "linear", None, x[:, 0], shares)


def test_mix_flags_a_burst_of_a_rare_value_in_a_quiet_hour_not_a_busier_hour_of_the_same_mix() -> None:
    t, x = _entity(28, 3)
    burst = 24 * 27 + 2  # 02:00 of the last day, a quiet hour
    x[burst] = [5.0, 4.0, 1.0, 200.0]  # four of five events of the rare value
    shares = np.array([False, True, True, False])
    out, state = _baselines(x, t, shares)
    mix = out.z["mix"]
    assert mix[burst, 1] > 5.5 and mix[burst, 2] < -1.0  # the common value's share fell
    assert out.z["seasonal"][burst, 1] < mix[burst, 1] - 1.5  # the hour's slot has seen few events
    assert np.nanmax(np.abs(mix[24 * 2 : burst])) < 4.5  # ordinary hours, the rare value's single events included
    assert np.isnan(mix[:, [0, 3]]).all()  # only the category slots are judged
    assert state["mix_events"][1] > 0 and state["mix_count"][1] > 0
    # twice the events with the same mix is activity, not a change of the mix
    t2, y = _entity(28, 3)
    y[24 * 27 + 13] *= 2.0
    assert np.nanmax(np.abs(_baselines(y, t2, shares)[0].z["mix"][24 * 27 + 13])) < 3.0
    # without the slots to judge, no verdict at all
    assert np.isnan(_baselines(x, t, None)[0].z["mix"]).all()


def test_mix_of_many_entities_equals_each_entity_alone() -> None:
    counts = np.array([is_count(f) for f in FEATURES])
    sums = np.array([f.endswith("_sum") for f in FEATURES])
    shares = np.array([False, True, True, False])
    params = BaselineParams(level_halflife=24, mix_halflife=48, min_buckets=6)
    values, slots, states, events = [], [], [], []
    for days, seed in ((5, 1), (2, 2), (4, 3)):
        t, x = _entity(days, seed)
        values.append(x), slots.append(seasonal_slots(t, 3600, "UTC")), events.append(x[:, 0])
        states.append(new_baseline_state(len(FEATURES), 48))
    together = run_baselines_many(values, slots, counts, states, params, sums, "linear", None, events, shares)
    for e, (out, after) in enumerate(together):
        alone, alone_after = run_baselines(values[e], slots[e], counts, states[e], params, sums, "linear", None,
                                           events[e], shares)
        np.testing.assert_array_equal(out.z["mix"], alone.z["mix"])
        np.testing.assert_array_equal(out.mix_prior, alone.mix_prior)
        for k in ("mix_count", "mix_events"):
            np.testing.assert_array_equal(after[k], alone_after[k])


def _windows(x: np.ndarray, t: pd.DatetimeIndex, w: int = 6, s: int = 3) -> pd.DataFrame:
    ends = [i for i in range(w - 1, len(t)) if i % s == s - 1]
    return pd.DataFrame({
        "window_start": [t[i - w + 1] for i in ends],
        "date": [t[i].date() for i in ends],
        "raw_values": [x[i - w + 1 : i + 1].ravel() for i in ends],
        "model_score": np.nan,
        "top_features": [[]] * len(ends),
    })


def test_a_burst_of_a_rare_value_alerts_through_the_mix_with_what_was_expected() -> None:
    t, x = _entity(28, 3)
    burst = 24 * 27 + 2
    x[burst] = [5.0, 4.0, 1.0, 200.0]
    params = AlertParams(
        features=FEATURES, n_steps=6, stride=3, bucket_seconds=3600,
        detectors=("level", "diff", "seasonal", "extreme", "silence", "mix", "profile"),
        baselines=BaselineParams(level_halflife=24, mix_halflife=24 * 7),
        calibration=CalibrationParams(short=1, min_history=20),
    )
    assert params.share_features.tolist() == [False, True, True, False]
    scored, _ = alert_nights(_windows(x, t), None, params)
    hits = scored[scored["alert"]]
    assert len(hits) == 1 and hits.iloc[0]["driver"] == "mix"
    hit = hits.iloc[0]
    assert hit["driver_feature"] == "category__rare" and hit["actual"] == 4.0
    assert hit["expected_low"] == 0.0 and hit["expected_high"] < 1.0  # given its 5 events, at most one
    # no other alert in four weeks of the rare value's single events
    assert (scored["p_value"] < params.level).sum() <= 2  # the burst's two windows
    # without event_count nothing is judged given the bucket's events: the mix is no test at all
    no_events = dataclasses.replace(params, features=("n", "category__rare", "category__common", "amount_sum"))
    assert not no_events.share_features.any()
    quiet, _ = alert_nights(_windows(x, t), None, no_events)
    assert not (quiet["driver"] == "mix").any() and quiet["p_value"].notna().all()
