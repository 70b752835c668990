"""Job ``window``: features -> scaled sliding windows (bucket mode) or events -> samples (row mode).

Bucket mode reads the nights ``[start, end]`` of ``features`` plus the lookback the first window
needs, scales each entity with statistics fitted once on the configured training range (stored in
``scaler_stats`` under the window spec id), and cuts globally aligned windows with
:func:`adspark.core.window.window_rows` (``applyInArrow`` over hash groups of entities).

Row mode turns each validated event into a window of length 1: numeric columns scaled with
statistics of the training range, categoricals one-hot with a vocabulary fitted on it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from adspark.config import WindowJobConfig
from adspark.core.buckets import epoch_seconds
from adspark.core.features import CALENDAR_COLUMNS
from adspark.core.heads import head_rows
from adspark.core.scaling import (
    GLOBAL_ENTITY,
    STATS_COLUMNS,
    fit_entity_stats,
    floor_note,
    floored_rows,
    global_stats,
    stats_vectors,
)
from adspark.core.window import WindowRows, entity_windows
from adspark.errors import EmptyInputError, SchemaMismatchError, check_range
from adspark.pipeline.grouping import entity_groups, group_of
from adspark.pipeline.rows import run_rows
from adspark.pipeline.specs import StoredSpec
from adspark.runs import RunRecord, recorded_run
from adspark.storage import TableStore
from schemas import FEATURES, SCALER_STATS, WINDOWS

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    from pyspark.sql import DataFrame
    from pyspark.sql.pandas.group_ops import PandasCogroupedOps
    from pyspark.sql.types import StructType


def select_features(features: "StructType", cfg: WindowJobConfig) -> list[str]:
    """The feature columns that go into the windows, in table order.

    Raises:
        SchemaMismatchError: When a configured feature is not a column of ``features``.
    """
    keys = set(FEATURES.names)
    numeric = [
        f.name
        for f in features.fields
        if f.name not in keys and f.dataType.simpleString() in ("double", "int", "bigint", "float")
    ]
    if cfg.window.features is None:
        cal = set(CALENDAR_COLUMNS)
        return [c for c in numeric if cfg.window.include_calendar or c not in cal]
    for c in cfg.window.features:
        if c not in numeric:
            raise SchemaMismatchError(
                FEATURES.name, c, f"a numeric feature column among {numeric}", "missing"
            )
    return list(cfg.window.features)


def ensure_bucket_stats(store: TableStore, spec: StoredSpec) -> "DataFrame":
    """Scaler statistics of the spec, fitted on its training range (read from ``features``) when
    not stored yet.

    Returns:
        The ``scaler_stats`` rows of this spec (per entity plus ``__global__``).

    Raises:
        EmptyInputError: When the training range holds no features.
    """
    from pyspark.sql import functions as F

    if store.exists(SCALER_STATS.name):
        stored = store.read(SCALER_STATS.name).where(F.col("spec_id") == spec.spec_id)
        if stored.limit(1).count():
            return stored
    names = list(spec.features)
    train = store.read(FEATURES.name).where(F.col("date").between(F.lit(spec.fit_from), F.lit(spec.fit_to)))
    if not train.limit(1).count():
        raise EmptyInputError(
            f"no features between fit_from {spec.fit_from} and fit_to {spec.fit_to}: "
            "discretize the training range before windowing"
        )
    method = spec.scaling_method.removesuffix("+center")
    stat_schema = SCALER_STATS.struct_type()
    head = spec.entity_head_seconds

    def fit(pdf: pd.DataFrame) -> pd.DataFrame:
        if head is not None:
            pdf = pdf[head_rows(pdf["entity"].to_numpy(), epoch_seconds(pdf["bucket_start"]),
                                pdf["padded"].to_numpy(bool), head)]
        out = (fit_entity_stats(pdf["entity"].to_numpy(object), pdf[names].to_numpy(np.float64), names, method)
               if len(pdf) else pd.DataFrame(columns=stat_schema.names[1:]))
        out.insert(0, "spec_id", spec.spec_id)
        return out

    groups = entity_groups(store.spark, spec.fit_from, spec.fit_to)
    per_entity = (
        train.select("entity", "bucket_start", "padded", *names)
        .withColumn("_group", group_of(groups))
        .groupBy("_group")
        .applyInPandas(fit, stat_schema)
    )
    store.append(per_entity, SCALER_STATS.name)
    fitted = store.read(SCALER_STATS.name).where(F.col("spec_id") == spec.spec_id)

    def fallback(pdf: pd.DataFrame) -> pd.DataFrame:  # one feature's per-entity rows -> its global row
        out = global_stats(pdf[STATS_COLUMNS])
        out.insert(0, "spec_id", spec.spec_id)
        return out

    store.append(fitted.groupBy("feature").applyInPandas(fallback, stat_schema), SCALER_STATS.name)
    return store.read(SCALER_STATS.name).where(F.col("spec_id") == spec.spec_id)


def make_cutter(
    spec: StoredSpec, global_stats: pd.DataFrame, start: dt.date, end: dt.date, raw: bool = True
) -> Callable[["pa.Table", "pa.Table"], "pa.Table"]:
    """The function handed to ``cogroup(...).applyInArrow``: the features and scaler statistics
    of a hash group of entities -> their scaled windows whose last bucket falls in
    ``[start, end]``, as an Arrow table of the ``windows`` schema.

    The window job writes its output; the scorer scores it in the same Python call
    (:func:`adspark.pipeline.scorer.make_feature_scorer`), so both cut windows with this one
    function.

    Args:
        spec: The window spec.
        global_stats: The spec's ``__global__`` statistics (for entities without their own).
        start: First night (by a window's last bucket) to emit.
        end: Last night, inclusive.
        raw: Also cut ``raw_values`` (the window job and the alerts need them; a scorer without
            the alerts does not, and the table then lacks that column).
    """
    names = list(spec.features)
    wspec = spec.window
    g_center, g_scale = stats_vectors(global_stats, names)
    arrow_schema = WINDOWS.arrow_schema(None if raw else [f.name for f in WINDOWS.fields if f.name != "raw_values"])
    spec_id = spec.spec_id

    def cut(features_t: "pa.Table", stats_t: "pa.Table") -> "pa.Table":
        kept = entity_windows(features_t.to_pandas(), stats_t.to_pandas(), (g_center, g_scale), wspec, start, end,
                              raw)
        return windows_table(kept, spec_id, wspec.size, len(names), arrow_schema)

    return cut


def grouped_features(features: "DataFrame", stats: "DataFrame", spec: StoredSpec, groups: int) -> "PandasCogroupedOps":
    """Features (``entity``, ``bucket_start`` and the spec's features) cogrouped with the
    per-entity scaler statistics by ``groups`` hash groups of entities (many entities per call)."""
    from pyspark.sql import functions as F

    group = group_of(groups)
    entity_stats = stats.where(F.col("entity") != GLOBAL_ENTITY).select(*STATS_COLUMNS)
    return (
        features.select("entity", "bucket_start", *spec.features)
        .withColumn("_group", group)
        .groupBy("_group")
        .cogroup(entity_stats.withColumn("_group", group).groupBy("_group"))
    )


def global_stats_of(stats: "DataFrame") -> pd.DataFrame:
    """The ``__global__`` rows of a spec's scaler statistics (on the driver: F rows)."""
    from pyspark.sql import functions as F

    return stats.where(F.col("entity") == GLOBAL_ENTITY).toPandas()


def bucket_windows(
    features: "DataFrame",
    stats: "DataFrame",
    spec: StoredSpec,
    start: dt.date,
    end: dt.date,
    groups: int = 16,
) -> "DataFrame":
    """Scaled windows of every entity whose last bucket falls on a night in ``[start, end]``.

    Entities are processed in ``groups`` hash groups (many entities per pandas call).
    """
    cut = make_cutter(spec, global_stats_of(stats), start, end)
    return grouped_features(features, stats, spec, groups).applyInArrow(cut, WINDOWS.struct_type())


def night_features(store: TableStore, spec: StoredSpec, start: dt.date, end: dt.date) -> "DataFrame":
    """The ``features`` rows the windows of nights ``[start, end]`` are cut from: those nights
    plus the spec's lookback nights before them."""
    from pyspark.sql import functions as F

    first = start - dt.timedelta(days=spec.lookback_days)
    return store.read(FEATURES.name).where(F.col("date").between(F.lit(first), F.lit(end)))


def expected_windows(features: "DataFrame", spec: StoredSpec, start: dt.date, end: dt.date) -> dict[dt.date, int]:
    """How many windows the features hold per night of ``[start, end]`` (nights without any
    left out), counted in Spark apart from the cutter (to reconcile what was scored): a window
    ends at each bucket ``i`` (on a night of the range, ``i`` on the stride) whose ``W - 1``-th
    predecessor of the same entity is bucket ``i - W + 1``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w, b = spec.n_steps, spec.bucket_seconds
    index = F.floor(F.col("bucket_start").cast("long") / F.lit(b))
    rows = features.select("entity", "date", index.alias("_i"))
    if w > 1:
        back = F.lag("_i", w - 1).over(Window.partitionBy("entity").orderBy("_i"))
        rows = rows.withColumn("_first", back).where(F.col("_first") == F.col("_i") - F.lit(w - 1))
    counted = rows.where(
        F.col("date").between(F.lit(start), F.lit(end))
        & (F.pmod(F.col("_i"), F.lit(spec.stride)) == F.lit(spec.stride - 1))
    ).groupBy("date").count().collect()
    return {r["date"]: int(r["count"]) for r in counted}


def window_values(store: TableStore, spec: StoredSpec, entity: str, window_id: str, window_end: dt.datetime) -> np.ndarray:
    """The scaled values (W * F,) of one window: from the ``windows`` table when it holds the
    window, else cut again from ``features`` by the same core function (nights scored from
    features have no ``windows`` rows).

    Raises:
        EmptyInputError: When neither holds it.
    """
    from pyspark.sql import functions as F

    if store.exists(WINDOWS.name):
        row = store.read(WINDOWS.name).where(
            (F.col("window_id") == window_id) & (F.col("spec_id") == spec.spec_id)
        ).select("values").first()
        if row is not None:
            return np.asarray(row["values"], np.float32)
    day = (pd.Timestamp(window_end) - pd.Timedelta(seconds=spec.bucket_seconds)).date()
    features = night_features(store, spec, day, day).where(F.col("entity") == entity)
    stats = stored_stats(store, spec).where(F.col("entity").isin(entity, GLOBAL_ENTITY)).toPandas()
    wspec = spec.window
    rows = entity_windows(
        features.select("entity", "bucket_start", *spec.features).toPandas(),
        stats[stats["entity"] == entity], stats_vectors(stats[stats["entity"] == GLOBAL_ENTITY], spec.features),
        wspec, day, day,
    )
    for cut in rows:
        ids = cut.window_ids()
        if window_id in ids:
            return cut.values[ids.index(window_id)]
    raise EmptyInputError(f"window {window_id!r} is neither in table {WINDOWS.name} nor in the features of {day}")


def stored_stats(store: TableStore, spec: StoredSpec) -> "DataFrame":
    """The spec's scaler statistics as stored by the window job.

    Raises:
        EmptyInputError: When none are stored (the spec was never windowed).
    """
    from pyspark.sql import functions as F

    stats = (
        store.read(SCALER_STATS.name).where(F.col("spec_id") == spec.spec_id)
        if store.exists(SCALER_STATS.name) else None
    )
    if stats is None or not stats.limit(1).count():
        raise EmptyInputError(
            f"table {SCALER_STATS.name} holds no statistics for window spec {spec.spec_id}: run "
            f"`adspark window` over its training range ({spec.fit_from}..{spec.fit_to}) first"
        )
    return stats


def windows_table(
    batches: list[WindowRows], spec_id: str, n_steps: int, n_features: int, schema: "pa.Schema"
) -> "pa.Table":
    """Windows as an Arrow table of the ``windows`` schema.

    The array columns are built from one flat float32 buffer and an offsets vector, with no
    per-row Python objects.
    """
    import pyarrow as pa

    if not batches:
        return schema.empty_table()
    n = sum(len(b) for b in batches)

    def lists(parts: list[np.ndarray], name: str) -> "pa.Array":
        flat = np.concatenate(parts)
        width = flat.shape[1]
        offsets = pa.array(np.arange(0, n * width + 1, width, dtype=np.int32))
        return pa.ListArray.from_arrays(offsets, pa.array(flat.ravel(), pa.float32()), type=schema.field(name).type)

    def stamps(parts: list[np.ndarray]) -> "pa.Array":
        return pa.array(np.concatenate(parts).astype("datetime64[us]")).cast(
            pa.timestamp("us", tz="UTC")
        )

    import pyarrow.compute as pc

    entity = pa.array(np.repeat(np.array([b.entity for b in batches], dtype=object), [len(b) for b in batches]),
                      pa.string())
    # ``entity|window_start`` (ISO), as :meth:`WindowRows.window_ids`, without a Python loop; the
    # entities of a group share their window starts, so each distinct start is formatted once
    starts, at = np.unique(np.concatenate([b.window_start for b in batches]).astype("datetime64[s]"),
                           return_inverse=True)
    start_text = pa.array(np.datetime_as_string(starts, unit="s"), pa.string()).take(pa.array(at.ravel()))
    columns = {
        "entity": entity,
        "window_id": pc.binary_join_element_wise(entity, start_text, "|"),
        "window_start": stamps([b.window_start for b in batches]),
        "window_end": stamps([b.window_end for b in batches]),
        "date": pa.array(np.concatenate([b.date for b in batches]).astype("datetime64[D]")),
        "spec_id": pa.array([spec_id] * n, pa.string()),
        "values": lists([b.values for b in batches], "values"),
        "n_steps": pa.array(np.full(n, n_steps, np.int32)),
        "n_features": pa.array(np.full(n, n_features, np.int32)),
    }
    if "raw_values" in schema.names:
        columns["raw_values"] = lists([b.raw_values for b in batches], "raw_values")
    return pa.table({name: columns[name] for name in schema.names}, schema=schema)


def configured_spec(store: TableStore, cfg: WindowJobConfig) -> tuple[StoredSpec, "DataFrame"]:
    """The bucket-mode window spec of the config, recorded in ``window_specs``, and its scaler
    statistics (fitted on the training range when not stored yet)."""
    spec = StoredSpec.create("buckets", select_features(store.schema(FEATURES.name), cfg), cfg)
    spec.save(store)
    return spec, ensure_bucket_stats(store, spec)


def _run_buckets(
    store: TableStore, cfg: WindowJobConfig, start: dt.date, end: dt.date, run: RunRecord
) -> StoredSpec:
    """Write the bucket-mode windows of ``[start, end]``; fill ``run``; returns the spec used."""
    from pyspark.sql import functions as F

    spec, stats = configured_spec(store, cfg)
    features = night_features(store, spec, start, end)
    groups = entity_groups(store.spark, start, end)
    windows = bucket_windows(features, stats, spec, start, end, groups)
    store.replace_dates(windows, WINDOWS.name, "date", start, end, partition_by=WINDOWS.partition_by)
    run.rows_read = features.where(F.col("date").between(F.lit(start), F.lit(end))).count()
    run.rows_written = store.count_dates(WINDOWS.name, "date", start, end)
    run.message = (
        f"window {start}..{end} spec {spec.spec_id}: {run.rows_read} feature rows "
        f"(+{spec.lookback_days} lookback day(s)) -> {run.rows_written} windows of "
        f"{spec.n_steps} x {len(spec.features)}" + floored_scales(stats)
    )
    return spec


def floored_scales(stats: "DataFrame", examples: int = 5) -> str:
    """The summary phrase naming the entity/feature pairs whose scale hit the floor (logged as a
    warning too); '' when none did."""
    hit = stats.mapInPandas(lambda parts: (floored_rows(p) for p in parts), stats.schema)
    n = hit.count()
    named = [f"{r.entity}/{r.feature}" for r in hit.orderBy("entity", "feature").limit(examples).collect()] if n else []
    note = floor_note(n, named)
    if note:
        log.warning(note.removeprefix("; "))
    return note


@dataclass(frozen=True)
class WindowResult:
    """What windowing a range did.

    Attributes:
        run: The ``runs`` record (``message``, counts).
        spec: The window spec every window of the range was written with.
    """

    run: RunRecord
    spec: StoredSpec

    @property
    def message(self) -> str:
        """The run's one-line summary."""
        return self.run.message

    @property
    def spec_ids(self) -> list[str]:
        """The specs of the range's ``windows`` rows: this spec, or none when nothing was written."""
        return [self.spec.spec_id] if self.run.rows_written else []


def run_window(
    store: TableStore, cfg: WindowJobConfig, start: dt.date, end: dt.date, within: str | None = None,
) -> WindowResult:
    """Write the ``windows`` of nights ``[start, end]`` (idempotent per night: a night's rows are
    replaced, so all of them are of the returned spec).

    Args:
        within: The run id of the job this runs as a stage of (:func:`adspark.runs.recorded_run`).
    """
    check_range(start, end)
    with recorded_run(store, "window", cfg, start, end, within=within) as run:
        if cfg.window.mode == "rows":
            spec = run_rows(store, cfg, start, end, run)
        else:
            spec = _run_buckets(store, cfg, start, end, run)
    return WindowResult(run, spec)
