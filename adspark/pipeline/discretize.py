"""Job ``discretize``: events -> validated, padded per-entity buckets (the ``features`` table).

For each night in ``[start, end]``: validate (rejects to ``rejects``), aggregate accepted events
per entity and bucket with native Spark functions, then pad every active entity-day to a full
grid (or the span between events), add calendar and differenced features with
:func:`adspark.core.features.pad_entities` (one cogrouped ``applyInPandas`` call per hash group
of entities), and replace exactly those nights in ``features``.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import pandas as pd

from adspark.config import CategoricalConfig, DiscretizeJobConfig, SourceConfig
from adspark.core.buckets import night_range
from adspark.core.features import CALENDAR_COLUMNS, FeatureSpec, pad_entities, slot_name
from adspark.errors import ConfigError, DataContractError, check_range
from adspark.pipeline.grouping import entity_groups, group_of
from adspark.pipeline.validate import (
    Validated,
    entity_key,
    entity_parts,
    parse_time,
    read_source,
    rejects_frame,
    validate_events,
)
from adspark.runs import RunRecord, recorded_run
from adspark.storage import TableStore
from schemas import FEATURES, REJECTS, VOCABULARIES, Field

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

OTHER = "__other__"


def vocabulary(
    store: TableStore, source: SourceConfig, cat: CategoricalConfig, fit_rows: "DataFrame"
) -> list[str]:
    """The kept values of a categorical column, in slot order.

    Explicit ``values`` win; otherwise the ``top_k`` values stored in ``vocabularies`` for this
    source and column; otherwise they are fitted on ``fit_rows`` (most frequent first, ties by
    value) and stored, so every later run uses the same slots.
    """
    from pyspark.sql import functions as F

    if cat.values is not None:
        return list(cat.values)
    key = source.path or source.table
    if store.exists(VOCABULARIES.name):
        stored = (
            store.read(VOCABULARIES.name)
            .where((F.col("source") == key) & (F.col("column") == cat.name))
            .orderBy("index")
            .select("value")
            .collect()
        )
        if stored:
            return [r.value for r in stored]
    top = (
        fit_rows.where(F.col(cat.name).isNotNull())
        .groupBy(cat.name)
        .count()
        .orderBy(F.desc("count"), F.asc(cat.name))
        .limit(cat.top_k)
        .collect()
    )
    values = [r[cat.name] for r in top]
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    rows = [(key, cat.name, v, i, int(r["count"]), now) for i, (v, r) in enumerate(zip(values, top))]
    if rows:
        store.append(
            store.spark.createDataFrame(rows, VOCABULARIES.struct_type()), VOCABULARIES.name
        )
    return values


STATISTICS = ("mean", "min", "max", "std")  # the table's column order, whatever order the config lists


def aggregate_expressions(
    source: SourceConfig, vocabularies: dict[str, list[str]], statistics: Sequence[str] = ("mean", "min", "max")
) -> tuple[FeatureSpec, list]:
    """The Spark aggregations of one bucket, and the matching feature layout.

    Args:
        source: The events' contract. vocabularies: Each categorical's values.
        statistics: ``discretize.statistics``: each measure's ``<measure>_<statistic>`` columns
            (``std``: the population standard deviation of the bucket's readings).

    Returns:
        ``(spec_without_difference, [Column, ...])``; counts, sums and distinct counts are
        zero-filled when padding, the measures' statistics null-filled.
    """
    from pyspark.sql import functions as F

    zero, null, exprs = ["event_count"], [], [F.count(F.lit(1)).cast("double").alias("event_count")]
    for m in source.measures:
        col = F.col(m.name)
        zero.append(f"{m.name}_sum")
        exprs.append(F.sum(col).alias(f"{m.name}_sum"))
    for c in source.categoricals:
        values = vocabularies[c.name]
        col = F.col(c.name)
        for v in values:
            name = slot_name(c.name, v)
            zero.append(name)
            exprs.append(F.sum(F.when(col == v, 1).otherwise(0)).cast("double").alias(name))
        other = slot_name(c.name, OTHER)
        zero.append(other)
        exprs.append(
            F.sum(F.when(col.isin(*values) if values else F.lit(False), 0).otherwise(1))
            .cast("double")
            .alias(other)
        )
    for c in source.distinct:
        zero.append(f"{c}_distinct")
        exprs.append(F.countDistinct(F.col(c)).cast("double").alias(f"{c}_distinct"))
    functions = {"mean": F.avg, "min": F.min, "max": F.max, "std": F.stddev_pop}
    for m in source.measures:
        col = F.col(m.name)
        for stat in (s for s in STATISTICS if s in statistics):
            fn = functions[stat]
            null.append(f"{m.name}_{stat}")
            exprs.append(fn(col).cast("double").alias(f"{m.name}_{stat}"))
    names = zero + null
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"feature names collide: {dupes} (rename a column or category value)")
    return FeatureSpec(tuple(zero), tuple(null)), exprs


def feature_fields(spec: FeatureSpec) -> list[Field]:
    """The dynamic columns of the ``features`` table for a layout."""
    fields = [Field(c, "double", True, "aggregate") for c in spec.aggregates]
    fields += [Field(f"{c}_diff", "double", True, "difference") for c in spec.difference]
    if spec.calendar:
        fields += [Field(c, "int", False, "calendar") for c in CALENDAR_COLUMNS]
    return fields


def build_features(
    validated: Validated,
    activity: "DataFrame",
    context: "DataFrame | None",
    spec: FeatureSpec,
    bucket_seconds: int,
    exprs: Sequence,
    max_gap_buckets: int | None = None,
) -> "DataFrame":
    """Aggregate accepted events into buckets and pad them per entity.

    Entities are padded in the validated rows' hash groups (many entities per pandas call; the
    rows are already partitioned by them, so only the activity side is exchanged).

    Args:
        validated: Output of :func:`validate_events`.
        activity: Columns ``entity``, ``date``: the active entity-days to pad.
        context: Features rows just before the range (for differencing), or None.
        spec: Feature layout.
        bucket_seconds: Bucket width.
        exprs: Aggregations from :func:`aggregate_expressions`.
        max_gap_buckets: Span padding's longest filled gap; ``None`` pads whole active days
            (see :func:`adspark.core.features.pad_entities`).
    """
    from pyspark.sql import functions as F

    schema = FEATURES.with_fields(feature_fields(spec))
    seconds = F.unix_seconds(F.col("_ts"))
    bucket = F.timestamp_seconds(seconds - F.pmod(seconds, F.lit(bucket_seconds)))
    if validated.groups is None:
        raise ValueError("build_features needs rows validated with entity groups (validate_events(groups=...))")
    group = group_of(validated.groups)
    # keyed by the group the validated rows are partitioned by: no exchange before the pandas call
    agg = (
        validated.accepted.groupBy("_group", F.col("_entity").alias("entity"), bucket.alias("bucket_start"))
        .agg(*exprs)
        .withColumn("_context", F.lit(False))
    )
    if context is not None:
        agg = agg.unionByName(
            context.select(group, "entity", "bucket_start", *spec.aggregates).withColumn(
                "_context", F.lit(True)
            )
        )
    aggregates = list(spec.aggregates)
    names = schema.names

    def pad(buckets: pd.DataFrame, days: pd.DataFrame) -> pd.DataFrame:
        ctx = buckets[buckets["_context"]]
        own = buckets[~buckets["_context"]]
        out = pad_entities(
            own[["entity", "bucket_start", *aggregates]],
            days[["entity", "date"]],
            bucket_seconds,
            spec,
            context=ctx[["entity", "bucket_start", *aggregates]] if len(ctx) else None,
            max_gap_buckets=max_gap_buckets,
        )
        return out[names]

    return (
        agg.groupBy("_group")
        .cogroup(activity.withColumn("_group", group).groupBy("_group"))
        .applyInPandas(pad, schema.struct_type())
    )


def _activity(
    raw: "DataFrame", source: SourceConfig, start: dt.date, end: dt.date, lookback: int
) -> "DataFrame":
    """Active entity-days: an entity had a (keyed, timed) event within ``lookback`` days."""
    from pyspark.sql import functions as F

    kinds = {f.name: f.dataType.simpleString().split("(")[0] for f in raw.schema.fields}
    ts = parse_time(F.col(source.timestamp.column), kinds[source.timestamp.column], source)
    first = start - dt.timedelta(days=lookback)
    lo = F.lit(dt.datetime.combine(first, dt.time()))
    hi = F.lit(dt.datetime.combine(end + dt.timedelta(days=1), dt.time()))
    parts = entity_parts(source)
    entity = entity_key(parts)
    keys_ok = F.lit(True)
    for part in parts:
        keys_ok = keys_ok & part.isNotNull() & (part != "")
    pre = raw
    if source.date_column and source.date_column != source.timestamp.column:
        pre = raw.where(
            F.col(source.date_column).cast("date").between(
                F.lit(first - dt.timedelta(days=1)), F.lit(end + dt.timedelta(days=1))
            )
        )
    days = (
        pre.where(keys_ok & (ts >= lo) & (ts < hi))
        .select(entity.alias("entity"), F.to_date(ts).alias("day"))
        .distinct()
    )
    spread = days.select(
        "entity", F.explode(F.sequence(F.col("day"), F.date_add("day", lookback))).alias("date")
    )
    return spread.where(F.col("date").between(F.lit(start), F.lit(end))).distinct()


def _context_rows(
    store: TableStore, start: dt.date, spec: FeatureSpec, bucket_seconds: int
) -> "DataFrame | None":
    """The last bucket before ``start`` of each entity, from earlier runs (for differencing)."""
    from pyspark.sql import functions as F

    if not spec.difference or not store.exists(FEATURES.name):
        return None
    prev_day = start - dt.timedelta(days=1)
    last = dt.datetime.combine(start, dt.time()) - dt.timedelta(seconds=bucket_seconds)
    return (
        store.read(FEATURES.name)
        .where((F.col("date") == F.lit(prev_day)) & (F.col("bucket_start") == F.lit(last)))
        .select("entity", "bucket_start", *spec.aggregates)
    )


SPARSE_BUCKETS = 0.25  # below this share of buckets holding an event, the summary suggests a wider bucket


def fill_note(rows: int, filled: int) -> str:
    """The discretize summary's note on how many buckets hold an event: the count, and where fewer
    than :data:`SPARSE_BUCKETS` of them do, a hint that readings want buckets at their cadence
    (narrower buckets leave windows mostly empty: on NAB, hourly series in 5-minute buckets)."""
    if not rows:
        return ""
    note = f" ({filled} with events)"
    if filled < SPARSE_BUCKETS * rows:
        note += (f"; {1 - filled / rows:.0%} of the buckets hold no event: readings (sensors, metrics) are best "
                 "bucketed at their own cadence, discretize.bucket at least their usual interval")
    return note


@dataclass(frozen=True)
class NightCounts:
    """What discretizing one night read and wrote.

    Attributes:
        read: Source rows of the night read.
        rejected: Of those, rejected, per reason.
        feature_rows: Feature rows written for the night.
        with_events: Of those, buckets holding at least one event.
    """

    read: int
    rejected: dict[str, int]
    feature_rows: int
    with_events: int

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected.values())

    @staticmethod
    def total(nights: Sequence["NightCounts"]) -> "NightCounts":
        """The counts of several nights together."""
        rejected: dict[str, int] = {}
        for n in nights:
            for reason, count in n.rejected.items():
                rejected[reason] = rejected.get(reason, 0) + count
        return NightCounts(sum(n.read for n in nights), rejected, sum(n.feature_rows for n in nights),
                           sum(n.with_events for n in nights))

    @property
    def summary(self) -> str:
        """The night's counts in one phrase (``read = accepted + rejected (reasons)``)."""
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.rejected.items())) or "none"
        return (f"read {self.read} = accepted {self.read - self.rows_rejected} + rejected {self.rows_rejected} "
                f"({reasons}); wrote {self.feature_rows} feature rows{fill_note(self.feature_rows, self.with_events)}")


