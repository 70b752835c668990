"""Job ``score``: windows of a date range -> ``scores`` (idempotent per night) -> ``intervals``.

The model is the one named in config, else the latest registered for the train config (and the
windows' spec, when the range has windows). In bucket mode the windows are cut from the
``features`` of the range plus its lookback inside the Python worker that scores them
(``score.source: features``, the default: one grouped pass, the window job's own cutting
function, no ``windows`` rows needed); ``score.source: windows`` and row mode read the
``windows`` table through ``mapInArrow`` (see :mod:`adspark.pipeline.scorer`). Either way the
model is loaded once per Python worker. In bucket mode with ``alerts.enabled`` (the default), the
scored windows then go through the adaptive alerts (:mod:`adspark.pipeline.alerts`), which carry
per-entity state in ``alert_state``; otherwise the model's fitted threshold decides.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from adspark.config import ScoreJobConfig
from adspark.core.drift import QUANTILE_LEVELS
from adspark.errors import ConfigError, DataContractError, EmptyInputError, SchemaMismatchError, check_range
from adspark.models.registry import RegisteredModel, artifact_files, scoring_files
from adspark.pipeline.alerts import (
    AlertOrigin,
    alert_frames,
    alert_origin,
    prune_states,
    without_alerts,
)
from adspark.pipeline.grouping import entity_groups
from adspark.pipeline.intervals import IntervalsSummary, update_intervals
from adspark.pipeline.night_threshold import describe, night_quantiles, night_thresholds, with_night_thresholds
from adspark.pipeline.scorer import make_feature_scorer, make_scorer, output_struct
from adspark.pipeline.specs import StoredSpec
from adspark.pipeline.window import (
    expected_windows,
    global_stats_of,
    grouped_features,
    make_cutter,
    night_features,
    stored_stats,
)
from adspark.runs import RunRecord, recorded_run
from adspark.session import ARROW_BATCH_ROWS, is_connect, session_conf
from adspark.storage import TableStore, sql_string
from schemas import ALERT_STATE, FEATURES, SCORES, WINDOWS

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NightScores:
    """One night's scores, as written.

    Attributes:
        windows: Windows scored.
        anomalies: Of those, anomalous.
        alerts: Alerts raised (onsets of anomalous runs).
        quantiles: The model's raw scores of the night at
            :data:`adspark.core.drift.QUANTILE_LEVELS` (empty without finite scores); what drift
            is measured on.
    """

    windows: int
    anomalies: int
    alerts: int
    quantiles: tuple[float, ...]


LastNight = Callable[[Mapping[dt.date, NightScores]], dt.date]
"""Given every scored night's scores (before any is written), the last night to write: the
nights after it are left unwritten (``nightly`` stops a range at a night that retrains)."""


@dataclass(frozen=True)
class ScoreResult:
    """What scoring a range did.

    Attributes:
        run: The ``runs`` record (``message``, counts).
        model: The model that scored.
        end: The last night written (the range's end unless a ``last_night`` rule stopped it).
        nights: Per night written (nights without windows left out), its scores.
        intervals: The model's intervals after the update.
    """

    run: RunRecord
    model: RegisteredModel
    end: dt.date
    nights: dict[dt.date, NightScores]
    intervals: IntervalsSummary

    @property
    def windows(self) -> int:
        """Windows scored (= scores written)."""
        return sum(n.windows for n in self.nights.values())

    @property
    def anomalies(self) -> int:
        return sum(n.anomalies for n in self.nights.values())

    @property
    def alerts(self) -> int:
        return sum(n.alerts for n in self.nights.values())

    @property
    def message(self) -> str:
        """The run's one-line summary."""
        return self.run.message


def night_scores(rows: DataFrame) -> dict[dt.date, NightScores]:
    """Per night of ``rows`` (in the shape of the ``scores`` table): counts, and the model score's
    quantiles at :data:`adspark.core.drift.QUANTILE_LEVELS` (as the model's validation scores are
    summarized; exact up to :data:`adspark.pipeline.night_threshold.EXACT_ROWS` scores)."""
    from pyspark.sql import functions as F

    counts = rows.groupBy("date").agg(
        F.count(F.lit(1)).alias("n"), F.sum(F.col("is_anomaly").cast("long")).alias("anomalies"),
        F.sum(F.col("alert").cast("long")).alias("alerts"),
    ).collect()
    quantiles = night_quantiles(rows, "model_score", QUANTILE_LEVELS)
    return {
        r.date: NightScores(int(r.n), int(r.anomalies or 0), int(r.alerts or 0),
                            tuple(float(q) for q in quantiles[r.date][0]) if r.date in quantiles else ())
        for r in counts
    }


def _through(rows: DataFrame, last: dt.date) -> DataFrame:
    from pyspark.sql import functions as F

    return rows.where(F.col("date") <= F.lit(last))


def _range_specs(store: TableStore, start: dt.date, end: dt.date) -> list[str]:
    from pyspark.sql import functions as F

    if not store.exists(WINDOWS.name):
        return []
    rows = (
        store.read(WINDOWS.name)
        .where(F.col("date").between(F.lit(start), F.lit(end)))
        .select("spec_id").distinct().collect()
    )
    return sorted(r.spec_id for r in rows)


def resolve_model(store: TableStore, cfg: ScoreJobConfig, start: dt.date, end: dt.date) -> RegisteredModel:
    """The model to score ``[start, end]`` with, checked against the windows' spec.

    With windows in the range: ``score.model_id``, else the latest model of the train config for
    their spec, else the latest of their spec. Without (``score.source: features``):
    ``score.model_id``, else the latest model of the train config.

    Raises:
        EmptyInputError: No windows in the range and the model cannot score from features.
        SchemaMismatchError: The model's window spec is not the windows' spec.
        ModelNotFoundError: No model matches.
        ConfigError: No windows, no ``score.model_id`` and no ``train`` section.
    """
    from adspark.models.lookup import model_in_force

    specs = _range_specs(store, start, end)
    train = cfg if cfg.train is not None else None  # config_key reads only cfg.train
    if not specs:
        no_windows = f"no windows between {start} and {end}: run `adspark window` first"
        if cfg.score.source == "windows":
            raise EmptyInputError(no_windows)
        if not cfg.score.model_id and train is None:
            raise ConfigError(
                f"score {start}..{end}: no windows to take the window spec from; set score.model_id "
                "or give a train section (its latest model scores)"
            )
        model = model_in_force(store, train, cfg.score.model_id)  # type: ignore[arg-type]
        if StoredSpec.load(store, model.spec_id).mode != "buckets":
            raise EmptyInputError(f"{no_windows} (model {model.model_id} scores row-mode windows)")
        return model
    # several specs in the range and no model id: the newest spec's latest model, checked below
    model = model_in_force(store, train if len(specs) == 1 else None, cfg.score.model_id, specs)  # type: ignore[arg-type]
    if model.spec_id not in specs:
        raise SchemaMismatchError(
            WINDOWS.name, "spec_id", f"{model.spec_id} (model {model.model_id})", ", ".join(specs)
        )
    return model


def feature_names(store: TableStore, spec_id: str) -> list[str]:
    """The F axis of a window spec."""
    return list(StoredSpec.load(store, spec_id).features)


def from_features(cfg: ScoreJobConfig, spec: StoredSpec) -> bool:
    """Whether the windows are cut from ``features`` in the scorer (bucket mode with
    ``score.source: features``) rather than read from the ``windows`` table."""
    return cfg.score.source == "features" and spec.mode == "buckets"


def scored_windows(
    store: TableStore, cfg: ScoreJobConfig, model: RegisteredModel, spec: StoredSpec,
    start: dt.date, end: dt.date, passthrough: tuple[str, ...] = (), feature_errors: bool = False,
    features: "DataFrame | None" = None,
) -> DataFrame:
    """The model's scores of the windows of ``[start, end]`` (lazy): the scorer's output fields
    (see :func:`adspark.pipeline.scorer.make_scorer`).

    From features (:func:`from_features`): one grouped pass over the nights' features plus the
    lookback (``features`` when the caller read them already, covering at least
    :func:`adspark.pipeline.window.night_features` of the range), cut into windows by the window
    job's own function inside the Python worker and scored there. Else the ``windows`` table
    through ``mapInArrow``.
    """
    from pyspark.sql import functions as F

    spark = store.spark
    shipped = scoring_files(artifact_files(model))
    # a broadcast where there is a SparkContext; over Spark Connect the files travel in the closure
    files = shipped if is_connect(spark) else spark.sparkContext.broadcast(shipped)
    scorer = make_scorer(
        model, files, list(spec.features), cfg.score.batch_size, cfg.score.top_k, cfg.score.tf_threads,
        passthrough, feature_errors,
    )
    out = output_struct(passthrough, feature_errors)
    if from_features(cfg, spec):
        stats = stored_stats(store, spec)
        cut = make_cutter(spec, global_stats_of(stats), start, end, raw="raw_values" in passthrough)
        run = make_feature_scorer(cut, scorer, cfg.score.arrow_batch_rows, passthrough, feature_errors)
        rows = features if features is not None else night_features(store, spec, start, end)
        grouped = grouped_features(rows, stats, spec, entity_groups(spark, start, end))
        return grouped.applyInArrow(run, out)
    windows = (
        store.read(WINDOWS.name)
        .where(F.col("date").between(F.lit(start), F.lit(end)) & (F.col("spec_id") == model.spec_id))
        .select("entity", "window_id", "window_start", "window_end", "date", "values", *passthrough)
    )
    return windows.mapInArrow(scorer, out)


@dataclass(frozen=True)
class _Written:
    """What :func:`_write_scores` wrote.

    Attributes:
        method: The threshold method the intervals record: ``alerts``, ``night mixture`` when a
            night got its own threshold, else the model's.
        nights_phrase: A phrase for the run message about night thresholds.
        end: The last night written.
        nights: The scores of each night written.
    """

    method: str
    nights_phrase: str
    end: dt.date
    nights: dict[dt.date, NightScores]


def _write_scores(
    store: TableStore, cfg: ScoreJobConfig, model: RegisteredModel, spec: StoredSpec, start: dt.date,
    end: dt.date, run_id: str, origin: AlertOrigin | None, features: "DataFrame | None",
    last_night: LastNight | None, tag: str,
) -> _Written:
    """Score ``[start, end]`` and replace those nights (through ``last_night``'s choice) in
    ``scores`` (and ``alert_state``), with Arrow batches of ``score.arrow_batch_rows`` rows (the
    session's setting is restored after).

    Args:
        origin: Where the alert pass starts (None: no alerts).
        features: The features the windows are cut from (None: read by the scorer).
        last_night: Chooses the last night to write from every night's scores (None: ``end``).
        tag: The ``scores`` commit's ``userMetadata`` (:meth:`adspark.storage.TableStore.committed_rows`).
    """
    with session_conf(store.spark, ARROW_BATCH_ROWS, str(cfg.score.arrow_batch_rows)):
        return _score_and_write(store, cfg, model, spec, start, end, run_id, origin, features, last_night, tag)


def _cut(nights: dict[dt.date, NightScores], end: dt.date, last_night: LastNight | None) -> dt.date:
    """The last night to write: ``last_night``'s choice, never after ``end``."""
    return end if last_night is None or not nights else min(end, last_night(nights))


def _score_and_write(
    store: TableStore, cfg: ScoreJobConfig, model: RegisteredModel, spec: StoredSpec, start: dt.date,
    end: dt.date, run_id: str, origin: AlertOrigin | None, features: "DataFrame | None",
    last_night: LastNight | None, tag: str,
) -> _Written:
    mine = f"model_id = {sql_string(model.model_id)}"  # another model's scores of these nights stay
    if origin is None:
        scored = scored_windows(store, cfg, model, spec, start, end, features=features).persist()
        try:
            verdicts = night_thresholds(scored, model, cfg.score.night_threshold)
            rows = without_alerts(with_night_thresholds(scored, verdicts), model, run_id)
            nights = night_scores(rows)
            last = _cut(nights, end, last_night)
            store.replace_dates(_through(rows, last), SCORES.name, "date", start, last,
                                partition_by=SCORES.partition_by, extra_predicate=mine, tag=tag)
        finally:
            scored.unpersist()
        verdicts = {d: v for d, v in verdicts.items() if d <= last}
        method = "night mixture" if any(v.applied for v in verdicts.values()) else model.threshold.method
        return _Written(method, describe(verdicts), last, {d: n for d, n in nights.items() if d <= last})
    key = origin.key
    per_feature = len(model.metrics.get("val_feature_error_median") or []) == len(spec.features)
    scored = scored_windows(store, cfg, model, spec, origin.first, end, ("raw_values",), per_feature, features)
    scores, states = alert_frames(store, cfg.alerts, model, spec, scored, origin, start, end, run_id)
    nights = night_scores(scores)  # the alert pass is checkpointed: what follows reads it, not the scorer
    last = _cut(nights, end, last_night)
    # the alert pass is causal: its rows through ``last`` are those of a pass that ended there
    # the states of the nights replayed before ``start`` are not kept (the alerter emits none): a
    # later run of one of them finds no state before it and replays the same nights again
    store.replace_dates(_through(states, last), ALERT_STATE.name, "date", start, last,
                        partition_by=ALERT_STATE.partition_by, extra_predicate=f"alert_key = {sql_string(key)}")
    if cfg.alerts.state_nights:
        prune_states(store, key, last, cfg.alerts.state_nights)
    store.replace_dates(_through(scores, last), SCORES.name, "date", start, last, partition_by=SCORES.partition_by,
                        extra_predicate=mine, tag=tag)
    level = model.metrics.get("alert_level") or cfg.alerts.level  # recalibrated from feedback, else configured
    return _Written(f"alerts (level {level:g})", "", last, {d: n for d, n in nights.items() if d <= last})


def run_score(
    store: TableStore, cfg: ScoreJobConfig, start: dt.date, end: dt.date, model: RegisteredModel | None = None,
    within: str | None = None, last_night: LastNight | None = None,
) -> ScoreResult:
    """Score the windows of ``[start, end]``, replace those nights in ``scores``, update intervals.

    Args:
        model: The model to score with, already resolved by the caller (``nightly`` resolves the
            model in force once per pass); None: :func:`resolve_model`.
        within: The run id of the job this runs as a stage of (:func:`adspark.runs.recorded_run`).
        last_night: Chooses, from every night's scores, the last night to write (``nightly``
            stops a range at a night that retrains: the nights after it are scored again by the
            new model); None: ``end``. The nights are scored in one pass either way.
    """
    from pyspark.sql import functions as F

    check_range(start, end)
    with recorded_run(store, "score", cfg, start, end, within=within) as run:
        model = model or resolve_model(store, cfg, start, end)
        spec = StoredSpec.load(store, model.spec_id)
        origin = alert_origin(store, cfg.alerts, model, spec, start)
        # from features: the features of every night scored (the alerts' replay included) and
        # their lookback, read once and kept for the count and the scoring pass
        features = night_features(store, spec, origin.first if origin else start, end).persist() \
            if from_features(cfg, spec) else None
        try:
            if features is not None:
                expected = expected_windows(features, spec, start, end)
                if not sum(expected.values()):
                    raise EmptyInputError(
                        f"no windows to cut from {FEATURES.name} between {start} and {end} (window spec "
                        f"{spec.spec_id}): run `adspark discretize` for these nights first"
                    )
            else:
                expected = {r["date"]: int(r["count"]) for r in store.read(WINDOWS.name).where(
                    F.col("date").between(F.lit(start), F.lit(end)) & (F.col("spec_id") == model.spec_id)
                ).groupBy("date").count().collect()}
            tag = f"adspark score {run.run_id} {uuid.uuid4().hex}"
            written = _write_scores(store, cfg, model, spec, start, end, run.run_id, origin, features, last_night,
                                    tag)
        finally:
            if features is not None:
                features.unpersist()
        last = written.end
        run.rows_read = sum(n for d, n in expected.items() if d <= last)
        # what Delta recorded for the commit (no second read of the scores), else a count
        run.rows_written = store.committed_rows(SCORES.name, tag)
        if run.rows_written is None:
            run.rows_written = (
                store.read(SCORES.name)
                .where(F.col("date").between(F.lit(start), F.lit(last)) & (F.col("model_id") == model.model_id))
                .count()
            )
        if run.rows_written != run.rows_read or run.rows_written != sum(n.windows for n in written.nights.values()):
            raise DataContractError(
                f"score {start}..{last}: {run.rows_read} windows read but {run.rows_written} scores written"
                + (" (windows cut from features)" if from_features(cfg, spec) else "")
            )
        summary = update_intervals(store, cfg.intervals, model, start, last, run.run_id, written.method)
        decided = (
            f"threshold {model.threshold.method} = {model.threshold.value:.6g}"
            + (f", {len(model.entity_thresholds)} per entity" if model.entity_thresholds else "")
            + written.nights_phrase
            if not written.method.startswith("alerts") else written.method
        )
        result = ScoreResult(run, model, last, written.nights, summary)
        run.summary = (
            f"model {model.model_id} ({model.detector}, {decided}): "
            f"{result.windows} windows scored, {result.anomalies} anomalous, {result.alerts} alerts; "
            f"intervals: {summary}"
        )
        run.message = f"score {start}..{last}: {run.summary}"
    return result
