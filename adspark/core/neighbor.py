"""The ``neighbor`` detector: a window against the nearest earlier stretch of the same length.

The baselines judge each bucket's value against a location and a spread; a pattern the entity
has shown before (a burst of a certain shape every few hours, a ramp each morning) can still be
a string of large deviates each time, and a new shape made of ordinary values is no deviate at
all. A window's distance to its nearest neighbour among the entity's earlier stretches of the
same length (the causal "left" nearest neighbour of subsequence search, as in matrix-profile
discords) is small for a pattern seen before, however unusual its values, and large for one
never seen.

Per window and judged feature: ``d`` = the Euclidean distance between the window's W values and
the closest W consecutive earlier buckets that end before the window starts (no overlap) and
start within ``horizon`` buckets of its end, divided by ``sqrt(W)`` (a root mean square gap per
bucket) and by the robust scale of the entity's buffered values (1.4826 x their MAD, else their
standard deviation), so raw scores are comparable across entities before the per-entity
calibration (log scale, as the model's errors). No verdict (NaN) for a window with a missing
value, or with fewer candidate stretches than the warm-up asks. Values are compared as they are (not z-normalized): a
familiar shape at a new level is news too.

State per entity: the last ``horizon`` buckets' values and start times of the judged features
(``neighbor_x``, ``neighbor_t``; a missing value is stored as 0 with time -inf, since a state
holds no NaN), so a night needs nothing from the nights before it but its state.
"""

from __future__ import annotations

import numpy as np

from adspark.core.scaling import robust_sigma

QUERY_CHUNK = 1024  # windows compared with the candidates at once


def new_neighbor_buffer(horizon: int, width: int) -> dict[str, np.ndarray]:
    """An empty buffer of ``horizon`` buckets of ``width`` features (time-major, oldest first)."""
    return {"neighbor_x": np.zeros(horizon * width), "neighbor_t": np.full(horizon * width, -np.inf)}


def _scale(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Robust scale per feature of the buffered values that are real (``t`` finite), shape (K,):
    :func:`adspark.core.scaling.robust_sigma`, else 1 (nothing, or one constant value, seen)."""
    return np.array([robust_sigma(x[np.isfinite(t[:, k]), k]) or 1.0 for k in range(x.shape[1])])


def neighbor_distances(
    buffer: dict[str, np.ndarray], queries: np.ndarray, window_start: np.ndarray, values: np.ndarray,
    times: np.ndarray, bucket_seconds: int, horizon: int, min_candidates: int = 1,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Nearest-neighbour distances of one entity's windows of one night, and the buffer after them.

    Args:
        buffer: From :func:`new_neighbor_buffer` (K features) or an earlier call; not modified.
        queries: The windows' values of the judged features, shape (n, W, K), NaN where missing.
        window_start: Their starts, epoch seconds, shape (n,), time-ordered.
        values: The buckets these windows add (each bucket once), shape (m, K), time-ordered.
        times: Their starts, epoch seconds, shape (m,).
        bucket_seconds: Bucket width.
        horizon: Buckets kept (candidates start at most this many buckets before a window ends).
        min_candidates: Earlier stretches a window needs for a verdict (a warm-up: against a
            short history every window is far from all, and those distances would teach the
            calibration that large ones are usual).

    Returns:
        (raw scores, shape (n, K): the distance to the nearest earlier stretch, per bucket and in
        units of the entity's robust scale; NaN without a verdict; the buffer after the m buckets).
    """
    n, w, k = queries.shape
    old_x = buffer["neighbor_x"].reshape(horizon, k)
    old_t = buffer["neighbor_t"].reshape(horizon, k)
    real = np.isfinite(values)
    pool_x = np.concatenate([old_x, np.where(real, values, 0.0)])
    pool_t = np.concatenate([old_t, np.where(real, times[:, None], -np.inf)])
    after = {"neighbor_x": pool_x[-horizon:].ravel().copy(), "neighbor_t": pool_t[-horizon:].ravel().copy()}
    raw = np.full((n, k), np.nan)
    if not n or len(pool_x) < w:
        return raw, after
    scale = _scale(old_x, old_t)
    offsets = np.arange(w) * float(bucket_seconds)
    cand_x = np.lib.stride_tricks.sliding_window_view(pool_x, w, axis=0)  # (L - W + 1, K, W)
    cand_t = np.lib.stride_tricks.sliding_window_view(pool_t, w, axis=0)
    first_t = cand_t[:, :, 0]  # (L - W + 1, K)
    whole = np.all(cand_t == first_t[:, :, None] + offsets, axis=2)  # every bucket real, contiguous
    span = w * float(bucket_seconds)
    reach = horizon * float(bucket_seconds)
    for j in range(k):
        usable = whole[:, j]
        if not usable.any():
            continue
        c, c_start = cand_x[usable, j, :], first_t[usable, j]
        center = float(np.median(c[:, -1]))
        cc = c - center
        c_norm = (cc * cc).sum(axis=1)
        for a in range(0, n, QUERY_CHUNK):  # bounded memory: a chunk of windows x every candidate
            b = min(a + QUERY_CHUNK, n)
            q = queries[a:b, :, j]
            asked = np.all(np.isfinite(q), axis=1)
            if not asked.any():
                continue
            qc = np.where(asked[:, None], q, center) - center
            # a candidate ends before the window starts and starts within the horizon of its end
            allowed = ((c_start[None, :] + span <= window_start[a:b, None])
                       & (c_start[None, :] >= window_start[a:b, None] + span - reach))
            d2 = (qc * qc).sum(axis=1)[:, None] + c_norm[None, :] - 2.0 * qc @ cc.T
            best = np.where(allowed, np.maximum(d2, 0.0), np.inf).min(axis=1)
            found = asked & np.isfinite(best) & (allowed.sum(axis=1) >= min_candidates)
            raw[a + np.flatnonzero(found), j] = np.sqrt(best[found] / w) / scale[j]
    return raw, after
