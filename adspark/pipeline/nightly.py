"""Job ``nightly``: one night end to end, recorded in the ``nightly`` table.

For night D: discretize D (validation, rejects), score D with the model in force (in bucket mode
the scorer cuts D's windows from its features and the lookback before them; with
``score.source: windows`` or in row mode the window job writes D's windows first) and update
intervals, then decide on retraining:

- ``no_model``: no model for the config yet: train on the ``train_days`` nights before D first
  (then score D with it);
- ``schedule``: the model's training range ended ``retrain_every_days`` or more before D;
- ``drift``: the night's scores drifted from the model's validation scores (PSI or KS above the
  configured bounds, with at least ``drift_min_windows`` windows).

A retrain after scoring trains on the ``train_days`` nights up to D (windowing those that have
no windows yet: the ``windows`` table holds training ranges) and becomes the model of the
next nights (the latest model for the config). A night without events is recorded as ``empty``
with a message, not scored; a night whose previous night was never processed stops with a message
naming it (its windows would miss their lookback).

A first run on a new warehouse (``features`` holds no night before its first night) also
discretizes the ``train_days`` nights before it, in the same pass: the first model trains on them
and the first night's windows need their lookback. Their categorical slots are fitted on those
nights alone, so the tables equal a ``discretize`` of the history followed by the nightly runs;
they get no ``nightly`` row (their counts end the first night's message).

A range of nights (:func:`run_nights`) gives the tables of its nights run one by one in fewer
Spark passes: it is discretized once, and the nights between two retrains are scored in one pass
(:func:`adspark.pipeline.score.run_score` with a ``last_night`` rule that stops at the first
night that retrains).

The stages run inside the night's run (:func:`adspark.runs.recorded_run` ``within``): they are
stamped with the night's run id and write no ``runs`` rows; the night's ``nightly`` row holds
their counts and outcome. An ordinary night commits once to each table it changes: ``features``
(``rejects`` only on a night with rejected rows or earlier ones to replace), ``alert_state``,
``scores``, ``intervals`` and ``nightly``.

Nights run at once are put in order: the run holds a lease on its night and first waits for the
runs of earlier nights still in progress (:mod:`adspark.pipeline.leases`,
``nightly.wait_for_earlier_nights``), so it reads their features, windows, alert state and
retrained model final, as a serial run would.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from adspark.config import (
    DiscretizeJobConfig,
    NightlyJobConfig,
    ScoreJobConfig,
    TrainJobConfig,
    WindowJobConfig,
)
from adspark.core.buckets import night_range
from adspark.core.drift import ks_statistic, psi
from adspark.errors import EmptyInputError, ModelNotFoundError, SchemaMismatchError
from adspark.models.lookup import model_in_force
from adspark.models.registry import RegisteredModel, find_model
from adspark.pipeline import leases
from adspark.pipeline.discretize import Discretized, NightCounts, discretize
from adspark.pipeline.feedback import feedback_summary
from adspark.pipeline.score import NightScores, ScoreResult, run_score
from adspark.pipeline.train import run_train
from adspark.pipeline.window import configured_spec, run_window
from adspark.storage import TableStore
from schemas import FEATURES, NIGHTLY, WINDOWS

log = logging.getLogger(__name__)


@dataclass
class NightlyResult:
    """What one night did (one row of the ``nightly`` table)."""

    run_id: str
    date: dt.date
    status: str = "failed"
    model_id: str | None = None
    events_read: int | None = None
    events_rejected: int | None = None
    windows: int | None = None
    anomalies: int | None = None
    intervals_open: int | None = None
    psi: float | None = None
    ks: float | None = None
    retrained: bool = False
    retrain_reason: str | None = None
    new_model_id: str | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    message: str = ""

    def row(self) -> tuple:
        values = {**self.__dict__, "stage_seconds": json.dumps(self.stage_seconds, sort_keys=True)}
        return tuple(values[f.name] for f in NIGHTLY.fields)


@contextlib.contextmanager
def _timed(into: dict[str, float], name: str) -> Iterator[None]:
    """Add the wall time of the block to ``into[name]`` (seconds; a pass may train twice)."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        into[name] = round(into.get(name, 0.0) + time.perf_counter() - t0, 3)


