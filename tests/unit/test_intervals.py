"""Interval merging (pure) and top contributing features."""

import numpy as np
import pandas as pd
import pytest

from adspark.core.contributions import top_contributors
from adspark.core.intervals import interval_id, merge_intervals

H = pd.Timedelta(hours=1)
T0 = pd.Timestamp("2026-02-01 00:00")


def _windows(entity: str, flags: list[bool], scores: list[float] | None = None, size: int = 4,
             stride: int = 2) -> pd.DataFrame:
    n = len(flags)
    starts = [T0 + i * stride * H for i in range(n)]
    return pd.DataFrame({
        "entity": entity,
        "window_start": starts,
        "window_end": [s + size * H for s in starts],
        "score": scores or [2.0 if f else 0.5 for f in flags],
        "threshold": 1.0,
        "is_anomaly": flags,
        "top_features": [["amount", "latency"]] * n,
        "top_shares": [[0.7, 0.2]] * n,
    })


def test_overlapping_anomalous_windows_merge_and_gaps_split():
    w = _windows("u1", [False, True, True, False, False, False, True, False], scores=[0.5, 2, 3, 0.5, 0.5, 0.5, 4, 0.5])
    out = merge_intervals(w, "m1", "quantile")
    assert list(out["n_windows"]) == [2, 1]
    first = out.iloc[0]
    assert first["start"] == T0 + 2 * H and first["end"] == T0 + 8 * H
    assert first["peak_score"] == 3 and first["mean_score"] == 2.5 and first["severity"] == 3
    assert list(first["top_features"]) == ["amount", "latency"]
    assert first["status"] == "closed" and out.iloc[1]["status"] == "closed"
    assert first["interval_id"] == interval_id("u1", T0 + 2 * H, "m1")


def test_interval_reaching_the_last_window_is_open():
    out = merge_intervals(_windows("u1", [False, True, True]), "m1", "quantile")
    assert list(out["status"]) == ["open"]


def test_gap_and_min_duration():
    # windows of 1h every 3h: 2h gaps between anomalous windows
    w = _windows("u1", [True, True, False], size=1, stride=3)
    assert len(merge_intervals(w, "m", "q")) == 2
    assert len(merge_intervals(w, "m", "q", gap=2 * H)) == 1
    assert len(merge_intervals(w, "m", "q", min_duration=2 * H)) == 0


def test_entities_never_mix_and_order_does_not_matter():
    w = pd.concat([_windows("a", [True, True, False]), _windows("b", [False, True, True])])
    out = merge_intervals(w, "m", "q")
    shuffled = merge_intervals(w.sample(frac=1.0, random_state=3), "m", "q")
    pd.testing.assert_frame_equal(out, shuffled)
    assert list(out["entity"]) == ["a", "b"] and list(out["status"]) == ["closed", "open"]


def test_merging_is_idempotent_on_its_windows():
    w = _windows("u1", [True, False, True, True])
    once = merge_intervals(w, "m", "q")
    again = merge_intervals(pd.concat([w, w.iloc[[2]]]).drop_duplicates(["entity", "window_start"]), "m", "q")
    pd.testing.assert_frame_equal(once, again)


def test_no_anomaly_no_interval():
    assert merge_intervals(_windows("u1", [False, False]), "m", "q").empty
    assert merge_intervals(_windows("u1", [])[:0], "m", "q").empty


def test_top_contributors_ranks_and_shares():
    errors = np.array([[1.0, 3.0, 0.0, 6.0], [0.0, 0.0, 0.0, 0.0]])
    idx, shares = top_contributors(errors, 2)
    assert idx[0].tolist() == [3, 1]
    np.testing.assert_allclose(shares[0], [0.6, 0.3])
    np.testing.assert_allclose(shares[1], [0.0, 0.0])
    assert top_contributors(errors, 10)[0].shape == (2, 4)
    with pytest.raises(ValueError, match="shape"):
        top_contributors(np.ones(3), 1)


def test_severity_is_the_ratio_for_positive_thresholds_and_finite_for_negative_ones():
    from adspark.core.intervals import severity

    assert severity(6.0, 3.0) == 2.0 and severity(3.0, 3.0) == 1.0
    assert severity(-1.0, -2.0) == 1.5 and severity(2.0, -2.0) == 3.0  # a VAE's negative scores
    assert np.isfinite(severity(1.0, 0.0)) and severity(1.0, 0.0) > 1.0
