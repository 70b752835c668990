"""Sliding windows over one entity's buckets (pure numpy/pandas).

Windows are aligned globally: a window whose last bucket has epoch bucket index ``k`` is emitted
iff ``k % stride == stride - 1``. The same window is therefore produced whatever date range a run
covers, which keeps reruns and day-by-day runs identical.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from adspark.core.scaling import apply_scaling, stats_vectors


@dataclass(frozen=True)
class WindowSpec:
    """Shape of the windows.

    Attributes:
        size: Buckets per window (W).
        stride: Buckets between consecutive window ends (S).
        bucket_seconds: Bucket width.
        features: Feature names, in the order values are laid out (F).
        center: Subtract each window's mean per feature from its scaled values.
    """

    size: int
    stride: int
    bucket_seconds: int
    features: tuple[str, ...]
    center: bool = False


@dataclass(frozen=True)
class Windows:
    """A batch of windows of one entity.

    Attributes:
        end_index: Epoch bucket index of each window's last bucket, shape (n,).
        values: Window values, shape (n, W, F).
    """

    end_index: np.ndarray
    values: np.ndarray


def sliding_windows(
    bucket_index: np.ndarray, values: np.ndarray, size: int, stride: int
) -> Windows:
    """Cut contiguous, globally aligned windows from one entity's buckets.

    Args:
        bucket_index: Epoch bucket index of each row (bucket_start // bucket_seconds), shape (n,),
            strictly increasing.
        values: Feature values per bucket, shape (n, F).
        size: W, buckets per window.
        stride: S; a window ends on bucket ``k`` iff ``k % S == S - 1``.

    Returns:
        The windows whose W buckets are all present (no gap), in time order.

    Raises:
        ValueError: When ``bucket_index`` is not strictly increasing or shapes disagree.
    """
    idx = np.asarray(bucket_index, dtype=np.int64)
    vals = np.asarray(values)
    if vals.ndim != 2 or vals.shape[0] != idx.shape[0]:
        raise ValueError(f"values shape {vals.shape} does not match {idx.shape[0]} buckets")
    n_features = vals.shape[1]
    if idx.size and np.any(np.diff(idx) <= 0):
        raise ValueError("bucket_index must be strictly increasing (sort and de-duplicate first)")
    if idx.size < size:
        return Windows(np.empty(0, np.int64), np.empty((0, size, n_features), vals.dtype))
    starts = idx[: idx.size - size + 1]
    ends = idx[size - 1 :]
    keep = ((ends - starts) == size - 1) & (np.mod(ends, stride) == stride - 1)
    view = sliding_window_view(vals, (size, n_features))[:, 0]
    return Windows(ends[keep], np.ascontiguousarray(view[keep]))


@dataclass(frozen=True)
class WindowRows:
    """Windows of one entity, laid out for the ``windows`` table.

    Attributes:
        entity: The entity key.
        window_start: First bucket start of each window, datetime64[s], shape (n,).
        window_end: End of the last bucket (exclusive), datetime64[s], shape (n,).
        date: UTC day of the last bucket, datetime64[D], shape (n,).
        values: Scaled values, float32, shape (n, W * F), row-major (time, feature).
        raw_values: Unscaled values, same layout; NaN where a bucket statistic (``x_mean``,
            ``x_min``, ``x_max``) is undefined because the bucket had no events.
    """

    entity: str
    window_start: np.ndarray
    window_end: np.ndarray
    date: np.ndarray
    values: np.ndarray
    raw_values: np.ndarray

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def window_ids(self) -> list[str]:
        """Deterministic ids: ``entity|window_start`` in ISO format."""
        return [f"{self.entity}|{t}" for t in self.window_start.astype("datetime64[s]").astype(str)]


def window_rows(
    entity: str,
    bucket_start: pd.Series,
    scaled: np.ndarray,
    raw: np.ndarray,
    spec: WindowSpec,
    first_day: dt.date,
    last_day: dt.date,
) -> WindowRows:
    """Windows of one entity whose last bucket falls on a day in ``[first_day, last_day]``.

    Args:
        entity: The entity key.
        bucket_start: Naive UTC bucket starts, shape (n,), strictly increasing.
        scaled: Scaled values, shape (n, F) (centered per window when ``spec.center``).
        raw: Unscaled values (kept for charts and the alerts), shape (n, F); NaN = undefined.
        spec: Window shape.
        first_day: First day (by the window's last bucket) to emit.
        last_day: Last day to emit, inclusive.
    """
    b = spec.bucket_seconds
    index = pd.to_datetime(bucket_start).to_numpy("datetime64[s]").astype(np.int64) // b
    n_f = len(spec.features)
    win = sliding_windows(index, np.concatenate([scaled, raw], axis=1), spec.size, spec.stride)
    end_day = (win.end_index * b // 86400).astype("datetime64[D]")
    keep = (end_day >= np.datetime64(first_day, "D")) & (end_day <= np.datetime64(last_day, "D"))
    vals = win.values[keep]
    n = len(vals)
    scaled_w = vals[:, :, :n_f]
    if spec.center:
        scaled_w = scaled_w - scaled_w.mean(axis=1, keepdims=True)
    return WindowRows(
        entity=entity,
        window_start=((win.end_index[keep] - spec.size + 1) * b).astype("datetime64[s]"),
        window_end=((win.end_index[keep] + 1) * b).astype("datetime64[s]"),
        date=end_day[keep],
        values=scaled_w.astype(np.float32).reshape(n, spec.size * n_f),
        raw_values=vals[:, :, n_f:].astype(np.float32).reshape(n, spec.size * n_f),
    )


def entity_windows(
    features: pd.DataFrame,
    stats_by_entity: Mapping[str, pd.DataFrame],
    default_stats: tuple[np.ndarray, np.ndarray],
    spec: WindowSpec,
    first_day: dt.date,
    last_day: dt.date,
) -> list[WindowRows]:
    """Windows of every entity of a frame, each cut from that entity's buckets only.

    Args:
        features: ``entity``, ``bucket_start`` and ``spec.features`` for any number of entities,
            any row order; at most one row per entity and bucket.
        stats_by_entity: Per-entity scaling statistics (``feature``, ``center``, ``scale``);
            entities absent here use ``default_stats``.
        default_stats: (center, scale), each shape (F,): the global statistics.
        spec: Window shape.
        first_day: First day (by the window's last bucket) to emit.
        last_day: Last day to emit, inclusive.

    Returns:
        One :class:`WindowRows` per entity that has windows, sorted by entity.
    """
    names = list(spec.features)
    out = []
    for entity, part in features.groupby("entity", sort=True):
        part = part.sort_values("bucket_start")
        st = stats_by_entity.get(entity)
        center, scale = stats_vectors(st, names) if st is not None else default_stats
        raw = part[names].to_numpy(np.float64)
        rows = window_rows(
            str(entity), part["bucket_start"], apply_scaling(raw, center, scale),
            raw, spec, first_day, last_day,
        )
        if len(rows):
            out.append(rows)
    return out