def _from_features(cfg: NightlyJobConfig) -> bool:
    """Whether the night is scored straight from ``features`` (no ``windows`` rows for it)."""
    return cfg.window.mode == "buckets" and cfg.score.source == "features"


def _train(store: TableStore, cfg: NightlyJobConfig, first: dt.date, last: dt.date) -> RegisteredModel:
    """Train on ``[first, last]``; when nights are scored from features, window the nights of
    that range that have no windows of the spec yet first (training reads the ``windows`` table)."""
    from pyspark.sql import functions as F

    if _from_features(cfg):
        spec, _ = configured_spec(store, cfg.part(WindowJobConfig))
        have = set() if not store.exists(WINDOWS.name) else {
            r.date for r in store.read(WINDOWS.name)
            .where(F.col("date").between(F.lit(first), F.lit(last)) & (F.col("spec_id") == spec.spec_id))
            .select("date").distinct().collect()
        }
        nights = {
            r.date for r in store.read(FEATURES.name).where(F.col("date").between(F.lit(first), F.lit(last)))
            .select("date").distinct().collect()
        }
        missing = sorted(nights - have)
        if missing:
            run_window(store, cfg.part(WindowJobConfig), missing[0], missing[-1])
    _, model = run_train(store, cfg.part(TrainJobConfig), first, last)
    return model


def _retrained_through(store: TableStore, model: RegisteredModel, day: dt.date) -> RegisteredModel | None:
    """A model of the same config already trained through ``day`` (by an earlier run of it)."""
    try:
        return find_model(store, config_key=model.config_key, trained_to=day)
    except ModelNotFoundError:
        return None


def _last_before(store: TableStore, day: dt.date) -> dt.date | None:
    """The latest night in ``features`` before ``day`` (None: none), from the Delta log's file
    list (an aggregate over the table where its paths do not name the nights)."""
    from pyspark.sql import functions as F

    if not store.exists(FEATURES.name):
        return None
    nights = store.partition_dates(FEATURES.name, "date", day)
    if nights is not None:
        return nights[-1] if nights else None
    return store.read(FEATURES.name).where(F.col("date") < F.lit(day)).agg(F.max("date").alias("last")).first().last


def _history_start(store: TableStore, cfg: NightlyJobConfig, first: dt.date) -> dt.date:
    """Where a run from ``first`` starts discretizing: ``first``, or ``nightly.train_days`` nights
    earlier on a new warehouse (``features`` holds no night before ``first``: the first model
    trains on those nights, and the first night's windows need their lookback).

    Raises:
        EmptyInputError: Night ``first - 1`` was never discretized though earlier nights were.
    """
    last = _last_before(store, first)
    if last is None:
        return first - dt.timedelta(days=cfg.nightly.train_days)
    _check_gap(first, last)
    return first


def _check_previous_night(store: TableStore, day: dt.date) -> None:
    """Stop when D-1 has never been discretized though earlier nights were (a gap)."""
    last = _last_before(store, day)
    if last is not None:
        _check_gap(day, last)


def _check_gap(day: dt.date, last: dt.date) -> None:
    """Stop when ``last``, the latest night discretized before ``day``, is not the night before."""
    if last < day - dt.timedelta(days=1):
        raise EmptyInputError(
            f"nightly {day}: night {day - dt.timedelta(days=1)} was never processed (last processed night: {last}); "
            f"run `adspark nightly --date {last + dt.timedelta(days=1)} --to {day}` to catch up"
        )


def _drift(model: RegisteredModel, scored: NightScores | None) -> tuple[float | None, float | None]:
    """PSI and KS of the night's model scores against the model's validation scores (None
    without scores or without a reference)."""
    reference = model.metrics.get("val_score_quantiles") or []
    if scored is None or not scored.windows or not reference or not scored.quantiles:
        return None, None
    current = list(scored.quantiles)
    return psi(reference, current), ks_statistic(reference, current)


