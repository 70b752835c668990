"""Sliding windows over one entity's buckets (pure numpy/pandas).

Windows are aligned globally: a window whose last bucket has epoch bucket index ``k`` is emitted
iff ``k % stride == stride - 1``. The same window is therefore produced whatever date range a run
covers, which keeps reruns and day-by-day runs identical.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view


@dataclass(frozen=True)
class WindowSpec:
    """Shape of the windows.

    Attributes:
        size: Buckets per window (W).
        stride: Buckets between consecutive window ends (S).
        bucket_seconds: Bucket width.
        features: Feature names, in the order values are laid out (F).
    """

    size: int
    stride: int
    bucket_seconds: int
    features: tuple[str, ...]


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


def windows_frame(
    entity: str,
    bucket_start: pd.Series,
    scaled: np.ndarray,
    raw: np.ndarray,
    spec: WindowSpec,
    first_day: dt.date,
    last_day: dt.date,
) -> pd.DataFrame:
    """Windows of one entity as rows of the ``windows`` table, ending within a date range.

    Args:
        entity: The entity key.
        bucket_start: Naive UTC bucket starts, shape (n,), strictly increasing.
        scaled: Scaled values, shape (n, F).
        raw: Unscaled values (kept for charts), shape (n, F).
        spec: Window shape.
        first_day: First day (by the window's last bucket) to emit.
        last_day: Last day to emit, inclusive.

    Returns:
        One row per window: ``entity, window_id, window_start, window_end, date, values,
        raw_values, n_steps, n_features``; values are flat float32 arrays of length W * F,
        row-major (time, feature).
    """
    b = spec.bucket_seconds
    index = pd.to_datetime(bucket_start).to_numpy("datetime64[s]").astype(np.int64) // b
    both = np.concatenate([scaled, raw], axis=1)
    win = sliding_windows(index, both, spec.size, spec.stride)
    end_start_s = win.end_index * b
    end_day = (end_start_s // 86400).astype("datetime64[D]")
    lo, hi = np.datetime64(first_day, "D"), np.datetime64(last_day, "D")
    keep = (end_day >= lo) & (end_day <= hi)
    win_vals = win.values[keep]
    n_f = len(spec.features)
    starts = ((win.end_index[keep] - spec.size + 1) * b).astype("datetime64[s]")
    ends = ((win.end_index[keep] + 1) * b).astype("datetime64[s]")
    flat_scaled = win_vals[:, :, :n_f].astype(np.float32).reshape(len(win_vals), -1)
    flat_raw = win_vals[:, :, n_f:].astype(np.float32).reshape(len(win_vals), -1)
    start_ts = pd.to_datetime(starts)
    return pd.DataFrame(
        {
            "entity": entity,
            "window_id": [f"{entity}|{t.isoformat()}" for t in start_ts],
            "window_start": start_ts,
            "window_end": pd.to_datetime(ends),
            "date": end_day[keep].astype("datetime64[D]").astype(object),
            "values": list(flat_scaled),
            "raw_values": list(flat_raw),
            "n_steps": np.int32(spec.size),
            "n_features": np.int32(n_f),
        }
    )
