"""Validation of the user's events against the contract in the config.

Schema problems (a missing or mistyped required column) stop the job before anything is written.
Row problems send the row to ``rejects`` with a reason, the offending column, a detail and the raw
row as JSON; every other row is accepted. Rules, in the order they are checked (first one wins):

==========================  =========================================================
reason                      rule
==========================  =========================================================
null_entity                 an entity key column is null or blank
bad_encoding                a key, categorical or id string holds U+FFFD (bytes that were
                            not valid UTF-8) or a control character
null_timestamp              the timestamp is null
unparseable_timestamp       a string timestamp does not parse
timestamp_out_of_range      before ``min_timestamp`` or after ``max_timestamp``
late_event                  the event day is before the nights processed, whose partition
                            holds it (a late arrival for an earlier night; see below)
outside_night               the event time's UTC day is after the nights processed
null_value                  a required measure is null
unparseable_value           a measure does not parse as a number (wrong type in the row)
non_finite                  a measure is NaN or +/-infinity
huge_value                  ``abs(measure) > max_abs`` (default 1e15)
negative_value              a measure declared non-negative is negative
unknown_category            a categorical with declared ``values`` holds another value
                            (``unknown: other`` counts it in the other slot instead)
duplicate                   an exact copy of an earlier row (all columns equal)
conflicting_readings        with ``source.same_timestamp: reject``: one of several different
                            readings of an entity at one timestamp (all of them are rejected;
                            with the default ``aggregate`` they are kept, aggregated in their
                            bucket, and counted in the discretize summary)
==========================  =========================================================

Late events (policy: queue, then re-score by rerunning the night). When ``source.date_column``
is an arrival/partition date apart from the event time, night D reads the rows of partition D
plus the rows of partitions D+1..D+``late_days`` whose event day is D. A late row therefore is
rejected as ``late_event`` by the night of its arrival (the detail names its own night and the
command to run), and accepted by a rerun of its own night (``adspark nightly --date <its
night>``), which re-discretizes, re-windows and re-scores that night with it. Every night's
``read = accepted + rejected`` holds; a late row ends in ``features`` exactly once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from adspark.config import SourceConfig
from adspark.errors import SchemaMismatchError, SourceReadError
from adspark.pipeline.grouping import group_of
from adspark.storage import URI_SCHEMES, TableStore, listing_root

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import Column, DataFrame, DataFrameReader

log = logging.getLogger(__name__)

REASONS = (
    "null_entity",
    "bad_encoding",
    "null_timestamp",
    "unparseable_timestamp",
    "timestamp_out_of_range",
    "late_event",
    "outside_night",
    "null_value",
    "unparseable_value",
    "non_finite",
    "huge_value",
    "negative_value",
    "unknown_category",
    "duplicate",
    "conflicting_readings",
)
# U+FFFD (what a decoder leaves for invalid UTF-8) or an ASCII control character other than tab.
_BAD_TEXT = "[\\x{FFFD}\\x00-\\x08\\x0B-\\x1F\\x7F]"

_NUMERIC = {"tinyint", "smallint", "int", "bigint", "float", "double"}
_TIME = {"timestamp", "timestamp_ntz", "date", "string"}
_ATOMIC = _NUMERIC | _TIME | {"boolean"}


@dataclass(frozen=True)
class Validated:
    """Validated events of a range.

    Attributes:
        rows: Every row read, with normalized columns ``_group`` (the entity's hash group; only
            with ``groups``), ``_entity`` (string), ``_ts`` (UTC timestamp), ``_date`` (the row's night), one double column per measure, one string
            column per categorical, ``_reason``/``_column``/``_detail`` (null when accepted),
            ``_raw`` (JSON of the original row, for rejected rows only) and ``_shared`` (the row
            passed every rule and another different reading of its entity has its timestamp).
        measures: Measure column names.
        categoricals: Categorical column names.
        groups: Number of entity hash groups of ``_group`` (None: the rows carry no group).
    """

    rows: "DataFrame"
    measures: tuple[str, ...]
    categoricals: tuple[str, ...]
    groups: int | None = None

    def persisted(self, drop: Sequence[str] = ()) -> "Validated":
        """The same rows, materialized once (memory, spilling to disk) for several passes.

        Args:
            drop: Columns the passes do not need (not materialized: building the cache of a
                column of unique strings, such as an event id, costs about as much as
                validating it). A rejected row keeps them in ``_raw``.
        """
        from pyspark import StorageLevel

        rows = self.rows.drop(*drop) if drop else self.rows
        return dataclasses.replace(self, rows=rows.persist(StorageLevel.MEMORY_AND_DISK))

    def release(self) -> None:
        """Drop the materialized rows."""
        self.rows.unpersist()

    @property
    def accepted(self) -> "DataFrame":
        """The rows that passed every rule."""
        from pyspark.sql import functions as F

        return self.rows.where(F.col("_reason").isNull())

    @property
    def rejected(self) -> "DataFrame":
        """The rows that failed a rule."""
        from pyspark.sql import functions as F

        return self.rows.where(F.col("_reason").isNotNull())


COMPRESSION_SUFFIX = r"(\.(gz|bz2|zst|lz4|snappy|deflate|xz))?$"
SCHEME = r"^[A-Za-z][A-Za-z0-9+.-]*:/*"  # file:/, s3a://, dbfs:/ ... with the slashes after it


def file_key(root: str) -> "Column":
    """Each row's file named by its path below ``root``, decoded, without its extension (and
    compression suffix) and without ``key=value`` partition folders.

    ``exchange-2_cpc.csv.gz`` -> ``exchange-2_cpc``; ``valve1/0.csv`` -> ``valve1/0`` (equal names
    in two folders stay apart); ``date=2026-03-01/m7.csv`` -> ``m7`` (one machine's file per
    partition); a name with no dot is kept.

    Args:
        root: The listing root (:func:`adspark.storage.listing_root`); a file listed elsewhere
            is named by its file name alone. Root and paths are compared without their schemes
            (a ``/Volumes/...`` path lists as ``dbfs:/Volumes/...`` on Databricks).
    """
    import re

    from pyspark.sql import functions as F

    def decoded(col: "Column") -> "Column":  # Spark percent-encodes the paths; '+' is a plain '+'
        return F.url_decode(F.replace(col, F.lit("+"), F.lit("%2B")))

    path = F.regexp_replace(decoded(F.col("_metadata.file_path")), SCHEME, "")
    prefix = re.sub(SCHEME, "", root) + "/"
    name = F.when(F.startswith(path, F.lit(prefix)), F.substring(path, len(prefix) + 1, 1 << 30)) \
        .otherwise(decoded(F.col("_metadata.file_name")))
    name = F.regexp_replace(name, r"(?:^|(?<=/))[^/]*=[^/]*/", "")
    return F.regexp_replace(F.regexp_replace(name, COMPRESSION_SUFFIX, ""), r"\.[^./]*$", "")


_UNREADABLE = {"PATH_NOT_FOUND", "UNABLE_TO_INFER_SCHEMA", "CONFLICTING_DIRECTORY_STRUCTURES"}


def load_files(reader: "DataFrameReader", path: str, source: SourceConfig) -> "DataFrame":
    """``reader.load(path)``, its "nothing to read here" errors told in one line.

    Raises:
        SourceReadError: No such path; no files of the format where Spark looks (naming the
            sub-folders ``source.recursive`` would read, for a local folder); files at several
            folder depths.
    """
    from pyspark.errors import AnalysisException

    try:
        df = reader.load(path)
        df.schema  # noqa: B018 - a Spark Connect client analyzes lazily: fail here, not later
        return df
    except AnalysisException as exc:
        condition = exc.getCondition()
        if condition not in _UNREADABLE:
            raise
        raise SourceReadError(unreadable_reason(path, source, condition)) from exc


def unreadable_reason(path: str, source: SourceConfig, condition: str) -> str:
    """The one line :func:`load_files` raises for Spark's error ``condition`` on ``path``."""
    import os

    where = f"source.path {path!r}"
    if condition == "PATH_NOT_FOUND":
        return f"{where}: no such folder or file"
    if condition == "CONFLICTING_DIRECTORY_STRUCTURES":
        return (f"{where}: files at different folder depths; source.recursive: true reads them all "
                "(key=value folders are then not partition columns)")
    local = None if path.startswith(URI_SCHEMES) and not path.startswith("file:") else path.removeprefix("file:")
    folders = sorted(e.name for e in os.scandir(local) if e.is_dir()) if local and os.path.isdir(local) else []
    fmt = source.format.type
    if folders and not source.recursive:
        shown = ", ".join(folders[:5]) + (", ..." if len(folders) > 5 else "")
        return (f"{where}: no {fmt} files directly in it, only sub-folders ({shown}); "
                "source.recursive: true reads the files in every sub-folder")
    return f"{where}: no {fmt} files in it (expected files of format {fmt})"


