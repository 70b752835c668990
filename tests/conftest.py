"""Shared fixtures: one session-scoped local[2] SparkSession (UTC, UI off, few partitions)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Iterator

import pytest


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """The one SparkSession of the test run (embedded default, Delta enabled).

    Without code generation (whole-stage and per-expression: Spark's interpreted evaluation, which
    Spark's own test suites run too): the tests' tables hold a few rows, and compiling Java for
    each new query plan cost more CPU than running it (docs/benchmarks.md, ``make test``'s time).
    """
    from adspark.config import SparkConfig
    from adspark.session import get_spark

    session = get_spark(
        SparkConfig(master="local[2]", shuffle_partitions=2, driver_memory="2g",
                    conf={"spark.sql.adaptive.coalescePartitions.enabled": "true",
                          "spark.sql.codegen.wholeStage": "false",
                          "spark.sql.codegen.factoryMode": "NO_CODEGEN"}),
        str(tmp_path_factory.mktemp("session-warehouse")),
    )
    yield session
    session.stop()


@pytest.fixture()
def store(spark, tmp_path: Path):
    """A TableStore over a fresh warehouse folder."""
    from adspark.config import StorageConfig
    from adspark.storage import TableStore

    return TableStore(spark, StorageConfig(warehouse=str(tmp_path / "wh"), schema="adspark_test"))


@pytest.fixture()
def base_config() -> dict:
    """A small project config (as parsed YAML) over a tiny events table."""
    return make_base_config()


@pytest.fixture(scope="session")
def base_config_factory():
    """The function returning a fresh small project config (for module-scoped fixtures)."""
    return make_base_config


def make_base_config() -> dict:
    """A fresh copy of the small project config (as parsed YAML)."""
    return {
        "storage": {"warehouse": "unused", "schema": "adspark_test"},
        "spark": {"master": "local[2]", "shuffle_partitions": 2},
        "source": {
            "table": "events",
            "timestamp": {"column": "event_time"},
            "date_column": "event_date",
            "entity": ["user_id"],
            "event_id": "event_id",
            "measures": [
                {"name": "amount", "non_negative": True},
                {"name": "latency_ms", "non_negative": True},
            ],
            "categoricals": [{"name": "category", "values": ["a", "b"], "unknown": "other"}],
        },
        "discretize": {"bucket": "6h", "difference": ["event_count"], "activity_lookback_days": 1},
        "window": {
            "size": 4,
            "stride": 2,
            "scaling": {"method": "robust", "fit_from": "2026-01-05", "fit_to": "2026-01-06"},
        },
    }


def ts(text: str) -> dt.datetime:
    """A naive UTC datetime from ``YYYY-MM-DD HH:MM``."""
    return dt.datetime.fromisoformat(text)


@pytest.fixture()
def tiny_events(spark, store) -> Iterator[list[tuple]]:
    """Write a tiny, hand-made events table (two users, three days) and yield its rows."""
    yield write_tiny_events(spark, store)


def write_tiny_events(spark, store) -> list[tuple]:
    """The tiny events table (two users, three days) written to ``store``; returns its rows."""
    from schemas import EVENTS

    rows = []
    for day in (5, 6, 7):
        for hour, user, amount in ((1, "u1", 10.0), (7, "u1", 20.0), (8, "u1", 5.0), (13, "u2", 3.0)):
            t = dt.datetime(2026, 1, day, hour, 30)
            rows.append((f"{user}-{day}-{hour}", t, user, amount, 50.0 + amount, "a" if hour < 8 else "c",
                         "web", t.date()))
    df = spark.createDataFrame(rows, EVENTS.struct_type())
    df.write.format("delta").partitionBy("event_date").save(store.path("events"))
    store.register("events")
    return rows


@pytest.fixture(scope="session")
def tiny_windowed_template(spark, tmp_path_factory) -> Path:
    """A warehouse with the tiny events discretized and windowed for 2026-01-05..07, built once."""
    from adspark.config import DiscretizeJobConfig, StorageConfig, WindowJobConfig, build_job_config
    from adspark.pipeline.discretize import run_discretize
    from adspark.pipeline.window import run_window
    from adspark.storage import TableStore

    root = tmp_path_factory.mktemp("tiny-template") / "wh"
    store = TableStore(spark, StorageConfig(warehouse=str(root), schema="adspark_test"))
    write_tiny_events(spark, store)
    cfg = make_base_config()
    d5, d7 = dt.date(2026, 1, 5), dt.date(2026, 1, 7)
    run_discretize(store, build_job_config(DiscretizeJobConfig, cfg), d5, d7)
    run_window(store, build_job_config(WindowJobConfig, cfg), d5, d7)
    return root


@pytest.fixture()
def tiny_windowed(store, tiny_windowed_template, tmp_path) -> None:
    """This test's warehouse starts as a copy of the windowed template (events, features, windows)."""
    import shutil

    shutil.copytree(tiny_windowed_template, tmp_path / "wh")