def _retrain_reason(
    cfg: NightlyJobConfig, model: RegisteredModel, day: dt.date, psi_value: float | None,
    ks_value: float | None, n: int,
) -> str | None:
    every = cfg.nightly.retrain_every_days
    if every is not None and (day - model.train_to).days >= every:
        return "schedule"
    if n >= cfg.nightly.drift_min_windows:
        if cfg.nightly.drift_psi is not None and psi_value is not None and psi_value > cfg.nightly.drift_psi:
            return "drift"
        if cfg.nightly.drift_ks is not None and ks_value is not None and ks_value > cfg.nightly.drift_ks:
            return "drift"
    return None


@dataclass(frozen=True)
class _Pass:
    """Nights ``[first, end]`` (all with events), scored by one model in one scoring pass."""

    first: dt.date
    end: dt.date
    model: RegisteredModel
    trained_first: bool  # the model was trained for ``first`` (no model was in force)

    def reason(self, cfg: NightlyJobConfig, night: dt.date, scores: NightScores | None) -> str | None:
        """Why the model retrains after ``night`` (None: it does not; never on the night it was
        trained for)."""
        if night == self.first and self.trained_first:
            return None
        psi_value, ks_value = _drift(self.model, scores)
        return _retrain_reason(cfg, self.model, night, psi_value, ks_value, scores.windows if scores else 0)

    def last_night(self, cfg: NightlyJobConfig) -> Callable[[Mapping[dt.date, NightScores]], dt.date]:
        """The rule ending the pass: the first night that retrains, else its end."""

        def last(scores: Mapping[dt.date, NightScores]) -> dt.date:
            return next((n for n in night_range(self.first, self.end) if self.reason(cfg, n, scores.get(n))),
                        self.end)

        return last


def run_nightly(store: TableStore, cfg: NightlyJobConfig, day: dt.date) -> NightlyResult:
    """Process night ``day`` (:func:`run_nights` of one night); its row is appended to the
    ``nightly`` table, failed or not."""
    return run_nights(store, cfg, day, day)[-1]