def read_source(store: TableStore, source: SourceConfig) -> "DataFrame":
    """The raw events named (or located) by the config, in its format, columns renamed.

    Raises:
        SchemaMismatchError: A column named in ``source.rename`` is not in the source.
    """

    if source.path:
        fmt = source.format
        reader = store.spark.read.format(fmt.type)
        if fmt.type == "csv":
            reader = reader.options(sep=fmt.delimiter, header=str(fmt.header).lower(), quote=fmt.quote,
                                    nullValue=fmt.null_value, inferSchema="false", mode="PERMISSIVE")
        elif fmt.type == "json":
            reader = reader.option("multiLine", str(fmt.multiline).lower())
        if source.recursive:
            reader = reader.option("recursiveFileLookup", "true")
        path = store.resolve_path(source.path, "source.path")
        df = load_files(reader, path, source)
        if source.file_name_column:
            df = df.withColumn(source.file_name_column, file_key(listing_root(path)))
    else:
        df = store.read(source.table)
    missing = [raw for raw in source.rename if raw not in df.columns]
    if missing:
        target = source.rename[missing[0]]
        raise SchemaMismatchError(source.path or source.table, missing[0],
                                  f"a column (source.rename maps it to {target!r}; found {sorted(df.columns)})",
                                  "missing")
    return df.withColumnsRenamed(source.rename) if source.rename else df


