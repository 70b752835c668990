"""Safety: identifiers from config, paths that may not leave the warehouse, registry ids."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from adspark.config import StorageConfig
from adspark.errors import AdsparkError, ConfigError, IdentifierError
from adspark.models.registry import artifact_folder
from adspark.storage import TableStore, date_range_predicate, listing_root


def _store(warehouse: str) -> TableStore:
    return TableStore(None, StorageConfig(warehouse=warehouse, schema="s"))  # no Spark needed for paths


@pytest.mark.parametrize("path", ["../outside", "events/../../x", ".."])
def test_relative_paths_cannot_leave_the_warehouse(tmp_path: Path, path: str) -> None:
    with pytest.raises(ConfigError, match="source.path.*escapes the warehouse"):
        _store(str(tmp_path / "wh")).resolve_path(path, "source.path")
    with pytest.raises(ConfigError, match="escapes the warehouse"):
        _store("s3://bucket/wh").resolve_path(path, "source.path")


def test_relative_paths_resolve_under_the_warehouse_and_absolute_ones_are_explicit(tmp_path: Path) -> None:
    store = _store(str(tmp_path / "wh"))
    assert store.resolve_path("landing/events", "source.path") == str((tmp_path / "wh" / "landing" / "events"))
    assert store.resolve_path("/data/events", "source.path") == "/data/events"
    assert store.resolve_path("s3://other/events", "source.path") == "s3://other/events"
    assert _store("s3://bucket/wh").resolve_path("a/./b", "k") == "s3://bucket/wh/a/b"


@pytest.mark.parametrize(("path", "root"), [
    ("/data/runs", "file:/data/runs"), ("/data/runs/", "file:/data/runs"), ("/data/a/../runs", "file:/data/runs"),
    ("file:///data/runs/", "file:/data/runs"), ("file:/data/runs", "file:/data/runs"),
    ("s3a://bucket/landing/*/run-*.csv", "s3a://bucket/landing"), ("dbfs:/mnt/rig%20a", "dbfs:/mnt/rig a"),
    ("/data/rig[12]/x", "file:/data"),
])
def test_listing_roots_are_spelled_as_spark_lists_the_files(path: str, root: str) -> None:
    """``_metadata.file_path`` (decoded) starts with the root and a slash for every listed file."""
    assert listing_root(path) == root


@pytest.mark.parametrize("name", ["events; DROP TABLE x", "a-b", "1abc", "a b", "x`y", "", "ü"])
def test_table_and_column_names_must_be_identifiers(tmp_path: Path, name: str) -> None:
    store = _store(str(tmp_path / "wh"))
    with pytest.raises(IdentifierError, match="not a valid identifier"):
        store.path(name)
    with pytest.raises(IdentifierError):
        date_range_predicate(name, dt.date(2026, 1, 1), dt.date(2026, 1, 2))


def test_predicates_take_typed_dates_only() -> None:
    with pytest.raises(TypeError):
        date_range_predicate("date", "2026-01-01' OR 1=1 --", "2026-01-02")


@pytest.mark.parametrize("model_id", ["../../etc", "m-../x", "m-a/b", "x", "m-" + "a" * 80])
def test_artifacts_load_only_from_the_warehouse_registry_folder(tmp_path: Path, model_id: str) -> None:
    store = _store(str(tmp_path / "wh"))
    with pytest.raises(AdsparkError, match="not a registry id"):
        artifact_folder(store, model_id)
    ok = artifact_folder(store, "m-20260101T000000-abc123")
    assert ok == Path(store.root) / "_artifacts" / "m-20260101T000000-abc123"


def test_an_unreadable_file_source_is_told_in_one_line(tmp_path: Path) -> None:
    """What Spark's "nothing to read here" errors become (:func:`adspark.pipeline.validate.load_files`)."""
    from adspark.config import SourceConfig
    from adspark.pipeline.validate import unreadable_reason

    def source(recursive: bool = False) -> SourceConfig:
        return SourceConfig(path=str(tmp_path), format={"type": "csv"}, entity=["m"], recursive=recursive,
                            timestamp={"column": "t"}, measures=[{"name": "x"}])

    where = f"source.path {str(tmp_path)!r}"
    assert unreadable_reason(str(tmp_path), source(), "PATH_NOT_FOUND") == f"{where}: no such folder or file"
    assert unreadable_reason(str(tmp_path), source(), "UNABLE_TO_INFER_SCHEMA") == (
        f"{where}: no csv files in it (expected files of format csv)")
    for rig in ("rig-b", "rig-a", "rig c"):
        (tmp_path / rig).mkdir()
    assert unreadable_reason(str(tmp_path), source(), "UNABLE_TO_INFER_SCHEMA") == (
        f"{where}: no csv files directly in it, only sub-folders (rig c, rig-a, rig-b); "
        "source.recursive: true reads the files in every sub-folder")
    assert "no csv files in it" in unreadable_reason(str(tmp_path), source(recursive=True), "UNABLE_TO_INFER_SCHEMA")
    assert "files at different folder depths; source.recursive: true" in unreadable_reason(
        str(tmp_path), source(), "CONFLICTING_DIRECTORY_STRUCTURES")
    assert unreadable_reason("s3a://bucket/landing", source(), "UNABLE_TO_INFER_SCHEMA").endswith("no csv files in it "
                                                                                                  "(expected files of format csv)")


@pytest.mark.parametrize(("given", "listed"), [
    ("/data/runs", "file:/data/runs/valve1/0.csv"),
    ("/Volumes/main/raw/landing", "dbfs:/Volumes/main/raw/landing/valve1/0.csv"),  # Databricks lists so
    ("s3a://bucket/landing/*/*.csv", "s3a://bucket/landing/valve1/0.csv"),
    ("dbfs:/mnt/rig%20a", "dbfs:/mnt/rig a/valve1/0.csv"),
])
def test_a_listed_file_is_found_below_its_listing_root_whatever_the_scheme(given: str, listed: str) -> None:
    """What :func:`adspark.pipeline.validate.file_key` compares: both sides without their schemes."""
    import re

    from adspark.pipeline.validate import SCHEME

    prefix = re.sub(SCHEME, "", listing_root(given)) + "/"
    bare = re.sub(SCHEME, "", listed)
    assert bare.startswith(prefix) and bare[len(prefix):] == "valve1/0.csv"