def run_nights(
    store: TableStore, cfg: NightlyJobConfig, first: dt.date, last: dt.date,
    on_night: Callable[[NightlyResult], None] | None = None,
) -> list[NightlyResult]:
    """Process nights ``[first, last]`` as that many nightly runs one after the other would, in
    fewer Spark passes: the range is discretized once, and the nights between two retrains are
    scored in one pass (cut at the first night that retrains, by schedule or drift: the nights
    after it are scored by the new model). Every table but ``nightly`` ends as after the runs
    one by one; ``nightly`` gets one row per night (one commit), whose ``intervals_open`` is
    counted on the last night of each pass (null on the others) and whose stage timings are the
    pass's, on its last night.

    Args:
        on_night: Called with each night's result when it is final (progress, printing).

    Returns:
        The results of the nights processed, in order. A failure is raised after the rows of the
        nights done and of those it stopped (``failed``) are written.
    """
    run_id = f"nightly-{first}-{uuid.uuid4().hex[:8]}" if first == last else \
        f"nightly-{first}-{last}-{uuid.uuid4().hex[:8]}"
    nights = night_range(first, last)
    done: list[NightlyResult] = []
    timings: dict[str, float] = {}
    stage = functools.partial(_timed, timings)
    t0 = time.perf_counter()
    folder = leases.lease_folder(store.root)
    held: list[leases.Lease] = []
    pending = list(nights)  # the nights not final yet: failed if an error stops the run
    history: list[dt.date] = []  # nights before the range a first run discretizes (leased, no nightly row)

    def finish(result: NightlyResult, closes_pass: bool = True) -> None:
        nonlocal t0
        if closes_pass:  # the pass's timings (the range's discretize on the first) on its last night
            result.stage_seconds = {**timings, "total": round(time.perf_counter() - t0, 3)}
            timings.clear()
            t0 = time.perf_counter()
        if history and result.date == first:
            counts = NightCounts.total([d.nights[night] for night in history])
            result.message += (f"; the {len(history)} nights before it ({history[0]}..{history[-1]}, a new warehouse) "
                               f"discretized first: {counts.summary}")
        pending.remove(result.date)
        done.append(result)
        if on_night is not None:
            on_night(result)

    try:
        for night in nights:
            held.append(leases.acquire(folder, night, run_id, leases.utc_now()))
        if cfg.nightly.seconds("wait_for_earlier_nights"):
            with stage("wait"):
                leases.wait_for_earlier_nights(
                    folder, held[0], cfg.nightly.seconds("wait_for_earlier_nights"),
                    cfg.nightly.seconds("lease_stale_after"),
                )
        start = _history_start(store, cfg, first)  # the earlier nights final: checked, or a new warehouse
        for night in night_range(start, first - dt.timedelta(days=1)):
            held.append(leases.acquire(folder, night, run_id, leases.utc_now()))
        with stage("discretize"):
            d = discretize(store, cfg.part(DiscretizeJobConfig), start, last, within=run_id,
                           fit_to=first - dt.timedelta(days=1) if start < first else None)
        history = night_range(start, first - dt.timedelta(days=1))
        feedback = None
        night = first
        while night <= last:
            if not d.nights[night].read:
                finish(_empty(run_id, night, d.nights[night], cfg))
                night += dt.timedelta(days=1)
                if night <= last:
                    _check_previous_night(store, night)
                continue
            end = night
            while end < last and d.nights[end + dt.timedelta(days=1)].read:
                end += dt.timedelta(days=1)
            feedback = feedback or feedback_summary(store)
            for result, closes_pass in _segment(store, cfg, run_id, night, end, d, stage, feedback):
                finish(result, closes_pass)
            night = end + dt.timedelta(days=1)
        return done
    except Exception as exc:
        for night in list(pending):
            failed = NightlyResult(run_id=run_id, date=night, message=f"nightly {night}: failed: {exc}")
            pending.remove(night)
            done.append(failed)
        if done:
            done[-1].stage_seconds = {**timings, "total": round(time.perf_counter() - t0, 3)}
        raise
    finally:
        try:
            rows = [r.row() for r in sorted(done, key=lambda r: r.date)]
            if rows:
                store.append(store.spark.createDataFrame(rows, NIGHTLY.struct_type()), NIGHTLY.name)
        finally:
            statuses = {r.date: r.status for r in done} | {night: "succeeded" for night in history}
            for lease in held:
                leases.release(folder, lease, succeeded=statuses.get(lease.night) in ("succeeded", "empty"))
        for r in done:
            log.info(r.message)


def _empty(run_id: str, night: dt.date, counts: NightCounts, cfg: NightlyJobConfig) -> NightlyResult:
    return NightlyResult(
        run_id=run_id, date=night, status="empty", events_read=counts.read, events_rejected=counts.rows_rejected,
        message=(
            f"nightly {night}: no events in source {cfg.source.table!r} for this night; nothing "
            "windowed or scored (if the data is late, rerun nightly for this date once it lands)"
        ),
    )