@dataclass(frozen=True)
class Discretized:
    """What discretizing a range did.

    Attributes:
        run: The run record (counts of the range; they reconcile).
        nights: Per night of the range, its counts (every night, zeros for a night without rows).
    """

    run: RunRecord
    nights: dict[dt.date, NightCounts]

    @property
    def message(self) -> str:
        return self.run.message


def run_discretize(
    store: TableStore, cfg: DiscretizeJobConfig, start: dt.date, end: dt.date, within: str | None = None,
) -> RunRecord:
    """Discretize nights ``[start, end]`` into the ``features`` table (idempotent per night).

    Args:
        within: The run id of the job this runs as a stage of (:func:`adspark.runs.recorded_run`).

    Returns:
        The run record (counts reconcile: read = accepted + rejected).
    """
    return discretize(store, cfg, start, end, within).run


def discretize(
    store: TableStore, cfg: DiscretizeJobConfig, start: dt.date, end: dt.date, within: str | None = None,
    fit_to: dt.date | None = None,
) -> Discretized:
    """:func:`run_discretize`, with the counts of every night of the range.

    Args:
        fit_to: A vocabulary not stored yet is fitted on the accepted rows of the nights up to this
            one only (a first nightly run discretizing its history with its first nights: the
            slots are those of the history alone, as a discretize of the history would fit them);
            ``None``: on the whole range.
    """
    from pyspark.sql import functions as F

    check_range(start, end)
    with recorded_run(store, "discretize", cfg, start, end, within=within) as run:
        raw = read_source(store, cfg.source)
        aggregated = {*cfg.source.distinct, *(c.name for c in cfg.source.categoricals)}
        event_id = cfg.source.event_id
        unused = [event_id] if event_id and event_id not in aggregated else []
        validated = validate_events(
            raw, cfg.source, start, end, entity_groups(store.spark, start, end)
        ).persisted(drop=unused)
        features = None
        try:
            fit_rows = validated.accepted
            if fit_to is not None:
                fit_rows = fit_rows.where(F.col("_date") <= F.lit(fit_to))
            vocabs = {c.name: vocabulary(store, cfg.source, c, fit_rows) for c in cfg.source.categoricals}
            base, exprs = aggregate_expressions(cfg.source, vocabs, cfg.discretize.statistics)
            spec = FeatureSpec(
                base.zero_fill,
                base.null_fill,
                tuple(cfg.discretize.difference),
                cfg.discretize.calendar,
                cfg.source.timestamp.timezone,
            )
            try:
                spec.validate()
            except ValueError as exc:
                raise ConfigError(f"discretize: {exc}") from None
            bucket_s = cfg.discretize.bucket_seconds

            read = _tally(validated, start)
            _write_rejects(store, validated, read, run.run_id, start, end)
            activity = _activity(raw, cfg.source, start, end, cfg.discretize.activity_lookback_days)
            features = build_features(
                validated, activity, _context_rows(store, start, spec, bucket_s), spec, bucket_s,
                exprs,
                max_gap_buckets=cfg.discretize.max_gap_buckets,
            ).persist()
            store.replace_dates(
                features, FEATURES.name, "date", start, end, partition_by=FEATURES.partition_by
            )
            written = _reconcile(run, read, features, start, end)
        finally:
            validated.release()
            if features is not None:
                features.unpersist()
        log.info(run.message)
    return Discretized(run, {
        d: NightCounts(read.nights.get(d, 0), read.night_rejects.get(d, {}), *written.get(d, (0, 0)))
        for d in night_range(start, end)
    })


