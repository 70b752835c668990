"""Each entity's head (window.scaling.entity_head): scaling, training roles, in-sample windows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from adspark.core.alerts import AlertParams, alert_nights
from adspark.core.calibration import CalibrationParams
from adspark.core.heads import (
    OUTSIDE,
    TRAIN,
    VALIDATION,
    head_bounds,
    head_rows,
    in_head,
    in_sample,
    window_roles,
)
from adspark.core.streaming import BaselineParams


def test_head_bounds_split_the_head_by_the_validation_fraction() -> None:
    train_end, head_end = head_bounds(np.array([1000.0, 5000.0]), 100, 0.2)
    np.testing.assert_array_equal(train_end, [1080.0, 5080.0])
    np.testing.assert_array_equal(head_end, [1100.0, 5100.0])


def test_window_roles_follow_each_entitys_own_start() -> None:
    ends = np.array([1000, 1010, 1080, 1081, 1100, 1101, 5010, 70], dtype=float)
    firsts = np.array([1000, 1000, 1000, 1000, 1000, 1000, 5000, np.nan])
    roles = window_roles(ends, firsts, 100, 0.2)
    assert roles.tolist() == [OUTSIDE, TRAIN, TRAIN, VALIDATION, VALIDATION, OUTSIDE, TRAIN, OUTSIDE]


def test_in_head_and_in_sample() -> None:
    assert in_head(np.array([990.0, 1000.0, 1099.0, 1100.0]), 1000.0, 100).tolist() == [False, True, True, False]
    assert in_sample(np.array([1079.0, 1080.0, 1081.0]), 1000.0, 80.0).tolist() == [True, True, False]
    assert not in_sample(np.array([1.0, 2.0]), -np.inf, 80.0).any()  # first bucket unknown yet


def test_head_rows_start_at_each_entitys_first_event() -> None:
    entity = np.array(["a", "b", "a", "a", "b", "c", "a", "b"])
    bucket = np.array([0.0, 0.0, 10.0, 20.0, 10.0, 0.0, 30.0, 20.0])
    padded = np.array([True, False, False, False, True, True, False, False])  # c: only padding
    mask = head_rows(entity, bucket, padded, 15)
    # a's first event is at 10: [10, 25) -> 10, 20 (padded 0 before it is out); b's at 0: [0, 15)
    assert mask.tolist() == [False, True, True, True, True, False, False, False]


def _run(first_event_hour: int, head_hours: int | None) -> tuple[pd.DataFrame, dict[str, np.ndarray], AlertParams]:
    """One entity's hourly counts (empty before ``first_event_hour``) in windows of 2, stride 1,
    the model's score growing with time."""
    hours = 48
    t = pd.date_range("2026-01-05", periods=hours, freq="h")
    x = np.where(np.arange(hours) >= first_event_hour, 5.0, 0.0)
    frame = pd.DataFrame({
        "window_start": t[:-1],
        "date": [d.date() for d in t[1:]],
        "raw_values": [x[i:i + 2] for i in range(hours - 1)],
        "model_score": np.linspace(1.0, 2.0, hours - 1),
        "top_features": [["event_count"]] * (hours - 1),
    })
    params = AlertParams(
        features=("event_count",), n_steps=2, stride=1, bucket_seconds=3600, detectors=("model",),
        baselines=BaselineParams(level_halflife=24), calibration=CalibrationParams(short=1, min_history=5),
        model_reference=1.0, model_out_of_sample=None,
        model_in_sample_seconds=None if head_hours is None else head_hours * 3600.0,
    )
    scored, states = alert_nights(frame, None, params)
    return scored, states[-1][1], params


def test_the_alerts_remember_the_first_non_empty_bucket_and_skip_the_models_in_sample_windows() -> None:
    scored, state, _ = _run(first_event_hour=6, head_hours=10)
    assert state["first_seen"][0] == pd.Timestamp("2026-01-05 06:00").timestamp()
    # windows ending within 10 h of 06:00 (up to 16:00) were fitted on: the model's calibration
    # learned only the later ones (its count is the third calibration statistic)
    _, state_all, _ = _run(first_event_hour=6, head_hours=None)
    ends = scored["window_start"] + pd.Timedelta(hours=2)
    fitted_on = int((ends <= pd.Timestamp("2026-01-05 16:00")).sum())
    assert fitted_on == 15
    assert state_all["cal_model_stats"][2] == len(scored) == 47
    assert state["cal_model_stats"][2] == len(scored) - fitted_on


