"""Table storage: Delta folders under the warehouse, registered by name, written idempotently.

Every table is a Delta folder ``<warehouse>/<schema>/<table>``, so it stays readable by any Delta
reader (delta-rs, DuckDB), and is registered in the session catalog as ``<schema>.<table>``
(``<catalog>.<schema>.<table>`` when a catalog is configured), so it can be queried by name.
"""

from __future__ import annotations

import datetime as dt
import logging
import posixpath
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TypeVar

from adspark.config import StorageConfig, check_identifier
from adspark.errors import ConfigError, TableNotFoundError
from adspark.faults import kill_point
from adspark.session import is_connect, session_conf
from schemas import TABLES

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, DataFrameWriter, SparkSession
    from pyspark.sql.types import StructType


T = TypeVar("T")
log = logging.getLogger(__name__)
COMMITS_SEARCHED = 20
"""How many of a table's latest commits :meth:`TableStore.committed_rows` looks through (others
may commit between a write and that read)."""
URI_SCHEMES = ("s3://", "s3a://", "gs://", "abfss://", "dbfs:/", "hdfs://", "file:/")


GLOB_CHARS = "*?[{"


def listing_root(path: str) -> str:
    """The folder a file source's files are listed under, as Spark spells their paths (decoded).

    ``_metadata.file_path`` holds a qualified URI: a local ``/data/runs`` lists as
    ``file:/data/runs/...``; a glob lists below its last folder without a wildcard.

    Args:
        path: A resolved ``source.path`` (absolute local path or URI).

    Returns:
        The root without a trailing slash, e.g. ``file:/data/runs``, ``s3a://bucket/landing``.
    """
    from urllib.parse import unquote

    if path.startswith("file://"):
        path = "file:/" + path[len("file://"):].lstrip("/")
    elif not path.startswith(URI_SCHEMES):
        path = "file:" + posixpath.normpath(path)
    else:
        path = unquote(path)
    head, sep, rest = path.partition(":")
    parts = rest.split("/")
    for i, part in enumerate(parts):
        if any(c in part for c in GLOB_CHARS):
            parts = parts[:i]
            break
    return (head + sep + "/".join(parts)).rstrip("/")


_CONFLICT_BASES = {
    "io.delta.exceptions.DeltaConcurrentModificationException",
    "org.apache.spark.sql.delta.DeltaConcurrentModificationException",
    "java.util.ConcurrentModificationException",
}


# Delta's error classes of its concurrent-modification exceptions (what a Spark Connect client sees)
_CONFLICT_CONDITIONS = {
    "DELTA_CONCURRENT_APPEND", "DELTA_CONCURRENT_DELETE_DELETE", "DELTA_CONCURRENT_DELETE_READ",
    "DELTA_CONCURRENT_TRANSACTION", "DELTA_CONCURRENT_WRITE", "DELTA_METADATA_CHANGED",
    "DELTA_PROTOCOL_CHANGED",
}


def _condition(exc: BaseException) -> str | None:
    """The Spark error class (condition) of ``exc``, when it has one."""
    get = getattr(exc, "getCondition", None) or getattr(exc, "getErrorClass", None)
    try:
        value = get() if get is not None else None
    except Exception:  # an exception type without an error class
        return None
    return None if value is None else str(value)


def is_delta_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is one of Delta's concurrent-modification exceptions (by class).

    Delta's Python layer converts some of them to ``delta.exceptions`` classes; others (e.g.
    ``ProtocolChangedException`` when two writers create a table at once) reach Python as a
    ``Py4JJavaError``, whose Java class hierarchy is checked instead; over Spark Connect (no JVM
    in this process) their Delta error class is.
    """
    from delta.exceptions import DeltaConcurrentModificationException

    if isinstance(exc, DeltaConcurrentModificationException):
        return True
    if _condition(exc) in _CONFLICT_CONDITIONS:
        return True
    java = getattr(exc, "java_exception", None)
    if java is None:
        return False
    try:
        cls = java.getClass()
        while cls is not None:
            if cls.getName() in _CONFLICT_BASES:
                return True
            cls = cls.getSuperclass()
    except Exception:  # the gateway is gone: not a conflict we can retry
        return False
    return False


_ALREADY_EXISTS = (
    "TABLE_OR_VIEW_ALREADY_EXISTS", "SCHEMA_ALREADY_EXISTS", "VIEW_ALREADY_EXISTS",
    "DELTA_TABLE_ALREADY_EXISTS",  # the Delta catalog's own wording of the same lost race
)
_REGISTER_ATTEMPTS = 5


def is_already_exists(exc: BaseException) -> bool:
    """Whether ``exc`` is Spark's "name already exists" analysis error (a lost creation race)."""
    cls = _condition(exc)
    if cls is not None:
        return cls in _ALREADY_EXISTS
    return any(marker in str(exc) for marker in _ALREADY_EXISTS)


