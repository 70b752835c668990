"""Benchmark: reading each entity's latest alert state as ``alert_state``'s history grows.

Each night the alert pass starts from every entity's latest state before it
(:func:`adspark.pipeline.alerts.states_before`). ``alert_state`` keeps every night's states unless
``alerts.state_nights`` prunes them, one row per entity, night and named array (about 4,300
doubles per entity with the demo's 23 features). This builds such a table (``TableStore``,
partitioned by night like the job's) of E entities x N nights, arrays of the demo state's names
and lengths, and times, on the same data in one session:

- ``plain join``: the latest night per entity joined back to the state rows as Spark plans it
  unaided (what the job did before 2026-12-07): above Spark's broadcast threshold, a sort-merge
  join that reads and shuffles every night's arrays;
- ``adspark, broadcast``: :func:`adspark.pipeline.alerts.states_before` as the job calls it (the entity estimate of
  :func:`adspark.pipeline.alerts.state_origin` under ``BROADCAST_ENTITIES``): the lookup is
  broadcast, dynamic partition pruning reads the latest night's partition only, no shuffle;
- ``adspark, collected nights``: :func:`adspark.pipeline.alerts.states_before` beyond ``BROADCAST_ENTITIES`` (the latest
  nights collected first, read alone, then joined).

Every path ends in a shuffle by entity (as the alert pass's cogroup does) and a ``noop`` write;
each runs once untimed first. Prints seconds, ratios and the partitions each path's array scan
read, for each history length.

Usage: ``python -m benchmarks.alert_state [--entities 5000] [--nights 1 7 30]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time

# the names and lengths of one entity's state with the demo's 23 features (adspark.core.alerts)
STATE_SHAPE = {**{f"cal_{d}_recent": 0 for d in ("diff", "extreme", "level", "mix", "neighbor", "seasonal")},
               **{f"cal_{d}_stats": 69 for d in ("diff", "extreme", "level", "mix", "neighbor", "seasonal")},
               **{k: 1 for k in ("cursor", "first_seen", "last_anomalous_end", "seen")},
               **{k: 23 for k in ("diff_loc", "diff_mad", "diff_n", "level_loc", "level_mad", "level_n", "longest",
                                  "max", "min", "mix_count", "mix_events", "prev", "repeats", "run",
                                  "silence_logp", "step", "transitions", "weekend_loc", "weekend_mad",
                                  "weekend_n")},
               **{k: 1104 for k in ("season_loc", "season_mad", "season_n")}}
FIRST = dt.date(2026, 1, 1)


def build(store, entities: int, nights: range) -> None:
    """Append the states of ``entities`` entities for ``nights`` (days after :data:`FIRST`) to
    ``alert_state``."""
    from pyspark.sql import functions as F

    from schemas import ALERT_STATE

    names = store.spark.createDataFrame(list(STATE_SHAPE.items()), "name string, length int")
    rows = (store.spark.range(entities).select(F.format_string("u%06d", "id").alias("entity"))
            .crossJoin(F.broadcast(names))
            .select("entity", "name",
                    F.expr(f"slice(transform(sequence(1, {max(STATE_SHAPE.values())}), i -> rand()), 1, length)")
                    .cast("array<double>").alias("values"))
            .localCheckpoint(eager=True))
    for n in nights:
        store.append(rows.select(F.lit("k").alias("alert_key"), "entity",
                                 F.lit(FIRST + dt.timedelta(days=n)).alias("date"), "name", "values",
                                 F.lit("bench").alias("run_id")),
                     ALERT_STATE.name, partition_by=ALERT_STATE.partition_by)


def plain_join(store, day: dt.date):
    """The latest state rows as Spark plans the join unaided."""
    from pyspark.sql import functions as F

    from schemas import ALERT_STATE

    mine = store.read(ALERT_STATE.name).where((F.col("alert_key") == "k") & (F.col("date") < F.lit(day)))
    latest = mine.groupBy("entity").agg(F.max("date").alias("date"))
    return mine.join(latest, ["entity", "date"]).select("alert_key", "entity", "date", "name", "values")


def timed(frame) -> tuple[float, list[int]]:
    """Seconds to read ``frame`` and shuffle it by entity (as the alert pass's cogroup does), and
    the partitions its array scan read."""
    from adspark.plans import partitions_read

    out = frame.repartition(int(frame.sparkSession.conf.get("spark.sql.shuffle.partitions")), "entity")
    out.write.format("noop").mode("overwrite").save()  # warm-up
    t0 = time.perf_counter()
    out.write.format("noop").mode("overwrite").save()
    seconds = time.perf_counter() - t0
    return seconds, partitions_read(frame, "values")


def main(argv: list[str] | None = None) -> None:
    from adspark.config import SparkConfig, StorageConfig
    from adspark.pipeline.alerts import BROADCAST_ENTITIES, states_before
    from adspark.session import get_spark
    from adspark.storage import TableStore

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=5000)
    parser.add_argument("--nights", type=int, nargs="+", default=[1, 7, 30])
    args = parser.parse_args(argv)
    spark = get_spark(SparkConfig(master="local[2]", shuffle_partitions=4, driver_memory="4g"))
    values = sum(STATE_SHAPE.values())
    print(f"{args.entities:,} entities, {len(STATE_SHAPE)} arrays ({values:,} doubles) each per night, 2 cores")
    print("| nights kept | plain join s | adspark, broadcast s | adspark, collected nights s | "
          "speed-up (broadcast) | partitions read (plain / broadcast / collected) |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="adspark-bench-state-") as tmp:
        store = TableStore(spark, StorageConfig(warehouse=tmp))
        built = 0
        for nights in sorted(args.nights):
            build(store, args.entities, range(built, nights))
            built = nights
            day = FIRST + dt.timedelta(days=nights)
            plain, p_parts = timed(plain_join(store, day))
            broadcast, b_parts = timed(states_before(store, "k", "k", day, args.entities))
            collected, c_parts = timed(states_before(store, "k", "k", day, BROADCAST_ENTITIES + 1))
            print(f"| {nights} | {plain:.2f} | {broadcast:.2f} | {collected:.2f} | {plain / broadcast:.1f}x | "
                  f"{p_parts} / {b_parts} / {c_parts} |")


if __name__ == "__main__":
    main()
