"""Adaptive alerts per entity: baselines + model score -> calibrated probability -> alerts.

One call takes an entity's scored windows of one or more nights (time-ordered) and the state the
entity was left in after the night before; it returns, per window, the fused tail probability,
the detector and feature that drove it, what was expected there, the alert flag, and the state
after each night (pure pandas/numpy; the Spark shell is :mod:`adspark.pipeline.alerts`).

Per window:

- each bucket the entity has not been scored on before (the newest ``stride`` buckets of a
  window; all of them for the first window) goes through the baselines of
  :mod:`adspark.core.streaming` in time order;
- a baseline's raw score for the window is the largest ``|z|`` over its new buckets and the
  features; the model's raw score is its reconstruction score over the model's median
  validation score (so a retrained model continues the same history);
- every raw score is calibrated per entity (:func:`adspark.core.calibration.calibrate`), the
  probabilities are fused, and the window is anomalous when the fused probability is below the
  alert level; an alert fires at the first window of a run of anomalous windows (also across
  nights: the state remembers whether the last window was anomalous).

Nothing reads a bucket after the one it scores: the state of night D depends only on the state of
D-1 and the windows of D.

Many entities at once (:func:`alert_group`, what the Spark shell calls per hash group of
entities): each night, the entities with windows that night take their step together: the
baselines' per-bucket loop and the calibration's per-window loop run once for all of them, their
features side by side as columns, and the window evidence, the profile, fusion and explanations
run once over all their windows, one entity's after the other's; only cutting each entity's new
buckets and its alert onsets loop per entity. Each entity's results equal its own
:func:`alert_nights`, element for element.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import Any, Hashable, Mapping, Sequence

import numpy as np
import pandas as pd

from adspark.core.buckets import epoch_seconds
from adspark.core.calibration import (
    CalibrationParams,
    alert_onsets,
    calibrate_many,
    fuse,
    new_calibration_state,
    normal_sf,
    pareto_tail,
)
from adspark.core.heads import in_sample
from adspark.core.neighbor import neighbor_distances, new_neighbor_buffer
from adspark.core.profile import PROFILE_FEATURE, expected_counts, new_profile_buffer, window_profiles_many
from adspark.core.streaming import (
    BASELINES,
    BaselineOutput,
    BaselineParams,
    betabinom_z,
    from_model_scale,
    is_count,
    is_sum,
    mask_empty_buckets,
    mix_range,
    new_baseline_state,
    run_baselines_many,
    seasonal_slots_of_seconds,
    signed_expm1,
    slots_per_day,
    undefined_when_empty,
)

DETECTORS = ("model",) + BASELINES + ("profile", "neighbor")
# detectors whose evidence is already a tail probability under the entity's own law: not
# recalibrated (no calibration state), not floored by the normal law of a z
SELF_CALIBRATED = frozenset({"stuck", "silence"})
# detectors judging one series of the entity (event_count), one test each in the fusion
ONE_SERIES = frozenset({"profile", "silence"})
# detectors that judge only where their event happened (a value beyond the running range), as
# `stuck` and `silence` do (a repeat, an empty run): elsewhere their p is 1 by construction, so
# they are no test in the fusion; their calibration still learns from every window
EVENT_ONLY = frozenset({"extreme"})
# detectors whose raw score is a distance or an error, not a z: calibrated on the log scale, and
# not floored by the normal law of a z
DISTANCES = frozenset({"model", "neighbor"})
ALERT_COLUMNS = (
    "p_value", "score", "threshold", "is_anomaly", "alert", "driver", "driver_feature", "actual",
    "expected_low", "expected_high",
)
EXPECTED_SIGMAS = 3.0


@dataclass(frozen=True)
class AlertParams:
    """Everything the alert step needs besides the data (its feature masks are computed once).

    Attributes:
        features: Feature names of the windows' F axis.
        n_steps: W.
        stride: S.
        bucket_seconds: Bucket width.
        detectors: Detectors to fuse, among :data:`DETECTORS`.
        level: Alert level: a window is anomalous when its fused probability is below it.
        fusion: ``bonferroni`` or ``fisher``.
        timezone: Zone of the seasonal slots.
        baselines: Baseline learning parameters.
        calibration: Calibration parameters.
        model_reference: The model's median validation score (the model's raw score is divided
            by it); ``None`` when the windows carry no model score.
        model_feature_reference: The model's median validation error per feature (F values):
            with it, each feature's error (column ``feature_errors``) over its reference is
            calibrated on its own, so one feature's anomaly is not averaged away by the others.
        model_feature_tail: The upper tail of the model's validation errors per feature, as
            ``(u, xi, sigma)`` of a generalized Pareto law over each feature's 90th percentile
            (:func:`adspark.core.calibration.fit_error_tails`): a feature's probability is at
            least its tail there (:func:`adspark.core.calibration.pareto_tail`), so an error
            must be unusual for the entity *and* among all entities' validation errors (one
            large event makes heavy-tailed errors that are ordinary across entities).
        baseline_only: Features the baselines judge (None: see :attr:`baseline_features`).
        model_out_of_sample: First night whose windows the model was not fitted on: earlier
            windows' model scores are in-sample (too low) and do not enter its calibration.
        model_in_sample_seconds: For a model trained on each entity's head
            (``window.scaling.entity_head``): the windows ending within this many seconds of the
            entity's first non-empty bucket were fitted on (:func:`adspark.core.heads.in_sample`).
        entity_head_seconds: Each entity's first this many seconds are its declared normal
            (``window.scaling.entity_head``): windows ending inside it get no verdict from any
            detector (every detector still learns from them), as ``evaluate`` judges only the
            windows after it.
        sums: Scale on which the baselines compare sums (``x_sum``): ``linear``, ``sqrt`` (the
            signed square root: the variance of a sum over a Poisson number of events no longer
            grows with the rate, as the Anscombe scale does for counts) or ``log``.
        means: ``model`` (per-bucket means are left to the model) or ``weighted`` (the baselines
            also judge ``x_mean`` when ``event_count`` is a feature: on the signed log1p scale,
            each bucket weighted by the square root of its events,
            :func:`adspark.core.streaming.run_baselines`).
        measure_evidence: ``peak`` (the window evidence of a measure's sum or weighted mean is
            its largest ``|z|`` or the combined one, as for other features) or ``sustained``
            (only the combined evidence of its z clipped at the winsorizing bound,
            :func:`_window_evidence`).
        cooldown_seconds: An anomalous window starting within this of the end of the entity's
            last anomalous window extends its alert instead of raising a new one
            (:func:`adspark.core.calibration.alert_onsets`).
        neighbor_horizon: Buckets the ``neighbor`` detector searches back
            (:mod:`adspark.core.neighbor`).
    """

    features: tuple[str, ...]
    n_steps: int
    stride: int
    bucket_seconds: int
    detectors: tuple[str, ...] = DETECTORS
    level: float = 1e-5
    fusion: str = "bonferroni"
    timezone: str = "UTC"
    baselines: BaselineParams = field(default_factory=BaselineParams)
    calibration: CalibrationParams = field(default_factory=CalibrationParams)
    model_reference: float | None = None
    model_feature_reference: tuple[float, ...] | None = None
    model_feature_tail: tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]] | None = None
    model_out_of_sample: dt.date | None = None
    model_in_sample_seconds: float | None = None
    entity_head_seconds: float | None = None
    baseline_only: tuple[str, ...] | None = None
    sums: str = "linear"
    measure_evidence: str = "sustained"
    means: str = "weighted"
    cooldown_seconds: float = 0.0
    neighbor_horizon: int = 2016

    @functools.cached_property
    def baseline_features(self) -> np.ndarray:
        """Which features the baselines judge, shape (F,): ``baseline_only`` when given, else
        every feature that is not a statistic of a bucket's events (``x_mean``, ``x_min``,
        ``x_max``: noisy with few events, left to the model), or all when there is no other."""
        if self.baseline_only is not None:
            return _read_only(np.array([f in self.baseline_only for f in self.features], dtype=bool))
        stats = undefined_when_empty(self.features)
        chosen = ~stats if (~stats).any() else np.ones(len(self.features), dtype=bool)
        return _read_only(chosen | self.mean_features)

    @functools.cached_property
    def mean_features(self) -> np.ndarray:
        """Which features the baselines judge as event-weighted means, shape (F,): ``x_mean``
        when ``means`` is ``weighted`` and ``event_count`` is a feature."""
        weighted = self.means == "weighted" and "event_count" in self.features
        return _read_only(np.array([weighted and f.endswith("_mean") for f in self.features], dtype=bool))

    @functools.cached_property
    def sum_features(self) -> np.ndarray:
        """Which features are sums of a measure (``x_sum``), shape (F,)."""
        return _read_only(np.array([is_sum(f) for f in self.features], dtype=bool))

    @functools.cached_property
    def counts(self) -> np.ndarray:
        """Whether each feature is a count, shape (F,)."""
        return _read_only(np.array([is_count(f) for f in self.features], dtype=bool))

    @functools.cached_property
    def share_features(self) -> np.ndarray:
        """What the ``mix`` detector judges, shape (F,): the category slots (``col__value``) the
        baselines judge, when ``event_count`` is a feature (each slot's count is judged given
        the bucket's events)."""
        has_events = PROFILE_FEATURE in self.features
        return _read_only(np.array([has_events and "__" in f for f in self.features], dtype=bool)
                          & self.baseline_features)

    @functools.cached_property
    def neighbor_features(self) -> np.ndarray:
        """What the ``neighbor`` detector judges, shape (F,): the plain measures the baselines
        judge, not counts, sums or event-weighted means (whose bucket-to-bucket noise is that of
        the bucket's events, not of the entity's pattern)."""
        plain = ~(self.counts | self.sum_features | self.mean_features)
        return _read_only(plain & self.baseline_features)

    @functools.cached_property
    def silence_features(self) -> np.ndarray:
        """What the ``silence`` detector judges, shape (F,): the entity's activity
        (``event_count``) when it is a feature the baselines judge; a category going quiet is
        not news."""
        return _read_only(np.array([f == PROFILE_FEATURE for f in self.features], dtype=bool) & self.baseline_features)


def _read_only(mask: np.ndarray) -> np.ndarray:
    """``mask``, made read-only (the feature masks above are computed once per parameters and
    shared by every call)."""
    mask.flags.writeable = False
    return mask


def new_state(params: AlertParams) -> dict[str, np.ndarray]:
    """The state of an entity never seen before."""
    state = new_baseline_state(len(params.features), 2 * slots_per_day(params.bucket_seconds))
    f = len(params.features)
    for d in params.detectors:
        if d in SELF_CALIBRATED:
            continue
        width = f if d != "model" or params.model_feature_reference is not None else 1
        for k, v in new_calibration_state(params.calibration.short, width, params.calibration.tail).items():
            state[f"cal_{d}_{k}"] = v
    if "profile" in params.detectors:
        state.update(new_profile_buffer(params.n_steps))
    if "neighbor" in params.detectors and params.neighbor_features.any():
        state.update(new_neighbor_buffer(params.neighbor_horizon, int(params.neighbor_features.sum())))
    state["cursor"] = np.array([-np.inf])  # end of the last bucket learned (epoch seconds)
    state["last_anomalous_end"] = np.array([-np.inf])  # end of the last anomalous window (epoch seconds)
    state["first_seen"] = np.array([-np.inf])  # start of the first non-empty bucket (epoch seconds; -inf: none yet)
    return state


def conform_state(state: dict[str, np.ndarray] | None, params: AlertParams) -> dict[str, np.ndarray]:
    """``state`` with every array of the layout ``params`` needs: missing arrays, or arrays whose
    shape changed (a retrained model now calibrated per feature, another detector list), start
    fresh; the rest carry on."""
    fresh = new_state(params)
    if state is None:
        return fresh
    return {k: state[k] if k in state and state[k].shape == v.shape else v for k, v in fresh.items()}


def _new_buckets(
    starts: np.ndarray, values: Sequence[np.ndarray] | np.ndarray, cursor: float, params: AlertParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The buckets each window adds: (values (m, F), bucket starts (m,), owner window (m,), cursor)."""
    w, f, width = params.n_steps, len(params.features), params.bucket_seconds
    offsets = np.arange(w) * width
    rows, times, owner = [], [], []
    for i, (start, flat) in enumerate(zip(starts, values, strict=True)):
        bucket_starts = start + offsets
        fresh = bucket_starts >= cursor
        if fresh.any():
            grid = np.asarray(flat, dtype=np.float64).reshape(w, f)
            rows.append(grid[fresh])
            times.append(bucket_starts[fresh])
            owner.append(np.full(int(fresh.sum()), i))
            cursor = float(bucket_starts[-1] + width)
    if not rows:
        return np.empty((0, f)), np.empty(0), np.empty(0, np.int64), cursor
    return np.concatenate(rows), np.concatenate(times), np.concatenate(owner), cursor


def _window_evidence(
    z: np.ndarray, owner: np.ndarray, n: int, sustained: np.ndarray | None = None, clip: float = 3.0,
    combine: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Per window and feature, how far the window's new buckets are from the baseline.

    The larger of the peak ``|z|`` over the window's new buckets and the combined
    ``|sum z| / sqrt(m)`` over its m new buckets (Stouffer: a run of moderately low buckets, such as
    hours without events, adds up). For ``sustained`` features (shape (F,)) only the combined
    evidence of the z clipped at ``+-clip`` counts: one extreme bucket says little (a sum of
    heavy-tailed amounts jumps with one large event), a shift over the window's buckets does.

    Buckets without a verdict (NaN z) are left out; a window with none has no evidence. With
    ``combine`` False only the peak counts (for deviates that are not independent across buckets).

    Returns:
        (evidence, shape (n, F), NaN for a window without new buckets with a verdict; bucket row
        of the largest ``|z|`` per window and feature, shape (n, F), -1 without).
    """
    f = z.shape[1]
    best = np.full((n, f), np.nan)
    where = np.full((n, f), -1, dtype=np.int64)
    bounds = np.searchsorted(owner, np.arange(n + 1))
    filled = bounds[1:] > bounds[:-1]
    if not filled.any():
        return best, where
    # every window's new buckets are one contiguous run of rows: segment reductions, no loop
    first = bounds[:-1][filled]
    lengths = (bounds[1:] - bounds[:-1])[filled]
    seen = np.isfinite(z)
    zero_filled = np.where(seen, z, 0.0)
    size = np.abs(zero_filled)
    m = np.add.reduceat(seen.astype(np.int64), first, axis=0)
    peak = np.maximum.reduceat(size, first, axis=0)
    root = np.sqrt(np.maximum(m, 1))
    combined = np.abs(np.add.reduceat(zero_filled, first, axis=0)) / root
    evidence = np.maximum(peak, combined) if combine else peak
    if sustained is not None and sustained.any():
        clipped = np.where(seen, np.minimum(np.maximum(z, -clip), clip), 0.0)
        held = np.abs(np.add.reduceat(clipped, first, axis=0)) / root
        evidence = np.where(sustained, held, evidence)
    # the first row of each window reaching its peak (argmax's choice)
    rows = np.arange(len(z))[:, None]
    at_peak = np.where(size == np.repeat(peak, lengths, axis=0), rows, len(z))
    peak_row = np.minimum.reduceat(at_peak, first, axis=0)
    best[filled] = np.where(m > 0, evidence, np.nan)
    where[filled] = np.where(m > 0, peak_row, -1)
    return best, where


def _mix_evidence(batch: _Batch, n: int, params: AlertParams) -> tuple[np.ndarray, np.ndarray]:
    """The ``mix`` detector's evidence per window and category slot: the larger of its peak
    ``|z|`` over the window's new buckets and the deviate of their pooled counts (the value's
    count among all their events, against the share known before the first of them): a few
    events of a rare value spread over two quiet hours add up, as the window's own mix.

    Returns:
        (evidence, shape (N, F), NaN where the mix gave no verdict; bucket row of the peak
        ``|z|``, shape (N, F), -1 without).
    """
    z = batch.out.z["mix"]
    raw, rows = _window_evidence(z, batch.owner, n, combine=False)
    share = params.share_features
    prior = batch.out.mix_prior
    bounds = batch.bounds
    filled = np.flatnonzero(bounds[1:] > bounds[:-1])
    if prior is None or not share.any() or not len(filled):
        return np.where(share[None, :], raw, np.nan), rows
    first = bounds[:-1][filled]
    events = batch.values[:, params.features.index(PROFILE_FEATURE)]
    eligible = np.isfinite(prior[:, :, 0])
    counts = np.add.reduceat(np.where(eligible, batch.values, 0.0), first, axis=0)
    trials = np.add.reduceat(np.where(eligible, events[:, None], 0.0), first, axis=0)
    start = prior[first]  # the share known before each window's first new bucket
    pooled = np.abs(betabinom_z(counts, trials, start[:, :, 0], start[:, :, 1]))
    pooled = np.where(np.isfinite(pooled) & share[None, :], pooled, np.nan)
    raw[filled] = np.fmax(raw[filled], pooled)
    return np.where(share[None, :], raw, np.nan), rows


def _profile_raw(batch: _Batch, nights: Sequence[_Night], params: AlertParams) -> tuple[np.ndarray, np.ndarray]:
    """The profile detector's evidence (:mod:`adspark.core.profile`), shaped as a baseline's:
    (N, F) with only ``event_count`` filled, and the bucket row that explains it (the window's
    new bucket farthest from its expected count; global). Advances each night's buffer."""
    n, f = len(batch.starts), len(params.features)
    raw, rows = np.full((n, f), np.nan), np.full((n, f), -1, dtype=np.int64)
    if PROFILE_FEATURE not in params.features:
        return raw, rows
    j = params.features.index(PROFILE_FEATURE)
    out, values, bounds = batch.out, batch.values[:, j], batch.bounds
    exp = expected_counts(out.expected_loc[:, j], out.seasonal_visits[:, j], params.baselines.seasonal_halflife)
    filled = bounds[1:] > bounds[:-1]
    last_row = np.where(filled, bounds[1:] - 1, -1)
    keys = new_profile_buffer(params.n_steps).keys()
    z, after = window_profiles_many([{k: night.state[k] for k in keys} for night in nights], values, exp,
                                    batch.times, batch.rows, last_row, batch.starts, params.bucket_seconds)
    for night, buffer in zip(nights, after, strict=True):
        night.state.update(buffer)
    raw[:, j] = np.maximum(z, 0.0)  # one-sided: a shape closer to the usual one than chance is no news
    if filled.any():  # each window's first bucket farthest from its expected count (argmax's choice)
        with np.errstate(invalid="ignore", divide="ignore"):
            gap = np.nan_to_num(np.abs(values - exp) / np.sqrt(exp), nan=-1.0)
        first, lengths = bounds[:-1][filled], (bounds[1:] - bounds[:-1])[filled]
        peak = np.maximum.reduceat(gap, first)
        at_peak = np.where(gap == np.repeat(peak, lengths), np.arange(len(gap)), len(gap))
        rows[filled, j] = np.minimum.reduceat(at_peak, first)
    return raw, rows


def _neighbor_raw(batch: _Batch, nights: Sequence[_Night], params: AlertParams) -> tuple[np.ndarray, np.ndarray]:
    """The neighbor detector's evidence (:mod:`adspark.core.neighbor`), shaped as a baseline's:
    (N, F) with the judged features filled, and the bucket row that explains it (the window's
    newest new bucket; global). A window needs the baselines' warm-up in earlier stretches
    (``baselines.min_buckets``). Advances each night's buffer."""
    n, f = len(batch.starts), len(params.features)
    raw, rows = np.full((n, f), np.nan), np.full((n, f), -1, dtype=np.int64)
    judged = params.neighbor_features
    if not judged.any() or not n:
        return raw, rows
    w = params.n_steps
    grids = np.stack([np.asarray(v, np.float64).reshape(w, f)[:, judged] for v in batch.cols["raw_values"]])
    bounds = batch.bounds
    for e, night in enumerate(nights):
        a, b = batch.windows[e], batch.windows[e + 1]
        r0, r1 = batch.rows[e], batch.rows[e + 1]
        buffer = {k: night.state[k] for k in ("neighbor_x", "neighbor_t")}
        d, after = neighbor_distances(buffer, grids[a:b], batch.starts[a:b], batch.values[r0:r1][:, judged],
                                      batch.times[r0:r1], params.bucket_seconds, params.neighbor_horizon,
                                      params.baselines.min_buckets)
        night.state.update(after)
        raw[a:b, judged] = d
    newest = np.where(bounds[1:] > bounds[:-1], bounds[1:] - 1, -1)
    rows[:, judged] = newest[:, None]
    return raw, rows


def _first_seen(values: np.ndarray, times: np.ndarray, features: tuple[str, ...], known: float) -> float:
    """The start of the entity's first non-empty bucket: ``known`` once set, else the first of
    these buckets with events (with ``event_count``) or with any value (without it); -inf if none."""
    if np.isfinite(known) or not len(times):
        return known
    if "event_count" in features:
        active = values[:, features.index("event_count")] > 0
    else:
        active = np.isfinite(values).any(axis=1)
    return float(times[active].min()) if active.any() else known


def _model_raw(
    cols: Mapping[str, np.ndarray], params: AlertParams, first_seen: float | np.ndarray = -np.inf
) -> np.ndarray:
    """The model's raw scores: per feature (n, F) errors over their validation medians, else the
    window score over the median validation score (n,); NaN on in-sample nights, or for a model
    trained on entity heads, on the windows it was fitted on (``cols``: :func:`_columns`;
    ``first_seen``: the entity's first non-empty bucket, or each window's entity's)."""
    n = len(cols["starts"])
    if params.model_feature_reference is not None and "feature_errors" in cols:
        ref = np.maximum(np.asarray(params.model_feature_reference, np.float64), 1e-12)
        raw = cols["feature_errors"] / ref if n else np.empty((0, len(ref)))
    else:
        score_ref = params.model_reference if params.model_reference else 1.0
        raw = cols["model_score"] / max(score_ref, 1e-12)
    if "before_out_of_sample" in cols and n:
        raw = np.where(cols["before_out_of_sample"].reshape((-1,) + (1,) * (raw.ndim - 1)), np.nan, raw)
    if params.model_in_sample_seconds is not None and n:
        ends = cols["starts"] + params.n_steps * params.bucket_seconds
        fitted_on = in_sample(ends, first_seen, params.model_in_sample_seconds)
        raw = np.where(fitted_on.reshape((-1,) + (1,) * (raw.ndim - 1)), np.nan, raw)
    return raw


def _columns(frame: pd.DataFrame, params: AlertParams) -> dict[str, np.ndarray]:
    """What the alert step reads of an entity's windows (``frame`` in time order), as arrays,
    read once for all its nights: ``starts`` (epoch seconds), ``raw_values`` (object, one array
    per window), ``model_score``, ``feature_errors`` (n, F; when the frame has them and the
    model is judged per feature), ``before_out_of_sample`` (bool; with
    ``params.model_out_of_sample``) and ``top_features`` (object; when the frame has them)."""
    n = len(frame)
    cols: dict[str, np.ndarray] = {
        "starts": epoch_seconds(frame["window_start"]),
        "raw_values": frame["raw_values"].to_numpy(dtype=object),
        "model_score": frame["model_score"].to_numpy(np.float64),
    }
    if params.model_feature_reference is not None and "feature_errors" in frame:
        f = len(params.model_feature_reference)
        cols["feature_errors"] = np.stack([np.asarray(v, np.float64) for v in frame["feature_errors"]]) if n \
            else np.empty((0, f))
    if params.model_out_of_sample is not None:
        oos = params.model_out_of_sample
        cols["before_out_of_sample"] = (pd.to_datetime(frame["date"]) < pd.Timestamp(oos)).to_numpy(bool)
    if "top_features" in frame:
        cols["top_features"] = frame["top_features"].to_numpy(dtype=object)
    return cols


@dataclass
class _Night:
    """One entity's windows of one night, readied for the baselines (:func:`_prepare`)."""

    state: dict[str, np.ndarray]  # a copy of the state, cursor and first_seen already advanced
    starts: np.ndarray  # window starts, epoch seconds (n,)
    values: np.ndarray  # the buckets the windows add, (m, F)
    times: np.ndarray  # their starts, epoch seconds (m,)
    owner: np.ndarray  # the window adding each bucket (m,)
    slots: np.ndarray  # their seasonal slots (m,)


def _prepare(cols: Mapping[str, np.ndarray], state: dict[str, np.ndarray], params: AlertParams) -> _Night:
    """Cut the buckets one entity's windows add (``cols``: a night's rows of :func:`_columns`, in
    time order), not modifying ``state`` (its arrays are shared, never written in place: every
    step replaces the arrays it changes)."""
    s = dict(state)
    starts = cols["starts"]
    values, times, owner, cursor = _new_buckets(starts, cols["raw_values"], float(s["cursor"][0]), params)
    slots = seasonal_slots_of_seconds(times, params.bucket_seconds, params.timezone)
    s["cursor"] = np.array([cursor])
    s["first_seen"] = np.array([_first_seen(values, times, params.features, float(s["first_seen"][0]))])
    return _Night(s, starts, values, times, owner, slots)


@dataclass
class _Batch:
    """A night's windows of several entities side by side (:func:`_steps`): each entity's windows
    and the buckets they add follow the previous entity's, so every per-window and per-bucket
    computation runs once for all of them; bucket rows and window owners are global."""

    cols: dict[str, np.ndarray]  # :func:`_columns` of every window, entity after entity (N,)
    windows: np.ndarray  # where each entity's windows start, and N (E + 1,)
    rows: np.ndarray  # where each entity's new buckets start, and M (E + 1,)
    values: np.ndarray  # the new buckets (M, F)
    times: np.ndarray  # their starts, epoch seconds (M,)
    owner: np.ndarray  # the window adding each bucket, global (M,)
    out: BaselineOutput  # the baselines' verdicts on every new bucket (M rows)
    first_seen: np.ndarray  # each window's entity's first non-empty bucket (N,)

    @property
    def starts(self) -> np.ndarray:
        """Window starts, epoch seconds (N,)."""
        return self.cols["starts"]

    @functools.cached_property
    def bounds(self) -> np.ndarray:
        """Where each window's new buckets start in ``values``, and M (N + 1,): window ``i`` adds
        rows ``bounds[i]:bounds[i + 1]`` (``owner`` is non-decreasing)."""
        return np.searchsorted(self.owner, np.arange(len(self.starts) + 1))

    def parts(self, a: np.ndarray) -> list[np.ndarray]:
        """``a`` (one row per window) cut into each entity's rows (views)."""
        return [a[self.windows[e] : self.windows[e + 1]] for e in range(len(self.windows) - 1)]


def _gather(cols: dict[str, np.ndarray], windows: np.ndarray, nights: Sequence[_Night],
            outs: Sequence[BaselineOutput]) -> _Batch:
    """The :class:`_Batch` of entities' nights and their baselines' outputs."""
    rows = np.r_[0, np.cumsum([len(n.times) for n in nights])].astype(np.int64)
    owner = np.concatenate([n.owner + windows[e] for e, n in enumerate(nights)]).astype(np.int64)
    out = BaselineOutput(
        {k: np.concatenate([o.z[k] for o in outs]) for k in outs[0].z},
        np.concatenate([o.expected_loc for o in outs]), np.concatenate([o.expected_sigma for o in outs]),
        np.concatenate([o.seasonal_visits for o in outs]),
        None if any(o.mix_prior is None for o in outs) else np.concatenate([o.mix_prior for o in outs]),
    )
    first_seen = np.repeat([float(n.state["first_seen"][0]) for n in nights], np.diff(windows))
    return _Batch(cols, windows, rows, np.concatenate([n.values for n in nights]),
                  np.concatenate([n.times for n in nights]), owner, out, first_seen)


def _steps(
    cols: dict[str, np.ndarray], windows: np.ndarray, states: Sequence[dict[str, np.ndarray]], params: AlertParams
) -> tuple[dict[str, Any], list[dict[str, np.ndarray]]]:
    """One night of several entities: ``cols`` holds the night's rows of :func:`_columns` of each
    entity in turn (entity ``e``'s rows are ``windows[e]:windows[e + 1]``, in time order), with
    the state each entity was left in before them.

    The baselines run in one time loop for all of them
    (:func:`adspark.core.streaming.run_baselines_many`), the calibration in another
    (:func:`adspark.core.calibration.calibrate_many`), and the window evidence, the profile,
    fusion and explanations on the entities' windows side by side; only the cutting of new
    buckets and the alert onsets go entity by entity. Every window's results and every
    entity's state equal the entity's step alone.

    Returns:
        (the :data:`ALERT_COLUMNS` of every row of ``cols``, by name; each entity's state after them).
    """
    e_count = len(states)
    nights = [_prepare({c: v[windows[e] : windows[e + 1]] for c, v in cols.items()}, states[e], params)
              for e in range(e_count)]
    f = len(params.features)
    base_keys = new_baseline_state(f, 1).keys()
    has_events = "event_count" in params.features
    events = [n.values[:, params.features.index("event_count")] for n in nights] if has_events else None
    outs = run_baselines_many(
        [mask_empty_buckets(n.values, params.features) for n in nights], [n.slots for n in nights], params.counts,
        [{k: n.state[k] for k in base_keys} for n in nights], params.baselines, params.sum_features, params.sums,
        params.mean_features, events, params.share_features if "mix" in params.detectors else None,
    )
    for night, (_, base) in zip(nights, outs, strict=True):
        night.state.update(base)
    batch = _gather(cols, windows, nights, [o for o, _ in outs])
    evidence = _evidence(batch, nights, params)
    calibrated: dict[str, np.ndarray] = {}
    for j, d in enumerate(params.detectors):
        if d in SELF_CALIBRATED:
            continue
        cals = [{"recent": n.state[f"cal_{d}_recent"], "stats": n.state[f"cal_{d}_stats"]} for n in nights]
        # the model's scores are error-like (log scale); the baselines' are z-like
        results = calibrate_many(batch.parts(evidence[j][0]), cals, params.calibration, log=d in DISTANCES)
        calibrated[d] = np.concatenate([p for p, _ in results])
        for night, (_, cal) in zip(nights, results, strict=True):
            night.state[f"cal_{d}_recent"], night.state[f"cal_{d}_stats"] = cal["recent"], cal["stats"]
    return _judge(batch, nights, evidence, calibrated, params), [n.state for n in nights]


def _evidence(
    batch: _Batch, nights: Sequence[_Night], params: AlertParams
) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Per detector, each window's raw score and, for a baseline, the bucket row behind it
    (global: a row of ``batch.values``). The profile detector advances each night's buffer.

    Returns:
        Per detector of ``params.detectors``: (raw, shape (N, F), or the model's (N,) or (N, F);
        bucket row of each (window, feature), shape (N, F), or None for the model).
    """
    n = len(batch.starts)
    used = params.baseline_features
    evidence: list[tuple[np.ndarray, np.ndarray | None]] = []
    for d in params.detectors:
        rows: np.ndarray | None
        if d == "model":
            raw, rows = _model_raw(batch.cols, params, batch.first_seen), None
        elif d == "profile":
            raw, rows = _profile_raw(batch, nights, params)
        elif d == "mix":
            raw, rows = _mix_evidence(batch, n, params)
        elif d == "neighbor":
            raw, rows = _neighbor_raw(batch, nights, params)
        elif d in ("stuck", "silence"):  # the longest run in the window (deviates grow along a run: no sum)
            raw, rows = _window_evidence(batch.out.z[d], batch.owner, n, combine=False)
            judged = params.silence_features if d == "silence" else used
            raw = np.where(judged[None, :], raw, np.nan)
        else:
            sustained = (params.sum_features | params.mean_features) if params.measure_evidence == "sustained" else None
            raw, rows = _window_evidence(batch.out.z[d], batch.owner, n, sustained, params.baselines.clip)
            judged = used & ~params.mean_features if d in ("diff", "extreme") else used
            raw = np.where(judged[None, :], raw, np.nan)  # features the baselines leave to the model
        evidence.append((raw, rows))
    return evidence


def _tests(detector: str, params: AlertParams) -> int:
    """How many series a baseline-shaped detector judges (its smallest p is multiplied by it):
    one for a detector of the entity's activity, else the features it judges."""
    if detector in ONE_SERIES:
        return 1
    judged = {"mix": params.share_features, "neighbor": params.neighbor_features}.get(detector,
                                                                                     params.baseline_features)
    return int(judged.sum())


def _judge(
    batch: _Batch, nights: Sequence[_Night], evidence: list[tuple[np.ndarray, np.ndarray | None]],
    calibrated: dict[str, np.ndarray], params: AlertParams,
) -> dict[str, Any]:
    """The rest of a step once each detector's evidence is calibrated: per detector the smallest
    p over the features (x features, Bonferroni), fusion, onsets (entity by entity: each
    night's ``last_anomalous_end`` is advanced), explanations.

    Returns:
        The :data:`ALERT_COLUMNS` of the batch's windows, by name.
    """
    starts = batch.starts
    n, f = len(starts), len(params.features)
    probs = np.ones((n, len(params.detectors)))
    verdict = np.zeros((n, len(params.detectors)), dtype=bool)  # which detectors judged each window
    model_feature: np.ndarray | None = None  # the model's most improbable feature per window
    driving = np.full((n, len(params.detectors)), -1, dtype=np.int64)  # bucket row * F + feature
    every = np.arange(n)
    for j, (d, (raw, rows)) in enumerate(zip(params.detectors, evidence, strict=True)):
        if d in EVENT_ONLY:
            verdict[:, j] = (np.nan_to_num(raw, nan=0.0) > 0).any(axis=1)
        else:
            verdict[:, j] = np.isfinite(raw).any(axis=1) if raw.ndim == 2 else np.isfinite(raw)
        if d in SELF_CALIBRATED:  # stuck: already the run's tail under the entity's own repeat rate
            p = normal_sf(np.nan_to_num(raw, nan=-np.inf))
        else:
            p = calibrated[d]
        if rows is None:  # the model: one probability, or the smallest of its features' x F
            if p.ndim == 2 and params.model_feature_tail is not None:
                u, xi, sigma = (np.asarray(v, np.float64)[None, :] for v in params.model_feature_tail)
                errors = raw * np.asarray(params.model_feature_reference, np.float64)
                p = np.maximum(p, pareto_tail(errors, u, xi, sigma))
            if p.ndim == 2:
                model_feature = p.argmin(axis=1) if n else np.zeros(0, np.int64)
                p = np.minimum(1.0, f * p[every, model_feature])
            probs[:, j] = p
            continue
        # evidence must also be unlikely under the baseline's own normal law (|z| large): a sparse
        # feature whose usual z is 0 is not alarming at z = 1, however rare that is for it
        if d not in SELF_CALIBRATED | DISTANCES:
            p = np.maximum(p, np.minimum(1.0, 2.0 * normal_sf(np.nan_to_num(raw, nan=0.0))))
        best = p.argmin(axis=1) if n else np.zeros(0, np.int64)
        probs[:, j] = np.minimum(1.0, _tests(d, params) * p[every, best])
        driving[:, j] = rows[every, best] * f + best
    fused, driver = fuse(probs, params.fusion, verdict) if n else (np.ones(0), np.zeros(0, np.int64))
    if params.entity_head_seconds is not None and n:  # the declared normal stretch: no verdict
        ends = starts + params.n_steps * params.bucket_seconds
        fused = np.where(in_sample(ends, batch.first_seen, params.entity_head_seconds), 1.0, fused)
    anomalous = fused < params.level
    alerts = np.zeros(n, dtype=bool)
    width = params.n_steps * params.bucket_seconds
    for e, night in enumerate(nights):  # onsets continue each entity's last anomalous window
        a, b = batch.windows[e], batch.windows[e + 1]
        if anomalous[a:b].any():
            alerts[a:b], last_end = alert_onsets(anomalous[a:b], starts[a:b], width,
                                                 float(night.state["last_anomalous_end"][0]), params.cooldown_seconds)
            night.state["last_anomalous_end"] = np.array([last_end])
    driver_names = np.asarray(params.detectors, dtype=object)[driver] if n else np.empty(0, dtype=object)
    feat, actual, low, high = _explanations(batch, driver, driving, model_feature, params)
    return {
        "p_value": fused, "score": -np.log10(fused), "threshold": np.full(n, -np.log10(params.level)),
        "is_anomaly": anomalous, "alert": alerts, "driver": driver_names, "driver_feature": feat,
        "actual": actual, "expected_low": low, "expected_high": high,
    }


def _explanations(
    batch: _Batch, driver: np.ndarray, driving: np.ndarray, model_feature: np.ndarray | None, params: AlertParams,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per window: the driving feature, its actual value and the expected range there.

    A baseline names its own (bucket, feature); the model names its most improbable feature
    (``model_feature``, else its top error share), shown at the window's bucket farthest from the
    seasonal baseline.

    Returns:
        (feature names (N,), object, None where nothing drove; actual values; expected lows and
        highs (N,), NaN where none).
    """
    cols, out, values = batch.cols, batch.out, batch.values
    n, f = len(batch.starts), len(params.features)
    names = np.asarray(params.features + (None,), dtype=object)  # index f: no feature
    flat = driving[np.arange(n), driver] if n else np.zeros(0, np.int64)
    r, j = np.divmod(flat, f)  # a baseline's own bucket row and feature
    chose = flat < 0  # the model drove (or nothing did): its feature at its farthest bucket
    if chose.any():
        if model_feature is not None:
            mj = np.asarray(model_feature, np.int64)
        elif "top_features" in cols:
            index = {name: i for i, name in enumerate(params.features)}
            mj = np.array([index.get(str(t[0]), -1) if t is not None and len(t) else -1
                           for t in cols["top_features"]], dtype=np.int64)
        else:
            mj = np.full(n, -1, dtype=np.int64)
        bounds = batch.bounds
        seasonal_dev = np.nan_to_num(np.abs(out.z["seasonal"]), nan=-1.0)
        for i in np.flatnonzero(chose):
            k = int(mj[i])
            if k < 0 or bounds[i + 1] == bounds[i]:
                r[i], j[i] = -1, f
                continue
            r[i] = bounds[i] + int(np.argmax(seasonal_dev[bounds[i] : bounds[i + 1], k]))
            j[i] = k
    j = np.where(r < 0, f, j)
    shown = r >= 0
    rr, jj = r[shown], j[shown]
    actual, low, high = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    actual[shown] = values[rr, jj]
    loc, sigma = out.expected_loc[rr, jj], out.expected_sigma[rr, jj]
    ranges = np.stack([loc - EXPECTED_SIGMAS * sigma, loc + EXPECTED_SIGMAS * sigma])  # (2, k)
    means = params.mean_features[jj]
    ranges = np.where(means[None, :], signed_expm1(ranges), ranges)  # means are judged on the signed log1p scale
    counts = np.broadcast_to(params.counts[jj], ranges.shape)
    sums = np.broadcast_to(params.sum_features[jj], ranges.shape)
    low[shown], high[shown] = from_model_scale(ranges, counts, sums, params.sums)
    if out.mix_prior is not None and "mix" in params.detectors and params.share_features.any():  # given the bucket's events
        by_mix = shown & (driver == params.detectors.index("mix"))
        mr, mj = r[by_mix], j[by_mix]
        events = values[mr, params.features.index(PROFILE_FEATURE)]
        low[by_mix], high[by_mix] = mix_range(events, out.mix_prior[mr, mj], EXPECTED_SIGMAS)
    return names[j], actual, low, high


def alert_nights(
    windows: pd.DataFrame, state: dict[str, np.ndarray] | None, params: AlertParams
) -> tuple[pd.DataFrame, list[tuple[object, dict[str, np.ndarray]]]]:
    """Alerts of one entity's windows, night by night, continuing from ``state``.

    Args:
        windows: Columns ``date`` (the night), ``window_start`` (timestamps), ``raw_values``
            (W*F unscaled values per window, row-major (time, feature)), ``model_score`` (float,
            NaN when not scored) and ``top_features`` (lists; the model's top feature drives its
            explanation); any order.
        state: From :func:`new_state` or an earlier call (not modified); None: a new entity.
        params: Parameters.

    Returns:
        (every window with the alert columns, by night then time; ``[(date, state after that
        night), ...]``).
    """
    return alert_nights_many({0: windows}, {0: state}, params)[0]


def alert_nights_many(
    windows: Mapping[Hashable, pd.DataFrame], states: Mapping[Hashable, dict[str, np.ndarray] | None],
    params: AlertParams,
) -> dict[Hashable, tuple[pd.DataFrame, list[tuple[object, dict[str, np.ndarray]]]]]:
    """:func:`alert_nights` of many entities (windows and the state before them, by entity; a
    missing state is a new entity), through :func:`alert_group`. Each entity's result equals its
    own :func:`alert_nights`.

    Returns:
        By entity: (its windows with the alert columns; ``[(date, state after that night), ...]``).
    """
    keys = list(windows)
    empty = {c: pd.Series(dtype=object) for c in ALERT_COLUMNS}
    if not keys:
        return {}
    tag = "_entity_key"
    together = pd.concat([w.assign(**{tag: i}) for i, w in enumerate(windows.values())], ignore_index=True)
    scored, kept = alert_group(together, {i: states.get(k) for i, k in enumerate(keys)}, params, entity=tag)
    parts = dict(tuple(scored.groupby(tag, sort=False)))
    return {
        k: (parts[i].drop(columns=tag).reset_index(drop=True), kept[i]) if i in parts
        else (windows[k].assign(**empty), [])
        for i, k in enumerate(keys)
    }


def alert_group(
    windows: pd.DataFrame, states: Mapping[Hashable, dict[str, np.ndarray] | None], params: AlertParams,
    entity: str = "entity",
) -> tuple[pd.DataFrame, dict[Hashable, list[tuple[object, dict[str, np.ndarray]]]]]:
    """Alerts of many entities' windows (what the Spark shell hands over per hash group).

    Night by night, the entities with windows that night take their step together: one time loop
    for their baselines (:func:`adspark.core.streaming.run_baselines_many`), one for their
    calibration (:func:`adspark.core.calibration.calibrate_many`), and the window evidence, the
    profile, fusion and explanations once over all their windows (:func:`_steps`), on arrays read
    once for the whole group. Each entity's rows and states equal its own
    :func:`alert_nights`, element for element.

    Args:
        windows: The columns :func:`alert_nights` reads, and ``entity``; any order.
        states: Each entity's state before these windows (from :func:`new_state` or an earlier
            call; not modified); an entity without one is new.
        params: Parameters.
        entity: The column naming the entity.

    Returns:
        (the windows with the alert columns, by entity, night and time; by entity, in order:
        ``[(date, state after that night), ...]`` for the entities with windows).
    """
    frame = windows[windows["date"].notna()].sort_values([entity, "date", "window_start"], kind="stable")
    frame = frame.reset_index(drop=True)
    n = len(frame)
    cols = _columns(frame, params)
    who, entities = pd.factorize(frame[entity], sort=True)
    when, days = pd.factorize(frame["date"], sort=True)
    # the rows of one entity and night are one run: its first row, then the next run's
    firsts = np.flatnonzero(np.r_[True, (np.diff(who) != 0) | (np.diff(when) != 0)]) if n else np.zeros(0, np.int64)
    lasts = np.r_[firsts[1:], n]
    by_night: dict[int, list[tuple[int, slice]]] = {}
    for a, b in zip(firsts.tolist(), lasts.tolist()):
        by_night.setdefault(int(when[a]), []).append((int(who[a]), slice(a, b)))
    current = {i: conform_state(states.get(e), params) for i, e in enumerate(entities)}
    kept: dict[Hashable, list[tuple[object, dict[str, np.ndarray]]]] = {e: [] for e in entities}
    out: dict[str, np.ndarray] = {}
    for d in sorted(by_night):  # codes of sorted dates: the nights in order
        runs = by_night[d]
        rows = np.concatenate([np.arange(part.start, part.stop) for _, part in runs])
        windows = np.r_[0, np.cumsum([part.stop - part.start for _, part in runs])].astype(np.int64)
        added, after = _steps({c: v[rows] for c, v in cols.items()}, windows, [current[i] for i, _ in runs], params)
        for c in ALERT_COLUMNS:
            values = np.asarray(added[c], dtype=object if c in ("driver", "driver_feature") else None)
            if c not in out:
                out[c] = np.empty(n, dtype=values.dtype)
            out[c][rows] = values
        for (i, _), state in zip(runs, after, strict=True):
            kept[entities[i]].append((days[d], state))
            current[i] = state
    stale = [c for c in ALERT_COLUMNS if c in frame]
    if not n:
        return frame.drop(columns=stale).assign(**{c: pd.Series(dtype=object) for c in ALERT_COLUMNS}), kept
    # one concat (assigning ten columns one by one rebuilds the frame's blocks ten times)
    added_frame = pd.DataFrame({c: out[c] for c in ALERT_COLUMNS}, index=frame.index)
    return pd.concat([frame.drop(columns=stale) if stale else frame, added_frame], axis=1), kept
