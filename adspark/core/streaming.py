"""Causal per-entity baselines over bucket series, with state carried between calls (pure numpy).

Each baseline reads one entity's buckets in time order, scores every bucket against what it
learned *before* that bucket (the current bucket never explains itself), then learns from it.
State is a small set of float arrays, so a night's call can start where the previous night's
call ended: calling once over a range or once per night gives the same output (tested).

Baselines (each returns a robust z per bucket and feature, higher ``|z|`` = more surprising; NaN where
there is no verdict: a missing value, or a baseline that has not seen enough values yet, so that
nothing downstream learns from a warm-up):

- ``level``: an exponentially weighted, winsorized location and scale of each feature
  (:func:`robust_step`): a rolling robust z with a half-life instead of a hard window. Activity
  (counts and sums) keeps one level for weekdays and one for weekends (an unwarmed weekend level
  borrows the weekday one), so an entity quiet on weekends is not news every Monday.
- ``diff``: the same on the first difference (the change from the previous bucket).
- ``seasonal``: one location/scale per feature and seasonal slot (hour of day x weekday/weekend;
  the bucket of the day when buckets are an hour or longer). A weekend slot that has not been
  seen often enough borrows the weekday slot of the same hour.
- ``extreme``: how far a value lies outside the entity's running min/max, in units of that range
  (0 inside the range widened by a tolerance).
- ``stuck``: a measure repeating its exact previous value (a stuck sensor, a frozen feed): the
  normal deviate of the run's length under the entity's own rate of exact repeats (a run of L
  equal values has probability ``q ** (L - 1)`` when a value repeats the previous one with
  probability ``q``, learned with the level's half-life) when the run is longer than any the
  entity showed before; no verdict otherwise, so a window without such a run does not count as
  one more test in the fusion. Judges
  neither counts nor sums (a run of zeros there is a quiet stretch, the level's business).
- ``silence``: a count that stays at zero where events were due (a feed or an entity gone quiet):
  the probability that every bucket of the current run of zeros is empty, the product of each
  bucket's ``P(X = 0)`` under the law its count was judged by (the seasonal slot's, else the
  level's; negative binomial count tails only), as a normal deviate of its mid-p. The run carries
  across calls, so a silence of 15 hours adds up over windows and nights however they are cut;
  already a tail probability (not recalibrated). With one bucket it is the seasonal verdict on a
  zero; over a run it is what the run as a whole says (15 empty hours where 25 events were due:
  ``P = e ** -25``, where each hour alone says little).
- ``mix``: a category slot's count (``col__value``) given the bucket's events: its beta-binomial
  tail under the entity's share of that value, learned from exponentially weighted counts of
  the value and of all events (half-life ``mix_halflife`` buckets, Jeffreys' prior). The share
  is learned from every event, not from every bucket, so a value seen 8 times in 5,000 events is
  known to be rare, and four of seven events in a quiet hour are news whatever the hour's
  activity (the level and seasonal baselines judge a slot's count per bucket, against a rate
  whose uncertainty shrinks with the buckets seen, and mix up a change of the category mix with
  a change of activity). No verdict without ``event_count`` among the features, on an empty
  bucket, or during the warmup.

Counts (``event_count``, category slots ``col__value``, ``*_distinct``) are learned on the
Anscombe scale ``2 sqrt(x + 3/8)``, where Poisson noise has unit variance, and their scale never
drops below that noise (so one event in a quiet hour is not an anomaly); by default ``level`` and
``seasonal`` then judge a count by its negative binomial tail (:func:`count_z`). Means of a
measure may be judged on the log scale, each bucket weighted by its events (``means`` in
:func:`run_baselines`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

# sigma of a normal law = 1.2533 x its mean absolute deviation
_MAD_TO_SIGMA = float(np.sqrt(np.pi / 2.0))
COUNT_SCALE_FLOOR = 1.0  # Poisson noise on the Anscombe scale
RELATIVE_SCALE_FLOOR = 1e-3  # scale floor of other features, relative to |location|
ABSOLUTE_SCALE_FLOOR = 1e-9
SEASONAL_SHARE_FLOOR = 0.25  # a seasonal slot's sigma >= this x the feature's overall sigma
RESOLUTION_SHARE = 12.0 ** -0.5  # sd of rounding noise, in units of the values' resolution (step)
MAX_Z = 1e3  # |z| beyond this says nothing more
UNCLIPPED = 5  # values learned before winsorizing starts


def is_count(feature: str) -> bool:
    """Whether a feature is an event count (``event_count``, ``col__value``, ``x_distinct``)."""
    return feature == "event_count" or "__" in feature or feature.endswith("_distinct")


BUCKET_STATISTICS = ("_mean", "_min", "_max", "_std")  # per-bucket statistics: undefined without events


def undefined_when_empty(features: tuple[str, ...]) -> np.ndarray:
    """Which features are statistics of a bucket's events (``x_mean``, ``x_min``, ``x_max``, ``x_std``):
    stored as 0 in an empty bucket's window values, they are missing there, not zero."""
    return np.array([f.endswith(BUCKET_STATISTICS) for f in features], dtype=bool)


def mask_empty_buckets(values: np.ndarray, features: tuple[str, ...]) -> np.ndarray:
    """``values`` (n, F) with bucket statistics set to NaN where ``event_count`` is 0 (when the
    features hold ``event_count``; else unchanged)."""
    if "event_count" not in features:
        return values
    empty = values[:, features.index("event_count")] == 0
    stats = undefined_when_empty(features)
    return np.where(empty[:, None] & stats[None, :], np.nan, values)


def is_sum(feature: str) -> bool:
    """Whether a feature is the sum of a measure over a bucket's events (``x_sum``)."""
    return feature.endswith("_sum")


def signed_log1p(x: np.ndarray) -> np.ndarray:
    """``sign(x) log1p(|x|)``: a log scale for skewed measures that keeps 0 and negative values."""
    return np.sign(x) * np.log1p(np.abs(x))


def signed_expm1(x: np.ndarray) -> np.ndarray:
    """Inverse of :func:`signed_log1p`."""
    with np.errstate(over="ignore"):
        return np.sign(x) * np.expm1(np.abs(x))


