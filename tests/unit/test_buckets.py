import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adspark.core.buckets import as_timestamps, bucket_floor, epoch_seconds, night_range, parse_duration


@pytest.mark.parametrize(
    "text,seconds", [("5min", 300), ("1h", 3600), ("1d", 86400), ("30s", 30), (" 2 H", 7200)]
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "0h", "-1h", "1 fortnight", "1.5h", None])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@given(st.lists(st.integers(0, 4_000_000_000), min_size=1), st.sampled_from([60, 300, 3600, 86400]))
def test_bucket_floor_contains_the_instant(epochs, width):
    e = np.array(epochs)
    start = bucket_floor(e, width)
    assert np.all(start <= e) and np.all(e < start + width) and np.all(start % width == 0)


def test_night_range_includes_both_ends_and_is_empty_when_reversed() -> None:
    d = dt.date(2026, 2, 27)
    assert night_range(d, d) == [d]
    assert night_range(d, dt.date(2026, 3, 1)) == [d, dt.date(2026, 2, 28), dt.date(2026, 3, 1)]
    assert night_range(d, d - dt.timedelta(days=1)) == []


def test_timestamps_already_parsed_pass_through_and_others_are_parsed() -> None:
    naive = pd.Series(pd.date_range("2026-01-05", periods=3, freq="h"))
    zoned = naive.dt.tz_localize("UTC")
    assert as_timestamps(naive) is naive and as_timestamps(zoned) is zoned
    parsed = as_timestamps(pd.Series(["2026-01-05 00:00", "2026-01-05 01:00"]))
    assert pd.api.types.is_datetime64_any_dtype(parsed.dtype)
    assert list(as_timestamps(naive.to_numpy())) == list(naive)  # a NumPy array becomes an index
    assert list(epoch_seconds(zoned)) == list(epoch_seconds(naive)) == [1767571200.0, 1767574800.0, 1767578400.0]