@dataclass(frozen=True)
class _Tally:
    """What validation read, counted in one aggregation over the validated rows.

    Attributes:
        rows: Rows read.
        rejected: Rejected rows per reason.
        shared: Accepted readings sharing their entity and timestamp with a different reading.
        nights: Rows read per night.
        night_rejects: Rejected rows per night and reason.
    """

    rows: int
    rejected: dict[str, int]
    shared: int
    nights: dict[dt.date, int]
    night_rejects: dict[dt.date, dict[str, int]]


def _tally(validated: Validated, start: dt.date) -> _Tally:
    """Count the validated rows by night and reason (null: accepted) in one pass (a row without
    a night, which validation rejects, counts on ``start``)."""
    from pyspark.sql import functions as F

    groups = validated.rows.groupBy("_date", "_reason").agg(
        F.count(F.lit(1)).alias("n"), F.sum(F.col("_shared").cast("long")).alias("shared")
    ).collect()
    rejected: dict[str, int] = {}
    nights: dict[dt.date, int] = {}
    night_rejects: dict[dt.date, dict[str, int]] = {}
    for r in groups:
        night, n = r["_date"] or start, int(r["n"])
        nights[night] = nights.get(night, 0) + n
        if r["_reason"] is not None:
            rejected[r["_reason"]] = rejected.get(r["_reason"], 0) + n
            per = night_rejects.setdefault(night, {})
            per[r["_reason"]] = per.get(r["_reason"], 0) + n
    return _Tally(
        rows=sum(nights.values()),
        rejected=rejected,
        shared=sum(int(r["shared"] or 0) for r in groups if r["_reason"] is None),
        nights=nights,
        night_rejects=night_rejects,
    )


