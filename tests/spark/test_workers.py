"""The embedded session's Python workers (started by :mod:`adspark.spark_daemon`)."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd


def test_workers_import_pyspark_from_its_folder_and_reset_their_import_caches_cheaply(spark) -> None:
    def probe(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import importlib
        import sys
        import time
        import zipimport

        import pyspark

        archives = [p for p, f in sys.path_importer_cache.items() if isinstance(f, zipimport.zipimporter)]
        t = time.perf_counter()
        importlib.invalidate_caches()  # what PySpark runs before every task
        took = time.perf_counter() - t
        for _ in batches:
            yield pd.DataFrame({"archives": [len(archives)], "reset_ms": [took * 1000], "pyspark": [pyspark.__file__]})

    rows = spark.range(0, 4, numPartitions=4).mapInPandas(probe, "archives long, reset_ms double, pyspark string").collect()
    assert spark.conf.get("spark.python.daemon.module") == "adspark.spark_daemon"
    for r in rows:
        assert r.archives == 0, "a worker imports through a zip archive"
        assert ".zip" not in r.pyspark
        assert r.reset_ms < 20.0  # about 80 ms with pyspark imported from pyspark.zip