def test_a_model_trained_on_nights_ignores_the_first_seen_bucket() -> None:
    _, state, params = _run(first_event_hour=0, head_hours=None)
    assert params.model_in_sample_seconds is None and np.isfinite(state["first_seen"][0])
    assert dataclasses.replace(params, model_in_sample_seconds=1.0).model_in_sample_seconds == 1.0


def test_the_calibration_history_is_clipped_by_default_only_with_entity_heads() -> None:
    from adspark.config import CalibrationConfig

    auto = CalibrationConfig()
    assert auto.learn_clip_for(entity_heads=True) == 2.0 and auto.learn_clip_for(entity_heads=False) is None
    assert CalibrationConfig(learn_clip="off").learn_clip_for(True) is None
    assert CalibrationConfig(learn_clip=2.5).learn_clip_for(False) == 2.5
    with pytest.raises(ValueError, match="positive number"):
        CalibrationConfig(learn_clip=0)


def test_a_tighter_clip_keeps_a_sustained_fault_improbable_for_longer() -> None:
    """A clipped average still teaches the history: at c sd each fault window multiplies the
    variance by about 1 + (c^2 - 1) alpha, so at 3 sd a lasting fault is learned within the
    fault's first minutes, at 2 sd it stays improbable far longer, and unclipped within windows."""
    import numpy as np

    from adspark.core.calibration import CalibrationParams, calibrate, new_calibration_state

    rng = np.random.default_rng(0)
    normal = np.exp(rng.normal(0.0, 0.2, 60))  # a minute or two of a run's scores after its head
    raw = np.concatenate([normal, np.full(120, 5.0)])  # then a fault of 120 windows
    flagged = {}
    for clip in (None, 3.0, 2.0):
        p, _ = calibrate(raw, new_calibration_state(3), CalibrationParams(learn_clip=clip, min_history=30))
        assert (p[30:60] > 1e-5).all()  # no verdict on the normal windows
        flagged[clip] = int((p[60:] < 1e-5).sum())
    assert flagged[None] < 10 < flagged[3.0] < flagged[2.0], flagged


def test_no_detector_judges_a_window_ending_inside_the_entitys_head() -> None:
    """``entity_head_seconds``: the head is normal by declaration. A model score spike in it (a
    window ending at 12:00, the head running 00:00-14:00) gets no verdict, and is still learned;
    the same spike after the head (at 40:00) is flagged either way."""
    hours = 48
    t = pd.date_range("2026-01-05", periods=hours, freq="h")
    score = np.ones(hours - 1)
    score[10], score[38] = 1e4, 1e4  # windows [10:00, 12:00) and [38:00, 40:00)
    frame = pd.DataFrame({
        "window_start": t[:-1], "date": [d.date() for d in t[1:]],
        "raw_values": [np.full(2, 5.0) for _ in range(hours - 1)], "model_score": score,
        "top_features": [["event_count"]] * (hours - 1),
    })
    params = AlertParams(
        features=("event_count",), n_steps=2, stride=1, bucket_seconds=3600, detectors=("model",),
        baselines=BaselineParams(level_halflife=24), calibration=CalibrationParams(short=1, min_history=5),
        model_reference=1.0,
    )
    flagged = {}
    for head in (None, 14 * 3600.0):
        scored, _ = alert_nights(frame, None, dataclasses.replace(params, entity_head_seconds=head))
        flagged[head] = scored.loc[scored["is_anomaly"], "window_start"].dt.hour.tolist()
        inside = (scored["window_start"] + pd.Timedelta(hours=2)) <= pd.Timestamp("2026-01-05 14:00")
        if head is not None:
            assert (scored.loc[inside, "p_value"] == 1.0).all() and not scored.loc[inside, "alert"].any()
    assert flagged[None] == [10, 14] and flagged[14 * 3600.0] == [14]  # 38:00 is 14:00 of the 6th
