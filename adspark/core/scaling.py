"""Per-entity scaling statistics: fitting, applying and inverting (pure numpy/pandas).

Statistics are stored long (one row per entity and feature) so they fit any feature count:
``center`` and ``scale`` are what :func:`apply_scaling` uses; the robust and min-max views of the
same data (``median``, ``iqr``, ``min``, ``max``) are kept alongside for inspection.

Every scale is at least :data:`SCALE_FLOOR` times the largest magnitude the feature showed in
training (:func:`scale_floor`): a channel that was near-constant while fitting (IQR 0, a std of
0.001 on values near 90) would otherwise turn ordinary later noise into scaled values in the
thousands, and the model's errors with them. :func:`floored` says which scales hit the floor (the
window job names them in its summary).
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import pandas as pd

GLOBAL_ENTITY = "__global__"
_EPS = 1e-9
SCALE_FLOOR = 0.01  # a scale is at least this share of the feature's largest training magnitude

ScalingMethod = Literal["robust", "zscore", "minmax", "none"]

STATS_COLUMNS = ["entity", "feature", "center", "scale", "median", "iqr", "min", "max", "n"]
MAD_SIGMA = 1.4826  # a normal law's sigma per median absolute deviation


def robust_sigma(values: np.ndarray) -> float:
    """A robust standard deviation of ``values`` (shape (n,), finite): 1.4826 x their median
    absolute deviation, else (over half of them equal) their standard deviation; 0 when they are
    all equal or fewer than two."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return 0.0
    mad = float(np.median(np.abs(v - np.median(v))))
    return MAD_SIGMA * mad if mad > 0 else float(v.std())


