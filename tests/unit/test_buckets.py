import datetime as dt

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adspark.core.buckets import bucket_floor, night_range, parse_duration


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
