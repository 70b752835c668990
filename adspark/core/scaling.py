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

import warnings
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
    """Fit scaling statistics of one entity.

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
    n = np.sum(~np.isnan(v), axis=0)
    zeros = np.zeros(len(features))
    if v.shape[0] == 0:
        q25 = med = q75 = lo = hi = std = zeros
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: handled below
            q25, med, q75 = np.nanpercentile(v, [25, 50, 75], axis=0)
            lo, hi, std, mean = np.nanmin(v, axis=0), np.nanmax(v, axis=0), np.nanstd(v, axis=0), np.nanmean(v, axis=0)
    seen = n > 0
    med, q25, q75, lo, hi, std, mean = (np.where(seen, x, 0.0) for x in (med, q25, q75, lo, hi, std, mean))
    iqr = q75 - q25
    center, scale = center_and_scale(method, med, iqr, lo, hi, std, mean)
    return pd.DataFrame(
        {
            "entity": entity,
            "feature": list(features),
            "center": center.astype(np.float64),
            "scale": scale.astype(np.float64),
            "median": med,
            "iqr": iqr,
            "min": lo,
            "max": hi,
            "n": n.astype(np.int64),
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
