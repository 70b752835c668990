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
from dataclasses import dataclass, field
from typing import Iterator

from adspark.config import (
    DiscretizeJobConfig,
    NightlyJobConfig,
    ScoreJobConfig,
    TrainJobConfig,
    WindowJobConfig,
)
from adspark.core.drift import ks_statistic, psi
from adspark.errors import EmptyInputError, ModelNotFoundError, SchemaMismatchError
from adspark.models.lookup import model_in_force
from adspark.models.registry import RegisteredModel, find_model
from adspark.pipeline import leases
from adspark.pipeline.discretize import run_discretize
from adspark.pipeline.feedback import feedback_summary
from adspark.pipeline.score import ScoreResult, run_score
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
    """Record the wall time of the block as ``into[name]`` (seconds)."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        into[name] = round(time.perf_counter() - t0, 3)


def _night_specs(store: TableStore, day: dt.date) -> list[str]:
    """The window specs of the night's ``windows`` rows."""
    from pyspark.sql import functions as F

    return [
        r.spec_id
        for r in store.read(WINDOWS.name).where(F.col("date") == F.lit(day)).select("spec_id").distinct().collect()
    ]


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


def _check_previous_night(store: TableStore, day: dt.date) -> None:
    """Stop when D-1 has never been discretized though earlier nights were (a gap)."""
    from pyspark.sql import functions as F

    if not store.exists(FEATURES.name):
        return
    prev = day - dt.timedelta(days=1)
    dates = store.read(FEATURES.name).where(F.col("date") < F.lit(day)).agg(
        F.max("date").alias("last")
    ).first()
    if dates.last is not None and dates.last < prev:
        raise EmptyInputError(
            f"nightly {day}: night {prev} was never processed (last processed night: {dates.last}); "
            f"run `adspark nightly --date {dates.last + dt.timedelta(days=1)} --to {day}` to catch up"
        )


def _drift(model: RegisteredModel, scored: ScoreResult) -> tuple[float | None, float | None]:
    """PSI and KS of the night's model scores against the model's validation scores (None
    without scores or without a reference)."""
    reference = model.metrics.get("val_score_quantiles") or []
    if not scored.windows or not reference or not scored.score_quantiles:
        return None, None
    current = list(scored.score_quantiles)
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


def run_nightly(store: TableStore, cfg: NightlyJobConfig, day: dt.date) -> NightlyResult:
    """Process night ``day``; the result is appended to the ``nightly`` table, failed or not."""
    result = NightlyResult(run_id=f"nightly-{day}-{uuid.uuid4().hex[:8]}", date=day)
    stage = functools.partial(_timed, result.stage_seconds)
    t0 = time.perf_counter()
    folder = leases.lease_folder(store.root)
    lease = leases.acquire(folder, day, result.run_id, leases.utc_now())
    try:
        if cfg.nightly.seconds("wait_for_earlier_nights"):
            with stage("wait"):
                leases.wait_for_earlier_nights(
                    folder, lease, cfg.nightly.seconds("wait_for_earlier_nights"),
                    cfg.nightly.seconds("lease_stale_after"),
                )
        _check_previous_night(store, day)
        with stage("discretize"):
            d = run_discretize(store, cfg.part(DiscretizeJobConfig), day, day, within=result.run_id)
        result.events_read, result.events_rejected = d.rows_read, d.rows_rejected
        if not d.rows_read:
            result.status = "empty"
            result.message = (
                f"nightly {day}: no events in source {cfg.source.table!r} for this night; nothing "
                "windowed or scored (if the data is late, rerun nightly for this date once it lands)"
            )
            return result
        with stage("window"):
            if _from_features(cfg):  # the scorer cuts the night's windows: only the spec and its scaling
                specs = [configured_spec(store, cfg.part(WindowJobConfig))[0].spec_id]
            else:
                result.windows = run_window(store, cfg.part(WindowJobConfig), day, day, within=result.run_id).rows_written
                specs = _night_specs(store, day)
        try:
            model = model_in_force(store, cfg.part(TrainJobConfig), cfg.score.model_id, specs, trained_before=day)
        except ModelNotFoundError:
            if cfg.score.model_id:
                raise
            model = None
        if model is None:
            first = day - dt.timedelta(days=cfg.nightly.train_days)
            with stage("train"):
                model = _train(store, cfg, first, day - dt.timedelta(days=1))
            result.retrained, result.retrain_reason, result.new_model_id = True, "no_model", model.model_id
        if not _from_features(cfg) and model.spec_id not in specs:  # the night's windows are of another spec
            raise SchemaMismatchError(WINDOWS.name, "spec_id", f"{model.spec_id} (model {model.model_id})",
                                      ", ".join(specs))
        result.model_id = model.model_id
        with stage("score"):
            s = run_score(store, cfg.part(ScoreJobConfig), day, day, model=model, within=result.run_id)
        result.windows, result.anomalies, result.intervals_open = s.windows, s.anomalies, s.intervals.open
        result.psi, result.ks = _drift(model, s)
        reason = None if result.retrained else _retrain_reason(cfg, model, day, result.psi, result.ks, s.windows)
        done = _retrained_through(store, model, day) if reason else None
        if done is not None:  # a rerun of this night: its retrain already happened
            result.retrained, result.retrain_reason, result.new_model_id = True, f"{reason} (earlier run)", done.model_id
        elif reason:
            first = day - dt.timedelta(days=cfg.nightly.train_days - 1)
            with stage("train"):
                new = _train(store, cfg, first, day)
            result.retrained, result.retrain_reason, result.new_model_id = True, reason, new.model_id
        result.status = "succeeded"
        drift = "" if result.psi is None else f"; drift PSI {result.psi:.3f}, KS {result.ks:.3f}"
        retrain = (
            f"; retrained ({result.retrain_reason}): model {result.new_model_id} from now on"
            if result.retrained else ""
        )
        result.message = (
            f"nightly {day}: {d.summary}; {result.windows} windows; {s.run.summary}"
            f"{drift}{retrain}; {feedback_summary(store)}"
        )
        return result
    except Exception as exc:
        result.status = "failed"
        result.message = f"nightly {day}: failed: {exc}"
        raise
    finally:
        result.stage_seconds["total"] = round(time.perf_counter() - t0, 3)
        try:
            store.append(store.spark.createDataFrame([result.row()], NIGHTLY.struct_type()), NIGHTLY.name)
        finally:
            leases.release(folder, lease, succeeded=result.status in ("succeeded", "empty"))
        log.info(result.message)
