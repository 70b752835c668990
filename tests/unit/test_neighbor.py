"""The neighbor detector: a window against the nearest earlier stretch of the same length."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from adspark.core.alerts import AlertParams, alert_nights, alert_nights_many, new_state
from adspark.core.calibration import CalibrationParams
from adspark.core.neighbor import neighbor_distances, new_neighbor_buffer

HOUR = 3600


def _night(x: np.ndarray, start: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Windows (stride 1) ending at every bucket of ``x`` (shape (n,)) from ``start`` on whose W
    buckets are all in ``x``, and the buckets from ``start`` on: (queries (n_w, W, 1), window
    starts, values (m, 1), times (m,)); bucket i starts at i hours."""
    ends = np.arange(max(start, w - 1), len(x))
    queries = np.stack([x[e - w + 1 : e + 1] for e in ends])[:, :, None]
    times = np.arange(start, len(x)) * float(HOUR)
    return queries, (ends - w + 1) * float(HOUR), x[start:, None], times


def test_a_repeated_pattern_is_at_distance_zero_and_a_spike_at_its_known_distance() -> None:
    w, horizon = 4, 200
    x = np.zeros(60)
    x[50] = 8.0  # one bucket of 8 in a history of zeros
    q, starts, values, times = _night(x, 0, w)
    d, after = neighbor_distances(new_neighbor_buffer(horizon, 1), q, starts, values, times, HOUR, horizon)
    ends = np.arange(w - 1, 60)
    # no earlier stretch of 4 buckets ends before the first windows start: no verdict
    assert np.isnan(d[ends < 2 * w - 1]).all()
    # zeros after zeros: distance 0; a window holding the 8: sqrt(8^2 / 4) over the scale (1: the
    # buffer was empty, so nothing to take a spread from)
    holds = (ends >= 50) & (ends - w + 1 <= 50)
    np.testing.assert_allclose(d[(ends >= 2 * w - 1) & ~holds, 0], 0.0, atol=1e-9)
    np.testing.assert_allclose(d[holds, 0], 4.0)
    assert after["neighbor_x"].shape == (horizon,) and np.isfinite(after["neighbor_x"]).all()


def test_distances_are_in_units_of_the_buffered_values_robust_scale() -> None:
    w, horizon = 3, 100
    rng = np.random.default_rng(0)
    history = rng.normal(0.0, 2.0, 80)
    q, starts, values, times = _night(history, 0, w)
    _, buffer = neighbor_distances(new_neighbor_buffer(horizon, 1), q, starts, values, times, HOUR, horizon)
    x = np.r_[history, 0.0, 0.0, 0.0]
    q, starts, values, times = _night(x, 80, w)
    d, _ = neighbor_distances(buffer, q, starts, values, times, HOUR, horizon)
    seen = history[-horizon:]
    scale = 1.4826 * np.median(np.abs(seen - np.median(seen)))
    # the last window is (0, 0, 0): its nearest earlier stretch is the one closest to 0
    stretches = np.lib.stride_tricks.sliding_window_view(history, w)
    expected = np.sqrt((stretches ** 2).sum(axis=1).min() / w) / scale
    np.testing.assert_allclose(d[-1, 0], expected, rtol=1e-9)


def test_no_verdict_for_a_window_with_a_missing_value_and_no_stretch_through_one() -> None:
    w, horizon = 3, 12
    x = np.r_[np.full(6, 5.0), np.zeros(14)]
    x[9] = np.nan
    q, starts, values, times = _night(x, 0, w)
    d, after = neighbor_distances(new_neighbor_buffer(horizon, 1), q, starts, values, times, HOUR, horizon)
    ends = np.arange(w - 1, len(x))
    assert np.isnan(d[(ends >= 9) & (ends - w + 1 <= 9), 0]).all()  # the windows holding the gap
    # (0, 0, 0) ending at bucket 8: only stretches ending before bucket 6 count, all (5, 5, 5)
    np.testing.assert_allclose(d[ends == 8, 0], 5.0)
    assert d[-1, 0] == 0.0  # zeros after zeros, within the horizon
    # the buffer: the last 12 buckets, the missing one as 0 at time -inf (a state holds no NaN)
    kept_x, kept_t = after["neighbor_x"], after["neighbor_t"]
    gap = np.isnan(x[-horizon:])
    assert np.isinf(kept_t[gap]).all() and np.isfinite(kept_t[~gap]).all()
    np.testing.assert_array_equal(kept_x, np.nan_to_num(x[-horizon:]))


def test_windows_are_compared_in_chunks_with_the_same_result() -> None:
    from adspark.core import neighbor

    rng = np.random.default_rng(4)
    x = np.round(rng.normal(0.0, 1.0, 3000), 1)
    q, starts, values, times = _night(x, 0, 5)
    whole, _ = neighbor_distances(new_neighbor_buffer(500, 1), q, starts, values, times, HOUR, 500, 10)
    assert len(q) > 2 * neighbor.QUERY_CHUNK and np.isfinite(whole[100:]).all()
    # one window at a time gives the same distances as chunks of QUERY_CHUNK
    for i in (0, 50, 1023, 1024, 2500, len(q) - 1):
        one, _ = neighbor_distances(new_neighbor_buffer(500, 1), q[i : i + 1], starts[i : i + 1], values, times, HOUR,
                                    500, 10)
        np.testing.assert_allclose(one, whole[i : i + 1], rtol=1e-12)


