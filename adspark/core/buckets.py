"""Time buckets: durations, bucket alignment, day grids and calendar features (pure numpy/pandas)."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd

_UNITS = {
    "s": 1,
    "sec": 1,
    "min": 60,
    "m": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
_DURATION = re.compile(r"^\s*(\d+)\s*([a-z]+)\s*$")


def night_range(first: dt.date, last: dt.date) -> list[dt.date]:
    """The nights ``first..last``, both included (empty when ``last`` is before ``first``)."""
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def parse_duration(text: str) -> int:
    """Parse a duration such as ``"5min"``, ``"1h"`` or ``"1d"`` into seconds.

    Raises:
        ValueError: When the text is not ``<positive integer><unit>`` with a known unit.
    """
    m = _DURATION.match(text.lower()) if isinstance(text, str) else None
    if not m or m.group(2) not in _UNITS or int(m.group(1)) <= 0:
        raise ValueError(
            f"duration {text!r}: expected a positive integer and a unit among {sorted(_UNITS)}"
        )
    return int(m.group(1)) * _UNITS[m.group(2)]


def bucket_floor(epoch_seconds: np.ndarray, bucket_seconds: int) -> np.ndarray:
    """Align epoch seconds down to the start of their bucket.

    Args:
        epoch_seconds: Integer seconds since the epoch, shape (n,).
        bucket_seconds: Bucket width; buckets are aligned to the epoch (UTC midnight for widths
            dividing a day).

    Returns:
        Bucket starts in epoch seconds, shape (n,).
    """
    e = np.asarray(epoch_seconds, dtype=np.int64)
    return e - np.mod(e, bucket_seconds)


def as_timestamps(ts: pd.Series) -> pd.Series:
    """``ts`` as datetimes: a datetime Series (or Index) unchanged (``pd.to_datetime`` would still
    sample up to 500 of its values one by one to decide on a cache), anything else parsed."""
    if isinstance(ts, (pd.Series, pd.Index)) and pd.api.types.is_datetime64_any_dtype(ts.dtype):
        return ts
    return pd.to_datetime(ts)


def epoch_seconds(ts: pd.Series) -> np.ndarray:
    """Timestamps (naive UTC or zoned) -> epoch seconds, float64, shape (n,)."""
    t = as_timestamps(ts)
    if getattr(t.dt, "tz", None) is not None:
        t = t.dt.tz_convert("UTC").dt.tz_localize(None)
    return t.to_numpy("datetime64[us]").astype(np.int64) / 1e6