def scale_floor(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The smallest scale of each feature: :data:`SCALE_FLOOR` x its largest training magnitude
    ``max(|min|, |max|)`` (at least a tiny absolute floor), shape (F,)."""
    magnitude = np.maximum(np.abs(np.asarray(lo, np.float64)), np.abs(np.asarray(hi, np.float64)))
    return np.maximum(SCALE_FLOOR * np.nan_to_num(magnitude), _EPS)


def floored(scale: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Which scales sit on their floor (the feature was near-constant in training), shape (F,)."""
    floor = scale_floor(lo, hi)
    return (floor > _EPS) & (np.asarray(scale, np.float64) <= floor * (1.0 + 1e-9))


def floored_rows(stats: pd.DataFrame) -> pd.DataFrame:
    """The rows of scaling statistics (with ``scale``, ``min``, ``max``) whose scale sits on its floor."""
    return stats[floored(stats["scale"].to_numpy(np.float64), stats["min"].to_numpy(np.float64),
                         stats["max"].to_numpy(np.float64))]


def floor_note(n: int, examples: Sequence[str]) -> str:
    """The job-summary phrase for ``n`` floored scales, naming the first ``examples``; '' for none."""
    if not n:
        return ""
    more = f" and {n - len(examples)} more" if n > len(examples) else ""
    return (f"; scale floor ({SCALE_FLOOR:.0%} of the largest training magnitude) used for {n} near-constant "
            f"entity/feature pair(s): {', '.join(examples)}{more}")


def center_and_scale(
    method: ScalingMethod,
    median: np.ndarray,
    iqr: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    std: np.ndarray,
    mean: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Center and (strictly positive) scale from summary statistics, each of shape (F,).

    ``robust``: median and IQR (falling back to std). ``zscore``: mean and standard deviation.
    ``minmax``: min and max - min. Each scale is at least :func:`scale_floor` (1 for a feature
    that was 0 throughout). ``none``: center 0, scale 1 (data already normalized, e.g.
    z-normalized heartbeats).
    """
    median, iqr, lo, hi, std = (np.asarray(x, dtype=np.float64) for x in (median, iqr, lo, hi, std))
    if method == "none":
        return np.zeros_like(median), np.ones_like(median)
    if method == "robust":
        center, scale = median, np.where(iqr > _EPS, iqr, std)
    elif method == "zscore":
        center, scale = (median if mean is None else np.asarray(mean, np.float64)), std
    else:
        center, scale = lo, hi - lo
    floor = scale_floor(lo, hi)
    return center, np.where(floor > _EPS, np.maximum(scale, floor), np.where(scale > _EPS, scale, 1.0))


def fit_stats(
    entity: str, values: np.ndarray, features: Sequence[str], method: ScalingMethod
) -> pd.DataFrame:
    """Fit scaling statistics of one entity (:func:`fit_entity_stats` with one entity).

    Args:
        entity: The entity key (or :data:`GLOBAL_ENTITY`).
        values: Training values, shape (n, F); NaN entries are ignored.
        features: The F feature names.
        method: ``robust``, ``zscore``, ``minmax`` or ``none`` (:func:`center_and_scale`).

    Returns:
        F rows with :data:`STATS_COLUMNS`.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != len(features):
        raise ValueError(f"values shape {v.shape} does not match {len(features)} features")
    if v.shape[0] == 0:
        zeros = np.zeros((1, len(features)))
        return _stats_frame(np.array([entity], dtype=object), features, method, np.zeros((1, len(features)), np.int64),
                            (zeros, zeros, zeros), zeros, zeros, zeros, zeros)
    return fit_entity_stats(np.full(len(v), entity, dtype=object), v, features, method)


def fit_entity_stats(
    entities: np.ndarray, values: np.ndarray, features: Sequence[str], method: ScalingMethod
) -> pd.DataFrame:
    """Fit scaling statistics of many entities at once (no Python loop over entities).

    Each entity's figures are those of its own rows: quartiles by linear interpolation
    (``np.nanpercentile``'s default), min, max, mean and population standard deviation, NaN
    entries ignored, 0 where a feature has no value.

    Args:
        entities: The entity of each row, shape (n,), n >= 1.
        values: Training values, shape (n, F).
        features: The F feature names.
        method: ``robust``, ``zscore``, ``minmax`` or ``none`` (:func:`center_and_scale`).

    Returns:
        F rows per entity (entities sorted, features in order) with :data:`STATS_COLUMNS`.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != len(features) or len(entities) != len(v) or not len(v):
        raise ValueError(f"values shape {v.shape} does not match {len(features)} features and {len(entities)} rows")
    code, keys = pd.factorize(np.asarray(entities, dtype=object), sort=True)
    keys = np.asarray(keys, dtype=object)
    order = np.argsort(code, kind="stable")
    code, v = code[order], v[order]
    starts = np.searchsorted(code, np.arange(len(keys)))
    known = ~np.isnan(v)
    n = np.add.reduceat(known.astype(np.int64), starts, axis=0)  # (E, F)
    seen = n > 0
    quartiles, lo, hi = _segment_quartiles(v, starts, n)
    filled = np.where(known, v, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.add.reduceat(filled, starts, axis=0) / n
        deviation = np.where(known, v - np.repeat(mean, np.diff(np.r_[starts, len(v)]), axis=0), 0.0)
        std = np.sqrt(np.add.reduceat(deviation * deviation, starts, axis=0) / n)
    q25, med, q75, lo, hi, std, mean = (np.where(seen, x, 0.0) for x in (*quartiles, lo, hi, std, mean))
    return _stats_frame(keys, features, method, n, (q25, med, q75), lo, hi, std, mean)


def _segment_quartiles(
    v: np.ndarray, starts: np.ndarray, n: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray, np.ndarray]:
    """Quartiles, min and max of each entity's rows, NaN ignored (NaN where none).

    Entities are sorted in blocks of similar row counts (each padded with NaN to its longest,
    so at most twice the rows), one ``np.sort`` along the rows per block.

    Args:
        v: Rows grouped by entity, shape (N, F).
        starts: First row of each entity, shape (E,).
        n: Non-NaN values per entity and feature, shape (E, F).

    Returns:
        ``((q25, median, q75), min, max)``, each of shape (E, F).
    """
    sizes = np.diff(np.r_[starts, len(v)])
    figures = np.full((5, *n.shape), np.nan)
    size_class = np.ceil(np.log2(sizes)).astype(np.int64)
    for c in np.unique(size_class):
        members = np.flatnonzero(size_class == c)
        width = int(sizes[members].max())
        offset = np.arange(width)
        inside = offset < sizes[members, None]  # (e, width)
        rows = np.where(inside, starts[members, None] + offset, 0)
        block = np.where(inside[..., None], v[rows], np.nan)  # (e, width, F)
        block.sort(axis=1)  # ascending, NaN last
        last = np.maximum(n[members] - 1, 0)[:, None, :]  # (e, 1, F)
        figures[3, members] = np.take_along_axis(block, np.zeros_like(last), 1)[:, 0]
        figures[4, members] = np.take_along_axis(block, last, 1)[:, 0]
        for i, q in enumerate((0.25, 0.5, 0.75)):
            virtual = last * q
            below = np.floor(virtual).astype(np.int64)
            above = np.minimum(below + 1, last)
            figures[i, members] = _lerp(np.take_along_axis(block, below, 1), np.take_along_axis(block, above, 1),
                                        virtual - below)[:, 0]
    return (figures[0], figures[1], figures[2]), figures[3], figures[4]


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Linear interpolation from ``a`` to ``b`` as NumPy's quantiles compute it (from the nearer
    end), shapes (k,)."""
    diff = b - a
    return np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)


def _stats_frame(
    keys: np.ndarray, features: Sequence[str], method: ScalingMethod, n: np.ndarray,
    quartiles: tuple[np.ndarray, np.ndarray, np.ndarray], lo: np.ndarray, hi: np.ndarray, std: np.ndarray,
    mean: np.ndarray,
) -> pd.DataFrame:
    """The long statistics frame from per-entity figures, each of shape (E, F)."""
    q25, med, q75 = quartiles
    iqr = q75 - q25
    center, scale = center_and_scale(method, med.ravel(), iqr.ravel(), lo.ravel(), hi.ravel(), std.ravel(),
                                     mean.ravel())
    return pd.DataFrame(
        {
            "entity": np.repeat(keys, len(features)),
            "feature": np.tile(np.asarray(list(features), dtype=object), len(keys)),
            "center": center.astype(np.float64),
            "scale": scale.astype(np.float64),
            "median": med.ravel(),
            "iqr": iqr.ravel(),
            "min": lo.ravel(),
            "max": hi.ravel(),
            "n": n.ravel().astype(np.int64),
        }
    )


def global_stats(per_entity: pd.DataFrame) -> pd.DataFrame:
    """Fallback statistics for entities unseen in training: the median over entities.

    Args:
        per_entity: Rows of :data:`STATS_COLUMNS` for many entities.

    Returns:
        One row per feature with ``entity == GLOBAL_ENTITY``.
    """
    cols = ["center", "scale", "median", "iqr", "min", "max"]
    agg = per_entity.groupby("feature", sort=False)[cols].median()
    agg["n"] = per_entity.groupby("feature", sort=False)["n"].sum()
    out = agg.reset_index()
    out.insert(0, "entity", GLOBAL_ENTITY)
    return out[STATS_COLUMNS]


def stats_vectors(stats: pd.DataFrame, features: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Centers and scales of one entity in feature order.

    Raises:
        KeyError: Naming the features the statistics lack.
    """
    by_feature = stats.set_index("feature")
    missing = [f for f in features if f not in by_feature.index]
    if missing:
        raise KeyError(f"scaling statistics lack features {missing}")
    sel = by_feature.loc[list(features)]
    return sel["center"].to_numpy(np.float64), sel["scale"].to_numpy(np.float64)


def apply_scaling(values: np.ndarray, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Scale values: ``(x - center) / scale``; NaN becomes 0 (the center).

    Args:
        values: Shape (n, F).
        center: Shape (F,).
        scale: Shape (F,), strictly positive.

    Returns:
        float32 array, shape (n, F), with no NaN or inf.
    """
    out = (np.asarray(values, dtype=np.float64) - center) / scale
    return np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def invert_scaling(scaled: np.ndarray, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Undo :func:`apply_scaling` (for reconstructions shown on the raw scale)."""
    return np.asarray(scaled, dtype=np.float64) * scale + center