def with_delta_retry(action: Callable[[], T], attempts: int = 6, base_delay_s: float = 0.5) -> T:
    """Run a Delta write, retrying on Delta's concurrent-modification exceptions only.

    Args:
        action: The write to run (must be safe to repeat: replaceWhere, MERGE or append-once).
        attempts: Tries in all.
        base_delay_s: First back-off; doubled after each failure.
    """
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as exc:
            if attempt == attempts or not is_delta_conflict(exc):
                raise
            time.sleep(base_delay_s * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def _normalized(path: str) -> str:
    """A table location without its ``file:`` scheme and trailing slash, for comparing."""
    for prefix in ("file://", "file:"):
        if path.startswith(prefix):
            path = path[len(prefix):]
            break
    return path.rstrip("/")


def date_range_predicate(column: str, start: dt.date, end: dt.date) -> str:
    """A replaceWhere predicate for ``start <= column <= end`` built from typed values only."""
    check_identifier(column, "column")
    if not (isinstance(start, dt.date) and isinstance(end, dt.date)):
        raise TypeError("start and end must be dates")
    return f"`{column}` >= DATE'{start.isoformat()}' AND `{column}` <= DATE'{end.isoformat()}'"


def sql_string(value: str) -> str:
    """``value`` as a Spark SQL string literal (quotes and backslashes escaped), for predicates."""
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@contextmanager
def writer_settings(spark: "SparkSession", table: str) -> Iterator[None]:
    """The table's Parquet writer settings (:meth:`schemas.fields.TableSchema.parquet_settings`)
    for the block only; a setting the session refuses (a managed service's allow-list) is
    skipped: it changes how values are encoded, never what is written."""
    schema = TABLES.get(table)
    with ExitStack() as stack:
        for key, value in (schema.parquet_settings() if schema else {}).items():
            try:
                stack.enter_context(session_conf(spark, key, value))
            except Exception as exc:  # noqa: BLE001 (any refusal: write with the session's defaults)
                log.debug("writer setting %s for table %s refused: %s", key, table, exc)
        yield


class TableStore:
    """Reads, writes and names the adspark tables of one warehouse.

    Args:
        spark: The session.
        storage: Where the tables live.

    Attributes:
        reads: How many times each table was read through :meth:`read` by this store (each read
            is a scan when its DataFrame runs; the nightly job's reads are counted in a test).
        commits: How many Delta commits each table got through this store's writes (one per
            append, replace, overwrite or MERGE; counted per night in a test).
    """

    def __init__(self, spark: "SparkSession", storage: StorageConfig) -> None:
        self.spark = spark
        self.reads: Counter[str] = Counter()
        self.commits: Counter[str] = Counter()
        self.storage = storage
        wh = storage.warehouse
        base = wh if wh.startswith(URI_SCHEMES) else str(Path(wh).resolve())
        self.root = f"{base.rstrip('/')}/{storage.schema_name}"
        self._database = (
            f"`{storage.catalog}`.`{storage.schema_name}`"
            if storage.catalog
            else f"`{storage.schema_name}`"
        )
        self._registered: set[str] = set()

    def path(self, table: str) -> str:
        """The Delta folder of a table."""
        return f"{self.root}/{check_identifier(table, 'table')}"

    def resolve_path(self, path: str, key: str) -> str:
        """A path from the config: URIs and absolute paths as given (explicit), a relative path
        under the warehouse, which it may not leave.

        Raises:
            ConfigError: Naming the key when a relative path escapes the warehouse.
        """
        if path.startswith(URI_SCHEMES) or Path(path).is_absolute():
            return path
        base = self.storage.warehouse
        if base.startswith(URI_SCHEMES):
            norm = posixpath.normpath(path)
            if norm == ".." or norm.startswith("../"):
                raise ConfigError(f"{key}: relative path {path!r} escapes the warehouse {base!r}")
            return f"{base.rstrip('/')}/{norm}"
        root = Path(base).resolve()
        target = (root / path).resolve()
        if target != root and root not in target.parents:
            raise ConfigError(
                f"{key}: relative path {path!r} escapes the warehouse {str(root)!r} "
                "(give an absolute path or URI to read outside it)"
            )
        return str(target)

    def qualified(self, table: str) -> str:
        """The quoted name to use in SQL, e.g. ```adspark`.`features```."""
        return f"{self._database}.`{check_identifier(table, 'table')}`"

    def exists(self, table: str) -> bool:
        """Whether the table holds a Delta log (over Spark Connect: whether Delta resolves it)."""
        from delta.tables import DeltaTable

        if not is_connect(self.spark):
            return DeltaTable.isDeltaTable(self.spark, self.path(table))
        path = _normalized(self.path(table))
        if not path.startswith(URI_SCHEMES):  # a local folder: look for the log, as isDeltaTable does
            return (Path(path) / "_delta_log").is_dir()
        from pyspark.errors import AnalysisException

        try:
            self.spark.read.format("delta").load(self.path(table)).schema  # noqa: B018 (resolves the table)
        except AnalysisException:
            return False
        return True

    def read(self, table: str, version: int | None = None) -> "DataFrame":
        """Read a table (its latest version, or ``version``).

        Raises:
            TableNotFoundError: When it has never been written.
        """
        self._require(table)
        self.reads[table] += 1
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.load(self.path(table))

    def partition_dates(self, table: str, column: str, before: dt.date) -> list[dt.date] | None:
        """The values before ``before`` of a date partition column that hold rows, from the file
        list of the table's Delta log (no data scanned; not counted in ``reads``).

        Returns:
            The dates, ascending; ``None`` when a file's path does not name its partition (a table
            with column mapping or random file prefixes): read the column instead.

        Raises:
            TableNotFoundError: When it has never been written.
        """
        self._require(table)
        found: set[dt.date] = set()
        segment = re.compile(rf"/{re.escape(column)}=(\d{{4}}-\d{{2}}-\d{{2}})/")
        for name in self.spark.read.format("delta").load(self.path(table)).inputFiles():
            match = segment.search(name)
            if match is None:
                return None
            day = dt.date.fromisoformat(match.group(1))
            if day < before:
                found.add(day)
        return sorted(found)

    def schema(self, table: str) -> "StructType":
        """A table's columns, from its Delta log (no data scanned; not counted in ``reads``).

        Raises:
            TableNotFoundError: When it has never been written.
        """
        self._require(table)
        return self.spark.read.format("delta").load(self.path(table)).schema

    def _require(self, table: str) -> None:
        """Raise :class:`adspark.errors.TableNotFoundError` when the table was never written."""
        if not self.exists(table):
            raise TableNotFoundError(
                f"table {self.qualified(table)} does not exist at {self.path(table)!r} "
                "(has the job that writes it run yet?)"
            )

    def version(self, table: str) -> int:
        """The latest committed version of a table."""
        return int(self._history(table, 1).select("version").first()[0])

    def _history(self, table: str, limit: int) -> "DataFrame":
        """The table's last ``limit`` commits (Delta's ``DESCRIBE HISTORY``: the log, no data; SQL,
        so that it runs over Spark Connect too)."""
        return self.spark.sql(f"DESCRIBE HISTORY delta.`{self.path(table)}` LIMIT {int(limit)}")

    def committed_rows(self, table: str, tag: str, within: int = COMMITS_SEARCHED) -> int | None:
        """The new rows Delta recorded for the commit of ``table`` whose ``userMetadata`` is
        ``tag``, among its last ``within`` commits (one read of the log, no scan of the data);
        None when no such commit is found or it recorded no count.

        A ``replaceWhere`` on a data column rewrites the files it touches: their other rows count
        in ``numOutputRows`` as ``numCopiedRows`` and are taken off; a commit of no file records
        no ``numOutputRows`` (0 rows)."""
        from pyspark.sql import functions as F

        rows = self._history(table, within).where(F.col("userMetadata") == F.lit(tag)).select("operationMetrics").collect()
        metrics = dict(rows[0].operationMetrics or {}) if rows else {}
        if "numOutputRows" in metrics:
            return int(metrics["numOutputRows"]) - int(metrics.get("numCopiedRows", 0))
        return 0 if metrics.get("numFiles") == "0" else None

    def count_dates(self, table: str, date_column: str, start: dt.date, end: dt.date) -> int:
        """Rows of ``table`` whose ``date_column`` is in ``[start, end]``."""
        from pyspark.sql import functions as F

        column = F.col(check_identifier(date_column, "column"))
        return self.read(table).where(column.between(F.lit(start), F.lit(end))).count()

    def _catalog_name(self, table: str) -> str:
        """``[catalog.]schema.table`` for the catalog API (identifiers already validated)."""
        prefix = f"{self.storage.catalog}." if self.storage.catalog else ""
        return f"{prefix}{self.storage.schema_name}.{check_identifier(table, 'table')}"

    def register(self, table: str) -> None:
        """Make ``<schema>.<table>`` resolvable in SQL (idempotent, also under concurrency).

        Create-if-absent: when another run (a thread of this driver, another job on the same
        metastore) registers the name between the check and the create, the lost race counts as
        success once the existing entry is checked to point at this table's location.

        When the name is already registered at another location (another warehouse with the same
        schema name): in the embedded session's own in-memory catalog the name moves to this
        warehouse; in a shared metastore (Hive, Unity Catalog) nothing is changed.

        Raises:
            ConfigError: The shared metastore's table points at another location.
        """
        if table in self._registered or not self.exists(table):
            return
        self._ensure_database()
        name = self._catalog_name(table)
        for _ in range(_REGISTER_ATTEMPTS):
            if self.spark.catalog.tableExists(name) and self._points_here(table):
                break
            try:
                self.spark.catalog.createTable(name, path=self.path(table), source="delta")
                break
            except Exception as exc:
                if not is_already_exists(exc):
                    raise
                # lost a race: the entry another run created is checked on the next pass
        else:
            raise ConfigError(
                f"table {self.qualified(table)}: could not register it at {self.path(table)!r} "
                f"after {_REGISTER_ATTEMPTS} attempts (other runs keep re-registering the name elsewhere)"
            )
        self._registered.add(table)

    def _ensure_database(self) -> None:
        """``CREATE DATABASE IF NOT EXISTS``, a concurrent creation counting as success."""
        try:
            self.spark.sql(f"CREATE DATABASE IF NOT EXISTS {self._database}")
        except Exception as exc:
            if not is_already_exists(exc):
                raise

    def _points_here(self, table: str) -> bool:
        """Whether the registered ``<schema>.<table>`` points at this warehouse's table.

        An entry elsewhere is moved here in the embedded session's in-memory catalog (then
        False: register again); in a shared metastore it is an error.

        Raises:
            ConfigError: The shared metastore's table points at another location.
        """
        where = self._catalog_location(table)
        if where is None or _normalized(where) == _normalized(self.path(table)):
            return True
        if self.spark.conf.get("spark.sql.catalogImplementation", "in-memory") != "in-memory":
            raise ConfigError(
                f"table {self.qualified(table)} is already registered at {where!r}, but this "
                f"warehouse keeps it at {self.path(table)!r}: set another storage.schema for this "
                f"warehouse, or DROP TABLE {self.qualified(table)} if the old location is gone"
            )
        # this process's own catalog (embedded session): point the name at this warehouse
        self.spark.sql(f"DROP TABLE IF EXISTS {self.qualified(table)}")  # external: metadata only
        return False

    def _catalog_location(self, table: str) -> str | None:
        """Where the catalog's ``<schema>.<table>`` points (None when it does not say)."""
        rows = self.spark.sql(
            f"SHOW TABLE EXTENDED IN {self._database} LIKE '{check_identifier(table, 'table')}'"
        ).collect()
        for row in rows:
            for line in str(row["information"]).splitlines():
                if line.startswith("Location:"):
                    return line.split(":", 1)[1].strip()
        return None

    def register_all(self) -> list[str]:
        """Register every table found under the warehouse schema folder; returns their names."""
        root = Path(self.root)
        if self.root.startswith(URI_SCHEMES) or not root.is_dir():
            return []
        names = sorted(p.name for p in root.iterdir() if (p / "_delta_log").is_dir())
        for name in names:
            self.register(name)
        return names

    def _creation_options(self, table: str) -> dict[str, str]:
        """The declared table properties (:meth:`schemas.fields.TableSchema.creation_options`)
        when this write creates the table; none on later writes (setting a property again would
        change the table's metadata and fail concurrent writers)."""
        schema = TABLES.get(table)
        options = schema.creation_options() if schema else {}
        return options if options and not self.exists(table) else {}

    def replace_dates(
        self,
        df: "DataFrame",
        table: str,
        date_column: str,
        start: dt.date,
        end: dt.date,
        partition_by: tuple[str, ...] = (),
        extra_predicate: str | None = None,
        tag: str | None = None,
    ) -> None:
        """Overwrite exactly the rows of ``[start, end]`` (and ``extra_predicate``) with ``df``.

        Rerunning a date replaces it; other dates are untouched. Retries Delta conflicts.

        Args:
            tag: Recorded as the commit's ``userMetadata``, for :meth:`committed_rows`.
        """
        predicate = date_range_predicate(date_column, start, end)
        if extra_predicate:
            predicate = f"({predicate}) AND ({extra_predicate})"
        writer = (
            df.write.format("delta").mode("overwrite").option("replaceWhere", predicate)
            .option("mergeSchema", "true")  # columns added by a newer adspark join the table
            .options(**self._creation_options(table))
        )
        if tag is not None:
            writer = writer.option("userMetadata", tag)
        self._save(writer, table, partition_by)

    def append(self, df: "DataFrame", table: str, partition_by: tuple[str, ...] = ()) -> None:
        """Append rows (for logs such as ``runs``); retries Delta conflicts. Columns added by a
        newer adspark join the table."""
        writer = df.write.format("delta").mode("append").option("mergeSchema", "true").options(
            **self._creation_options(table)
        )
        self._save(writer, table, partition_by)

    def _save(self, writer: "DataFrameWriter", table: str, partition_by: tuple[str, ...]) -> None:
        """Save a prepared Delta writer to ``table`` (retrying Delta conflicts), count the commit
        and register the table."""
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        with kill_point(table, self.path(table)), writer_settings(self.spark, table):
            with_delta_retry(lambda: writer.save(self.path(table)))
        self.commits[table] += 1
        self.register(table)

    def overwrite(self, df: "DataFrame", table: str) -> None:
        """Replace a whole (small) table."""
        writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
        with kill_point(table, self.path(table)):
            with_delta_retry(lambda: writer.save(self.path(table)))
        self.commits[table] += 1
        self.register(table)

    def upsert(self, df: "DataFrame", table: str, on: tuple[str, ...]) -> None:
        """Insert the rows of ``df``, replacing those of ``table`` with the same ``on`` columns, in
        one Delta MERGE (creates the table when absent; retries Delta conflicts)."""
        if not self.exists(table):
            self.append(df, table)
            return
        condition = " AND ".join(f"t.`{c}` = s.`{c}`" for c in on)
        self.merge(table, df, f"{condition} WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *")

    def delete_matching(self, table: str, keys: "DataFrame", on: tuple[str, ...]) -> None:
        """Delete the rows of ``table`` whose ``on`` columns equal a row of ``keys`` (a Delta MERGE
        with a matched delete; retries Delta conflicts)."""
        condition = " AND ".join(f"t.`{c}` = s.`{c}`" for c in on)
        self.merge(table, keys, f"{condition} WHEN MATCHED THEN DELETE")

    def merge(self, table: str, source: "DataFrame", clauses: str) -> None:
        """``MERGE INTO`` the table ``t`` ``USING`` ``source`` (as ``s``) ``ON`` ``clauses``, in SQL
        so that it runs the same over Spark Connect (Delta's Python builder needs Delta's Connect
        plugin on the server); the source is a temporary view of a unique name; retries Delta
        conflicts."""
        view = f"adspark_merge_{uuid.uuid4().hex}"
        source.createOrReplaceTempView(view)
        statement = f"MERGE INTO delta.`{self.path(table)}` t USING {view} s ON {clauses}"
        try:
            with kill_point(table, self.path(table)):
                with_delta_retry(lambda: self.spark.sql(statement).collect())
            self.commits[table] += 1
        finally:
            self.spark.catalog.dropTempView(view)
