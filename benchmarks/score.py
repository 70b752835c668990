"""Benchmark: windows/s through the Spark scoring paths vs compiled in-process inference.

The same dense autoencoder (240 -> 64 -> 16 -> 64 -> 240), the same windows, the same 2 cores.
The data is a features table (1,000 entities x hourly buckets x 10 features, Parquet) and the
windows cut from it by adspark's own cutter (24 buckets, stride 1; Parquet, a ``values``
array<float> column of 240), so every path scores the same windows:

- ``in_process_compiled``: the strongest single-process baseline: a ``tf.function`` over numpy
  batches of 4096, computing scores and per-feature errors (what the scorer computes).
- ``in_process_predict``: ``model.predict`` on the same batches (for reference).
- ``spark_mapInPandas``: a plain pandas UDF that stacks the list column into numpy.
- ``spark_transfer_only``: ``mapInArrow`` that only counts rows: the cost of moving the windows
  from the JVM to Python, the ceiling of any Spark Python path on these cores.
- ``spark_mapInArrow``: adspark's scorer over the windows table (``score.source: windows``):
  Arrow list column reshaped without a Python loop, model loaded once per worker from broadcast
  bytes, score + threshold + top-3 features per window; with TensorFlow's default threads and
  with 1 thread per Python worker.
- ``spark_from_features``: ``score.source: features`` (1 TensorFlow thread per worker, the default): the features cogrouped with the scaler
  statistics by hash groups of entities, cut into windows and scored in the same Python call
  (``adspark.pipeline.scorer.make_feature_scorer``); window arrays never cross to the JVM. Also
  run on a night 10x larger (10x the entities), with the peak RSS of the driver (the Python
  driver process and the JVM, sampled every 0.1 s) for both sizes.

Spark paths read the Parquet file and write to the ``noop`` sink, so the figure is the scoring
path itself (Delta write excluded; the nightly benchmark covers it). Each Spark path runs once
whole as a warm-up first (Python worker start, model load, tracing: once per worker and job),
then is timed.

Usage: ``python benchmarks/score.py [--windows 400000] [--growth 10]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
from pathlib import Path

import numpy as np

W, F = 24, 10
WIDTH = W * F


ENTITIES = 1000
BUCKET = 3600
T0 = np.datetime64("2026-01-01T00:00:00", "s")


def _features(n_windows: int, entities: int = ENTITIES, seed: int = 0):
    """A features table whose entities hold ``n_windows`` windows in all, and per-entity
    z-score statistics (pandas frames)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    per = max(n_windows // entities, 1)
    buckets = per + W - 1
    t = np.arange(buckets)
    basis = np.sin(2 * np.pi * (t[:, None] / 24 + np.arange(F)[None, :] / F))
    values = (basis[None] * rng.uniform(0.5, 2.0, (entities, 1, F))
              + 0.1 * rng.normal(size=(entities, buckets, F))).reshape(-1, F)
    names = [f"f{i}" for i in range(F)]
    starts = T0 + (t * BUCKET).astype("timedelta64[s]")
    frame = pd.DataFrame(values, columns=names)
    frame.insert(0, "entity", np.repeat([f"u{i:05d}" for i in range(entities)], buckets))
    frame.insert(1, "bucket_start", np.tile(starts, entities).astype("datetime64[us]"))
    frame.insert(2, "date", pd.to_datetime(frame["bucket_start"]).dt.date)
    grouped = frame.groupby("entity")[names]
    center, scale = grouped.mean().stack(), grouped.std().stack()
    stats = pd.DataFrame({"center": center, "scale": scale}).reset_index()
    stats.columns = ["entity", "feature", "center", "scale"]
    for c in ("median", "iqr", "min", "max"):
        stats[c] = 0.0
    stats["n"] = buckets
    return frame, stats


def _spec(frame):
    from adspark.pipeline.specs import StoredSpec

    days = sorted(frame["date"].unique())
    return StoredSpec("s-bench", "buckets", tuple(f"f{i}" for i in range(F)), W, 1, BUCKET, "zscore",
                      days[0], days[-1])


def _global(stats):
    import pandas as pd

    g = stats.groupby("feature")[["center", "scale"]].median().reset_index()
    return pd.DataFrame({"entity": "__global__", **{c: g[c] for c in ("feature", "center", "scale")}})


def _windows_of(frame, stats, spec) -> "tuple[object, np.ndarray]":
    """The windows adspark cuts from the features (Arrow table of the windows schema) and their
    values as (n, W * F) float32."""
    import pyarrow as pa

    from adspark.pipeline.window import make_cutter

    cut = make_cutter(spec, _global(stats), spec.fit_from, spec.fit_to)
    table = cut(pa.Table.from_pandas(frame, preserve_index=False), pa.Table.from_pandas(stats, preserve_index=False))
    x = np.stack(table.column("values").to_numpy(zero_copy_only=False)).astype(np.float32)
    return table, x


def _write_parquet(frame, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    if "bucket_start" in table.column_names:
        i = table.column_names.index("bucket_start")
        table = table.set_column(i, "bucket_start", table.column(i).cast(pa.timestamp("us", tz="UTC")))
    pq.write_table(table, path, row_group_size=50_000)


def _model(x: np.ndarray):
    from adspark.detectors.autoencoders import DenseAutoencoder

    return DenseAutoencoder(hidden=(64,), bottleneck=16, epochs=1, batch_size=512).fit(x[:20_000].reshape(-1, W, F))


def in_process(det, x: np.ndarray, batch: int = 4096) -> tuple[float, float]:
    import tensorflow as tf

    model = det.model_
    infer = tf.function(lambda b: model(b, training=False))
    rows = []
    for compiled in (True, False):
        t0 = time.perf_counter()
        for i in range(0, len(x), batch):
            b = x[i:i + batch]
            y = infer(tf.constant(b)).numpy() if compiled else model.predict(b, batch_size=batch, verbose=0)
            fe = ((b - y) ** 2).reshape(len(b), W, F).mean(axis=1)
            fe.mean(axis=1)
        rows.append(len(x) / (time.perf_counter() - t0))
    return rows[0], rows[1]


class PeakRss:
    """Peak resident memory of the driver: this Python process and the JVM (sampled)."""

    def __init__(self, jvm_pid: int, every: float = 0.1) -> None:
        import threading

        self.pids = {"python": os.getpid(), "jvm": jvm_pid}
        self.peak = {k: 0 for k in self.pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)

    def _run(self, every: float) -> None:
        while not self._stop.is_set():
            for name, pid in self.pids.items():
                try:
                    with open(f"/proc/{pid}/status") as f:
                        kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
                except (OSError, StopIteration):
                    continue
                self.peak[name] = max(self.peak[name], kb * 1024)
            self._stop.wait(every)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def spark_paths(
    det, windows_path: Path, features_paths: dict[str, tuple[Path, object, int]], spec, workdir: Path
) -> tuple[dict[str, float], dict[str, dict[str, int]]]:
    import pandas as pd

    from adspark.config import SparkConfig, StorageConfig
    from adspark.core.thresholds import Threshold
    from adspark.models.registry import RegisteredModel, artifact_files, save_model
    from adspark.pipeline.grouping import entity_groups
    from adspark.pipeline.scorer import OUTPUT_FIELDS, make_feature_scorer, make_scorer, output_struct
    from adspark.pipeline.window import grouped_features, make_cutter
    from adspark.session import get_spark
    from adspark.storage import TableStore
    from schemas import SCORES

    def session():
        return get_spark(SparkConfig(master="local[2]", shuffle_partitions=2, driver_memory="6g"))

    spark = session()
    store = TableStore(spark, StorageConfig(warehouse=str(workdir / "wh")))
    model = save_model(store, RegisteredModel(
        model_id="m-bench", config_key="k", detector="dense_ae",
        params={"hidden": [64], "bottleneck": 16}, spec_id=spec.spec_id, n_steps=W, n_features=F,
        threshold=Threshold("quantile", 1.0), entity_thresholds={}, train_from=dt.date(2026, 1, 5),
        train_to=dt.date(2026, 1, 5), data_version=0,
    ), networks=det.networks())
    names = list(spec.features)
    shipped = artifact_files(model)
    spark.stop()
    keras_model = det.model_

    def pandas_udf(batches):
        import tensorflow as tf

        infer = tf.function(lambda b: keras_model(b, training=False))
        for pdf in batches:
            b = np.stack(pdf["values"].to_numpy()).astype(np.float32)
            y = infer(tf.constant(b)).numpy()
            fe = ((b - y) ** 2).reshape(len(b), W, F).mean(axis=1)
            yield pd.DataFrame({"window_id": pdf["window_id"], "score": fe.mean(axis=1)})

    memory: dict[str, dict[str, int]] = {}

    def timed(build, n: int, name: str | None = None) -> float:
        """Fresh session (fresh Python workers) per path; a whole warm-up run, then the timed run."""
        spark = session()
        files = spark.sparkContext.broadcast(shipped)
        frame = build(spark, files)
        frame.write.format("noop").mode("overwrite").save()  # warm-up: every worker loads its model
        with PeakRss(int(spark._jvm.java.lang.ProcessHandle.current().pid())) as rss:
            t0 = time.perf_counter()
            frame.write.format("noop").mode("overwrite").save()
            rate = n / (time.perf_counter() - t0)
        if name:
            memory[name] = dict(rss.peak)
        spark.stop()
        return rate

    import pyarrow as pa

    def count_only(batches):
        for b in batches:
            yield pa.RecordBatch.from_arrays([pa.array([b.num_rows])], names=["n"])

    def windows(spark):
        return spark.read.parquet(str(windows_path)).select(
            "entity", "window_id", "window_start", "window_end", "date", "values")

    def from_features(path: Path, stats, spark, files):
        import pandas as pd

        from adspark.pipeline.window import global_stats_of

        with_global = pd.concat([stats, _global(stats).assign(median=0.0, iqr=0.0, min=0.0, max=0.0, n=0)],
                                ignore_index=True)[list(stats.columns)]
        stats_df = spark.createDataFrame(with_global)
        cut = make_cutter(spec, global_stats_of(stats_df), spec.fit_from, spec.fit_to, raw=False)
        run = make_feature_scorer(cut, make_scorer(model, files, names, 4096, 3, 1), 10_000)
        groups = entity_groups(spark, spec.fit_from, spec.fit_to)
        return grouped_features(spark.read.parquet(str(path)), stats_df, spec, groups).applyInArrow(run, output_struct())

    n = features_paths["1x"][2]
    out = {"spark_transfer_only (ceiling)": timed(lambda sp, f: windows(sp).mapInArrow(count_only, "n long"), n)}
    out["spark_mapInPandas"] = timed(
        lambda sp, f: windows(sp).mapInPandas(pandas_udf, "window_id string, score double"), n)
    for threads in (None, 1):
        key = f"spark_mapInArrow, windows table (tf_threads={threads or 'default'})"
        out[key] = timed(lambda sp, f, t=threads: windows(sp).mapInArrow(
            make_scorer(model, f, names, 4096, 3, t), SCORES.struct_type(OUTPUT_FIELDS)), n,
            "windows table 1x" if threads is None else None)
    for size, (path, stats, count) in features_paths.items():
        out[f"spark_from_features ({size}: {count:,} windows)"] = timed(
            lambda sp, f, p=path, st=stats: from_features(p, st, sp, f), count, f"from features {size}")
    return out, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=400_000)
    parser.add_argument("--growth", type=int, default=10, help="the larger night: this many times the entities")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory(prefix="adspark-bench-score-") as tmp:
        work = Path(tmp)
        frame, stats = _features(args.windows)
        spec = _spec(frame)
        table, x = _windows_of(frame, stats, spec)
        n = len(x)
        _write_parquet(table, work / "windows.parquet")
        _write_parquet(frame, work / "features.parquet")
        paths = {"1x": (work / "features.parquet", stats, n)}
        del frame, table
        big, big_stats = _features(args.windows * args.growth, ENTITIES * args.growth, seed=1)
        _write_parquet(big, work / "features_big.parquet")
        paths[f"{args.growth}x"] = (work / "features_big.parquet", big_stats, n * args.growth)
        del big
        det = _model(x)
        compiled, predict = in_process(det, x)
        rows = {"in_process_compiled": compiled, "in_process_predict": predict}
        spark_rows, memory = spark_paths(det, work / "windows.parquet", paths, spec, work)
        rows.update(spark_rows)
    print(f"\n{n} windows of {W} x {F} ({ENTITIES} entities), dense AE 240-64-16-64-240, {os.cpu_count()} cores")
    print("| path | windows/s | vs in-process compiled |")
    print("|---|---|---|")
    for name, rate in rows.items():
        print(f"| {name} | {rate:,.0f} | {rate / compiled:.2f}x |")
    print("\n| run | peak RSS driver Python | peak RSS JVM (driver + local executor) |")
    print("|---|---|---|")
    for name, peak in memory.items():
        print(f"| {name} | {peak['python'] / 2**20:,.0f} MiB | {peak['jvm'] / 2**20:,.0f} MiB |")
    table_best = max(v for k, v in rows.items() if k.startswith("spark_mapInArrow"))
    features_1x = next(v for k, v in rows.items() if k.startswith("spark_from_features (1x"))
    print(f"\nscoring from features vs compiled in-process: {features_1x / compiled:.2f}x (target >= 0.7x); "
          f"windows-table path: {table_best / compiled:.2f}x; from features vs windows table: "
          f"{features_1x / table_best:.2f}x; vs the transfer ceiling: "
          f"{features_1x / rows['spark_transfer_only (ceiling)']:.2f}x")


if __name__ == "__main__":
    main()
