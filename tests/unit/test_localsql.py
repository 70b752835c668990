"""adspark sql without Spark: Delta tables read through their log, queried by DuckDB."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adspark.config import StorageConfig
from adspark.localsql import (
    LocalEngineError,
    backquotes_to_double,
    duck_type,
    duckdb_dialect,
    duckdb_frame,
    local_engine_available,
    open_local,
)
from adspark.views import VIEWS
from schemas import FEEDBACK, INTERVALS, NIGHTLY, SCORES

SCHEMA = {"type": "struct", "fields": [
    {"name": "entity", "type": "string", "nullable": True, "metadata": {}},
    {"name": "score", "type": "double", "nullable": True, "metadata": {}},
    {"name": "added_later", "type": {"type": "array", "elementType": "string", "containsNull": True},
     "nullable": True, "metadata": {}},
    {"name": "date", "type": "date", "nullable": True, "metadata": {}},
]}


def _delta(path: Path, schema: dict, protocol: tuple[int, int, list[str] | None] = (1, 2, None),
           files: dict[str, pa.Table] | None = None) -> None:
    """A Delta table written by hand: one commit with its protocol, metadata and files."""
    log = path / "_delta_log"
    log.mkdir(parents=True)
    reader, writer, features = protocol
    proto: dict = {"minReaderVersion": reader, "minWriterVersion": writer}
    if features:
        proto.update(readerFeatures=features, writerFeatures=features)
    actions = [{"protocol": proto}, {"metaData": {
        "id": "t", "format": {"provider": "parquet", "options": {}}, "schemaString": json.dumps(schema),
        "partitionColumns": ["date"] if any(f["name"] == "date" for f in schema["fields"]) else [],
        "configuration": {}, "createdTime": 0}}]
    for rel, table in (files or {}).items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path / rel)
        part = {"date": rel.split("=")[1].split("/")[0]} if rel.startswith("date=") else {}
        actions.append({"add": {"path": rel, "partitionValues": part, "size": (path / rel).stat().st_size,
                                "modificationTime": 0, "dataChange": True}})
    (log / "00000000000000000000.json").write_text("\n".join(json.dumps(a) for a in actions) + "\n")


def test_spark_quoting_becomes_duckdbs_outside_string_literals() -> None:
    assert backquotes_to_double("select `end`, 'a`b' from t") == "select \"end\", 'a`b' from t"
    assert backquotes_to_double("select 'it''s', `x`") == "select 'it''s', \"x\""
    assert duckdb_dialect("select `end` from t") == 'select "end" from t'


def test_delta_types_map_to_duckdb_types() -> None:
    assert duck_type("timestamp") == "TIMESTAMP" and duck_type("decimal(10,2)") == "DECIMAL(10, 2)"
    assert duck_type({"type": "array", "elementType": "double"}) == "DOUBLE[]"
    assert duck_type({"type": "map", "keyType": "string", "valueType": "long"}) == "MAP(VARCHAR, BIGINT)"
    struct = {"type": "struct", "fields": [{"name": "end", "type": "date"}]}
    assert duck_type(struct) == 'STRUCT("end" DATE)'
    with pytest.raises(LocalEngineError, match="variant"):
        duck_type("variant")


def test_every_adspark_view_parses_in_duckdb() -> None:
    con = duckdb.connect()
    con.sql("CREATE MACRO get_json_object(j, p) AS json_extract_string(j, p)")  # as open_local does
    con.sql('CREATE SCHEMA "s"')
    for table in (SCORES, INTERVALS, FEEDBACK, NIGHTLY):
        cols = ", ".join(f'"{f.name}" {duck_type(_delta_name(f.type))}' for f in table.fields)
        con.sql(f'CREATE TABLE "s"."{table.name}" ({cols})')
    for name, (needs, select) in VIEWS.items():
        con.sql(f'CREATE VIEW "s"."{name}" AS ' + duckdb_dialect(select.format(**{t: f"`s`.`{t}`" for t in needs})))
        assert con.sql(f'SELECT count(*) FROM "s"."{name}"').fetchall() == [(0,)]


def _delta_name(spark_type: str) -> str | dict:
    """The schemas' Spark type names as Delta JSON types (the few the view tables use)."""
    if spark_type.startswith("array<"):
        return {"type": "array", "elementType": _delta_name(spark_type[6:-1])}
    return {"bigint": "long", "int": "integer"}.get(spark_type, spark_type)


def test_tables_read_their_snapshot_with_partitions_and_columns_added_later(tmp_path: Path) -> None:
    root = tmp_path / "wh" / "s"
    _delta(root / "events", SCHEMA, files={
        "date=2026-01-05/part-0.parquet": pa.table({"entity": ["a", "b"], "score": [1.0, 2.5]}),
        "date=2026-01-06/part-0.parquet": pa.table({"entity": ["a"], "score": [4.0]}),
    })
    _delta(root / "feedback", SCHEMA)  # no file yet
    storage = StorageConfig(warehouse=str(tmp_path / "wh"), schema="s")
    assert local_engine_available(storage)
    con = open_local(storage)
    rows = con.sql("select entity, score, added_later, date from s.events order by date, entity").fetchall()
    assert [(r[0], r[1], r[2], r[3].isoformat()) for r in rows] == [
        ("a", 1.0, None, "2026-01-05"), ("b", 2.5, None, "2026-01-05"), ("a", 4.0, None, "2026-01-06")]
    assert con.sql("select count(*) from events").fetchall() == [(3,)]  # unqualified too
    assert con.sql("describe s.feedback").fetchall()[2][:2] == ("added_later", "VARCHAR[]")
    assert con.sql("""select get_json_object('{"total": 1.5}', '$.total')""").fetchall() == [("1.5",)]
    sums = duckdb_frame(con.sql("select sum(1) as n, sum(score) as s from events"))
    assert str(sums["n"].dtype) == "Int64" and sums["n"].iloc[0] == 3 and sums["s"].iloc[0] == 7.5
    assert con.sql("select count(*) from s.feedback").fetchall() == [(0,)]


def test_a_table_with_deletion_vectors_is_refused_by_name(tmp_path: Path) -> None:
    _delta(tmp_path / "wh" / "s" / "scores", SCHEMA, protocol=(3, 7, ["deletionVectors"]))
    with pytest.raises(LocalEngineError, match=r"table 'scores'.*deletionVectors.*--engine spark"):
        open_local(StorageConfig(warehouse=str(tmp_path / "wh"), schema="s"))


def test_remote_warehouses_and_catalogs_go_to_spark() -> None:
    assert not local_engine_available(StorageConfig(warehouse="s3://bucket/wh", schema="s"))
    assert not local_engine_available(StorageConfig(warehouse="wh", schema="s", catalog="main"))
    with pytest.raises(LocalEngineError, match="s3://bucket/wh"):
        open_local(StorageConfig(warehouse="s3://bucket/wh", schema="s"))