def check_source_schema(df: "DataFrame", source: SourceConfig) -> None:
    """Stop before any write when a required column is missing or has an unusable type.

    Extra columns are ignored (and logged).

    Raises:
        SchemaMismatchError: Naming the column, the expected and the actual type.
    """
    actual = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    table = source.path or source.table
    wanted: dict[str, tuple[set[str], str]] = {
        source.timestamp.column: (_TIME - {"date"}, "a timestamp or a string timestamp"),
        source.row_date_column: (_TIME, "a date, timestamp or string"),
    }
    for c in source.entity:
        wanted[c] = (_ATOMIC, "an atomic type (string, number, ...)")
    if source.event_id:
        wanted[source.event_id] = (_ATOMIC, "an atomic type")
    for m in source.measures:
        wanted[m.name] = (_NUMERIC | {"string", "decimal"}, "a number or a numeric string")
    for c in source.categoricals:
        wanted[c.name] = (_ATOMIC, "a string (or another atomic type)")
    for c in source.distinct:
        wanted[c] = (_ATOMIC, "an atomic type")
    for column, (allowed, expected) in wanted.items():
        if column not in actual:
            raise SchemaMismatchError(table, column, expected, "missing")
        kind = actual[column].split("(")[0]
        if kind not in allowed:
            raise SchemaMismatchError(table, column, expected, actual[column])
    extra = sorted(set(actual) - set(wanted))
    if extra:
        log.warning("source %s: ignoring columns not in the contract: %s", table, extra)


def parse_time(col: "Column", kind: str, source: SourceConfig) -> "Column":
    from pyspark.sql import functions as F

    tz = source.timestamp.timezone
    if kind == "timestamp":
        return col
    if kind == "timestamp_ntz":
        return F.to_utc_timestamp(col.cast("timestamp"), tz)
    fmt = source.timestamp.format
    parsed = F.try_to_timestamp(col, F.lit(fmt)) if fmt else F.try_to_timestamp(col)
    return F.to_utc_timestamp(parsed, tz)