def _write_rejects(
    store: TableStore, validated: Validated, read: _Tally, run_id: str, start: dt.date, end: dt.date
) -> None:
    """Replace the range's ``discretize`` rejects with this run's. A range without rejected
    rows, that had none before either, is not written once the table exists (no empty Delta
    commit on a clean night; the first run creates the table, empty, so that queries of it
    work on a clean warehouse); with rejects, their count in the table must equal the count of
    rejected rows read (nothing lost)."""
    from pyspark.sql import functions as F

    in_range = F.col("date").between(F.lit(start), F.lit(end)) & (F.col("job") == "discretize")
    if not read.rejected and store.exists(REJECTS.name) and not store.read(REJECTS.name).where(in_range).limit(1).count():
        return
    store.replace_dates(
        rejects_frame(validated, run_id, "discretize"), REJECTS.name, "date", start, end,
        partition_by=REJECTS.partition_by, extra_predicate="job = 'discretize'",
    )
    if read.rejected:
        stored = store.read(REJECTS.name).where(in_range & (F.col("run_id") == run_id)).count()
        if stored != sum(read.rejected.values()):
            raise DataContractError(
                f"discretize {start}..{end}: {sum(read.rejected.values())} rows rejected but {stored} "
                f"in {REJECTS.name} for run {run_id}"
            )


