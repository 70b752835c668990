import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adspark.core.window import WindowSpec, entity_windows, sliding_windows, window_rows


def test_windows_are_globally_aligned_and_contiguous():
    idx = np.arange(100, 120)
    vals = np.arange(20, dtype=float)[:, None]
    w = sliding_windows(idx, vals, size=4, stride=3)
    assert list(w.end_index % 3) == [2] * len(w.end_index)
    assert list(w.end_index) == [104, 107, 110, 113, 116, 119]
    assert w.values.shape == (6, 4, 1)
    np.testing.assert_array_equal(w.values[0, :, 0], [1, 2, 3, 4])


def test_windows_skip_gaps():
    idx = np.array([0, 1, 2, 5, 6, 7, 8])
    w = sliding_windows(idx, np.zeros((7, 2)), size=3, stride=1)
    assert list(w.end_index) == [2, 7, 8]


def test_windows_reject_unsorted():
    with pytest.raises(ValueError, match="increasing"):
        sliding_windows(np.array([2, 1]), np.zeros((2, 1)), 1, 1)


@given(st.integers(1, 6), st.integers(1, 5), st.integers(0, 40), st.integers(0, 30))
def test_split_runs_give_the_same_windows(size, stride, n, cut):
    """Windows cut from a whole series equal the union of windows from two overlapping runs."""
    idx = np.arange(n) + 1000
    vals = np.random.default_rng(n).normal(size=(n, 2))
    whole = sliding_windows(idx, vals, size, stride)
    cut = min(cut, n)
    first = sliding_windows(idx[:cut], vals[:cut], size, stride)
    lookback = max(0, cut - size + 1)
    second = sliding_windows(idx[lookback:], vals[lookback:], size, stride)
    second_keep = second.end_index >= (idx[cut] if cut < n else np.inf)
    ends = np.concatenate([first.end_index, second.end_index[second_keep]])
    np.testing.assert_array_equal(ends, whole.end_index)


def test_windows_frame_crosses_day_boundaries_and_filters_by_end_day():
    starts = pd.Series(pd.date_range("2026-01-05 12:00", periods=8, freq="6h"))
    scaled = np.arange(16, dtype=float).reshape(8, 2)
    spec = WindowSpec(size=4, stride=2, bucket_seconds=6 * 3600, features=("a", "b"))
    out = window_rows("e1", starts, scaled, scaled * 10, spec, dt.date(2026, 1, 6), dt.date(2026, 1, 6))
    # 6h buckets: index of 2026-01-06 00:00 is even; ends with index % 2 == 1 on day 6
    assert [str(t) for t in out.window_end] == ["2026-01-06T12:00:00", "2026-01-07T00:00:00"]
    assert set(out.date.astype(str)) == {"2026-01-06"} and len(out) == 2
    assert str(out.window_start[0]) == "2026-01-05T12:00:00"
    assert out.values.dtype == np.float32 and out.values.shape == (2, 8)
    np.testing.assert_array_equal(out.values[0], scaled[0:4].ravel())
    np.testing.assert_array_equal(out.raw_values[0], (scaled[0:4] * 10).ravel())
    assert out.window_ids()[0] == "e1|2026-01-05T12:00:00"


def test_centered_windows_keep_shape_and_drop_level():
    starts = pd.Series(pd.date_range("2026-01-05 00:00", periods=8, freq="6h"))
    scaled = np.c_[np.arange(8.0), np.full(8, 5.0)]
    spec = WindowSpec(size=4, stride=1, bucket_seconds=6 * 3600, features=("a", "b"), center=True)
    out = window_rows("e1", starts, scaled, scaled * 10, spec, dt.date(2026, 1, 5), dt.date(2026, 1, 6))
    values = out.values.reshape(len(out), 4, 2)
    np.testing.assert_allclose(values.mean(axis=1), 0.0, atol=1e-6)
    np.testing.assert_allclose(values[:, :, 0], np.tile([-1.5, -0.5, 0.5, 1.5], (len(out), 1)))  # a ramp stays one
    np.testing.assert_array_equal(out.raw_values.reshape(len(out), 4, 2)[0], scaled[:4] * 10)  # charts keep raw


def _two_entities() -> tuple[pd.DataFrame, WindowSpec]:
    starts = pd.date_range("2026-01-05", periods=4, freq="h")
    features = pd.DataFrame({"entity": ["b"] * 4 + ["a"] * 4, "bucket_start": list(starts) * 2,
                             "x": np.arange(8.0), "y": np.arange(8.0) * 2})
    return features, WindowSpec(4, 4, 3600, ("x", "y"))


def test_entity_windows_scale_each_entity_by_its_own_statistics_else_the_default():
    features, spec = _two_entities()
    stats = pd.DataFrame({"entity": ["a", "a", "a", "zz"], "feature": ["x", "y", "other", "x"],
                          "center": [4.0, 8.0, 99.0, 99.0], "scale": [2.0, 4.0, 99.0, 99.0]})
    day = dt.date(2026, 1, 5)
    a, b = entity_windows(features, stats, (np.zeros(2), np.ones(2)), spec, day, day, raw=False)
    assert (a.entity, b.entity) == ("a", "b")
    np.testing.assert_allclose(a.values.reshape(4, 2), [[0, 0], [0.5, 0.5], [1, 1], [1.5, 1.5]])
    np.testing.assert_allclose(b.values.reshape(4, 2), [[0, 0], [1, 2], [2, 4], [3, 6]])  # no stats: default


def test_entity_statistics_lacking_a_feature_or_doubled_are_named():
    features, spec = _two_entities()
    day, default = dt.date(2026, 1, 5), (np.zeros(2), np.ones(2))
    partial = pd.DataFrame({"entity": ["a", "a", "b"], "feature": ["x", "y", "x"], "center": 0.0, "scale": 1.0})
    with pytest.raises(KeyError, match=r"entity 'b' lack features \['y'\]"):
        entity_windows(features, partial, default, spec, day, day)
    with pytest.raises(KeyError, match=r"lack features \['y'\]"):
        entity_windows(features, partial[partial["feature"] == "x"], default, spec, day, day)
    doubled = pd.concat([partial, partial.iloc[[0]]])
    doubled.loc[len(doubled)] = ["b", "y", 0.0, 1.0]
    with pytest.raises(ValueError, match="two rows for one entity and feature"):
        entity_windows(features, doubled, default, spec, day, day)
