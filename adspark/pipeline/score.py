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
from dataclasses import dataclass
from typing import TYPE_CHECKING

from adspark.config import ScoreJobConfig
from adspark.core.drift import QUANTILE_LEVELS
from adspark.errors import ConfigError, DataContractError, EmptyInputError, SchemaMismatchError, check_range
from adspark.models.registry import RegisteredModel, artifact_files
from adspark.pipeline.alerts import (
    AlertOrigin,
    alert_frames,
    alert_origin,
    prune_states,
    without_alerts,
)
from adspark.pipeline.grouping import entity_groups
from adspark.pipeline.intervals import IntervalsSummary, update_intervals
from adspark.pipeline.night_threshold import describe, night_thresholds, with_night_thresholds
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
class ScoreResult:
    """What scoring a range did.

    Attributes:
        run: The ``runs`` record (``message``, counts).
        model: The model that scored.
        windows: Windows scored (= scores written).
        anomalies: Of those, anomalous.
        alerts: Alerts raised (onsets of anomalous runs).
        intervals: The model's intervals after the update.
        score_quantiles: The model's raw scores of the range at
            :data:`adspark.core.drift.QUANTILE_LEVELS` (empty without windows); what drift is
            measured on.
    """

    run: RunRecord
    model: RegisteredModel
    windows: int
    anomalies: int
    alerts: int
    intervals: IntervalsSummary
    score_quantiles: tuple[float, ...]

    @property
    def message(self) -> str:
        """The run's one-line summary."""
        return self.run.message


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
    shipped = artifact_files(model)
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


def _write_scores(
    store: TableStore, cfg: ScoreJobConfig, model: RegisteredModel, spec: StoredSpec, start: dt.date,
    end: dt.date, run_id: str, origin: AlertOrigin | None, features: "DataFrame | None",
) -> tuple[str, str]:
    """Score ``[start, end]`` and replace those nights in ``scores`` (and ``alert_state``), with
    Arrow batches of ``score.arrow_batch_rows`` rows (the session's setting is restored after).

    Args:
        origin: Where the alert pass starts (None: no alerts).
        features: The features the windows are cut from (None: read by the scorer).

    Returns:
        (the threshold method the intervals record: ``alerts``, ``night mixture`` when a night got
        its own threshold, else the model's; a phrase for the run message about night thresholds).
    """
    with session_conf(store.spark, ARROW_BATCH_ROWS, str(cfg.score.arrow_batch_rows)):
        return _score_and_write(store, cfg, model, spec, start, end, run_id, origin, features)


def _score_and_write(
    store: TableStore, cfg: ScoreJobConfig, model: RegisteredModel, spec: StoredSpec, start: dt.date,
    end: dt.date, run_id: str, origin: AlertOrigin | None, features: "DataFrame | None",
) -> tuple[str, str]:
    mine = f"model_id = {sql_string(model.model_id)}"  # another model's scores of these nights stay
    if origin is None:
        scored = scored_windows(store, cfg, model, spec, start, end, features=features).persist()
        try:
            verdicts = night_thresholds(scored, model, cfg.score.night_threshold)
            store.replace_dates(without_alerts(with_night_thresholds(scored, verdicts), model, run_id), SCORES.name,
                                "date", start, end, partition_by=SCORES.partition_by, extra_predicate=mine)
        finally:
            scored.unpersist()
        method = "night mixture" if any(v.applied for v in verdicts.values()) else model.threshold.method
        return method, describe(verdicts)
    key, source, first = origin.key, origin.source, origin.first
    per_feature = len(model.metrics.get("val_feature_error_median") or []) == len(spec.features)
    scored = scored_windows(store, cfg, model, spec, first, end, ("raw_values",), per_feature, features)
    scores, states = alert_frames(store, cfg.alerts, model, spec, scored, source, first, start, end, run_id)
    store.replace_dates(states, ALERT_STATE.name, "date", first, end, partition_by=ALERT_STATE.partition_by,
                        extra_predicate=f"alert_key = {sql_string(key)}")
    if cfg.alerts.state_nights:
        prune_states(store, key, end, cfg.alerts.state_nights)
    store.replace_dates(scores, SCORES.name, "date", start, end, partition_by=SCORES.partition_by,
                        extra_predicate=mine)
    level = model.metrics.get("alert_level") or cfg.alerts.level  # recalibrated from feedback, else configured
    return f"alerts (level {level:g})", ""


def run_score(
    store: TableStore, cfg: ScoreJobConfig, start: dt.date, end: dt.date, model: RegisteredModel | None = None,
    within: str | None = None,
) -> ScoreResult:
    """Score the windows of ``[start, end]``, replace those nights in ``scores``, update intervals.

    Args:
        model: The model to score with, already resolved by the caller (``nightly`` resolves the
            model in force once per night); None: :func:`resolve_model`.
        within: The run id of the job this runs as a stage of (:func:`adspark.runs.recorded_run`).
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
                run.rows_read = expected_windows(features, spec, start, end)
                if not run.rows_read:
                    raise EmptyInputError(
                        f"no windows to cut from {FEATURES.name} between {start} and {end} (window spec "
                        f"{spec.spec_id}): run `adspark discretize` for these nights first"
                    )
            else:
                run.rows_read = store.read(WINDOWS.name).where(
                    F.col("date").between(F.lit(start), F.lit(end)) & (F.col("spec_id") == model.spec_id)
                ).count()
            method, nights = _write_scores(store, cfg, model, spec, start, end, run.run_id, origin, features)
        finally:
            if features is not None:
                features.unpersist()
        counts = (
            store.read(SCORES.name)
            .where(F.col("date").between(F.lit(start), F.lit(end)) & (F.col("model_id") == model.model_id))
            .agg(F.count(F.lit(1)).alias("n"), F.sum(F.col("is_anomaly").cast("long")).alias("anomalies"),
                 F.sum(F.col("alert").cast("long")).alias("alerts"),
                 F.percentile_approx("model_score", QUANTILE_LEVELS.tolist(), 1000).alias("quantiles"))
            .first()
        )
        run.rows_written = int(counts.n)
        if run.rows_written != run.rows_read:
            raise DataContractError(
                f"score {start}..{end}: {run.rows_read} windows read but {run.rows_written} scores written"
                + (" (windows cut from features)" if from_features(cfg, spec) else "")
            )
        summary = update_intervals(store, cfg.intervals, model, start, end, run.run_id, method)
        decided = (
            f"threshold {model.threshold.method} = {model.threshold.value:.6g}"
            + (f", {len(model.entity_thresholds)} per entity" if model.entity_thresholds else "")
            + nights
            if not method.startswith("alerts") else method
        )
        anomalies, alerts = int(counts.anomalies or 0), int(counts.alerts or 0)
        run.summary = (
            f"model {model.model_id} ({model.detector}, {decided}): "
            f"{run.rows_written} windows scored, {anomalies} anomalous, {alerts} alerts; intervals: {summary}"
        )
        run.message = f"score {start}..{end}: {run.summary}"
    return ScoreResult(run, model, run.rows_written, anomalies, alerts, summary,
                       tuple(float(q) for q in counts.quantiles or ()))
