"""Feature layout and per-entity bucket padding (pure numpy/pandas).

After Spark aggregates events into (entity, bucket) rows, :func:`pad_entity` completes one
entity's buckets: every bucket of every active day is present exactly once, empty buckets get
zero counts and null statistics, and calendar and differenced features are added.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Sequence

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


def pad_entity(
    entity: str,
    buckets: pd.DataFrame,
    active_days: Sequence[dt.date],
    bucket_seconds: int,
    spec: FeatureSpec,
    context: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Complete one entity's buckets over its active days.

    Args:
        entity: The entity key.
        buckets: Aggregated rows of this entity: ``bucket_start`` (naive UTC) and
            ``spec.aggregates``; at most one row per bucket.
        active_days: Days to cover with a full grid (UTC days); buckets on other days are kept
            as they are.
        bucket_seconds: Bucket width (divides 86400).
        spec: Feature layout.
        context: Optional earlier rows (the bucket just before the range) used only as the
            previous value for differencing; not returned.

    Returns:
        One row per bucket, sorted: ``entity, bucket_start, date, padded`` + ``spec.columns``.
    """
    per_day = 86400 // bucket_seconds
    grids = [
        pd.date_range(pd.Timestamp(d), periods=per_day, freq=f"{bucket_seconds}s")
        for d in sorted(set(active_days))
    ]
    have = pd.DatetimeIndex(pd.to_datetime(buckets["bucket_start"]))
    if have.has_duplicates:
        raise ValueError(f"entity {entity!r}: duplicate bucket_start values")
    index = have.union(grids[0].append(grids[1:]) if grids else pd.DatetimeIndex([]))
    frame = buckets.set_index(have)[list(spec.aggregates)].reindex(index)
    padded = ~index.isin(have)
    zero = list(spec.zero_fill)
    frame[zero] = frame[zero].fillna(0)
    out = frame.reset_index(names="bucket_start")
    out.insert(0, "entity", entity)
    out.insert(2, "date", out["bucket_start"].dt.date)
    out.insert(3, "padded", padded)
    if spec.difference:
        prev = _previous_values(out, context, spec.difference, bucket_seconds)
        for c in spec.difference:
            out[f"{c}_diff"] = out[c].to_numpy(np.float64) - prev[c]
    if spec.calendar:
        local = out["bucket_start"].dt.tz_localize("UTC").dt.tz_convert(spec.timezone)
        dow = local.dt.dayofweek + 1
        out["hour_of_day"] = local.dt.hour.astype("int32")
        out["day_of_week"] = dow.astype("int32")
        out["is_weekend"] = (dow >= 6).astype("int32")
    return out


def _previous_values(
    out: pd.DataFrame, context: pd.DataFrame | None, cols: Sequence[str], bucket_seconds: int
) -> dict[str, np.ndarray]:
    """Value of the bucket just before each row (NaN where that bucket is missing)."""
    series = out.set_index("bucket_start")[list(cols)]
    if context is not None and not context.empty:
        ctx = context.set_index(pd.to_datetime(context["bucket_start"]))[list(cols)]
        series = pd.concat([ctx[~ctx.index.isin(series.index)], series]).sort_index()
    shifted = series.copy()
    shifted.index = shifted.index + pd.Timedelta(seconds=bucket_seconds)
    aligned = shifted.reindex(out["bucket_start"])
    return {c: aligned[c].to_numpy(np.float64) for c in cols}
