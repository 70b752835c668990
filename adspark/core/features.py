"""Feature layout and per-entity bucket padding (pure numpy/pandas).

After Spark aggregates events into (entity, bucket) rows, :func:`pad_entities` completes the
buckets of a group of entities: every bucket of every active day (or, with span padding, every
bucket between an entity's events) is present exactly once, empty buckets get zero counts and
null statistics, and calendar and differenced features are added.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

CALENDAR_COLUMNS = ("hour_of_day", "day_of_week", "is_weekend")
_SAFE = re.compile(r"[^A-Za-z0-9_]+")


def slot_name(column: str, value: str) -> str:
    """A column-safe name for a category value slot, e.g. ``category__fuel``."""
    cleaned = _SAFE.sub("_", str(value)).strip("_").lower() or "empty"
    return f"{column}__{cleaned}"


@dataclass(frozen=True)
class FeatureSpec:
    """Which aggregate columns the features table holds, and how empty buckets fill them.

    Attributes:
        zero_fill: Columns that are 0 for an empty bucket (counts, sums, distinct counts).
        null_fill: Columns that are null for an empty bucket (mean, min, max).
        difference: Columns that also get a ``<name>_diff`` (value minus previous bucket).
        calendar: Whether to add :data:`CALENDAR_COLUMNS`.
        timezone: Zone in which the calendar is read.
    """

    zero_fill: tuple[str, ...]
    null_fill: tuple[str, ...]
    difference: tuple[str, ...] = ()
    calendar: bool = True
    timezone: str = "UTC"

    @property
    def aggregates(self) -> tuple[str, ...]:
        """The aggregate columns Spark produces, in table order."""
        return self.zero_fill + self.null_fill

    @property
    def columns(self) -> tuple[str, ...]:
        """Every feature column of the table, in order."""
        cal = CALENDAR_COLUMNS if self.calendar else ()
        return self.aggregates + tuple(f"{c}_diff" for c in self.difference) + cal

    def validate(self) -> None:
        """Raise ValueError when a differenced column is not an aggregate."""
        unknown = [c for c in self.difference if c not in self.aggregates]
        if unknown:
            raise ValueError(
                f"difference names {unknown}; expected feature columns among {list(self.aggregates)}"
            )


def pad_entities(
    buckets: pd.DataFrame,
    activity: pd.DataFrame,
    bucket_seconds: int,
    spec: FeatureSpec,
    context: pd.DataFrame | None = None,
    max_gap_buckets: int | None = None,
) -> pd.DataFrame:
    """Complete the buckets of many entities over their active days, or only between their
    events (vectorized).

    Args:
        buckets: Aggregated rows: ``entity``, ``bucket_start`` (naive UTC) and
            ``spec.aggregates``; at most one row per entity and bucket.
        activity: ``entity``, ``date`` (``datetime.date``): days to cover with a full grid of
            buckets; buckets on other days are kept as they are.
        bucket_seconds: Bucket width (divides 86400).
        spec: Feature layout.
        context: Optional earlier rows (``entity``, ``bucket_start``, aggregates), used only as
            the previous value when differencing the first bucket of the range; not returned.
        max_gap_buckets: ``None``: every active day gets a full grid (``activity``). Else span
            padding: only the empty buckets between two buckets of an entity at most this many
            buckets apart on one UTC day are added (an idle stretch); a longer gap, or midnight,
            ends the span, and nothing is added before an entity's first bucket or after its
            last (``activity`` unused).

    Returns:
        One row per entity and bucket, sorted: ``entity, bucket_start, date, padded`` +
        ``spec.columns``.

    Raises:
        ValueError: When ``buckets`` holds an entity and bucket twice.
    """
    keys = ["entity", "bucket_start"]
    aggs = list(spec.aggregates)
    own = buckets[keys + aggs].copy()
    own["bucket_start"] = pd.to_datetime(own["bucket_start"]).astype("datetime64[ns]")
    own["entity"] = own["entity"].astype(object)
    if own.duplicated(keys).any():
        dupe = own[own.duplicated(keys)].iloc[0]
        raise ValueError(f"entity {dupe['entity']!r}: duplicate bucket_start {dupe['bucket_start']}")
    grid = (
        _day_grid(activity, bucket_seconds) if max_gap_buckets is None
        else _span_grid(own, bucket_seconds, max_gap_buckets)
    )
    out = grid.merge(own, on=keys, how="outer", indicator=True)
    out = out.sort_values(keys, kind="stable").reset_index(drop=True)
    padded = (out.pop("_merge") == "left_only").to_numpy()
    zero = list(spec.zero_fill)
    out[zero] = out[zero].fillna(0.0)
    out.insert(2, "date", out["bucket_start"].dt.date)
    out.insert(3, "padded", padded)
    if spec.difference:
        cols = list(spec.difference)
        history = out[keys + cols]
        if context is not None and len(context):
            ctx = context[keys + cols].copy()
            ctx["bucket_start"] = pd.to_datetime(ctx["bucket_start"])
            history = pd.concat([ctx, history]).drop_duplicates(keys, keep="last")
        prev = history.assign(
            bucket_start=history["bucket_start"] + pd.Timedelta(seconds=bucket_seconds)
        )
        prev = out[keys].merge(prev, on=keys, how="left")
        for c in cols:
            out[f"{c}_diff"] = out[c].to_numpy(np.float64) - prev[c].to_numpy(np.float64)
    if spec.calendar:
        local = out["bucket_start"].dt.tz_localize("UTC").dt.tz_convert(spec.timezone)
        dow = local.dt.dayofweek + 1
        out["hour_of_day"] = local.dt.hour.astype("int32")
        out["day_of_week"] = dow.astype("int32")
        out["is_weekend"] = (dow >= 6).astype("int32")
    return out


def _day_grid(activity: pd.DataFrame, bucket_seconds: int) -> pd.DataFrame:
    """Every bucket of every active entity-day: ``entity``, ``bucket_start``."""
    per_day = 86400 // bucket_seconds
    act = activity[["entity", "date"]].drop_duplicates()
    day_start = pd.to_datetime(act["date"]).to_numpy("datetime64[ns]")
    offsets = (np.arange(per_day) * bucket_seconds).astype("timedelta64[s]")
    return pd.DataFrame(
        {
            "entity": np.repeat(act["entity"].to_numpy(dtype=object), per_day),
            "bucket_start": (day_start[:, None] + offsets[None, :]).ravel().astype("datetime64[ns]"),
        }
    )


def _span_grid(own: pd.DataFrame, bucket_seconds: int, max_gap_buckets: int) -> pd.DataFrame:
    """The empty buckets inside each entity's gaps of at most ``max_gap_buckets`` buckets.

    Args:
        own: ``entity``, ``bucket_start`` (datetime64[ns]) of the buckets with events.
        bucket_seconds: Bucket width.
        max_gap_buckets: Longest run of empty buckets that is filled.

    Returns:
        ``entity``, ``bucket_start`` of the buckets to add (the real ones are merged by the caller).
    """
    if own.empty:
        return pd.DataFrame({"entity": pd.Series(dtype=object), "bucket_start": pd.Series(dtype="datetime64[ns]")})
    srt = own[["entity", "bucket_start"]].sort_values(["entity", "bucket_start"], kind="stable")
    index = srt["bucket_start"].to_numpy("datetime64[s]").astype(np.int64) // bucket_seconds
    entity = srt["entity"].to_numpy(dtype=object)
    per_day = 86400 // bucket_seconds
    # consecutive buckets of one entity on one UTC day (a night is discretized on its own, so a
    # gap across midnight is never filled: nights one by one equal one long run)
    same = (entity[1:] == entity[:-1]) & (index[1:] // per_day == index[:-1] // per_day)
    empty = index[1:] - index[:-1] - 1  # empty buckets between them
    fill = same & (empty > 0) & (empty <= max_gap_buckets)
    counts = np.where(fill, empty, 0)
    first = np.repeat(index[:-1] + 1, counts)
    step = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return pd.DataFrame(
        {
            "entity": np.repeat(entity[:-1], counts),
            "bucket_start": ((first + step) * bucket_seconds).astype("datetime64[s]").astype("datetime64[ns]"),
        }
    )