def _segment(
    store: TableStore, cfg: NightlyJobConfig, run_id: str, first: dt.date, end: dt.date, d: Discretized,
    stage: Callable[[str], contextlib.AbstractContextManager[None]], feedback: str,
) -> Iterator[tuple[NightlyResult, bool]]:
    """Nights ``[first, end]``, all with events: windows (unless scored from features), then
    passes of one model each, each followed by its retrain when one is due.

    Yields:
        Each night's result, and whether it closes its pass.
    """
    with stage("window"):
        if _from_features(cfg):  # the scorer cuts the nights' windows: only the spec and its scaling
            specs = [configured_spec(store, cfg.part(WindowJobConfig))[0].spec_id]
        else:
            specs = run_window(store, cfg.part(WindowJobConfig), first, end, within=run_id).spec_ids
    night = first
    while night <= end:
        p = _model_for(store, cfg, night, end, specs, stage)
        with stage("score"):
            s = run_score(store, cfg.part(ScoreJobConfig), night, p.end, model=p.model, within=run_id,
                          last_night=p.last_night(cfg))
        retrained = _retrain(store, cfg, p.model, s.end, p.reason(cfg, s.end, s.nights.get(s.end)), stage)
        for day in night_range(night, s.end):
            scores = s.nights.get(day)
            psi_value, ks_value = _drift(p.model, scores)
            result = NightlyResult(
                run_id=run_id, date=day, status="succeeded", model_id=p.model.model_id,
                events_read=d.nights[day].read, events_rejected=d.nights[day].rows_rejected,
                windows=scores.windows if scores else 0, anomalies=scores.anomalies if scores else 0,
                intervals_open=s.intervals.open if day == s.end else None, psi=psi_value, ks=ks_value,
            )
            if day == night and p.trained_first:
                result.retrained, result.retrain_reason, result.new_model_id = True, "no_model", p.model.model_id
            if day == s.end and retrained is not None:
                result.retrained, result.retrain_reason, result.new_model_id = True, retrained[0], retrained[1]
            result.message = _message(result, d.nights[day], scores, s, night, feedback)
            yield result, day == s.end
        night = s.end + dt.timedelta(days=1)


def _model_for(
    store: TableStore, cfg: NightlyJobConfig, night: dt.date, end: dt.date, specs: list[str],
    stage: Callable[[str], contextlib.AbstractContextManager[None]],
) -> _Pass:
    """The pass from ``night``: the model in force (trained first when there is none), and the
    last night it may score (the night its schedule retrains it, or ``end``)."""
    try:
        model = model_in_force(store, cfg.part(TrainJobConfig), cfg.score.model_id, specs, trained_before=night)
    except ModelNotFoundError:
        if cfg.score.model_id:
            raise
        model = None
    trained = model is None
    if model is None:
        with stage("train"):
            model = _train(store, cfg, night - dt.timedelta(days=cfg.nightly.train_days), night - dt.timedelta(days=1))
    if not _from_features(cfg) and model.spec_id not in specs:  # the nights' windows are of another spec
        raise SchemaMismatchError(WINDOWS.name, "spec_id", f"{model.spec_id} (model {model.model_id})",
                                  ", ".join(specs))
    every = cfg.nightly.retrain_every_days
    if every is not None:
        end = min(end, max(night, model.train_to + dt.timedelta(days=every)))
    return _Pass(night, end, model, trained)


def _retrain(
    store: TableStore, cfg: NightlyJobConfig, model: RegisteredModel, night: dt.date, reason: str | None,
    stage: Callable[[str], contextlib.AbstractContextManager[None]],
) -> tuple[str, str] | None:
    """Retrain after ``night`` when ``reason``; (reason, new model id), or None."""
    if not reason:
        return None
    done = _retrained_through(store, model, night)
    if done is not None:  # a rerun of this night: its retrain already happened
        return f"{reason} (earlier run)", done.model_id
    with stage("train"):
        new = _train(store, cfg, night - dt.timedelta(days=cfg.nightly.train_days - 1), night)
    return reason, new.model_id


def _message(
    result: NightlyResult, counts: NightCounts, scores: NightScores | None, s: ScoreResult, first: dt.date,
    feedback: str,
) -> str:
    n = scores or NightScores(0, 0, 0, ())
    model = s.model
    scored = (
        f"model {model.model_id} ({model.detector}): {n.windows} windows scored, {n.anomalies} anomalous, "
        f"{n.alerts} alerts"
    )
    if result.date == s.end:
        scored += f"; intervals: {s.intervals}"
    if s.end > first:
        scored += f" (nights {first}..{s.end} scored in one pass)"
    drift = "" if result.psi is None else f"; drift PSI {result.psi:.3f}, KS {result.ks:.3f}"
    retrain = (
        f"; retrained ({result.retrain_reason}): model {result.new_model_id} from now on" if result.retrained else ""
    )
    return f"nightly {result.date}: {counts.summary}; {scored}{drift}{retrain}; {feedback}"