def _reconcile(
    run: RunRecord, read: _Tally, features: "DataFrame", start: dt.date, end: dt.date
) -> dict[dt.date, int]:
    """Fill the run's counts from what validation read and the feature rows written
    (``features``, as written), and check that they reconcile.

    Returns:
        Per night, (feature rows written, of those holding at least one event).
    """
    from pyspark.sql import functions as F

    per_night = features.groupBy("date").agg(
        F.count(F.lit(1)).alias("rows"), F.sum("event_count").alias("events"),
        F.sum((F.col("event_count") > 0).cast("long")).alias("filled"),
    ).collect()
    run.rows_read = read.rows
    run.rows_accepted = sum(int(r.events or 0) for r in per_night)
    run.rows_rejected = sum(read.rejected.values())
    run.rows_written = sum(int(r.rows) for r in per_night)
    reasons = ", ".join(f"{k}={v}" for k, v in sorted(read.rejected.items())) or "none"
    run.summary = (
        f"read {run.rows_read} = accepted {run.rows_accepted} "
        f"+ rejected {run.rows_rejected} ({reasons}); wrote {run.rows_written} feature rows"
        + fill_note(run.rows_written, sum(int(r.filled or 0) for r in per_night))
        + (f"; {read.shared} accepted readings share their entity and timestamp with a different reading "
           "(aggregated in their bucket; source.same_timestamp: reject rejects them)" if read.shared else "")
    )
    run.message = f"discretize {start}..{end}: {run.summary}"
    if run.rows_read != run.rows_accepted + run.rows_rejected:
        raise DataContractError(run.message + " -- counts do not reconcile")
    return {r.date: (int(r.rows), int(r.filled or 0)) for r in per_night}