def _row_date(df: "DataFrame", source: SourceConfig, ts: "Column") -> "Column":
    from pyspark.sql import functions as F

    if source.date_column is None or source.date_column == source.timestamp.column:
        return F.to_date(ts)
    kind = dict((f.name, f.dataType.simpleString()) for f in df.schema.fields)[source.date_column]
    col = F.col(source.date_column)
    # a string date (CSV, JSON): unparseable text is null (a rejected row), not a failed job
    return col if kind == "date" else F.to_date(F.try_to_timestamp(col.cast("string")))


def entity_parts(source: SourceConfig) -> list["Column"]:
    """The entity key columns as trimmed text, one per ``source.entity`` column."""
    from pyspark.sql import functions as F

    return [F.trim(F.col(c).cast("string")) for c in source.entity]


def entity_key(parts: Sequence["Column"]) -> "Column":
    """The entity of a row: its key columns' text joined by ``|`` (:func:`entity_parts`)."""
    from pyspark.sql import functions as F

    return F.concat_ws("|", *parts)


def first_match(branches: Iterable[tuple["Column", "Column"]]) -> "Column":
    """``CASE WHEN c1 THEN v1 WHEN c2 THEN v2 ... END`` (null when no condition holds), flat."""
    from pyspark.sql import functions as F

    expr = None
    for cond, value in branches:
        expr = F.when(cond, value) if expr is None else expr.when(cond, value)
    return expr if expr is not None else F.lit(None)


