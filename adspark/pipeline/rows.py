"""Row mode: each validated event is one sample (a window of length 1) in the ``windows`` table.

Measures are scaled with global statistics of the training range (``scaler_stats``, entity
``__global__``); categoricals are one-hot with a vocabulary fitted on the training range
(``vocabularies``); values of unseen categories are all-zero.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from adspark.config import WindowJobConfig
from adspark.core.features import slot_name
from adspark.core.scaling import (
    GLOBAL_ENTITY,
    STATS_COLUMNS,
    center_and_scale,
    floor_note,
    floored_rows,
    stats_vectors,
)
from adspark.errors import EmptyInputError
from adspark.pipeline.discretize import vocabulary
from adspark.pipeline.specs import StoredSpec
from adspark.pipeline.validate import read_source, rejects_frame, validate_events
from adspark.runs import RunRecord
from adspark.storage import TableStore
from schemas import REJECTS, SCALER_STATS, WINDOWS

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame


def _row_stats(accepted: "DataFrame", measures: list[str], spec_id: str, method: str) -> "pd.DataFrame":
    """Global scaling statistics of the measures in row mode (one native aggregation)."""
    from pyspark.sql import functions as F

    aggs = []
    for m in measures:
        aggs += [
            F.percentile_approx(m, [0.25, 0.5, 0.75], 10000).alias(f"{m}__q"),
            F.min(m).alias(f"{m}__min"),
            F.max(m).alias(f"{m}__max"),
            F.stddev_pop(m).alias(f"{m}__std"),
            F.avg(m).alias(f"{m}__mean"),
            F.count(m).alias(f"{m}__n"),
        ]
    row = accepted.agg(*aggs).first()
    q = np.array([row[f"{m}__q"] or [0.0, 0.0, 0.0] for m in measures], dtype=np.float64)
    get = lambda stat: np.array([row[f"{m}__{stat}"] or 0.0 for m in measures], np.float64)  # noqa: E731
    lo, hi, std, iqr = get("min"), get("max"), get("std"), q[:, 2] - q[:, 0]
    center, scale = center_and_scale(method, q[:, 1], iqr, lo, hi, std, get("mean"))
    return pd.DataFrame(
        {
            "spec_id": spec_id, "entity": GLOBAL_ENTITY, "feature": measures, "center": center,
            "scale": scale, "median": q[:, 1], "iqr": iqr, "min": lo, "max": hi,
            "n": get("n").astype(np.int64),
        }
    )[["spec_id", *STATS_COLUMNS]]


def _stored_stats(store: TableStore, spec_id: str) -> "pd.DataFrame":
    """The stored scaler statistics of a spec (empty when none)."""
    from pyspark.sql import functions as F

    if not store.exists(SCALER_STATS.name):
        return pd.DataFrame(columns=["spec_id", *STATS_COLUMNS])
    return store.read(SCALER_STATS.name).where(F.col("spec_id") == spec_id).toPandas()


def run_rows(
    store: TableStore, cfg: WindowJobConfig, start: dt.date, end: dt.date, run: RunRecord
) -> StoredSpec:
    """Write one window of length 1 per validated event of ``[start, end]``; fill ``run``;
    returns the spec used."""
    from pyspark.sql import functions as F

    source = cfg.source
    raw = read_source(store, source)
    fit = cfg.window.scaling
    fit_rows = validate_events(raw, source, fit.fit_from, fit.fit_to).accepted
    vocabs = {c.name: vocabulary(store, source, c, fit_rows) for c in source.categoricals}
    measures = [m.name for m in source.measures]
    names = measures + [slot_name(c, v) for c, vs in vocabs.items() for v in vs]
    spec = StoredSpec.create("rows", names, cfg)
    spec.save(store)
    stats = _stored_stats(store, spec.spec_id)
    if measures and stats.empty:
        if not fit_rows.limit(1).count():
            raise EmptyInputError(f"no accepted events between {fit.fit_from} and {fit.fit_to}")
        fitted = _row_stats(fit_rows, measures, spec.spec_id, fit.method)
        store.append(store.spark.createDataFrame(fitted, SCALER_STATS.struct_type()), SCALER_STATS.name)
        stats = _stored_stats(store, spec.spec_id)
    center, scale = stats_vectors(stats, measures) if measures else (np.zeros(0), np.ones(0))

    validated = validate_events(raw, source, start, end)
    store.replace_dates(
        rejects_frame(validated, run.run_id, "window"), REJECTS.name, "date", start, end,
        partition_by=REJECTS.partition_by, extra_predicate="job = 'window'",
    )
    scaled = [
        F.coalesce((F.col(m) - F.lit(float(c))) / F.lit(float(s)), F.lit(0.0)).cast("float")
        for m, c, s in zip(measures, center, scale, strict=True)
    ]
    raw_cols = [F.coalesce(F.col(m), F.lit(0.0)).cast("float") for m in measures]
    onehot = [
        F.when(F.col(c) == v, 1.0).otherwise(0.0).cast("float") for c, vs in vocabs.items() for v in vs
    ]
    content = [F.col(c) for c in validated.rows.columns
               if c not in ("_group", "_reason", "_column", "_detail", "_raw", "_shared")]
    ident = (
        F.col(source.event_id).cast("string")
        if source.event_id
        else F.sha2(F.to_json(F.struct(*content)), 256)
    )
    windows = validated.accepted.select(
        F.col("_entity").alias("entity"),
        ident.alias("window_id"),
        F.col("_ts").alias("window_start"),
        F.col("_ts").alias("window_end"),
        F.to_date("_ts").alias("date"),
        F.lit(spec.spec_id).alias("spec_id"),
        F.array(*scaled, *onehot).alias("values"),
        F.array(*raw_cols, *onehot).alias("raw_values"),
        F.lit(1).alias("n_steps"),
        F.lit(len(names)).alias("n_features"),
    ).select(*[F.col(f.name).cast(f.data_type()) for f in WINDOWS.fields])
    store.replace_dates(windows, WINDOWS.name, "date", start, end, partition_by=WINDOWS.partition_by)
    run.rows_read = validated.rows.count()
    run.rows_accepted = store.count_dates(WINDOWS.name, "date", start, end)
    run.rows_rejected = store.read(REJECTS.name).where(F.col("run_id") == run.run_id).count()
    run.rows_written = run.rows_accepted
    run.message = (
        f"window (rows) {start}..{end} spec {spec.spec_id}: read {run.rows_read} = accepted "
        f"{run.rows_accepted} + rejected {run.rows_rejected}; {len(names)} features per sample"
        + floor_note(len(hit := floored_rows(stats)), [f"{r.entity}/{r.feature}" for r in hit.head(5).itertuples()])
    )
    return spec