def to_model_scale(values: np.ndarray, counts: np.ndarray, sums: np.ndarray | None = None,
                   sum_scale: str = "linear") -> np.ndarray:
    """Values (n, F) on the scale baselines compare: Anscombe for count columns; for ``sums``
    columns the signed square root (``sqrt``: the variance of a sum over a Poisson number of
    events then no longer grows with the rate) or the signed ``log1p`` (``log``); else as is."""
    v = np.asarray(values, dtype=np.float64)
    if sums is not None and sum_scale != "linear":
        v = np.where(sums, np.sign(v) * np.sqrt(np.abs(v)) if sum_scale == "sqrt" else signed_log1p(v), v)
    return np.where(counts, 2.0 * np.sqrt(np.clip(v, 0.0, None) + 0.375), v)


def from_model_scale(values: np.ndarray, counts: np.ndarray, sums: np.ndarray | None = None,
                     sum_scale: str = "linear") -> np.ndarray:
    """Inverse of :func:`to_model_scale` (counts clipped at 0)."""
    v = np.asarray(values, dtype=np.float64)
    back = np.clip(v, 0.0, None) ** 2 / 4.0 - 0.375
    out = np.where(counts, np.clip(back, 0.0, None), v)
    if sums is not None and sum_scale != "linear":
        out = np.where(sums, np.sign(out) * np.square(out) if sum_scale == "sqrt" else signed_expm1(out), out)
    return out