def validate_events(
    df: "DataFrame", source: SourceConfig, start: dt.date, end: dt.date, groups: int | None = None,
) -> Validated:
    """Select the rows of nights ``[start, end]`` and mark each accepted or rejected.

    The rows are shuffled once: with ``groups``, hash-partitioned by ``_group``, the entity's hash
    group (:func:`adspark.pipeline.grouping.group_of`), so that an aggregation or a grouped pandas
    call keyed by it (discretize) needs no other exchange; without, by entity and timestamp (row
    mode: one entity may hold every row, and nothing downstream is keyed by entity).

    Args:
        df: The raw events table.
        source: The contract.
        start: First night.
        end: Last night (inclusive).
        groups: Number of entity hash groups (column ``_group`` in ``[0, groups)``), or None.

    Returns:
        The rows with their verdict; nothing is dropped.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    check_source_schema(df, source)
    kinds = {f.name: f.dataType.simpleString().split("(")[0] for f in df.schema.fields}
    original = df.columns
    ts_col = source.timestamp.column
    ts = parse_time(F.col(ts_col), kinds[ts_col], source)
    night = _row_date(df, source, ts)
    lo, hi = F.lit(start), F.lit(end)
    if source.date_column is None or source.date_column == ts_col:
        lo_ts = F.lit(dt.datetime.combine(start, dt.time()))
        hi_ts = F.lit(dt.datetime.combine(end + dt.timedelta(days=1), dt.time()))
        selected = df.where((ts >= lo_ts) & (ts < hi_ts))
    else:
        late_hi = F.lit(end + dt.timedelta(days=source.late_days))
        # this range's partitions, plus late arrivals for this range in the next partitions
        selected = df.where(
            night.between(lo, hi) | (night.between(lo, late_hi) & F.to_date(ts).between(lo, hi))
        )

    parts = entity_parts(source)
    rows = selected.select(
        *[F.col(c) for c in original],
        entity_key(parts).alias("_entity"),
        ts.alias("_ts"),
        night.alias("_date"),
    )
    checks: list[tuple[Column, str, str, Column]] = []
    null_key = None
    for c, part in zip(source.entity, parts):
        bad = part.isNull() | (part == "")
        null_key = bad if null_key is None else null_key | bad
        checks.append((bad, "null_entity", c, F.lit("expected a non-blank entity key")))
    text_cols = [*source.entity, *[c.name for c in source.categoricals], *source.distinct]
    if source.event_id:
        text_cols.append(source.event_id)
    for c in dict.fromkeys(text_cols):
        text = F.col(c).cast("string")
        checks.append(
            (
                text.rlike(_BAD_TEXT),
                "bad_encoding",
                c,
                F.concat(F.lit("expected valid UTF-8 text without control characters, got "),
                         F.to_json(F.array(text))),
            )
        )
    raw_ts = F.col(ts_col)
    checks.append((raw_ts.isNull(), "null_timestamp", ts_col, F.lit("expected a timestamp")))
    checks.append(
        (
            F.col("_ts").isNull(),
            "unparseable_timestamp",
            ts_col,
            F.concat(F.lit("cannot parse "), raw_ts.cast("string"), F.lit(" as a timestamp")),
        )
    )
    tmin, tmax = F.lit(source.min_timestamp), F.lit(source.max_timestamp)
    checks.append(
        (
            (F.col("_ts") < tmin) | (F.col("_ts") > tmax),
            "timestamp_out_of_range",
            ts_col,
            F.concat(
                F.lit(f"expected between {source.min_timestamp} and {source.max_timestamp}, got "),
                F.col("_ts").cast("string"),
            ),
        )
    )
    ts_day = F.to_date(F.col("_ts"))
    checks.append(
        (
            ts_day < lo,
            "late_event",
            ts_col,
            F.concat(
                F.lit("event day "), ts_day.cast("string"), F.lit(" arrived in partition "),
                F.col("_date").cast("string"),
                F.lit(": queued; rerun `adspark nightly --date "), ts_day.cast("string"),
                F.lit(f"` to re-score that night with it (it reads up to {source.late_days} later partitions)"),
            ),
        )
    )
    checks.append(
        (
            ~ts_day.between(lo, hi),
            "outside_night",
            ts_col,
            F.concat(
                F.lit(f"event day expected within {start}..{end}, got "), ts_day.cast("string")
            ),
        )
    )
    measure_cols = []
    for m in source.measures:
        raw = F.col(m.name)
        value = raw.try_cast("double") if kinds[m.name] == "string" else raw.cast("double")
        measure_cols.append(value.alias(m.name))
        if m.required:
            checks.append((raw.isNull(), "null_value", m.name, F.lit("expected a number")))
        checks.append(
            (
                raw.isNotNull() & value.isNull(),
                "unparseable_value",
                m.name,
                F.concat(F.lit("cannot parse "), raw.cast("string"), F.lit(" as a number")),
            )
        )
        checks.append(
            (
                F.isnan(value) | (F.abs(value) == F.lit(float("inf"))),
                "non_finite",
                m.name,
                F.concat(F.lit("expected a finite number, got "), value.cast("string")),
            )
        )
        checks.append(
            (
                F.abs(value) > F.lit(m.max_abs),
                "huge_value",
                m.name,
                F.concat(F.lit(f"expected abs(value) <= {m.max_abs:g}, got "), value.cast("string")),
            )
        )
        if m.non_negative:
            checks.append(
                (
                    value < 0,
                    "negative_value",
                    m.name,
                    F.concat(F.lit("expected >= 0, got "), value.cast("string")),
                )
            )

    for c in source.categoricals:
        if c.values is not None and c.unknown == "reject":
            raw = F.col(c.name).cast("string")
            checks.append(
                (
                    raw.isNotNull() & ~raw.isin(*c.values),
                    "unknown_category",
                    c.name,
                    F.concat(F.lit(f"expected one of {list(c.values)} (or null), got "), F.to_json(F.array(raw))),
                )
            )
    # the index of the first failed check, evaluated once per row (one flat CASE WHEN: nesting
    # when/otherwise per check overflowed the JVM stack with ~140 measure columns, ECG5000 in row
    # mode); reason, column and detail are looked up from it after the windows, so the shuffles
    # carry one int, and each check (a regex over every text column) runs once, not three times
    conds = [F.coalesce(cond, F.lit(False)) for cond, _, _, _ in checks]
    check = first_match(zip(conds, [F.lit(i) for i in range(len(checks))]))
    failed = F.col("_check").isNotNull()

    # exact copies share their entity (so its group) and timestamp: one exchange (by the group, or
    # by entity and timestamp) serves both windows below (the copies' window sorts by ([group,]
    # entity, time, every column); the readings' window needs that same order's prefix)
    grouped = [] if groups is None else [group_of(groups, "_entity")]
    key = ("_entity", "_ts") if groups is None else ("_group", "_entity", "_ts")
    partition = key if groups is None else ("_group",)
    copy_rank = F.row_number().over(Window.partitionBy(*key, *original).orderBy(F.lit(1)))

    def by_check(values: list["Column"]) -> "Column":
        return first_match((F.col("_check") == i, v) for i, v in enumerate(values))

    marked = (
        rows.select("*", check.cast("int").alias("_check"), *grouped)
        .repartition(*partition)
        .withColumn("_copy", copy_rank)
        .withColumn("_rule_reason", by_check([F.lit(code) for _, code, _, _ in checks]))
        .withColumn("_rule_column", by_check([F.lit(col_name) for _, _, col_name, _ in checks]))
        .withColumn("_rule_detail", by_check([det for _, _, _, det in checks]).cast("string"))
    )
    is_dup = ~failed & (F.col("_copy") > 1)
    # different readings of one entity at one timestamp (exact copies are duplicates, above)
    passing = ~failed & (F.col("_copy") == 1)
    same = F.sum(F.when(passing, 1).otherwise(0)).over(Window.partitionBy(*key))
    marked = marked.withColumn("_shared", passing & (same > 1)).withColumn("_same", same)
    if source.same_timestamp == "reject":
        conflict = F.col("_shared")
        conflict_detail = F.concat(
            F.col("_same").cast("string"), F.lit(" different readings of entity "), F.col("_entity"),
            F.lit(" at "), F.col("_ts").cast("string"),
            F.lit(" (source.same_timestamp: reject; 'aggregate' keeps them in their bucket)"),
        )
    else:
        conflict, conflict_detail = F.lit(False), F.lit(None).cast("string")
    categoricals = [c.name for c in source.categoricals]
    extra_cols = [c for c in source.distinct if c not in categoricals] + (
        [source.event_id] if source.event_id and source.event_id not in categoricals else []
    )
    result = marked.select(
        *[F.col(c) for c in ("_group",) if groups is not None],
        F.col("_entity"),
        F.col("_ts"),
        F.col("_date"),
        *measure_cols,
        *[F.col(c).cast("string").alias(c) for c in categoricals],
        *[F.col(c).cast("string").alias(c) for c in extra_cols if c not in categoricals],
        F.when(is_dup, F.lit("duplicate")).when(conflict, F.lit("conflicting_readings"))
        .otherwise(F.col("_rule_reason")).alias("_reason"),
        F.when(is_dup, F.lit(None)).when(conflict, F.lit(ts_col)).otherwise(F.col("_rule_column")).alias("_column"),
        F.when(is_dup, F.lit("exact copy of an earlier row")).when(conflict, conflict_detail).otherwise(
            F.col("_rule_detail")
        ).alias("_detail"),
        F.when(
            failed | is_dup | conflict,
            F.to_json(F.struct(*[F.col(c) for c in original])),
        ).alias("_raw"),
        (F.col("_shared") & ~conflict).alias("_shared"),
    )
    return Validated(result, tuple(m.name for m in source.measures), tuple(categoricals), groups)


def rejects_frame(validated: Validated, run_id: str, job: str) -> "DataFrame":
    """The rejected rows in the shape of the ``rejects`` table."""
    from pyspark.sql import functions as F

    from schemas import REJECTS

    return validated.rejected.select(
        F.lit(run_id).alias("run_id"),
        F.lit(job).alias("job"),
        F.col("_reason").alias("reason"),
        F.col("_column").alias("column"),
        F.col("_detail").alias("detail"),
        F.col("_raw").alias("raw"),
        F.coalesce(F.col("_date"), F.to_date(F.col("_ts"))).alias("date"),
        F.current_timestamp().alias("rejected_at"),
    ).select(*[F.col(f.name).cast(f.data_type()) for f in REJECTS.fields])
