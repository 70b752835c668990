"""Job ``score``: windows of a date range -> ``scores`` (idempotent per night) -> ``intervals``.

The model is the one named in config, else the latest registered for the train config and the
windows' spec. Windows go through ``mapInArrow`` (see :mod:`adspark.pipeline.scorer`): the model
is loaded once per Python worker from broadcast bytes and scores Arrow batches.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from adspark.config import ScoreJobConfig
from adspark.errors import ConfigError, DataContractError, EmptyInputError, SchemaMismatchError
from adspark.pipeline.intervals import update_intervals
from adspark.pipeline.scorer import OUTPUT_FIELDS, make_scorer
from adspark.runs import RunRecord, recorded_run
from adspark.tables import TableStore
from adspark.train.registry import RegisteredModel, artifact_files, find_model
from schemas import SCORES, WINDOW_SPECS, WINDOWS

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)


def _range_specs(store: TableStore, start: dt.date, end: dt.date) -> list[str]:
    from pyspark.sql import functions as F

    rows = (
        store.read(WINDOWS.name)
        .where(F.col("date").between(F.lit(start), F.lit(end)))
        .select("spec_id").distinct().collect()
    )
    return sorted(r.spec_id for r in rows)


def resolve_model(store: TableStore, cfg: ScoreJobConfig, start: dt.date, end: dt.date) -> RegisteredModel:
    """The model to score ``[start, end]`` with, checked against the windows' spec.

    Raises:
        EmptyInputError: No windows in the range.
        SchemaMismatchError: The model's window spec is not the windows' spec.
        ModelNotFoundError: No model matches.
    """
    from adspark.pipeline.train import config_key

    specs = _range_specs(store, start, end)
    if not specs:
        raise EmptyInputError(f"no windows between {start} and {end}: run `adspark window` first")
    if cfg.score.model_id:
        model = find_model(store, model_id=cfg.score.model_id)
    elif cfg.train is not None and len(specs) == 1:
        model = find_model(store, config_key=config_key(cfg, specs[0]))
    else:
        model = find_model(store, spec_id=specs[-1])
    if model.spec_id not in specs:
        raise SchemaMismatchError(
            WINDOWS.name, "spec_id", f"{model.spec_id} (model {model.model_id})", ", ".join(specs)
        )
    return model


def feature_names(store: TableStore, spec_id: str) -> list[str]:
    """The F axis of a window spec."""
    from pyspark.sql import functions as F

    row = store.read(WINDOW_SPECS.name).where(F.col("spec_id") == spec_id).first()
    if row is None:
        raise ConfigError(f"window spec {spec_id!r} is not in table {WINDOW_SPECS.name}")
    return list(row.features)


def score_frame(
    store: TableStore, cfg: ScoreJobConfig, model: RegisteredModel, start: dt.date, end: dt.date,
    run_id: str,
) -> "DataFrame":
    """The scored windows of ``[start, end]`` (lazy), columns of the ``scores`` table."""
    from pyspark.sql import functions as F

    spark = store.spark
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(cfg.score.arrow_batch_rows))
    windows = (
        store.read(WINDOWS.name)
        .where(F.col("date").between(F.lit(start), F.lit(end)) & (F.col("spec_id") == model.spec_id))
        .select("entity", "window_id", "window_start", "window_end", "date", "values")
    )
    files = spark.sparkContext.broadcast(artifact_files(model))
    scorer = make_scorer(
        model, files, feature_names(store, model.spec_id), cfg.score.batch_size, cfg.score.top_k,
        cfg.score.tf_threads,
    )
    scored = windows.mapInArrow(scorer, SCORES.struct_type(OUTPUT_FIELDS))
    return scored.select(
        *OUTPUT_FIELDS, F.lit(model.model_id).alias("model_id"), F.lit(run_id).alias("run_id")
    )


def run_score(store: TableStore, cfg: ScoreJobConfig, start: dt.date, end: dt.date) -> RunRecord:
    """Score the windows of ``[start, end]``, replace those nights in ``scores``, update intervals."""
    from pyspark.sql import functions as F

    if end < start:
        raise ConfigError(f"--to {end} is before --from {start}")
    with recorded_run(store, "score", cfg, start, end) as run:
        model = resolve_model(store, cfg, start, end)
        scored = score_frame(store, cfg, model, start, end, run.run_id)
        store.replace_dates(scored, SCORES.name, "date", start, end, partition_by=SCORES.partition_by)
        counts = (
            store.read(SCORES.name)
            .where(F.col("date").between(F.lit(start), F.lit(end)))
            .agg(F.count(F.lit(1)).alias("n"), F.sum(F.col("is_anomaly").cast("long")).alias("anomalies"))
            .first()
        )
        run.rows_read = store.read(WINDOWS.name).where(
            F.col("date").between(F.lit(start), F.lit(end)) & (F.col("spec_id") == model.spec_id)
        ).count()
        run.rows_written = int(counts.n)
        if run.rows_written != run.rows_read:
            raise DataContractError(
                f"score {start}..{end}: {run.rows_read} windows read but {run.rows_written} scores written"
            )
        summary = update_intervals(store, cfg.intervals, model, start, end, run.run_id)
        run.message = (
            f"score {start}..{end}: model {model.model_id} ({model.detector}, threshold "
            f"{model.threshold.method} = {model.threshold.value:.6g}"
            + (f", {len(model.entity_thresholds)} per entity" if model.entity_thresholds else "")
            + f"): {run.rows_written} windows scored, {int(counts.anomalies or 0)} above threshold; "
            f"intervals: {summary}"
        )
    return run
