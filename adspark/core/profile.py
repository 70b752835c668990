"""The ``profile`` detector: is the *shape* of a window's activity the entity's usual one?

A day whose activity moves by several hours keeps plausible counts in every single hour (each is
within its slot's spread) and a plausible total; what changed is how the events spread over the
hours. So for each window the events per bucket ``o`` (``event_count``) are compared with the
counts the seasonal baseline expected there, rescaled to the window's own total (the level is the
other detectors' business):

    e_t = mu_t + 1/(2 m_t)           (the seasonal slot's rate, Jeffreys-smoothed as in count_z)
    G = 2 sum_t o_t log(o_t / (e_t sum(o) / sum(e)))

a likelihood-ratio (G) test of the bucket counts against that shape: chi-square with W - 1
degrees of freedom under multinomial noise, turned into a normal deviate (Wilson-Hilferty). Real
entities are noisier than multinomial, so the deviate is then calibrated per entity like every
other raw score. The last W buckets' counts and expectations are kept in the state, so a window's
older buckets (scored by earlier windows or nights) are still there; buckets that are not
contiguous in time give no verdict.
"""

from __future__ import annotations

import numpy as np

PROFILE_FEATURE = "event_count"
MIN_EVENTS = 1.0  # a window without events has no shape


def expected_counts(anscombe_loc: np.ndarray, visits: np.ndarray, halflife: float) -> np.ndarray:
    """Expected counts from seasonal locations on the Anscombe scale, shape of the inputs; NaN
    where the slot was not warm (``visits`` 0)."""
    from adspark.core.streaming import effective_visits

    mu = np.clip((np.asarray(anscombe_loc, np.float64) / 2.0) ** 2 - 0.375, 0.0, None)
    m = effective_visits(np.asarray(visits, np.float64), halflife)
    with np.errstate(divide="ignore"):
        return np.where(m > 0, mu + 0.5 / np.maximum(m, 1e-12), np.nan)


def g_statistic(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """G statistic of each row's counts against its expected shape, shape (n,); NaN for a row
    with a missing value (NaN or negative) or fewer than :data:`MIN_EVENTS` events.

    Args:
        observed: Counts, shape (n, W).
        expected: Expected counts (> 0), shape (n, W); only their proportions matter.
    """
    o = np.asarray(observed, np.float64)
    e = np.asarray(expected, np.float64)
    total = o.sum(axis=1)
    ok = (o >= 0).all(axis=1) & (e > 0).all(axis=1) & np.isfinite(e).all(axis=1) & (total >= MIN_EVENTS)
    scale = np.where(ok, total / np.where(ok, e.sum(axis=1), 1.0), 1.0)
    fitted = np.where(ok[:, None], e * scale[:, None], 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(o > 0, o * np.log(o / fitted), 0.0)
    return np.where(ok, np.maximum(2.0 * terms.sum(axis=1), 0.0), np.nan)


def chi2_deviate(stat: np.ndarray, dof: int) -> np.ndarray:
    """Wilson-Hilferty normal deviate of chi-square statistics with ``dof`` degrees of freedom."""
    k = float(max(dof, 1))
    c = 2.0 / (9.0 * k)
    return (np.cbrt(np.asarray(stat, np.float64) / k) - (1.0 - c)) / np.sqrt(c)


def window_profiles(
    buffer: dict[str, np.ndarray], obs: np.ndarray, exp: np.ndarray, times: np.ndarray,
    last_row: np.ndarray, window_start: np.ndarray, bucket_seconds: int,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Profile deviates of n windows of W buckets, and the buffer after them.

    Args:
        buffer: ``profile_obs``, ``profile_exp``, ``profile_t`` (W each: the last W buckets seen,
            oldest first; -1, -1 and -inf when unseen or missing: a state holds no NaN).
        obs: Counts of the new buckets, shape (m,), time-ordered.
        exp: Their expected counts (:func:`expected_counts`), shape (m,).
        times: Their start times (epoch seconds), shape (m,).
        last_row: Per window, the row of its newest new bucket in ``obs`` (-1: no new bucket),
            shape (n,).
        window_start: Per window, its start (epoch seconds), shape (n,).
        bucket_seconds: Bucket width.

    Returns:
        (z, shape (n,): the Wilson-Hilferty deviate of G with W - 1 degrees of freedom, NaN without
        a verdict; the buffer after the m buckets).
    """
    z, after = window_profiles_many([buffer], obs, exp, times, np.array([0, len(obs)]), last_row, window_start,
                                    bucket_seconds)
    return z, after[0]


def window_profiles_many(
    buffers: list[dict[str, np.ndarray]], obs: np.ndarray, exp: np.ndarray, times: np.ndarray, rows: np.ndarray,
    last_row: np.ndarray, window_start: np.ndarray, bucket_seconds: int,
) -> tuple[np.ndarray, list[dict[str, np.ndarray]]]:
    """:func:`window_profiles` of E entities at once: their new buckets one entity after the
    other (entity ``e``'s are rows ``rows[e]:rows[e + 1]`` of ``obs``, ``exp`` and ``times``),
    their windows likewise, ``last_row`` global. Each entity's deviates and buffer equal its own
    :func:`window_profiles`.

    Returns:
        (z, shape (n,); each entity's buffer after its buckets).
    """
    w = buffers[0]["profile_obs"].size if buffers else 0
    new_obs, new_exp = np.where(np.isfinite(obs), obs, -1.0), np.where(np.isfinite(exp), exp, -1.0)
    # each entity's buffer, then its new buckets: global row r of entity e sits at r + (e + 1) w
    blocks = [(b, slice(rows[e], rows[e + 1])) for e, b in enumerate(buffers)]
    all_obs = np.concatenate([a for b, part in blocks for a in (b["profile_obs"], new_obs[part])])
    all_exp = np.concatenate([a for b, part in blocks for a in (b["profile_exp"], new_exp[part])])
    all_t = np.concatenate([a for b, part in blocks for a in (b["profile_t"], times[part])])
    n = len(last_row)
    z = np.full(n, np.nan)
    if w >= 2 and n:
        ok = last_row >= 0
        entity = np.searchsorted(rows, np.maximum(last_row, 0), side="right") - 1
        ends = np.where(ok, last_row + (entity + 1) * w + 1, w)
        idx = ends[:, None] - w + np.arange(w)[None, :]
        want = window_start[:, None] + np.arange(w)[None, :] * float(bucket_seconds)
        contiguous = np.all(all_t[idx] == want, axis=1)
        g = g_statistic(all_obs[idx], all_exp[idx])
        z = np.where(ok & contiguous, chi2_deviate(g, w - 1), np.nan)
    after = []
    for e in range(len(buffers)):
        end = int(rows[e + 1]) + (e + 1) * w
        after.append({"profile_obs": all_obs[end - w : end], "profile_exp": all_exp[end - w : end],
                      "profile_t": all_t[end - w : end]})
    return z, after


def new_profile_buffer(n_steps: int) -> dict[str, np.ndarray]:
    """An empty buffer of W buckets (no NaN: states are stored as arrays of doubles)."""
    return {"profile_obs": np.full(n_steps, -1.0), "profile_exp": np.full(n_steps, -1.0),
            "profile_t": np.full(n_steps, -np.inf)}