def test_candidates_older_than_the_horizon_are_not_searched() -> None:
    w = 2
    x = np.r_[[9.0, 9.0], np.zeros(30), [9.0, 9.0]]  # (9, 9) seen once, 32 buckets before it recurs
    q, starts, values, times = _night(x, 0, w)
    near, _ = neighbor_distances(new_neighbor_buffer(40, 1), q, starts, values, times, HOUR, 40)
    far, _ = neighbor_distances(new_neighbor_buffer(20, 1), q, starts, values, times, HOUR, 20)
    assert near[-1, 0] == 0.0  # the horizon reaches the first (9, 9)
    np.testing.assert_allclose(far[-1, 0], 9.0)  # only zeros within 20 buckets: sqrt(2 x 81 / 2)


def _daily(days: int, seed: int, new_shape_at: int | None = None) -> pd.DataFrame:
    """An hourly measure with the same daily shape every day (a rise of 3 an hour for 12 hours,
    then flat) plus noise; windows of 6 buckets, stride 1. ``new_shape_at``: six hours from there
    get their values in reverse order (every value ordinary for the series, a decline never seen)."""
    rng = np.random.default_rng(seed)
    t = pd.date_range("2026-01-05", periods=24 * days, freq="1h")
    shape = 50.0 + 3.0 * np.where(np.arange(24) < 12, np.arange(24), 0)
    x = np.tile(shape, days) + rng.normal(0.0, 1.0, 24 * days)
    if new_shape_at is not None:
        x[new_shape_at : new_shape_at + 6] = x[new_shape_at : new_shape_at + 6][::-1].copy()
    w = 6
    return pd.DataFrame({
        "window_start": t[: len(t) - w + 1], "date": [v.date() for v in t[w - 1 :]],
        "raw_values": [x[i : i + w] for i in range(len(t) - w + 1)], "model_score": np.nan,
    })


PARAMS = AlertParams(features=("value_mean",), n_steps=6, stride=1, bucket_seconds=HOUR, detectors=("neighbor",),
                     calibration=CalibrationParams(min_history=48), neighbor_horizon=24 * 7)


def test_a_never_seen_shape_of_ordinary_values_alerts_through_the_neighbor_detector() -> None:
    at = 24 * 12 + 3  # part of the rise, reversed
    scored, _ = alert_nights(_daily(14, 1, at), None, PARAMS)
    hits = scored[scored["alert"]]
    assert len(hits) == 1
    start = pd.Timestamp(hits.iloc[0]["window_start"])
    t_at = pd.Timestamp("2026-01-05") + pd.Timedelta(hours=at)
    assert t_at - pd.Timedelta(hours=5) <= start <= t_at + pd.Timedelta(hours=5)
    assert hits.iloc[0]["driver"] == "neighbor" and hits.iloc[0]["driver_feature"] == "value_mean"
    clean, _ = alert_nights(_daily(14, 1), None, PARAMS)
    assert not clean["alert"].any()


def test_many_entities_equal_each_alone() -> None:
    # nights one by one equal the range, reruns identical: tests/unit/test_alerts.py ("measure")
    frame = _daily(6, 2, 24 * 4 + 3)
    other = _daily(6, 3)
    windows = {"a": frame, "b": other[other["date"] != other["date"].iloc[40]]}
    together = alert_nights_many(windows, {}, PARAMS)
    for key, part in windows.items():
        alone, _ = alert_nights(part, None, PARAMS)
        pd.testing.assert_frame_equal(together[key][0], alone, check_exact=True)


def test_the_neighbor_detector_judges_plain_measures_only() -> None:
    params = dataclasses.replace(PARAMS, features=("event_count", "amount_sum", "amount_mean", "latency"))
    assert params.neighbor_features.tolist() == [False, False, False, True]
    state = new_state(params)
    assert state["neighbor_x"].size == params.neighbor_horizon and "cal_neighbor_stats" in state
    counts_only = dataclasses.replace(PARAMS, features=("event_count",))
    assert "neighbor_x" not in new_state(counts_only)


def test_the_horizon_is_a_checked_duration_and_holds_the_warmup_and_two_windows() -> None:
    import pytest
    from pydantic import ValidationError

    from adspark.config import AlertsConfig
    from adspark.pipeline.alerts import core_alert_params

    with pytest.raises(ValidationError, match="neighbor_horizon"):
        AlertsConfig(neighbor_horizon="a week")
    week = core_alert_params(AlertsConfig(), ("value_mean",), 24, 1, 300)
    assert week.neighbor_horizon == 7 * 288
    short = core_alert_params(AlertsConfig(neighbor_horizon="1h"), ("value_mean",), 24, 1, 300)
    assert short.neighbor_horizon == 288 + 2 * 24  # the 1-day warm-up's stretches, and two windows
    seconds = core_alert_params(AlertsConfig(warmup="5min"), ("s1_mean",), 6, 1, 5)
    assert seconds.neighbor_horizon == 4032  # a week of 5-second buckets is bounded
