"""Per-entity scaling statistics: fitting, applying and inverting (pure numpy/pandas).

Statistics are stored long (one row per entity and feature) so they fit any feature count:
``center`` and ``scale`` are what :func:`apply_scaling` uses; the robust and min-max views of the
same data (``median``, ``iqr``, ``min``, ``max``) are kept alongside for inspection.
"""

from __future__ import annotations

import warnings
from typing import Literal, Sequence

import numpy as np
import pandas as pd

GLOBAL_ENTITY = "__global__"
_EPS = 1e-9

ScalingMethod = Literal["robust", "minmax", "none"]

STATS_COLUMNS = ["entity", "feature", "center", "scale", "median", "iqr", "min", "max", "n"]


def center_and_scale(
    method: ScalingMethod,
    median: np.ndarray,
    iqr: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    std: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Center and (strictly positive) scale from summary statistics, each of shape (F,).

    ``robust``: median and IQR (falling back to std, then 1). ``minmax``: min and max - min
    (falling back to 1). ``none``: center 0, scale 1 (data already normalized, e.g. z-normalized
    heartbeats).
    """
    median, iqr, lo, hi, std = (np.asarray(x, dtype=np.float64) for x in (median, iqr, lo, hi, std))
    if method == "none":
        return np.zeros_like(median), np.ones_like(median)
    if method == "robust":
        scale = np.where(iqr > _EPS, iqr, np.where(std > _EPS, std, 1.0))
        return median, scale
    spread = hi - lo
    return lo, np.where(spread > _EPS, spread, 1.0)


def fit_stats(
    entity: str, values: np.ndarray, features: Sequence[str], method: ScalingMethod
) -> pd.DataFrame:
    """Fit scaling statistics of one entity.

    Args:
        entity: The entity key (or :data:`GLOBAL_ENTITY`).
        values: Training values, shape (n, F); NaN entries are ignored.
        features: The F feature names.
        method: ``"robust"`` (median / IQR, falling back to std, then 1) or ``"minmax"``.

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
            lo, hi, std = np.nanmin(v, axis=0), np.nanmax(v, axis=0), np.nanstd(v, axis=0)
    seen = n > 0
    med, q25, q75, lo, hi, std = (np.where(seen, x, 0.0) for x in (med, q25, q75, lo, hi, std))
    iqr = q75 - q25
    center, scale = center_and_scale(method, med, iqr, lo, hi, std)
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
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def invert_scaling(scaled: np.ndarray, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Undo :func:`apply_scaling` (for reconstructions shown on the raw scale)."""
    return np.asarray(scaled, dtype=np.float64) * scale + center
