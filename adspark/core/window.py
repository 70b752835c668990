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

from adspark.core.buckets import as_timestamps
from adspark.core.scaling import apply_scaling


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
    """Cut contiguous, globally aligned windows from one entity's buckets (the jobs' own cutter,
    :func:`entity_windows`, over one entity and every day).

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
    spec = WindowSpec(size, stride, 1, tuple(str(j) for j in range(vals.shape[1])))
    _, ends, windows, _ = _cut(np.zeros(idx.size, np.int64), idx, vals, None, spec, dt.date.min, dt.date.max)
    return Windows(ends, windows)


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
            ``x_min``, ``x_max``) is undefined because the bucket had no events; ``None`` when
            not asked for (scoring without the alerts).
    """

    entity: str
    window_start: np.ndarray
    window_end: np.ndarray
    date: np.ndarray
    values: np.ndarray
    raw_values: np.ndarray | None

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def window_ids(self) -> list[str]:
        """Deterministic ids: ``entity|window_start`` in ISO format."""
        return [f"{self.entity}|{t}" for t in self.window_start.astype("datetime64[s]").astype(str)]


def _cut(
    codes: np.ndarray, index: np.ndarray, scaled: np.ndarray, raw: np.ndarray | None, spec: WindowSpec,
    first_day: dt.date, last_day: dt.date,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Windows of rows sorted by (entity code, bucket index), never across two entities.

    A window ends on row ``r`` when row ``r - W + 1`` is the same entity's bucket ``W - 1``
    before (all W buckets present), the bucket is on the stride and its day is in range.

    Returns:
        (entity code of each window (n,), end bucket index (n,), scaled (n, W, F), raw (n, W, F)
        float32, or ``None`` without ``raw``).

    Raises:
        ValueError: When an entity has two rows for one bucket.
    """
    size, n_f = spec.size, scaled.shape[1]
    same = codes[1:] == codes[:-1]
    if np.any(same & (np.diff(index) <= 0)):
        raise ValueError("bucket_index must be strictly increasing (sort and de-duplicate first)")
    if len(index) < size:
        empty = np.empty((0, size, n_f), np.float32)
        return np.empty(0, codes.dtype), np.empty(0, np.int64), empty, None if raw is None else empty
    first, last = index[: len(index) - size + 1], index[size - 1:]
    keep = (codes[size - 1:] == codes[: len(codes) - size + 1]) & (last - first == size - 1)
    keep &= np.mod(last, spec.stride) == spec.stride - 1
    day = last * spec.bucket_seconds // 86400
    keep &= (day >= _epoch_day(first_day)) & (day <= _epoch_day(last_day))
    starts = np.flatnonzero(keep)
    scaled_w = _every_window(scaled, size)[starts]
    raw_w = None if raw is None else _every_window(np.asarray(raw, np.float32), size)[starts]  # raw as stored
    if spec.center:
        scaled_w = scaled_w - scaled_w.mean(axis=1, keepdims=True)
    return codes[starts + size - 1], last[keep], scaled_w, raw_w


def _every_window(rows: np.ndarray, size: int) -> np.ndarray:
    """A read-only view of every run of ``size`` consecutive rows, shape (n - size + 1, size, F):
    indexing it by window starts copies whole windows (five times faster than indexing the rows
    by a (windows, size) index array)."""
    step, item = rows.strides
    return np.lib.stride_tricks.as_strided(
        rows, shape=(len(rows) - size + 1, size, rows.shape[1]), strides=(step, step, item), writeable=False
    )


def _epoch_day(day: dt.date) -> int:
    return int(np.datetime64(day, "D").astype(np.int64))


def _rows(
    entity: str, end_index: np.ndarray, scaled_w: np.ndarray, raw_w: np.ndarray | None, spec: WindowSpec
) -> WindowRows:
    b, n = spec.bucket_seconds, len(end_index)
    width = spec.size * scaled_w.shape[2]
    return WindowRows(
        entity=entity,
        window_start=((end_index - spec.size + 1) * b).astype("datetime64[s]"),
        window_end=((end_index + 1) * b).astype("datetime64[s]"),
        date=(end_index * b // 86400).astype("datetime64[D]"),
        values=scaled_w.astype(np.float32, copy=False).reshape(n, width),
        raw_values=None if raw_w is None else raw_w.reshape(n, width),
    )


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
    index = as_timestamps(bucket_start).to_numpy("datetime64[s]").astype(np.int64) // spec.bucket_seconds
    if np.any(np.diff(index) <= 0):
        raise ValueError("bucket_index must be strictly increasing (sort and de-duplicate first)")
    _, end, scaled_w, raw_w = _cut(np.zeros(len(index), np.int64), index, np.asarray(scaled),
                                   np.asarray(raw), spec, first_day, last_day)
    return _rows(entity, end, scaled_w, raw_w, spec)


def entity_windows(
    features: pd.DataFrame,
    stats: pd.DataFrame,
    default_stats: tuple[np.ndarray, np.ndarray],
    spec: WindowSpec,
    first_day: dt.date,
    last_day: dt.date,
    raw: bool = True,
) -> list[WindowRows]:
    """Windows of every entity of a frame, each cut from that entity's buckets only, all
    entities at once (no per-entity pandas work).

    Args:
        features: ``entity``, ``bucket_start`` and ``spec.features`` for any number of entities,
            any row order; at most one row per entity and bucket.
        stats: Per-entity scaling statistics (``entity``, ``feature``, ``center``, ``scale``);
            entities absent here use ``default_stats``.
        default_stats: (center, scale), each shape (F,): the global statistics.
        spec: Window shape.
        first_day: First day (by the window's last bucket) to emit.
        last_day: Last day to emit, inclusive.
        raw: Also cut the unscaled values (``raw_values``).

    Returns:
        One :class:`WindowRows` per entity that has windows, sorted by entity.

    Raises:
        KeyError: Naming the features an entity's statistics lack.
        ValueError: When an entity has two rows for one bucket.
    """
    names = list(spec.features)
    if not len(features):
        return []
    codes, entities = pd.factorize(features["entity"].to_numpy(object), sort=True)  # keys are strings
    index = (as_timestamps(features["bucket_start"]).to_numpy("datetime64[s]").astype(np.int64)
             // spec.bucket_seconds)
    order = np.lexsort((index, codes))
    codes, index = codes[order], index[order]
    values = features[names].to_numpy(np.float64)[order]
    center, scale = _entity_stats(entities, stats, default_stats, names)
    scaled = apply_scaling(values, center[codes], scale[codes])
    win_codes, end, scaled_w, raw_w = _cut(codes, index, scaled, values if raw else None, spec, first_day, last_day)
    if not len(win_codes):
        return []
    bounds = np.flatnonzero(np.r_[True, win_codes[1:] != win_codes[:-1], True])
    return [
        _rows(str(entities[win_codes[i]]), end[i:j], scaled_w[i:j], None if raw_w is None else raw_w[i:j], spec)
        for i, j in zip(bounds[:-1], bounds[1:], strict=True) if j > i
    ]


def _entity_stats(
    entities: np.ndarray, stats: pd.DataFrame, default: tuple[np.ndarray, np.ndarray], names: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Center and scale of each entity, shape (E, F): its own statistics, else ``default``."""
    center = np.tile(np.asarray(default[0], np.float64), (len(entities), 1))
    scale = np.tile(np.asarray(default[1], np.float64), (len(entities), 1))
    mine = stats[stats["entity"].isin(entities)] if len(stats) else stats
    if not len(mine):
        return center, scale
    at_entity = pd.Index(entities).get_indexer(mine["entity"].to_numpy(object).astype(str))
    at_feature = pd.Index(names).get_indexer(mine["feature"].to_numpy(object))
    known = at_feature >= 0  # statistics of features outside the spec are not used
    at_entity, at_feature = at_entity[known], at_feature[known]
    missing = [f for j, f in enumerate(names) if not (at_feature == j).any()]
    if missing:
        raise KeyError(f"scaling statistics lack features {missing}")
    cells = at_entity * len(names) + at_feature
    if len(np.unique(cells)) != len(cells):
        raise ValueError("scaling statistics hold two rows for one entity and feature")
    having = np.unique(at_entity)  # entities with statistics of their own, in entity order
    for column, into in (("center", center), ("scale", scale)):
        grid = np.full((len(entities), len(names)), np.nan)
        grid[at_entity, at_feature] = mine[column].to_numpy(np.float64)[known]
        values = grid[having]
        lacking = np.isnan(values).any(axis=1)
        if lacking.any():
            gaps = [f for f, bad in zip(names, np.isnan(values[lacking.argmax()]), strict=True) if bad]
            raise KeyError(f"scaling statistics of entity {entities[having[lacking.argmax()]]!r} lack features {gaps}")
        into[having] = values
    return center, scale
