"""``adspark sql`` without Spark: the warehouse's Delta tables read by delta-rs, queried by DuckDB.

Starting a JVM and Delta costs a command most of a minute on small machines; reading a local
warehouse's tables does not need them. Each table's current snapshot (its active files, from the
Delta log via ``deltalake``) becomes a DuckDB view ``<schema>.<table>`` over ``read_parquet`` with
its partition values from the paths, its columns in the table's order (a column no file holds yet
reads NULL), and the adspark views (``open_anomalies`` ...) are created from the same texts as in
Spark. The dialect is DuckDB's, with Spark's backquoted names and ``get_json_object`` accepted;
``--engine spark`` keeps Spark SQL.

Only plain Delta tables are read (adspark writes reader version 1, no deletion vectors, no
column mapping); a table with reader features is refused by name, never read wrongly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adspark.config import StorageConfig
from adspark.errors import AdsparkError
from adspark.storage import URI_SCHEMES
from adspark.views import VIEWS

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    import pandas as pd

_PRIMITIVES = {
    "string": "VARCHAR", "long": "BIGINT", "integer": "INTEGER", "short": "SMALLINT", "byte": "TINYINT",
    "double": "DOUBLE", "float": "FLOAT", "boolean": "BOOLEAN", "binary": "BLOB", "date": "DATE",
    "timestamp": "TIMESTAMP", "timestamp_ntz": "TIMESTAMP",
}


class LocalEngineError(AdsparkError):
    """The local SQL engine cannot answer (a remote warehouse, a table it cannot read)."""


def local_engine_available(storage: StorageConfig) -> bool:
    """Whether the local engine can serve this warehouse: a local folder, no catalog, and
    ``duckdb`` and ``deltalake`` installed."""
    if storage.warehouse.startswith(URI_SCHEMES) or storage.catalog:
        return False
    try:
        import deltalake  # noqa: F401
        import duckdb  # noqa: F401
    except ImportError:
        return False
    return True


def duck_type(delta_type: Any) -> str:
    """A Delta schema type (its JSON form: a name or an object) as a DuckDB type.

    Raises:
        LocalEngineError: For a type DuckDB has no counterpart for.
    """
    if isinstance(delta_type, str):
        if delta_type in _PRIMITIVES:
            return _PRIMITIVES[delta_type]
        m = re.fullmatch(r"decimal\((\d+),\s*(\d+)\)", delta_type)
        if m:
            return f"DECIMAL({m.group(1)}, {m.group(2)})"
        raise LocalEngineError(f"Delta type {delta_type!r} has no DuckDB counterpart here; use --engine spark")
    kind = delta_type.get("type")
    if kind == "array":
        return f"{duck_type(delta_type['elementType'])}[]"
    if kind == "map":
        return f"MAP({duck_type(delta_type['keyType'])}, {duck_type(delta_type['valueType'])})"
    if kind == "struct":
        inner = ", ".join(f"{_quote(f['name'])} {duck_type(f['type'])}" for f in delta_type["fields"])
        return f"STRUCT({inner})"
    raise LocalEngineError(f"Delta type {delta_type!r} has no DuckDB counterpart here; use --engine spark")


def backquotes_to_double(sql: str) -> str:
    """Spark's backquoted names (`end`) as DuckDB's double-quoted ones ("end"), outside string
    literals, so a query written for Spark SQL with quoted names also runs here."""
    out, in_string = [], False
    for ch in sql:
        if ch == "'":
            in_string = not in_string  # '' inside a literal toggles twice: still inside
        out.append('"' if ch == "`" and not in_string else ch)
    return "".join(out)


def duckdb_dialect(spark_sql: str) -> str:
    """One of adspark's fixed view texts (Spark SQL) in DuckDB's dialect: backquoted names
    double-quoted (``get_json_object`` is a macro of the connection)."""
    return backquotes_to_double(spark_sql)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def table_select(con: "duckdb.DuckDBPyConnection", path: Path, table: str) -> str:
    """The ``SELECT`` that reads a Delta table's current snapshot.

    Raises:
        LocalEngineError: The table needs Delta reader features this reader does not apply.
    """
    from deltalake import DeltaTable

    dt = DeltaTable(str(path))
    protocol = dt.protocol()
    features = sorted(set(protocol.reader_features or ()) - {"timestampNtz"})
    if protocol.min_reader_version > 1 and (protocol.min_reader_version == 2 or features):
        raise LocalEngineError(
            f"table {table!r}: Delta reader version {protocol.min_reader_version} with features {features} "
            "(deletion vectors or column mapping) is not read by the local engine; use --engine spark"
        )
    fields = json.loads(dt.schema().to_json())["fields"]
    files = [uri.removeprefix("file://") for uri in dt.file_uris()]
    if not files:
        cols = ", ".join(f"CAST(NULL AS {duck_type(f['type'])}) AS {_quote(f['name'])}" for f in fields)
        return f"SELECT {cols} WHERE false"
    source = f"read_parquet({files!r}, hive_partitioning = true, union_by_name = true)"
    present = {row[0] for row in con.sql(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    cols = ", ".join(
        _quote(f["name"]) if f["name"] in present else f"CAST(NULL AS {duck_type(f['type'])}) AS {_quote(f['name'])}"
        for f in fields
    )
    return f"SELECT {cols} FROM {source}"


def duckdb_frame(rel: "duckdb.DuckDBPyRelation") -> "pd.DataFrame":
    """A query's rows as pandas, integers kept integers (DuckDB sums BIGINT into HUGEINT, which
    pandas would print as floats; Spark prints ``31``, not ``31.0``)."""
    frame = rel.df()
    for name, kind in zip(rel.columns, rel.types, strict=True):
        if str(kind) in ("HUGEINT", "UHUGEINT"):
            frame[name] = frame[name].astype("Int64")
    return frame


def local_tables(storage: StorageConfig) -> list[tuple[str, Path]]:
    """The Delta tables of a local warehouse's schema: (name, folder), by name."""
    root = Path(storage.warehouse).resolve() / storage.schema_name
    if not root.is_dir():
        return []
    return [(p.name, p) for p in sorted(root.iterdir()) if (p / "_delta_log").is_dir()]


def open_local(storage: StorageConfig) -> "duckdb.DuckDBPyConnection":
    """An in-memory DuckDB connection with every table of the warehouse's schema as a view
    (``<schema>.<table>``, also found unqualified) and the adspark views over them.

    Raises:
        LocalEngineError: The warehouse is not a local folder.
    """
    import duckdb

    if not local_engine_available(storage):
        raise LocalEngineError(
            f"warehouse {storage.warehouse!r}: the local engine reads local folders without a catalog; "
            "use --engine spark"
        )
    schema = _quote(storage.schema_name)
    con = duckdb.connect()
    con.sql("SET TimeZone = 'UTC'")
    # Spark's JSON accessor, for queries written for Spark SQL (models.metrics, nightly.stage_seconds)
    con.sql("CREATE MACRO get_json_object(j, p) AS json_extract_string(j, p)")
    con.sql(f"CREATE SCHEMA {schema}")
    found = local_tables(storage)
    for name, path in found:
        con.sql(f"CREATE VIEW {schema}.{_quote(name)} AS {table_select(con, path, name)}")
    tables = {name for name, _ in found}
    for name, (needs, select) in VIEWS.items():
        if all(t in tables for t in needs):
            body = duckdb_dialect(select.format(**{t: f"`{storage.schema_name}`.`{t}`" for t in needs}))
            con.sql(f"CREATE VIEW {schema}.{_quote(name)} AS {body}")
    con.sql(f"SET search_path = '{storage.schema_name},main'")
    return con
