"""Top contributing features of a score (pure numpy)."""

from __future__ import annotations

import numpy as np


def top_contributors(feature_errors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k features with the largest share of each row's error.

    Args:
        feature_errors: Non-negative contribution per feature, shape (n, F).
        k: How many to keep (at most F).

    Returns:
        (indices (n, k) in decreasing contribution, shares (n, k) of the row total in [0, 1]).
    """
    e = np.asarray(feature_errors, dtype=np.float64)
    if e.ndim != 2:
        raise ValueError(f"expected feature errors of shape (n, F), got {e.shape}")
    k = min(k, e.shape[1])
    if k <= 0 or e.shape[0] == 0:
        return np.empty((e.shape[0], max(k, 0)), np.int64), np.empty((e.shape[0], max(k, 0)))
    e = np.clip(e, 0.0, None)
    part = np.argpartition(-e, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(e, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1)
    total = e.sum(axis=1, keepdims=True)
    shares = np.divide(
        np.take_along_axis(e, idx, axis=1), total, out=np.zeros((len(e), k)), where=total > 0
    )
    return idx, shares
