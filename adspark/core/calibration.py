"""Per-entity calibration of raw scores into tail probabilities, and their fusion (pure numpy).

The design follows the "anomaly likelihood" of Numenta's HTM detector (Ahmad et al. 2017):
a raw score says little on its own (an entity with noisy data scores high every day); what
matters is how unusual the *recent* raw scores are for *this* entity. For every window, in time
order:

1. ``a_t``: the mean of the last ``short`` raw scores (after ``log1p`` for skewed error-like
   scores, which brings them closer to normal), the current one included;
2. the probability of an average at least this high under the predictive law of the entity's
   earlier averages: mean and variance are exponentially weighted estimates (half-life
   ``halflife`` windows; a plain running estimate while fewer were seen), and the law is a
   Student t with ``n - 1`` degrees of freedom for ``n`` (effective) averages seen, so a short
   history gives wide tails and a long one the normal law;
3. then ``a_t`` updates the estimates, so a lasting change stops alerting once it is the new
   normal.

Until ``min_history`` averages were seen the probability is 1 (no verdict). The state is three
numbers and the last ``short - 1`` raw scores per series, carried from night to night.

``empirical`` (an option, not the default) also learns the shape of each series' own tail: an exponentially
decayed histogram of its averages on a fixed log-spaced grid (:data:`EDGES`, same half-life).
Inside the observed range the probability is the histogram's tail mass; beyond its 99th
percentile the tail is extrapolated exponentially through its 90th and 99th percentiles
(a generalized Pareto tail of shape 0, as in peaks-over-threshold). The probability given is the
larger of that and the Student law's: a score must be improbable under the series' own tail
*and* under the normal-like law (which stays wide while the history is short). Heavy-tailed
scores (sums of log-normal amounts) then stop alarming at every large value, while a series of
light-tailed scores keeps the Student law's sensitivity within the observed range. Measured, it
is far more conservative than the Student law at the default alert level (the exponential
extrapolation needs a score about five 90-99% widths beyond the 99th percentile for 1e-7), so it
is not the default (figures in ``docs/alerts.md``).

Fusion of several detectors' probabilities (:func:`fuse`): ``bonferroni`` takes the smallest
probability times the number of detectors (and keeps which detector it was), ``fisher`` combines
them with Fisher's method (``-2 sum log p`` is chi-square with ``2k`` degrees of freedom).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

P_FLOOR = 1e-300


@dataclass(frozen=True)
class CalibrationParams:
    """How raw scores become probabilities.

    Attributes:
        short: Raw scores averaged (the current one and the ``short - 1`` before it).
        halflife: Half-life of the mean/variance estimates, in windows.
        min_history: Averages seen before probabilities are given (1.0 before).
        min_std: Floor of the standard deviation (on the log1p scale for skewed scores).
        tail: Law of the history: ``student`` (default), ``normal``, ``laplace`` (see
            :func:`_tail`) or ``empirical`` (the series' own tail, see the module doc).
        learn_clip: Once the history is ready, an average enters it at most this many standard
            deviations above its mean (``None``: as it is). A sustained anomaly then keeps its
            probability low for as long as it lasts instead of teaching the history that it is
            normal within a few windows; a lasting new level is still learned, at the pace of
            ``halflife``.
    """

    short: int = 3
    halflife: float = 2000.0
    min_history: int = 30
    min_std: float = 0.05
    tail: str = "student"
    learn_clip: float | None = None


EDGES = np.expm1(np.linspace(0.0, np.log1p(1000.0), 41))  # histogram bins of the empirical law
BINS = len(EDGES) - 1


def new_calibration_state(short: int, width: int = 1, tail: str = "student") -> dict[str, np.ndarray]:
    """Empty state of ``width`` parallel series: ``recent`` raw scores (``short - 1`` rows; the
    last ``min(count, short - 1)`` of them are real) and ``stats`` (mean, variance, count; then
    the :data:`BINS` decayed histogram counts for the ``empirical`` law), flattened. Every value
    is finite (the state is stored in a table without nulls)."""
    extra = BINS if tail == "empirical" else 0
    return {"recent": np.zeros(max(short - 1, 0) * width), "stats": np.zeros((3 + extra) * width)}


def histogram_tail(x: np.ndarray, hist: np.ndarray, min_width: float) -> np.ndarray:
    """P(score >= x) under decayed histograms on :data:`EDGES`, exponential beyond the 99th
    percentile (through the 90th and 99th).

    Args:
        x: Scores, shape (k,).
        hist: Decayed counts, shape (BINS, k), each column with a positive total.
        min_width: Smallest distance between the 90th and 99th percentiles.

    Returns:
        Shape (k,), in (0, 1].
    """
    k = np.arange(hist.shape[1])
    total = hist.sum(axis=0)
    at_or_above = np.cumsum(hist[::-1], axis=0)[::-1]  # mass of bins >= b, shape (BINS, k)
    b = np.clip(np.searchsorted(EDGES, x, side="right") - 1, 0, BINS - 1)
    within = np.clip((x - EDGES[b]) / (EDGES[b + 1] - EDGES[b]), 0.0, 1.0)
    mass = np.where(x >= EDGES[-1], 0.0, at_or_above[b, k] - hist[b, k] * within)

    def quantile(q: float) -> np.ndarray:
        target = (1.0 - q) * total
        i = np.clip((at_or_above > target[None, :]).sum(axis=0) - 1, 0, BINS - 1)
        f = np.clip((at_or_above[i, k] - target) / np.maximum(hist[i, k], 1e-12), 0.0, 1.0)
        return EDGES[i] + f * (EDGES[i + 1] - EDGES[i])

    q90, q99 = quantile(0.90), quantile(0.99)
    width = np.maximum(q99 - q90, min_width)
    with np.errstate(over="ignore"):
        beyond = 0.01 * 10.0 ** (-(x - q99) / width)
    p = np.where(x > q99, np.minimum(beyond, 0.01), np.maximum(mass / np.maximum(total, 1e-12), 0.01))
    return np.clip(p, P_FLOOR, 1.0)


def normal_sf(z: np.ndarray) -> np.ndarray:
    """Upper tail of the standard normal, accurate far out."""
    from scipy.special import ndtr

    return ndtr(-np.asarray(z, dtype=np.float64))


def _tail(x: np.ndarray, mean: np.ndarray, std: np.ndarray, law: str, n: np.ndarray) -> np.ndarray:
    """P(score >= x) under a law of that mean and standard deviation estimated from n scores:
    ``student`` (the predictive law of a normal sample: t with n - 1 degrees of freedom, scale
    ``std x sqrt(1 + 1/n)``; wide while history is short, the normal law with a long one),
    ``normal`` or ``laplace``."""
    z = (x - mean) / std
    if law in ("student", "empirical"):
        from scipy.special import stdtr  # what scipy.stats.t.sf computes, without its argument checks

        dof = np.maximum(n - 1.0, 1.0)
        return stdtr(dof, -z / np.sqrt(1.0 + 1.0 / np.maximum(n, 1.0)))
    if law == "normal":
        return normal_sf(z)
    if law == "laplace":  # scale b = std / sqrt(2); an exponential tail, heavier than the normal's
        return np.where(z > 0, 0.5 * np.exp(-np.sqrt(2.0) * np.clip(z, 0, None)), 1.0 - 0.5 * np.exp(np.sqrt(2.0) * np.clip(z, None, 0)))
    raise ValueError(f"unknown tail law {law!r}; expected empirical, student, normal or laplace")


def calibrate(
    raw: np.ndarray, state: dict[str, np.ndarray], params: CalibrationParams, log: bool = True,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Tail probabilities of one entity's raw scores, in time order, for parallel series.

    Args:
        raw: Raw scores, shape (n,) or (n, k) for k parallel series (e.g. one per feature), >= 0
            (higher = more anomalous); NaN = no score (p = 1, nothing learned).
        state: From :func:`new_calibration_state` with ``width = k``, or a previous call (not
            modified).
        params: Calibration parameters.
        log: Compare ``log1p(raw)`` (skewed scores such as reconstruction errors); False for
            scores already on a z-like scale.

    Returns:
        (p, the shape of ``raw``, in (0, 1]; the state after the n rows).
    """
    r = np.asarray(raw, dtype=np.float64)
    x = np.clip(r.reshape(len(r), -1), 0.0, None)
    x = np.log1p(x) if log else x
    n, k = x.shape
    keep = max(params.short - 1, 0)
    recent = state["recent"].reshape(keep, k).copy()
    empirical = params.tail == "empirical"
    stats = state["stats"].reshape(-1, k)
    mean, var, count = (row.copy() for row in stats[:3])
    hist = stats[3:].copy() if empirical else np.zeros((0, k))
    if empirical and hist.shape[0] != BINS:  # a state of another law: the histogram starts empty
        hist = np.zeros((BINS, k))
    decay = 1.0 - 2.0 ** (-1.0 / params.halflife)
    n_eff = 2.0 / decay - 1.0  # effective sample size of the exponentially weighted estimates
    out = np.ones((n, k))
    rows_back = np.arange(keep, 0, -1)[:, None]  # row r of recent is rows_back[r] scores ago
    finite = np.isfinite(x)
    shifted = np.empty_like(recent)
    for t in range(n):
        value = x[t]
        ok = finite[t]
        current = np.where(ok, value, 0.0)
        if keep:  # the mean of the current score and the real ones of the last keep
            real = rows_back <= count[None, :]
            avg = (np.where(real, recent, 0.0).sum(axis=0) + current) / (real.sum(axis=0) + 1)
        else:
            avg = current
        std = np.maximum(np.sqrt(var), params.min_std)
        ready = ok & (count >= params.min_history)
        p_t = _tail(avg, mean, std, params.tail, np.minimum(count, n_eff))
        if empirical and ready.any():
            p_t = np.maximum(p_t, histogram_tail(avg, np.maximum(hist, 1e-300), params.min_std))
        out[t] = np.where(ready, p_t, 1.0)
        alpha = np.maximum(1.0 / (count + 1.0), decay)
        learned = avg if params.learn_clip is None else np.where(
            count >= params.min_history, np.minimum(avg, mean + params.learn_clip * std), avg)
        delta = learned - mean
        new_mean = mean + alpha * delta
        new_var = np.where(count > 0, (1.0 - alpha) * (var + alpha * delta * delta), 0.0)
        mean = np.where(ok, new_mean, mean)
        var = np.where(ok, new_var, var)
        if empirical:
            hist = np.where(ok[None, :], hist * (1.0 - decay), hist)
            b = np.clip(np.searchsorted(EDGES, avg, side="right") - 1, 0, BINS - 1)
            hist[b[ok], np.flatnonzero(ok)] += 1.0
        count = np.where(ok, count + 1.0, count)
        if keep:
            shifted[:-1], shifted[-1] = recent[1:], current
            recent = np.where(ok[None, :], shifted, recent)
    p = np.maximum(out, P_FLOOR).reshape(r.shape)
    return p, {"recent": recent.ravel(), "stats": np.concatenate([mean, var, count, hist.ravel()])}


def calibrate_many(
    raws: Sequence[np.ndarray], states: Sequence[dict[str, np.ndarray]], params: CalibrationParams,
    log: bool = True,
) -> list[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """:func:`calibrate` for several entities at once (one time loop for all of them).

    Each entity's k series become k columns of one (n, E x k) array, n the most rows any entity
    has; shorter ones are padded with NaN (no score: p = 1, nothing learned), and every column's
    arithmetic is its own, so each result equals the entity's own :func:`calibrate` (tested).

    Args:
        raws: Per entity, raw scores of shape (n_e,) or (n_e, k), the same k for all.
        states: Per entity, its calibration state of width k (not modified).
        params: Calibration parameters.
        log: As :func:`calibrate`.

    Returns:
        Per entity, (p of the shape of its raw scores; its state after them).
    """
    if not raws:
        return []
    shapes = [np.shape(r) for r in raws]
    k = int(np.prod(shapes[0][1:], dtype=np.int64))
    n, cols = max(s[0] for s in shapes), len(raws) * k
    stacked = np.full((n, cols), np.nan)
    for e, (r, shape) in enumerate(zip(raws, shapes, strict=True)):
        stacked[: shape[0], e * k : (e + 1) * k] = np.asarray(r, np.float64).reshape(shape[0], k)
    keep = max(params.short - 1, 0)
    recent = np.hstack([st["recent"].reshape(keep, k) for st in states])
    stats = np.hstack([st["stats"].reshape(-1, k) for st in states])
    p, after = calibrate(stacked, {"recent": recent.ravel(), "stats": stats.ravel()}, params, log)
    recent_after, stats_after = after["recent"].reshape(keep, cols), after["stats"].reshape(-1, cols)
    out = []
    for e, shape in enumerate(shapes):
        part = slice(e * k, (e + 1) * k)
        out.append((np.ascontiguousarray(p[: shape[0], part]).reshape(shape),
                    {"recent": recent_after[:, part].ravel(), "stats": stats_after[:, part].ravel()}))
    return out


TAIL_SHARE = 0.1  # the reference tail starts at the 90th percentile of the validation errors
MIN_EXCESSES = 10  # excesses over it needed to fit a Pareto shape (else an exponential tail)


def fit_error_tails(errors: np.ndarray, share: float = TAIL_SHARE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The upper tail of each column's errors as a generalized Pareto law (peaks over threshold).

    Per column: ``u`` is the ``1 - share`` quantile; the excesses over it are fitted with a GPD
    (location 0, maximum likelihood). Reconstruction errors of heavy-tailed inputs (one large
    amount among many) have power-law tails, which an exponential drawn through two quantiles
    makes far too thin: on the demo's validation errors the fitted shapes are 0 to 0.65. A
    negative shape (a bounded tail) is not trusted beyond the data, nor are fewer than
    :data:`MIN_EXCESSES` distinct excesses: those columns get the exponential law of their mean
    excess (shape 0), the lightest tail this reference gives.

    Args:
        errors: Validation errors, shape (n, F) (NaN ignored).
        share: Share of the errors above ``u``.

    Returns:
        (u, xi, sigma), each of shape (F,): threshold, shape and scale of the tail.
    """
    from scipy import stats

    e = np.asarray(errors, np.float64)
    if e.ndim != 2:
        raise ValueError(f"expected errors of shape (n, F), got {e.shape}")
    f = e.shape[1]
    u, xi, sigma = np.zeros(f), np.zeros(f), np.full(f, 1e-12)
    for j in range(f):
        col = e[:, j][np.isfinite(e[:, j])]
        if not col.size:
            u[j] = np.inf  # nothing seen: no reference floor for this feature
            continue
        u[j] = np.quantile(col, 1.0 - share)
        excess = col[col > u[j]] - u[j]
        if excess.size:
            sigma[j] = max(float(excess.mean()), 1e-12)
        if np.unique(excess).size < MIN_EXCESSES:
            continue
        with np.errstate(all="ignore"):
            shape, _, scale = stats.genpareto.fit(excess, floc=0.0)
        if np.isfinite(shape) and np.isfinite(scale) and shape > 0 and scale > 0:
            xi[j], sigma[j] = min(float(shape), 1.0), float(scale)
    return u, xi, sigma


def pareto_tail(
    x: np.ndarray, u: np.ndarray, xi: np.ndarray, sigma: np.ndarray, share: float = TAIL_SHARE
) -> np.ndarray:
    """P(error >= x) under the reference tail of :func:`fit_error_tails`: 1 below ``u``, then
    ``share x (1 + xi (x - u) / sigma) ** (-1 / xi)`` (``share x exp(-(x - u) / sigma)`` for a
    shape of 0). Arrays broadcast; NaN gives 1.

    The model's errors are judged against it too (next to each entity's own history): an error
    is only alarming when it is also unusual among every entity's validation errors.
    """
    x = np.asarray(x, np.float64)
    u, xi = np.asarray(u, np.float64), np.asarray(xi, np.float64)
    sigma = np.maximum(np.asarray(sigma, np.float64), 1e-12)
    t = np.maximum(x - u, 0.0) / sigma
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        pareto = share * np.exp(-np.log1p(xi * t) / np.where(xi > 0, xi, 1.0))
        p = np.where(xi > 0, pareto, share * np.exp(-t))
    return np.where(np.isfinite(x) & (x >= u), np.clip(p, P_FLOOR, 1.0), 1.0)


def exponential_tail_params(q90: np.ndarray, q99: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u, xi, sigma) of the exponential tail through (q90, 0.1) and (q99, 0.01): the reference
    of models registered before :func:`fit_error_tails` (their metrics hold the two quantiles)."""
    q90, q99 = np.asarray(q90, np.float64), np.asarray(q99, np.float64)
    return q90, np.zeros_like(q90), np.maximum(q99 - q90, 1e-12) / np.log(10.0)


def fuse(
    p: np.ndarray, rule: str = "bonferroni", judged: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One probability per row from k detectors' probabilities.

    Only the detectors that judged a row count as tests: a detector with no verdict there (no
    ``event_count`` for the profile, a model on the nights it was fitted on, a baseline still
    warming up, ``stuck``, ``silence`` and ``extreme`` where their event did not happen) neither
    adds to the multiplicity nor to Fisher's degrees of freedom.

    Args:
        p: Shape (n, k), values in (0, 1] (1 where a detector gave no verdict).
        rule: ``bonferroni`` (``min(1, k_i x min p)``, ``k_i`` the detectors that judged row i)
            or ``fisher`` (chi-square with ``2 k_i`` degrees of freedom).
        judged: Shape (n, k), whether each detector gave a verdict; None: all did.

    Returns:
        (fused p (n,), index of the detector with the smallest p (n,)).
    """
    from scipy.stats import chi2

    q = np.clip(np.asarray(p, dtype=np.float64), P_FLOOR, 1.0)
    if q.ndim != 2 or q.shape[1] == 0:
        raise ValueError(f"expected probabilities of shape (n, k >= 1), got {q.shape}")
    mask = np.ones(q.shape, dtype=bool) if judged is None else np.asarray(judged, dtype=bool)
    if mask.shape != q.shape:
        raise ValueError(f"judged has shape {mask.shape}, expected {q.shape}")
    q = np.where(mask, q, 1.0)
    k = mask.sum(axis=1)
    driver = np.argmin(q, axis=1)
    if rule == "bonferroni":
        fused = np.minimum(1.0, np.maximum(k, 1) * q.min(axis=1))
    elif rule == "fisher":
        fused = np.where(k > 0, chi2.sf(-2.0 * np.log(q).sum(axis=1), 2 * np.maximum(k, 1)), 1.0)
    else:
        raise ValueError(f"unknown fusion rule {rule!r}; expected bonferroni or fisher")
    return np.maximum(fused, P_FLOOR), driver


def alert_onsets(
    anomalous: np.ndarray, starts: np.ndarray, width: float, last_end: float = -np.inf, cooldown: float = 0.0
) -> tuple[np.ndarray, float]:
    """True where an anomalous window opens a new incident (an alert); the others extend it.

    A window opens one when it starts more than ``cooldown`` after the end of the entity's last
    anomalous window, as :func:`adspark.core.intervals.merge_intervals` merges anomalous windows
    with its ``gap``: consecutive (or overlapping) anomalous windows are one alert, and with a
    cooldown a run that breaks off and resumes soon after is still the same one.

    Args:
        anomalous: Shape (n,), time-ordered.
        starts: Window starts, epoch seconds, shape (n,).
        width: Window length in seconds (a window ends at ``start + width``).
        last_end: End of the entity's last anomalous window before these (last night's), or -inf.
        cooldown: Seconds.

    Returns:
        (alerts (n,), end of the last anomalous window after these).
    """
    a = np.asarray(anomalous, dtype=bool)
    alerts = np.zeros(a.shape, dtype=bool)
    for i in np.flatnonzero(a):
        alerts[i] = starts[i] > last_end + cooldown
        last_end = max(last_end, float(starts[i]) + width)
    return alerts, last_end
