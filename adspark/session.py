"""Spark session: the embedded local default, or the session a cluster already gave us.

Locally (no active session, not under ``spark-submit``) adspark builds ``local[*]`` with the Delta
extension and catalog, UTC, the Delta jars resolved at setup time (``make setup`` puts them in
``.jars/``; ``ADSPARK_JARS`` overrides), and no UI. On a cluster or Databricks the existing
session is reused untouched, apart from the session time zone.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from adspark.config import SparkConfig
from adspark.errors import EnvironmentSetupError

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
_JAR_PREFIXES = ("delta-spark_", "delta-storage-")
QUIET_LOG4J = Path(__file__).resolve().parent / "log4j2-quiet.properties"
ARROW_BATCH_ROWS = "spark.sql.execution.arrow.maxRecordsPerBatch"


# holders of a session setting: (session id, key) -> [holders, value before the first holder]
_HELD: dict[tuple[int, str], list] = {}
_HELD_LOCK = threading.Lock()


@contextmanager
def session_conf(spark: "SparkSession", key: str, value: str) -> Iterator[None]:
    """Set a session configuration for the block only; the value from before the first of
    overlapping blocks (two nights scored at once in threads of one driver) is restored when the
    last one ends, so later stages of the same session do not inherit it."""
    slot = (id(spark), key)
    with _HELD_LOCK:
        held = _HELD.get(slot) or [0, spark.conf.get(key, None)]
        spark.conf.set(key, value)  # a refused setting raises here, before anything is held
        held[0] += 1
        _HELD[slot] = held
    try:
        yield
    finally:
        with _HELD_LOCK:
            held[0] -= 1
            if held[0] == 0:
                del _HELD[slot]
                if held[1] is None:
                    spark.conf.unset(key)
                else:
                    spark.conf.set(key, held[1])


def delta_jars() -> list[str]:
    """Paths of the Delta jars for the embedded session.

    Looks in ``$ADSPARK_JARS`` (a folder) or the ``.jars`` folder of the source checkout.

    Raises:
        EnvironmentSetupError: When the jars are not there (run ``make setup``).
    """
    env = os.environ.get("ADSPARK_JARS")
    folder = Path(env) if env else Path(__file__).resolve().parent.parent / ".jars"
    jars = sorted(str(p) for p in folder.glob("*.jar")) if folder.is_dir() else []
    found = [j for j in jars if Path(j).name.startswith(_JAR_PREFIXES)]
    if len(found) < len(_JAR_PREFIXES):
        raise EnvironmentSetupError(
            f"Delta jars not found in {str(folder)!r} (expected delta-spark_2.13-*.jar and "
            "delta-storage-*.jar): run `make setup`, or point ADSPARK_JARS at a folder holding them"
        )
    return found


def _under_spark_submit() -> bool:
    return "PYSPARK_GATEWAY_PORT" in os.environ


def catalog_dir(warehouse: str) -> str | None:
    """Where the embedded session's catalog keeps database folders: ``<warehouse>/_catalog`` for a
    local warehouse (so no ``spark-warehouse/`` appears in the working folder), else None."""
    if "://" in warehouse or warehouse.startswith("dbfs:/"):
        return None
    return str((Path(warehouse) / "_catalog").resolve())


def local_builder_conf(cfg: SparkConfig, warehouse: str | None = None) -> dict[str, str]:
    """The settings of the embedded local session (before ``cfg.conf`` overrides).

    Args:
        cfg: The ``spark`` section.
        warehouse: ``storage.warehouse``: the catalog's database folders go under it.
    """
    where = catalog_dir(warehouse) if warehouse else None
    return ({"spark.sql.warehouse.dir": where} if where else {}) | {
        "spark.jars": ",".join(delta_jars()),
        "spark.sql.extensions": DELTA_EXTENSION,
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": f"-Duser.timezone=UTC -Dlog4j2.configurationFile={QUIET_LOG4J.as_uri()}",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.sql.shuffle.partitions": str(cfg.shuffle_partitions),
        "spark.default.parallelism": str(cfg.shuffle_partitions),
        # Delta rebuilds table state with 50 tasks by default: most of a small local job's time.
        "spark.databricks.delta.snapshotPartitions": str(cfg.shuffle_partitions),
        "spark.driver.memory": cfg.driver_memory,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        ARROW_BATCH_ROWS: "10000",
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        # every table stays readable by other Delta engines (delta-rs, DuckDB): no deletion
        # vectors, no column mapping, whatever a newer default would be
        "spark.databricks.delta.properties.defaults.enableDeletionVectors": "false",
        "spark.databricks.delta.properties.defaults.columnMapping.mode": "none",
        "spark.sql.sources.partitionOverwriteMode": "static",
        # workers import pyspark from its folder, not its zip: each task's import cache reset
        # then costs microseconds instead of about 80 ms (see adspark.spark_daemon)
        "spark.python.daemon.module": "adspark.spark_daemon",
    }


def get_spark(cfg: SparkConfig, warehouse: str | None = None) -> "SparkSession":
    """Return the active session, or build the embedded local one.

    Args:
        cfg: Settings used only when adspark builds the session itself.
        warehouse: ``storage.warehouse`` (the embedded session's catalog folders go under it).
    """
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if _under_spark_submit():
        spark = SparkSession.builder.appName(cfg.app_name).getOrCreate()
        spark.conf.set("spark.sql.session.timeZone", "UTC")
        return spark
    # Python workers must run the interpreter (and virtualenv) of the driver.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    if cfg.connect is not None:
        return _connect_session(cfg, warehouse)
    builder = SparkSession.builder.master(cfg.master).appName(cfg.app_name)
    for key, value in {**local_builder_conf(cfg, warehouse), **cfg.conf}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN" if logging.getLogger("adspark").isEnabledFor(logging.INFO) else "ERROR")
    return spark


def _connect_session(cfg: SparkConfig, warehouse: str | None) -> "SparkSession":
    """A Spark Connect session: a local Connect server started with the embedded settings
    (``connect: local``; its logs stay quiet through the driver's log4j configuration), or a
    running server (``sc://host:port``), given only the session settings a client may set."""
    from pyspark.sql import SparkSession

    if cfg.connect == "local":
        builder = SparkSession.builder.remote(cfg.master)
        for key, value in {**local_builder_conf(cfg, warehouse), **cfg.conf}.items():
            builder = builder.config(key, value)
        with warnings.catch_warnings():  # the client re-sets the server's static settings: refused, harmless
            warnings.simplefilter("ignore", UserWarning)
            return builder.getOrCreate()
    builder = SparkSession.builder.remote(cfg.connect)
    for key, value in {"spark.sql.session.timeZone": "UTC", **cfg.conf}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def is_connect(spark: "SparkSession") -> bool:
    """Whether ``spark`` is a Spark Connect session (no ``sparkContext``, no JVM in this process)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")