def scale_floor(location: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Smallest scale a baseline may use: Poisson noise for counts, relative for the rest."""
    rel = np.maximum(RELATIVE_SCALE_FLOOR * np.abs(location), ABSOLUTE_SCALE_FLOOR)
    return np.where(counts, COUNT_SCALE_FLOOR, rel)


def sigma_of(loc: np.ndarray, mad: np.ndarray, counts: np.ndarray, floor: np.ndarray | float = 0.0) -> np.ndarray:
    """The sigma a baseline uses: its deviation, floored (:func:`scale_floor`, and ``floor``)."""
    return np.maximum(np.maximum(_MAD_TO_SIGMA * mad, scale_floor(loc, counts)), floor)


def robust_z(x: np.ndarray, loc: np.ndarray, sigma: np.ndarray, n: np.ndarray, min_n: np.ndarray | int) -> np.ndarray:
    """``(x - loc) / sigma`` (clipped at +-:data:`MAX_Z`) where a baseline has seen ``min_n``
    values, else NaN (no verdict: a missing value, or a baseline still warming up)."""
    z = np.minimum(np.maximum((x - loc) / sigma, -MAX_Z), MAX_Z)  # np.clip, without its wrapper's cost
    return np.where((n >= min_n) & np.isfinite(z), z, np.nan)


def robust_step(
    x: np.ndarray, loc: np.ndarray, mad: np.ndarray, n: np.ndarray, halflife: np.ndarray | float, clip: float,
    counts: np.ndarray, weight: np.ndarray | float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Learn one value per cell: winsorized exponentially weighted location and mean deviation.

    The weight of the new value is ``max(1 / (n + 1), 1 - 2 ** (-1 / halflife))``: a plain
    running mean while few values were seen, then exponential forgetting. From the
    :data:`UNCLIPPED`-th value on, the value is clipped to ``loc +- clip x sigma`` before it updates
    the location, so one outlier moves it little while a lasting shift is learned within a few
    half-lives.

    Args:
        x: New values, any shape; NaN cells are not updated.
        loc: Locations, same shape.
        mad: Mean absolute deviations, same shape.
        n: Values seen per cell, same shape.
        halflife: Half-life in updates (broadcastable to ``x``: one per row of stacked learners).
        clip: Winsorizing bound in sigmas.
        counts: Whether each cell is a count (scale floor), broadcastable to ``x``.
        weight: Precision weight of each value, broadcastable to ``x``: the deviation is learned
            as ``|x - loc| x weight`` (a mean over m events: ``sqrt(m)``), so ``mad`` is the
            deviation of one unit and a value's sigma is ``sigma / weight``.

    Returns:
        The updated ``(loc, mad, n)`` (new arrays).
    """
    ok = np.isfinite(x)
    alpha = np.maximum(1.0 / (n + 1.0), 1.0 - 2.0 ** (-1.0 / halflife))
    first = n == 0
    sigma = np.maximum(_MAD_TO_SIGMA * mad, scale_floor(loc, counts))
    # no winsorizing before a scale exists (the first UNCLIPPED values are plain running means)
    bound = np.where(n < UNCLIPPED, np.inf, clip * sigma / weight)
    dev = np.where(first, 0.0, np.minimum(np.maximum(x - loc, -bound), bound))
    new_loc = np.where(first, x, loc + alpha * dev)
    new_mad = np.where(first, 0.0, mad + alpha * (np.abs(dev) * weight - mad))
    return (np.where(ok, new_loc, loc), np.where(ok, new_mad, mad), np.where(ok, n + 1.0, n))


def seasonal_slots(bucket_start: pd.DatetimeIndex, bucket_seconds: int, timezone: str) -> np.ndarray:
    """Seasonal slot of each bucket: ``hour_slot + per_day * is_weekend`` in the given zone.

    ``per_day`` is ``min(buckets per day, 24)``: sub-hour buckets share their hour's slot.
    """
    per_day = slots_per_day(bucket_seconds)
    if timezone == "UTC" and bucket_start.tz is None:  # plain arithmetic on epoch seconds (1970-01-01: a Thursday)
        return seasonal_slots_of_seconds(bucket_start.to_numpy("datetime64[s]").astype(np.int64), bucket_seconds, "UTC")
    local = bucket_start.tz_localize("UTC").tz_convert(timezone) if bucket_start.tz is None \
        else bucket_start.tz_convert(timezone)
    seconds = local.hour.to_numpy() * 3600 + local.minute.to_numpy() * 60 + local.second.to_numpy()
    slot = seconds * per_day // 86400
    return (slot + per_day * (local.dayofweek.to_numpy() >= 5)).astype(np.int64)


def seasonal_slots_of_seconds(seconds: np.ndarray, bucket_seconds: int, timezone: str) -> np.ndarray:
    """:func:`seasonal_slots` of bucket starts given as epoch seconds (UTC), shape (n,): plain
    arithmetic in UTC, through timestamps in another zone."""
    if timezone == "UTC":
        per_day = slots_per_day(bucket_seconds)
        day, second = np.divmod(np.floor(np.asarray(seconds, np.float64)).astype(np.int64), 86400)
        return (second * per_day // 86400 + per_day * ((day + 3) % 7 >= 5)).astype(np.int64)
    return seasonal_slots(pd.DatetimeIndex(pd.to_datetime(seconds, unit="s")), bucket_seconds, timezone)


def slots_per_day(bucket_seconds: int) -> int:
    """Seasonal slots in one day: buckets per day, at most 24."""
    return int(min(86400 // max(bucket_seconds, 1), 24))


@dataclass(frozen=True)
class BaselineParams:
    """How the baselines learn.

    Attributes:
        level_halflife: Half-life of the level and diff baselines, in buckets.
        seasonal_halflife: Half-life of a seasonal slot, in visits of that slot.
        clip: Winsorizing bound (sigmas) of every update.
        min_buckets: Buckets seen before level, diff and extreme give verdicts.
        min_visits: Visits of a seasonal slot before it gives verdicts.
        extreme_tolerance: Share of the running range a value may exceed it without scoring.
        count_tail: How the level and seasonal baselines judge counts: ``anscombe`` (a robust z
            on the Anscombe scale) or ``negbin`` (the normal deviate of the count's tail
            probability under a negative binomial predictive law, :func:`count_z`).
        day_type_levels: The level of activity (counts, sums) is kept per day type (weekday,
            weekend); False: one level for all days.
        resolution_floor: The sigmas of measures (not counts) are at least the rounding noise of
            their values, ``step / sqrt(12)``, ``step`` the smallest change between consecutive
            values seen so far: a series that sits on one value most of the time (robust
            deviation 0) does not turn every change of one step into a new extreme z.
        mix_halflife: Half-life of the ``mix`` baseline's counts of each category value and of
            all events, in buckets.
    """

    level_halflife: float = 288.0
    seasonal_halflife: float = 4.0
    clip: float = 3.0
    min_buckets: int = 24
    min_visits: int = 3
    extreme_tolerance: float = 0.1
    count_tail: str = "negbin"
    day_type_levels: bool = True
    resolution_floor: bool = True
    mix_halflife: float = 2016.0


BASELINES = ("level", "diff", "seasonal", "extreme", "stuck", "silence", "mix")
# above this many events in a bucket the mix baseline's beta-binomial tail is its normal approximation
MIX_EXACT_EVENTS = 256
MIX_CHUNK_CELLS = 1 << 20  # probabilities summed at once by the exact beta-binomial tail (8 MiB)


def new_baseline_state(n_features: int, n_slots: int) -> dict[str, np.ndarray]:
    """Empty state for F features and ``n_slots`` seasonal slots (2 x slots per day)."""
    f = n_features
    zeros = np.zeros
    return {
        "level_loc": zeros(f), "level_mad": zeros(f), "level_n": zeros(f),
        "weekend_loc": zeros(f), "weekend_mad": zeros(f), "weekend_n": zeros(f),
        "diff_loc": zeros(f), "diff_mad": zeros(f), "diff_n": zeros(f), "prev": zeros(f),
        "season_loc": zeros(n_slots * f), "season_mad": zeros(n_slots * f), "season_n": zeros(n_slots * f),
        "min": np.full(f, np.inf), "max": np.full(f, -np.inf), "seen": zeros(1),
        # stuck: length of the current run of equal values (0: no value yet) and of the longest
        # so far, exponentially weighted counts of repeats and of transitions (value after a value)
        "run": zeros(f), "longest": zeros(f), "repeats": zeros(f), "transitions": zeros(f),
        # silence: log P(every bucket of the current run of zero counts is empty); 0 outside a run
        "silence_logp": zeros(f),
        # the smallest change between consecutive values seen so far (0: none yet), the values'
        # resolution behind the measures' sigma floor
        "step": zeros(f),
        # mix: exponentially weighted count of each category value, and of all events (repeated
        # per feature, so that every array of the state is per feature)
        "mix_count": zeros(f), "mix_events": zeros(f),
    }


@dataclass(frozen=True)
class BaselineOutput:
    """What the baselines say about each bucket.

    Attributes:
        z: Per baseline, shape (n, F): robust z (extreme: exceedance in units of the range); NaN
            without a verdict.
        expected_loc: Seasonal (else level) location per bucket and feature, on the compared
            scale (:func:`to_model_scale`), shape (n, F).
        expected_sigma: Seasonal (else level) sigma on the compared scale, shape (n, F).
        seasonal_visits: Visits of the bucket's own seasonal slot behind ``expected_loc``, shape
            (n, F); 0 where the slot was not warm and the level stood in, or where it borrowed its
            twin (a weekend hour judged by the weekday slot until warm): that is not the bucket's
            own shape (:mod:`adspark.core.profile`).
        mix_prior: The ``mix`` baseline's Beta law of each category value's share before each
            bucket, ``(a, b)``, shape (n, F, 2); NaN where it may give no verdict (other features,
            the warmup, padding). None without the mix baseline.
    """

    z: dict[str, np.ndarray]
    expected_loc: np.ndarray
    expected_sigma: np.ndarray
    seasonal_visits: np.ndarray
    mix_prior: np.ndarray | None = None


def run_baselines(
    values: np.ndarray, slots: np.ndarray, counts: np.ndarray, state: dict[str, np.ndarray],
    params: BaselineParams, sums: np.ndarray | None = None, sum_scale: str = "linear",
    means: np.ndarray | None = None, events: np.ndarray | None = None, shares: np.ndarray | None = None,
) -> tuple[BaselineOutput, dict[str, np.ndarray]]:
    """Score then learn each bucket of one entity, in time order.

    Args:
        values: Bucket values, shape (n, F), time-ordered, original scale (NaN: missing).
        slots: Seasonal slot of each bucket, shape (n,), in ``[0, n_slots)``.
        counts: Whether each feature is a count, shape (F,).
        state: From :func:`new_baseline_state` or a previous call (not modified).
        params: Learning parameters.
        sums: Which features are sums of a measure, shape (F,), compared on ``sum_scale``
            (:func:`to_model_scale`).
        sum_scale: ``linear``, ``sqrt`` or ``log``.
        means: Which features are means of a measure over the bucket's events, shape (F,):
            compared on the signed ``log1p`` scale, each bucket weighted by ``sqrt(events)``
            (:func:`robust_step`), so a bucket of one event counts for one and a busy one for more.
        events: Events per bucket, shape (n,) (needed with ``means`` and ``shares``).
        shares: Which features are category slots the ``mix`` baseline judges given the
            bucket's events, shape (F,) (None: none; it then gives no verdict).

    Returns:
        The output for the n buckets and the state after them.
    """
    [result] = run_baselines_many([values], [slots], counts, [state], params, sums, sum_scale, means,
                                  None if events is None else [events], shares)
    return result


def run_baselines_many(
    values: Sequence[np.ndarray], slots: Sequence[np.ndarray], counts: np.ndarray,
    states: Sequence[dict[str, np.ndarray]], params: BaselineParams, sums: np.ndarray | None = None,
    sum_scale: str = "linear", means: np.ndarray | None = None, events: Sequence[np.ndarray] | None = None,
    shares: np.ndarray | None = None,
) -> list[tuple[BaselineOutput, dict[str, np.ndarray]]]:
    """:func:`run_baselines` for E entities at once (one time loop for all of them).

    Each entity's F features become F columns of one (T, E x F) array, T the most buckets any
    entity has; an entity with fewer buckets is padded at its end, and the padding is masked (it
    is neither scored nor learned, and does not count as a bucket seen). Every cell's arithmetic
    is the same as in a call for its entity alone (elementwise operations on its own columns), so
    the outputs equal E separate calls, element for element (tested): the loop's numpy calls are
    shared by the E entities instead of repeated E times.

    Args:
        values: Per entity, bucket values of shape (n_e, F) (as :func:`run_baselines`).
        slots: Per entity, seasonal slots of shape (n_e,).
        counts: Whether each feature is a count, shape (F,).
        states: Per entity, its state (not modified).
        params: Learning parameters.
        sums: As :func:`run_baselines`, shape (F,).
        sum_scale: As :func:`run_baselines`.
        means: As :func:`run_baselines`, shape (F,).
        events: Per entity, events per bucket of shape (n_e,) (needed with ``means`` and ``shares``).
        shares: As :func:`run_baselines`, shape (F,).

    Returns:
        Per entity, its output for its n_e buckets and its state after them.
    """
    if not values:
        return []
    e_count, f = len(values), len(counts)
    lengths = [len(v) for v in values]
    n = max(lengths, default=0)
    cols = e_count * f

    def tile(mask: np.ndarray) -> np.ndarray:
        return np.tile(mask, e_count)

    def stack(parts: Sequence[np.ndarray], fill: float, dtype: type = np.float64) -> np.ndarray:
        """Per-entity arrays of shape (n_e, F) or (n_e,) as one (n, E x F) array, padded with ``fill``."""
        out: np.ndarray = np.full((n, cols), fill, dtype=dtype)
        for e, part in enumerate(parts):
            a = np.asarray(part)
            out[: len(a), e * f : (e + 1) * f] = a if a.ndim == 2 else a[:, None]
        return out

    present = stack([np.ones(m, dtype=bool) for m in lengths], False, bool)
    counts_c = tile(counts)
    sums_c = None if sums is None else tile(sums)
    x_all = to_model_scale(stack(values, np.nan), counts_c, sums_c, sum_scale)
    weights = np.ones((n, cols))
    if means is not None and means.any() and events is not None:
        means_c = tile(means)
        x_all = np.where(means_c, signed_log1p(x_all), x_all)
        weights = np.where(means_c, np.sqrt(np.clip(np.nan_to_num(stack(events, 1.0), nan=1.0), 1.0, None)), 1.0)
    s = _stack_states(states, f)
    s_loc, s_mad, s_n = s["season_loc"], s["season_mad"], s["season_n"]
    z = {name: np.zeros((n, cols)) for name in BASELINES}
    exp_loc = np.zeros((n, cols))
    exp_sigma = np.zeros((n, cols))
    exp_n = np.zeros((n, cols))
    trace = {name: tuple(np.zeros((n, cols)) for _ in range(3)) for name in ("level", "seasonal")}
    p = params
    with np.errstate(invalid="ignore", divide="ignore"):  # unseen min/max are +-inf until learned
        none = np.zeros(cols, dtype=bool)
        activity = (counts_c | (none if sums_c is None else sums_c)) if p.day_type_levels else none
        stuckable = ~(counts_c | (none if sums_c is None else sums_c))
        slot_grid = stack(slots, 0, np.int64)
        seen_before = s["seen"] + np.cumsum(present, axis=0) - present  # buckets seen before each one
        _stuck(x_all, present, stuckable, s, p, z["stuck"])
        _learn(x_all, present, weights, slot_grid, counts_c, activity, s, s_loc, s_mad, s_n, z, exp_loc,
               exp_sigma, exp_n, p, trace)
    z["silence"][:] = np.nan
    if p.count_tail == "negbin" and counts.any() and n:
        raw = stack(values, np.nan)[:, counts_c]
        zero_p = np.full(raw.shape, np.nan)  # P(X = 0) under the law each count was judged by
        for name, halflife in (("level", p.level_halflife), ("seasonal", p.seasonal_halflife)):
            loc, sigma, seen = (a[:, counts_c] for a in trace[name])
            judged = np.isfinite(z[name][:, counts_c])  # the tails of buckets without a verdict are not computed
            r, mean = negbin_law(loc, sigma, seen, halflife)
            z[name][:, counts_c] = negbin_z(np.where(judged, raw, np.nan), r, mean)
            zero_p = np.where(judged, (r / (r + mean)) ** r, zero_p)  # the seasonal law where it judged
        z["silence"][:, counts_c], s["silence_logp"][counts_c] = silence_z(raw, zero_p, s["silence_logp"][counts_c])
    z["mix"][:] = np.nan
    mix_prior = None  # only where the mix is asked for: no (n, E x F, 2) array on every call
    if shares is not None and shares.any() and events is not None and n:
        mix_prior = np.full((n, cols, 2), np.nan)
        c = tile(shares)
        judged = present[:, c] & (seen_before[:, c] >= p.min_buckets)
        z["mix"][:, c], mix_prior[:, c], s["mix_count"][c], s["mix_events"][c] = mix_z(
            stack(values, np.nan)[:, c], stack(events, np.nan)[:, c], present[:, c], judged,
            s["mix_count"][c], s["mix_events"][c], p.mix_halflife,
        )
    results = []
    for e, m in enumerate(lengths):
        part = slice(e * f, (e + 1) * f)

        def own(a: np.ndarray, m: int = m, part: slice = part) -> np.ndarray:
            return np.ascontiguousarray(a[:m, part])

        out = BaselineOutput({k: own(v) for k, v in z.items()}, own(exp_loc), own(exp_sigma), own(exp_n),
                             None if mix_prior is None else np.ascontiguousarray(mix_prior[:m, part]))
        results.append((out, _entity_state(s, e, f)))
    return results


_PER_SLOT = ("season_loc", "season_mad", "season_n")


def _stack_states(states: Sequence[dict[str, np.ndarray]], f: int) -> dict[str, np.ndarray]:
    """E baseline states side by side: per-feature arrays (E x F,), seasonal arrays
    (slots, E x F), ``seen`` repeated over each entity's F columns (copies)."""
    out: dict[str, np.ndarray] = {}
    for key in states[0] if states else ():
        if key in _PER_SLOT:
            slots = states[0][key].size // max(f, 1)
            out[key] = np.hstack([st[key].reshape(slots, f) for st in states])
        elif key == "seen":
            out[key] = np.repeat(np.concatenate([st[key] for st in states]), f)
        else:
            out[key] = np.concatenate([st[key] for st in states])
    return out


def _entity_state(s: dict[str, np.ndarray], e: int, f: int) -> dict[str, np.ndarray]:
    """Entity ``e``'s state out of :func:`_stack_states`' layout (copies)."""
    part = slice(e * f, (e + 1) * f)
    out: dict[str, np.ndarray] = {}
    for key, v in s.items():
        if key in _PER_SLOT:
            out[key] = v[:, part].ravel()  # C order of (slots, F): the single-entity layout
        elif key == "seen":
            out[key] = v[e * f : e * f + 1].copy()
        else:
            out[key] = v[part].copy()
    return out


def effective_visits(n: np.ndarray, halflife: float) -> np.ndarray:
    """Effective number of values behind an exponentially weighted estimate: ``n`` at first, at
    most ``2 / alpha - 1`` with ``alpha = 1 - 2 ** (-1 / halflife)``."""
    alpha = 1.0 - 2.0 ** (-1.0 / max(halflife, 1e-9))
    return np.minimum(np.asarray(n, np.float64), 2.0 / alpha - 1.0)


def negbin_law(loc: np.ndarray, sigma: np.ndarray, n: np.ndarray, halflife: float) -> tuple[np.ndarray, np.ndarray]:
    """The negative binomial predictive law of a count behind a baseline (:func:`count_z`).

    Args:
        loc: Baseline locations on the Anscombe scale.
        sigma: Baseline sigmas on the Anscombe scale (>= 1).
        n: Values the baseline has seen.
        halflife: The baseline's half-life, in values.

    Returns:
        (shape ``r``, mean), each of the broadcast shape: ``P(X = 0) = (r / (r + mean)) ** r``.
    """
    m = np.maximum(effective_visits(n, halflife), 1.0)
    mu = np.clip((np.asarray(loc, np.float64) / 2.0) ** 2 - 0.375, 0.0, None)
    excess = np.maximum(np.asarray(sigma, np.float64) ** 2 - 1.0, 1e-9)
    r = np.maximum(np.minimum(mu * m + 0.5, np.maximum(mu, 1e-9) / excess), 1e-3)
    return r, mu + 0.5 / m


def negbin_z(x: np.ndarray, r: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Signed normal deviates of counts ``x`` under negative binomial laws of shape ``r`` and
    ``mean``, from the mid-p tail (half the probability of the value itself) on the side where it
    is small: positive for more events than expected; NaN where ``x`` is NaN."""
    from scipy.special import _ufuncs as nb  # what scipy.stats.nbinom calls, without its argument checks
    from scipy.special import ndtri

    x = np.asarray(x, np.float64)
    shape = np.broadcast_shapes(x.shape, np.shape(r), np.shape(mean))
    x, r, mean = (np.broadcast_to(np.asarray(a, np.float64), shape) for a in (x, r, mean))
    out = np.full(shape, np.nan)
    ok = np.isfinite(x)  # only the values with a verdict are computed
    r, mean = r[ok], mean[ok]
    prob = r / (r + mean)
    k = np.round(x[ok])
    # one incomplete beta per value, on the side of the mean where the tail can be tiny; the other
    # tail is its complement (at least about a half there); no events: P(X = 0) = prob ** r
    zero, high = k == 0, k >= mean
    half = np.empty_like(k)
    half[zero] = 0.5 * prob[zero] ** r[zero]
    rest = ~zero
    half[rest] = 0.5 * nb._nbinom_pmf(k[rest], r[rest], prob[rest])
    lower = np.empty_like(k)  # P(X < k) + P(X = k) / 2
    lower[zero] = half[zero]
    up = rest & high
    tail_up = nb._nbinom_sf(k[up], r[up], prob[up])
    lower[up] = 1.0 - tail_up - half[up]
    down = rest & ~high
    lower[down] = nb._nbinom_cdf(k[down], r[down], prob[down]) - half[down]
    upper = 1.0 - lower  # P(X > k) + P(X = k) / 2
    upper[up] = tail_up + half[up]
    z = np.where(upper < lower, -ndtri(np.clip(upper, 1e-300, 1.0)), ndtri(np.clip(lower, 1e-300, 1.0)))
    out[ok] = np.clip(z, -MAX_Z, MAX_Z)
    return out


def count_z(x: np.ndarray, loc: np.ndarray, sigma: np.ndarray, n: np.ndarray, halflife: float) -> np.ndarray:
    """Signed normal deviates of counts under a negative binomial predictive law (any shape).

    The expected count is the baseline's location brought back from the Anscombe scale
    (``mu = (loc / 2) ** 2 - 3/8``). The law is the Gamma-Poisson predictive of a rate seen over
    ``m`` effective visits (:func:`effective_visits`) with Jeffreys' prior: shape
    ``r = mu m + 1/2``, mean ``(mu m + 1/2) / m``, so a rarely seen or always-quiet slot gives wide
    tails; ``r`` is also at most ``mu / (sigma^2 - 1)``, the overdispersion the baseline's Anscombe
    sigma shows (1 for Poisson noise) (:func:`negbin_law`). The tail is the mid-p (half the
    probability of the value itself), so a typical value gives z near 0 and a count that is rare
    for *this* rate, such as three events of a category seen once a week, gives a large z where
    the Anscombe z is about 2 (:func:`negbin_z`).

    Args:
        x: Counts.
        loc: Baseline locations on the Anscombe scale.
        sigma: Baseline sigmas on the Anscombe scale (>= 1).
        n: Values the baseline has seen.
        halflife: The baseline's half-life, in values.

    Returns:
        z, the shape of ``x``: positive for more events than expected; NaN where ``x`` is NaN.
    """
    r, mean = negbin_law(loc, sigma, n, halflife)
    return negbin_z(x, r, mean)


def silence_z(x: np.ndarray, zero_p: np.ndarray, carry: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``silence`` baseline: deviates of runs of zero counts, and the run carried on.

    A bucket with events ends the run; an empty bucket adds ``log P(X = 0)`` under its law
    (``zero_p``; NaN: no law there, it adds nothing but does not end the run); a missing value
    (NaN: padding) changes nothing. An empty bucket with a law gets the normal deviate of the
    mid-p of its run, ``P / 2`` with ``P`` the product of the run's ``P(X = 0)`` (>= 0; a single
    bucket: the count tail's own verdict on a zero); other buckets get NaN.

    Args:
        x: Counts, shape (n, C), time-ordered.
        zero_p: ``P(X = 0)`` of each count under its law, shape (n, C).
        carry: ``log P`` of the run each column was in before these buckets, shape (C,) (0: none).

    Returns:
        (z, shape (n, C); the log P of the run each column is in after them, shape (C,)).
    """
    from scipy.special import ndtri_exp

    n = x.shape[0]
    if n == 0:
        return np.empty(x.shape), carry.copy()
    empty = x == 0
    has_law = np.isfinite(zero_p)
    with np.errstate(divide="ignore"):
        step = np.where(empty & has_law, np.log(np.where(has_law, zero_p, 1.0)), 0.0)
    ends = x > 0
    # added in time order from the carried run (not a cumulative sum less its value at the last
    # reset): the same additions whatever the calls' cut, so nights one by one equal the range
    run = np.empty(x.shape)
    current = carry.astype(np.float64)
    for t in range(n):
        current = np.where(ends[t], 0.0, current + step[t])
        run[t] = current
    judged = empty & has_law
    z = np.full(x.shape, np.nan)
    z[judged] = np.clip(-ndtri_exp(np.minimum(run[judged] + np.log(0.5), 0.0)), 0.0, MAX_Z)
    return z, run[-1].copy()


def betabinom_z(x: np.ndarray, n: np.ndarray, a: np.ndarray, b: np.ndarray, chunk: int = MIX_CHUNK_CELLS) -> np.ndarray:
    """Signed normal deviates of counts ``x`` out of ``n`` under beta-binomial laws ``(n, a, b)``,
    from the mid-p tail on the side where it is small: positive for more than expected.

    Exact (both tails summed from the probabilities, so a tail of 1e-12 keeps its digits) up to
    :data:`MIX_EXACT_EVENTS` trials. Beyond, the Gamma-Poisson law the beta-binomial tends to
    when the share is small (a negative binomial of shape ``a`` and the same mean and, to first
    order, variance: :func:`negbin_z`), on the side of the rarer outcome (the value, or the
    other events when the value is the majority). Arrays of one shape (cells); NaN where any
    input is NaN or ``n`` is not positive. ``chunk``: probabilities summed at once (memory).
    """
    from scipy.special import betaln, gammaln, ndtri

    x, n, a, b = (np.asarray(v, np.float64) for v in (x, n, a, b))
    out = np.full(x.shape, np.nan)
    ok = np.isfinite(x) & np.isfinite(n) & np.isfinite(a) & np.isfinite(b) & (n > 0)
    k_all = np.clip(np.round(np.where(ok, x, 0.0)), 0.0, np.where(ok, n, 0.0)).astype(np.int64)
    n_all = np.round(np.where(ok, n, 0.0)).astype(np.int64)
    zero = ok & (k_all == 0)  # most cells: P(X = 0) = B(a, b + n) / B(a, b), its mid-p half of it
    out[zero] = ndtri(0.5 * np.exp(betaln(a[zero], b[zero] + n_all[zero]) - betaln(a[zero], b[zero])))
    exact = ok & ~zero & (n_all <= MIX_EXACT_EVENTS)
    flat_out, flat_a, flat_b, flat_k = out.reshape(-1), a.reshape(-1), b.reshape(-1), k_all.reshape(-1)
    flat_exact, flat_n = exact.reshape(-1), n_all.reshape(-1)
    chunks = [(trials, part) for trials in np.unique(flat_n[flat_exact])
              for cells in [np.flatnonzero(flat_exact & (flat_n == trials))]
              for part in np.array_split(cells, -(-len(cells) * (trials + 1) // max(chunk, 1)))]
    for trials, cells in chunks:  # about ``chunk`` probabilities at a time
        k = np.arange(trials + 1)[None, :]
        ac, bc = flat_a[cells][:, None], flat_b[cells][:, None]
        pmf = np.exp(gammaln(trials + 1.0) - gammaln(k + 1.0) - gammaln(trials - k + 1.0)
                     + betaln(k + ac, trials - k + bc) - betaln(ac, bc))
        at = flat_k[cells]
        rows = np.arange(len(cells))
        half = 0.5 * pmf[rows, at]
        lower = np.cumsum(pmf, axis=1)[rows, at] - half  # P(X < x) + P(X = x) / 2
        upper = np.cumsum(pmf[:, ::-1], axis=1)[rows, trials - at] - half  # P(X > x) + P(X = x) / 2
        flat_out[cells] = np.where(upper < lower, -ndtri(np.clip(upper, 1e-300, 1.0)),
                                   ndtri(np.clip(lower, 1e-300, 1.0)))
    approx = ok & ~zero & ~exact
    if approx.any():
        kk, nn, aa, bb = k_all[approx].astype(np.float64), n[approx], a[approx], b[approx]
        minority = aa <= bb  # the value is the rarer outcome: its own count; else the other events'
        count = np.where(minority, kk, nn - kk)
        shape = np.where(minority, aa, bb)
        mean = nn * shape / (aa + bb)
        out[approx] = np.where(minority, 1.0, -1.0) * negbin_z(count, shape, mean)
    return np.clip(out, -MAX_Z, MAX_Z)


def mix_z(
    x: np.ndarray, events: np.ndarray, present: np.ndarray, judged: np.ndarray, count: np.ndarray,
    total: np.ndarray, halflife: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ``mix`` baseline: each category value's count given its bucket's events, in time order.

    Before bucket t the entity's share of a value is known from exponentially weighted counts of
    that value (``c``) and of all events (``e``), with Jeffreys' prior: Beta(``c + 1/2``,
    ``e - c + 1/2``); the value's count among the bucket's ``n`` events is then beta-binomial
    (:func:`betabinom_z`). Every present bucket, empty ones included, then decays both counts by
    one bucket and adds its own; padding (not ``present``) changes nothing.

    Args:
        x: The values' counts, shape (n, C), time-ordered.
        events: The bucket's events, per column, shape (n, C).
        present: Which cells are real buckets, shape (n, C).
        judged: Which cells may get a verdict (after the warmup), shape (n, C); empty buckets never do.
        count: The weighted count of each value before these buckets, shape (C,).
        total: The weighted count of all events before these buckets, shape (C,).
        halflife: Half-life of both counts, in buckets.

    Returns:
        (z, shape (n, C), NaN without a verdict; the Beta law ``(a, b)`` of the share before each
        bucket that may be judged, empty ones included, shape (n, C, 2), NaN elsewhere; the
        counts after the buckets, shapes (C,) and (C,)).
    """
    decay = 2.0 ** (-1.0 / max(halflife, 1e-9))
    steps = x.shape[0]
    c_before, e_before = np.empty(x.shape), np.empty(x.shape)
    c, e = count.astype(np.float64), total.astype(np.float64)
    live = present & np.isfinite(x) & np.isfinite(events)
    for t in range(steps):  # in time order from the carried counts: nights one by one equal the range
        c_before[t], e_before[t] = c, e
        c = np.where(live[t], decay * c + np.where(live[t], x[t], 0.0), c)
        e = np.where(live[t], decay * e + np.where(live[t], events[t], 0.0), e)
    eligible = judged & live
    a = np.where(eligible, 0.5 + c_before, np.nan)
    b = np.where(eligible, 0.5 + np.maximum(e_before - c_before, 0.0), np.nan)
    verdict = eligible & (events > 0)
    z = np.full(x.shape, np.nan)
    z[verdict] = betabinom_z(x[verdict], events[verdict], a[verdict], b[verdict])
    return z, np.stack([a, b], axis=-1), c, e


def mix_range(events: np.ndarray, prior: np.ndarray, sigmas: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """The expected range of a value's count among ``events`` under its share's Beta law
    ``prior`` (..., 2): the beta-binomial mean -+ ``sigmas`` standard deviations, at least 0."""
    a, b = prior[..., 0], prior[..., 1]
    mean = events * a / (a + b)
    sd = np.sqrt(events * a * b * (a + b + events) / ((a + b) ** 2 * (a + b + 1.0)))
    return np.maximum(mean - sigmas * sd, 0.0), mean + sigmas * sd


def _stuck(x_all: np.ndarray, present: np.ndarray, judged: np.ndarray, s: dict[str, np.ndarray],
           p: BaselineParams, z: np.ndarray) -> None:
    """The ``stuck`` baseline over the n buckets (time loop): fills ``z`` (n, C) and updates the
    run and repeat state of ``s`` in place (``judged``, shape (C,): the columns it judges; NaN
    for the others; ``present`` (n, C): the buckets that exist, the rest is padding). Reads
    ``s["seen"]`` (C,) as it was before these buckets (the warm-up)."""
    from scipy.special import ndtri

    keep = 2.0 ** (-1.0 / max(p.level_halflife, 1e-9))
    seen = s["seen"].copy()
    run, longest, prev = s["run"], s["longest"], s["prev"].copy()
    repeats, transitions = s["repeats"], s["transitions"]
    finite = np.isfinite(x_all)
    z[:] = np.nan
    for t in range(x_all.shape[0]):
        x = x_all[t]
        ok = finite[t]
        after = ok & (run > 0)  # a value following an earlier one
        same = after & (x == prev)
        length = np.where(same, run + 1.0, 1.0)
        # only a run longer than any seen before is news (a series whose values stall now and then
        # has shown how long its stalls last); a record run is judged, not learned from
        record = same & (length > longest)
        news = record & judged & (seen >= p.min_buckets)
        if news.any():
            q = (repeats[news] + 0.5) / (transitions[news] + 1.0)  # rate of repeats, Jeffreys' prior
            tail = np.maximum(q ** (length[news] - 1.0), 1e-300)  # P(a run this long), geometric
            z[t, news] = np.minimum(np.maximum(-ndtri(tail), 0.0), MAX_Z)
        learn = after & ~record
        repeats = np.where(learn, repeats * keep + same, repeats)
        transitions = np.where(learn, transitions * keep + 1.0, transitions)
        run = np.where(ok, length, run)
        longest = np.maximum(longest, run)
        prev = np.where(ok, x, prev)
        seen = seen + present[t]
    s["run"], s["longest"], s["repeats"], s["transitions"] = run, longest, repeats, transitions


def _learn(
    x_all: np.ndarray, present: np.ndarray, weights: np.ndarray, slots: np.ndarray, counts: np.ndarray,
    activity: np.ndarray,
    s: dict[str, np.ndarray],
    s_loc: np.ndarray, s_mad: np.ndarray, s_n: np.ndarray, z: dict[str, np.ndarray],
    exp_loc: np.ndarray, exp_sigma: np.ndarray, exp_n: np.ndarray, p: BaselineParams,
    trace: dict[str, tuple[np.ndarray, ...]],
) -> None:
    """The time loop of :func:`run_baselines`: fills ``z``/``exp_*`` and updates the state in place.

    Columns (C) are the features of one or more entities side by side
    (:func:`run_baselines_many`). ``s_loc``, ``s_mad``, ``s_n`` are the seasonal arrays of ``s``,
    shape (slots, C); ``slots`` (n, C) the seasonal slot of each cell's bucket; ``present`` (n, C)
    the cells of real buckets (the rest is padding: NaN values, not learned, not counted as
    seen); ``weights`` (n, C) the precision weight of each value (:func:`robust_step`);
    ``activity`` (C,) the columns (counts, sums) whose level is kept per day type.

    The level, weekend-level and diff learners are kept stacked as rows 0-2 of one (4, F) state
    (row 3: the bucket's seasonal slot, copied in and out), and the learners of a bucket update in
    one :func:`robust_step` call (each cell's arithmetic is
    the same as learning them one by one: the loop's cost is numpy's per-call overhead).
    """
    n, f = x_all.shape
    per_day = s_loc.shape[0] // 2
    columns = np.arange(f)
    keys = ("level", "weekend", "diff")
    # rows 0-2: the level, weekend-level and diff learners; row 3: the bucket's seasonal slot
    loc = np.stack([s[f"{k}_loc"] for k in keys] + [np.zeros(f)])
    mad = np.stack([s[f"{k}_mad"] for k in keys] + [np.zeros(f)])
    cnt = np.stack([s[f"{k}_n"] for k in keys] + [np.zeros(f)])
    # per bucket, what each learner learns from: a weekend's activity teaches the weekend level only
    weekend_t = slots >= per_day
    weekend_activity = weekend_t & activity[None, :]
    learn_x = np.empty((n, 4, f))
    learn_x[:, 0] = np.where(weekend_activity, np.nan, x_all)
    learn_x[:, 1] = np.where(weekend_activity, x_all, np.nan)
    learn_x[:, 3] = x_all
    learn_w = np.ones((n, 4, f))
    learn_w[:, 0], learn_w[:, 1], learn_w[:, 3] = weights, weights, weights
    twins = np.where(weekend_t, slots - per_day, slots + per_day)
    halflives = np.array([[p.level_halflife]] * 3 + [[p.seasonal_halflife]])
    min_n = np.array([[p.min_visits], [p.min_buckets], [p.min_buckets]], dtype=np.float64)
    not_counts = ~counts
    prev, lo, hi = s["prev"].copy(), s["min"].copy(), s["max"].copy()
    seen, step = s["seen"].copy(), s["step"].copy()
    resolution = RESOLUTION_SHARE if p.resolution_floor else 0.0
    # scratch rows: (seasonal, diff) for their sigmas, (seasonal, level, diff) for their z
    sd_loc, sd_mad = np.empty((2, f)), np.empty((2, f))
    z_x, z_loc, z_sigma, z_n = (np.empty((3, f)) for _ in range(4))
    for t in range(n):
        x = x_all[t]
        slot = slots[t]
        # a weekend slot seen too rarely borrows the weekday slot of the same hour (and back)
        use = np.where(s_n[slot, columns] >= p.min_visits, slot, twins[t])
        loc_k = s_loc[use, columns]
        mad_k = s_mad[use, columns]
        n_k = s_n[use, columns]
        # activity (counts and sums) keeps one level per day type: a Monday is compared with
        # Friday, not with a quiet weekend; other features keep one level for all days
        own = weekend_t[t] & activity & (cnt[1] >= p.min_buckets)
        lvl_loc = np.where(own, loc[1], loc[0])
        lvl_mad = np.where(own, mad[1], mad[0])
        lvl_n = np.where(own, cnt[1], cnt[0])
        # a measure's sigma is at least the rounding noise of its values (counts have their own floor)
        rounding = np.where(not_counts, resolution * step, 0.0)
        level_sigma = sigma_of(lvl_loc, lvl_mad, counts, rounding)
        # a slot that was always quiet (zeros at night) may not turn any value into an anomaly
        slot_floor = np.where(not_counts, np.maximum(SEASONAL_SHARE_FLOOR * level_sigma, rounding), 0.0)
        w = weights[t]
        # seasonal and diff sigmas share the slot's floor: one call for both
        sd_loc[0], sd_loc[1], sd_mad[0], sd_mad[1] = loc_k, loc[2], mad_k, mad[2]
        sd_sigma = sigma_of(sd_loc, sd_mad, counts, slot_floor)
        seasonal_sigma, level_sigma = sd_sigma[0] / w, level_sigma / w
        d = np.where(cnt[0] > 0, x - prev, np.nan)  # no change before a first value
        z_x[0], z_x[1], z_x[2] = x, x, d
        z_loc[0], z_loc[1], z_loc[2] = loc_k, lvl_loc, loc[2]
        z_sigma[0], z_sigma[1], z_sigma[2] = seasonal_sigma, level_sigma, sd_sigma[1]
        z_n[0], z_n[1], z_n[2] = n_k, lvl_n, cnt[2]
        zs = robust_z(z_x, z_loc, z_sigma, z_n, min_n)
        z["seasonal"][t], z["level"][t], z["diff"][t] = zs[0], zs[1], zs[2]
        span = np.where(np.isfinite(hi - lo), hi - lo, 0.0)
        width = np.maximum(span, scale_floor(hi, counts))
        over = np.maximum(x - hi - p.extreme_tolerance * span, lo - p.extreme_tolerance * span - x)
        z["extreme"][t] = np.where((seen >= p.min_buckets) & np.isfinite(over),
                                   np.minimum(np.maximum(over, 0.0) / width, MAX_Z), np.nan)
        seasonal_ok = n_k >= p.min_visits
        trace["level"][0][t], trace["level"][1][t], trace["level"][2][t] = lvl_loc, level_sigma, lvl_n
        trace["seasonal"][0][t], trace["seasonal"][1][t], trace["seasonal"][2][t] = loc_k, seasonal_sigma, n_k
        exp_loc[t] = np.where(seasonal_ok, loc_k, lvl_loc)
        exp_sigma[t] = np.where(seasonal_ok, seasonal_sigma, level_sigma)
        exp_n[t] = np.where(seasonal_ok & (use == slot), n_k, 0.0)  # a borrowed slot is not the bucket's own
        # learn from the bucket: level, weekend level, diff and the bucket's own seasonal slot at once
        learn_x[t, 2] = d
        loc[3], mad[3], cnt[3] = s_loc[slot, columns], s_mad[slot, columns], s_n[slot, columns]
        loc, mad, cnt = robust_step(learn_x[t], loc, mad, cnt, halflives, p.clip, counts, learn_w[t])
        s_loc[slot, columns], s_mad[slot, columns], s_n[slot, columns] = loc[3], mad[3], cnt[3]
        ok = np.isfinite(x)
        change = np.abs(d)
        smaller = (change > 0) & ((step == 0) | (change < step))  # NaN compares False: no change, no step
        step = np.where(smaller, change, step)
        prev = np.where(ok, x, prev)
        lo = np.where(ok, np.minimum(lo, np.where(ok, x, np.inf)), lo)
        hi = np.where(ok, np.maximum(hi, np.where(ok, x, -np.inf)), hi)
        seen = seen + present[t]
    for i, k in enumerate(keys):
        s[f"{k}_loc"], s[f"{k}_mad"], s[f"{k}_n"] = loc[i].copy(), mad[i].copy(), cnt[i].copy()
    s["prev"], s["min"], s["max"], s["seen"], s["step"] = prev, lo, hi, seen, step
