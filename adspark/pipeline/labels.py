"""``adspark labels``: load labeled anomalies from a CSV file, or from a per-row flag column of
the events, into the ``labels`` table.

The file is read by Spark (a local path, a volume or an object-store URI), every column as text,
and split by the rules of :func:`adspark.core.labels.parse_labels`. Accepted rows are upserted by
``anomaly_id`` in one Delta MERGE (loading the same file twice changes nothing; ``--replace``
replaces the whole table with the file); rejected rows go to ``rejects`` (job ``labels``) with the
rule, column and what was expected, replacing the rejects of an earlier load of the same rows.
The run is recorded in ``runs``: read = accepted + rejected.

With ``--from-column`` the events themselves carry the labels (a column such as ``anomaly``,
``label`` or ``attack`` set on every flagged row, as labeled sensor runs and network captures
ship): the configured source is read with its renames and file-name column, each entity's runs
of consecutive flagged rows become labels (:func:`adspark.core.labels.flag_intervals`), and a row
without an entity, a timestamp or a readable flag goes to ``rejects`` (read = accepted +
rejected, accepted counting flagged and unflagged rows).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from adspark.config import LabelsJobConfig, SourceConfig
from adspark.core.labels import LABEL_COLUMNS, flag_intervals, parse_labels
from adspark.errors import ConfigError, EmptyInputError, SchemaMismatchError
from adspark.pipeline.grouping import group_of
from adspark.pipeline.validate import entity_key, entity_parts, first_match, parse_time, read_source
from adspark.runs import recorded_run
from adspark.storage import URI_SCHEMES, TableStore
from schemas import LABELS, REJECTS

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import Column, DataFrame

JOB = "labels"


def overlaps(start: "Column", end: "Column", other_start: "Column", other_end: "Column") -> "Column":
    """Whether ``[start, end)`` overlaps ``[other_start, other_end)``: the rule of
    :func:`adspark.core.evaluate.overlap_labels` as a Spark condition (the one every job that
    matches windows with labels or intervals uses). A zero-width span on either side (a point
    label, a row-mode window) covers its instant: it is widened to one second.
    """
    from pyspark.sql import functions as F

    second = F.expr("INTERVAL 1 SECOND")
    return (start < F.greatest(other_end, other_start + second)) & (F.greatest(end, start + second) > other_start)


@dataclass(frozen=True)
class LabelsLoad:
    """What a load did.

    Attributes:
        read: Rows in the file.
        accepted: Rows loaded as labels.
        rejected: Rows sent to ``rejects``.
        labels: Rows of the ``labels`` table after the load.
        message: The one-line summary.
    """

    read: int
    accepted: int
    rejected: int
    labels: int
    message: str


def _read_text(store: TableStore, path: str, delimiter: str) -> pd.DataFrame:
    """The CSV's rows, every column as text, in file order (a relative path is relative to the
    current folder, as for any command-line file)."""
    resolved = path if path.startswith(URI_SCHEMES) else str(Path(path).resolve())
    df = store.spark.read.options(header="true", inferSchema="false", sep=delimiter, mode="PERMISSIVE").csv(resolved)
    return df.toPandas()


def run_labels(
    store: TableStore, cfg: LabelsJobConfig, path: str, timezone: str = "UTC", replace: bool = False,
    delimiter: str = ",",
) -> LabelsLoad:
    """Load the labels file at ``path``.

    Raises:
        SchemaMismatchError: A required column is missing.
        EmptyInputError: The file holds no rows.
    """
    with recorded_run(store, JOB, cfg) as run:
        raw = _read_text(store, path, delimiter)
        if raw.empty:
            raise EmptyInputError(f"labels file {path!r} holds no rows (expected a header and one row per anomaly)")
        parsed = parse_labels(raw, timezone, path)
        run.rows_read, run.rows_accepted, run.rows_rejected = len(raw), len(parsed.accepted), len(parsed.rejected)
        if not parsed.accepted.empty or replace:
            labels = store.spark.createDataFrame(parsed.accepted, LABELS.struct_type())
            if replace:
                store.overwrite(labels, LABELS.name)
            else:
                store.upsert(labels, LABELS.name, ("anomaly_id",))
        if not parsed.rejected.empty:
            today = pd.Timestamp(dt.datetime.now(dt.timezone.utc).date())
            rejects = parsed.rejected.assign(
                run_id=run.run_id, job=JOB, date=parsed.rejected["date"].fillna(today).dt.date,
                rejected_at=pd.Timestamp.now(tz="UTC").tz_localize(None),
            )[[f.name for f in REJECTS.fields]]
            frame = store.spark.createDataFrame(rejects, REJECTS.struct_type())
            if store.exists(REJECTS.name):  # a reload replaces the rejects of the same rows
                store.delete_matching(REJECTS.name, frame.select("job", "raw").distinct(), ("job", "raw"))
            store.append(frame, REJECTS.name, partition_by=REJECTS.partition_by)
        total = store.read(LABELS.name).count() if store.exists(LABELS.name) else 0
        run.rows_written = len(parsed.accepted)
        reasons = parsed.rejected["reason"].value_counts()
        why = f" ({', '.join(f'{k}: {v}' for k, v in reasons.items())}; see the rejects table, job = 'labels')" \
            if len(reasons) else ""
        run.message = (f"labels: read {len(raw)} rows from {path}, loaded {len(parsed.accepted)}, "
                       f"rejected {len(parsed.rejected)}{why}; the labels table holds {total}")
    return LabelsLoad(len(raw), len(parsed.accepted), len(parsed.rejected), total, run.message)


FLAG_TRUE = ("1", "true", "t", "yes", "y")
FLAG_FALSE = ("0", "false", "f", "no", "n")


def flag_value(raw: "Column", kind: str, positive: str | None = None, negative: str | None = None) -> "Column":
    """A flag column as a boolean: a boolean as is, a number flagged when not 0, text flagged
    when it equals ``positive`` (any other text: not flagged), or differs from ``negative`` (a
    label column holding ``normal`` or an attack's name), or else when it reads as true (1, true,
    t, yes, y; 0, false, f, no, n: not flagged; text of a number such as ``1.0`` or ``0.0``, as
    CSV files write a float column: flagged when not 0; other text: null, a rejected row). Case
    and surrounding blanks are ignored; null stays null."""
    from pyspark.sql import functions as F

    if kind == "boolean":
        return raw
    if kind in ("tinyint", "smallint", "int", "bigint", "float", "double", "decimal"):
        return raw.cast("double") != 0
    text = F.lower(F.trim(raw.cast("string")))
    if positive is not None:
        return F.when(raw.isNull(), F.lit(None)).otherwise(text == positive.strip().lower())
    if negative is not None:
        return F.when(raw.isNull(), F.lit(None)).otherwise(text != negative.strip().lower())
    number = text.try_cast("double")
    return (F.when(text.isin(*FLAG_TRUE), True).when(text.isin(*FLAG_FALSE), False)
            .when(number.isNotNull() & ~F.isnan(number), number != 0))


def _flagged_rows(
    store: TableStore, source: SourceConfig, column: str, positive: str | None, negative: str | None,
) -> "DataFrame":
    """The source's rows with ``entity``, ``ts``, ``flag`` and, for a row that cannot be used,
    ``reason``/``column``/``detail``/``raw`` (null otherwise: the JSON of a row is built for the
    rejected ones only)."""
    from pyspark.sql import functions as F

    raw = read_source(store, source)
    kinds = {f.name: f.dataType.simpleString().split("(")[0] for f in raw.schema.fields}
    origin = source.path or source.table
    for name, expected in ((column, "a flag column (boolean, number or text)"),
                           (source.timestamp.column, "a timestamp"), *((c, "an entity key") for c in source.entity)):
        if name not in kinds:
            raise SchemaMismatchError(origin, name, f"{expected}; found {sorted(kinds)}", "missing")
    if kinds[column] in ("array", "map", "struct", "binary"):
        raise SchemaMismatchError(origin, column, "a boolean, number or text flag", kinds[column])
    ts_col = source.timestamp.column
    parts = entity_parts(source)
    entity, ts = entity_key(parts), parse_time(F.col(ts_col), kinds[ts_col], source)
    flag = flag_value(F.col(column), kinds[column], positive, negative)
    blank = F.lit(False)
    for part in parts:
        blank = blank | part.isNull() | (part == "")
    expected_flag = (f"{positive!r} or another value" if positive is not None
                     else f"{negative!r} or another value" if negative is not None
                     else f"a flag (a number, {', '.join(FLAG_TRUE)} or {', '.join(FLAG_FALSE)})")
    checks = [
        (blank, F.lit("null_entity"), F.lit(",".join(source.entity)), F.lit("expected a non-blank entity key")),
        (F.col(ts_col).isNull(), F.lit("null_timestamp"), F.lit(ts_col), F.lit("expected a timestamp")),
        (ts.isNull(), F.lit("unparseable_timestamp"), F.lit(ts_col),
         F.concat(F.lit("cannot parse "), F.col(ts_col).cast("string"), F.lit(" as a timestamp"))),
        (F.col(column).isNull(), F.lit("null_value"), F.lit(column), F.lit(f"expected {expected_flag}")),
        (flag.isNull(), F.lit("unparseable_value"), F.lit(column),
         F.concat(F.lit(f"expected {expected_flag}, got "), F.to_json(F.array(F.col(column).cast("string"))))),
    ]

    reason, where, detail = (first_match((c[0], c[i]) for c in checks) for i in (1, 2, 3))
    return raw.select(
        entity.alias("entity"), ts.alias("ts"), flag.alias("flag"),
        reason.alias("reason"), where.alias("column"), detail.alias("detail"),
        F.when(reason.isNotNull(), F.to_json(F.struct(*[F.col(c) for c in raw.columns]))).alias("raw"),
    )


def run_flag_labels(
    store: TableStore, cfg: LabelsJobConfig, column: str, positive: str | None = None, replace: bool = False,
    negative: str | None = None,
) -> LabelsLoad:
    """Load labels from the flag column ``column`` of the configured events source.

    Args:
        column: The per-row flag (after ``source.rename``).
        positive: The text that marks a flagged row (``Attack``); ``None``: see ``negative``.
        negative: The text of an unflagged row (``normal``: every other value is flagged);
            neither: true/false text (:func:`flag_value`).
        replace: Replace the whole ``labels`` table with these labels.

    Raises:
        ConfigError: The project has no ``source`` section, or both ``positive`` and ``negative``
            are given.
        SchemaMismatchError: The flag, timestamp or an entity column is missing.
        EmptyInputError: The source holds no rows.
    """
    from pyspark.sql import functions as F

    if cfg.source is None:
        raise ConfigError("adspark labels --from-column: the project file has no source section (the events to read)")
    if positive is not None and negative is not None:
        raise ConfigError("adspark labels --from-column: give --positive or --negative, not both")
    origin = cfg.source.path or cfg.source.table
    with recorded_run(store, JOB, cfg) as run:
        rows = _flagged_rows(store, cfg.source, column, positive, negative).persist()
        try:
            counts = {(r["bad"], r["flag"]): int(r["n"]) for r in rows.groupBy(
                F.col("reason").isNotNull().alias("bad"), F.coalesce(F.col("flag"), F.lit(False)).alias("flag")
            ).count().withColumnRenamed("count", "n").collect()}
            read = sum(counts.values())
            if not read:
                raise EmptyInputError(f"source {origin!r} holds no rows to read labels from")
            rejected = counts.get((True, False), 0) + counts.get((True, True), 0)
            flagged, unflagged = counts.get((False, True), 0), counts.get((False, False), 0)
            labels = _intervals(store, rows.where(F.col("reason").isNull()), column)
            run.rows_read, run.rows_accepted, run.rows_rejected = read, flagged + unflagged, rejected
            if len(labels) or replace:
                frame = store.spark.createDataFrame(labels, LABELS.struct_type())
                if replace:
                    store.overwrite(frame, LABELS.name)
                else:
                    store.upsert(frame, LABELS.name, ("anomaly_id",))
            reasons = _reject_rows(store, rows, run.run_id) if rejected else {}
        finally:
            rows.unpersist()
        total = store.read(LABELS.name).count() if store.exists(LABELS.name) else 0
        run.rows_written = len(labels)
        why = (f" ({', '.join(f'{k}: {v}' for k, v in sorted(reasons.items()))}; see the rejects table, "
               "job = 'labels')") if reasons else ""
        run.message = (f"labels: read {read} rows of {origin}, column {column}: {flagged} flagged rows in "
                       f"{len(labels)} labels over {labels['entity'].nunique()} entities, {unflagged} not flagged, "
                       f"rejected {rejected}{why}; the labels table holds {total}")
    return LabelsLoad(read, flagged + unflagged, rejected, total, run.message)


def _intervals(store: TableStore, usable: "DataFrame", column: str) -> pd.DataFrame:
    """The labels of the usable rows' flagged runs, one grouped pandas call per hash group of
    entities (only entities with a flagged row; every row of theirs, for the runs' ends)."""
    from pyspark.sql import functions as F

    flagged = usable.where(F.col("flag")).select("entity").distinct()
    groups = max(int(store.spark.conf.get("spark.sql.shuffle.partitions")), 1)
    schema = LABELS.struct_type()

    def labels_of(part: pd.DataFrame) -> pd.DataFrame:
        return flag_intervals(part[["entity", "ts", "flag"]], column)[list(LABEL_COLUMNS)]

    return (
        usable.join(flagged, "entity", "left_semi")
        .select("entity", "ts", "flag", group_of(groups))
        .groupBy("_group").applyInPandas(labels_of, schema)
        .toPandas().sort_values(["entity", "start"], ignore_index=True)
    )


def _reject_rows(store: TableStore, rows: "DataFrame", run_id: str) -> dict[str, int]:
    """Write the unusable rows to ``rejects`` (replacing those of an earlier load of the same
    rows); returns their count per reason."""
    from pyspark.sql import functions as F

    bad = rows.where(F.col("reason").isNotNull())
    frame = bad.select(
        F.lit(run_id).alias("run_id"), F.lit(JOB).alias("job"), "reason", "column", "detail", "raw",
        F.coalesce(F.to_date("ts"), F.current_date()).alias("date"),
        F.current_timestamp().alias("rejected_at"),
    ).select(*[F.col(f.name).cast(f.data_type()) for f in REJECTS.fields])
    if store.exists(REJECTS.name):
        store.delete_matching(REJECTS.name, frame.select("job", "raw").distinct(), ("job", "raw"))
    store.append(frame, REJECTS.name, partition_by=REJECTS.partition_by)
    return {r["reason"]: int(r["count"]) for r in bad.groupBy("reason").count().collect()}
