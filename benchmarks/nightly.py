"""Benchmark: wall time of one ``nightly`` run split by stage, on a generated events table.

Generates ``--events`` events over ``--days`` days for ``--entities`` users, processes all but the
last night as history (discretize + window in one go) and trains the demo model on it, then
times ``nightly`` for the last night and prints its stages (from the ``nightly`` table), the
night's events and windows, and the peak RSS of this process tree (JVM and Python workers).

That night is the warehouse's first scored night: its alert pass first replays the history nights
to warm the per-entity state. ``--ordinary`` times an ordinary night instead: the model trains on
the nights before the last two, ``nightly`` runs for the night before the last (untimed), and the
timed night continues the state that night left.

Usage: ``python benchmarks/nightly.py [--events 10000000] [--days 14] [--entities 5000]
[--driver-memory 6g] [--ordinary] [--spark-conf KEY=VALUE] [--json out.json]`` (``benchmarks/scale.py`` runs it at several sizes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _rss_tree() -> int:
    import psutil

    me = psutil.Process()
    total = 0
    for p in [me, *me.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total


def _write_events_spark(spark, path: str, events: int, entities: int, days: int, start: dt.date) -> None:
    """A plain events table written by Spark expressions alone (fast at 100M rows).

    Uniform users and times, log-normal amounts, latency linked to amount, 9 categories, 3
    channels, 0.05% rows with a null user (rejected by validation); no injected anomalies.
    """
    from pyspark.sql import functions as F

    i = F.col("id")
    day = F.pmod(F.xxhash64(i, F.lit(1)), F.lit(days)).cast("int")
    sec = F.pmod(F.xxhash64(i, F.lit(2)), F.lit(86400))
    user = F.format_string("u%05d", F.pmod(F.xxhash64(i, F.lit(3)), F.lit(entities)))
    amount = F.round(F.exp(F.randn(11) * 0.8 + 3.0), 2)
    df = spark.range(events, numPartitions=max(4, events // 2_000_000)).select(
        F.concat(F.lit("e"), i.cast("string")).alias("event_id"),
        (F.lit(dt.datetime.combine(start, dt.time())).cast("timestamp")
         + F.make_interval(days=day, secs=sec)).alias("event_time"),
        F.when(F.rand(12) < 0.0005, F.lit(None).cast("string")).otherwise(user).alias("user_id"),
        amount.alias("amount"),
        F.round(F.lit(20.0) + amount * 0.5 + F.abs(F.randn(13)) * 10, 1).alias("latency_ms"),
        F.element_at(F.array(*[F.lit(f"c{k}") for k in range(9)]),
                     (F.pmod(F.xxhash64(i, F.lit(4)), F.lit(9)) + 1).cast("int")).alias("category"),
        F.element_at(F.array(F.lit("web"), F.lit("mobile"), F.lit("api")),
                     (F.pmod(F.xxhash64(i, F.lit(5)), F.lit(3)) + 1).cast("int")).alias("channel"),
        F.date_add(F.lit(start), day).alias("event_date"),
    )
    # one open file per task at a time (sorted by night): bounded writer memory at 100M rows
    df.sortWithinPartitions("event_date").write.format("delta").partitionBy("event_date").mode("overwrite").save(path)


def _copy_states(data: dict, night: dt.date, nights: int) -> None:
    """Append the ``alert_state`` rows of ``night`` again, dated each of the ``nights`` nights before it."""
    from pyspark.sql import functions as F

    from adspark.config import SparkConfig, StorageConfig
    from adspark.session import get_spark
    from adspark.storage import TableStore
    from schemas import ALERT_STATE

    store = TableStore(get_spark(SparkConfig(**data["spark"])), StorageConfig(**data["storage"]))
    rows = store.read(ALERT_STATE.name).where(F.col("date") == F.lit(night)).localCheckpoint(eager=True)
    for k in range(1, nights + 1):
        store.append(rows.withColumn("date", F.lit(night - dt.timedelta(days=k))).select(*ALERT_STATE.names),
                     ALERT_STATE.name, partition_by=ALERT_STATE.partition_by)


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--entities", type=int, default=5000)
    parser.add_argument("--driver-memory", default="6g", help="JVM heap (local mode: driver = executor)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--generator", choices=("adspark", "spark"), default="adspark",
                        help="adspark: the generate job (labeled anomalies); spark: plain Spark expressions (fast)")
    parser.add_argument("--ordinary", action="store_true",
                        help="time an ordinary night: train on the nights before the last two, run nightly for "
                        "the night before the last first (untimed: its alert pass replays the history and "
                        "leaves the state the timed night continues), then time the last")
    parser.add_argument("--state-history", type=int, default=0, metavar="N",
                        help="with --ordinary: before the timed night, copy the first night's alert_state rows to "
                        "the N nights before it (untimed), as a warehouse that kept N more nights of states holds them; "
                        "the timed night's results are the same (each entity's latest state is unchanged)")
    parser.add_argument("--fresh-process", action="store_true",
                        help="run the timed nightly as its own process (`python jobs/nightly.py`, what "
                        "spark-submit starts every night: a new JVM, new Python workers) instead of in "
                        "this process's warm Spark session")
    parser.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE",
                        help="extra Spark settings (repeatable), e.g. spark.eventLog.enabled=true to see the jobs")
    args = parser.parse_args()
    from adspark.cli import main as cli

    start = dt.date(2026, 1, 5)
    last = start + dt.timedelta(days=args.days - 1)
    # the nights before the timed one are history (trained on), or history and the untimed first night
    history_to = last - dt.timedelta(days=2 if args.ordinary else 1)
    if history_to < start + dt.timedelta(days=1):
        raise SystemExit(f"--days {args.days}: training needs 2 nights of history before the nightly runs")
    with tempfile.TemporaryDirectory(prefix="adspark-bench-nightly-") as tmp:
        data = yaml.safe_load((ROOT / "conf" / "demo.yaml").read_text())
        data["storage"]["warehouse"] = str(Path(tmp) / "wh")
        data["spark"].update({"master": "local[2]", "shuffle_partitions": 4,
                              "driver_memory": args.driver_memory,
                              "conf": dict(kv.split("=", 1) for kv in args.spark_conf)})
        data["generate"].update({"entities": args.entities, "days": args.days, "events": args.events,
                                 "start": start.isoformat(), "anomaly_free_days": args.days - 1})
        data["window"]["scaling"].update({"fit_from": start.isoformat(),
                                          "fit_to": history_to.isoformat()})
        data["train"]["detector"]["epochs"] = args.epochs
        data["nightly"].update({"retrain_every_days": None, "drift_psi": None})
        conf = Path(tmp) / "bench.yaml"
        conf.write_text(yaml.safe_dump(data))
        c = ["--conf", str(conf)]
        prep = {}
        peak: dict[str, int] = {}
        phase = ["generate"]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[phase[0]] = max(peak.get(phase[0], 0), _rss_tree())
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        if args.generator == "spark":
            data["train"]["exclude_labeled"] = False
            conf.write_text(yaml.safe_dump(data))
        for name, argv in (
            ("generate", ["generate", *c] if args.generator == "adspark" else None),
            ("discretize history", ["discretize", *c, "--from", str(start), "--to", str(history_to)]),
            ("window history", ["window", *c, "--from", str(start), "--to", str(history_to)]),
            ("train", ["train", *c, "--from", str(start), "--to", str(history_to)]),
            ("first nightly", ["nightly", *c, "--date", str(history_to + dt.timedelta(days=1))] if args.ordinary
             else None),
        ):
            if argv is None and name != "generate":
                continue
            phase[0] = name
            t0 = time.perf_counter()
            if argv is None:
                from adspark.config import SparkConfig
                from adspark.session import get_spark

                _write_events_spark(get_spark(SparkConfig(**data["spark"])), str(Path(tmp) / "wh" / "adspark" / "events"),
                                    args.events, args.entities, args.days, start)
            elif cli(argv) != 0:
                raise SystemExit(f"{name} failed")
            prep[name] = time.perf_counter() - t0
        if args.state_history and args.ordinary:
            t0 = time.perf_counter()
            _copy_states(data, history_to + dt.timedelta(days=1), args.state_history)
            prep[f"{args.state_history} nights of state history"] = time.perf_counter() - t0
        phase[0] = "nightly"
        t0 = time.perf_counter()
        if args.fresh_process:
            from pyspark.sql import SparkSession

            active = SparkSession.getActiveSession()
            if active is not None:
                active.stop()  # one JVM at a time, as on a cluster's driver
            rc = subprocess.run([sys.executable, str(ROOT / "jobs" / "nightly.py"), *c, "--date", str(last)],
                                cwd=ROOT).returncode
        else:
            rc = cli(["nightly", *c, "--date", str(last)])
        wall = time.perf_counter() - t0
        stop.set()
        sampler.join()
        if rc != 0:
            raise SystemExit("nightly failed")
        from adspark.config import SparkConfig
        from adspark.session import get_spark

        spark = get_spark(SparkConfig())
        nightly = spark.read.format("delta").load(str(Path(tmp) / "wh" / "adspark" / "nightly"))
        row = nightly.where(nightly.date == last).first()
        stages = json.loads(row.stage_seconds)
        sizes = {t: _folder_bytes(Path(tmp) / "wh" / "adspark" / t) for t in ("events", "features", "windows", "scores")}
    if args.json:
        args.json.write_text(json.dumps({
            "events": args.events, "entities": args.entities, "days": args.days, "ordinary": args.ordinary,
            "night_events": row.events_read, "night_rejected": row.events_rejected, "windows": row.windows,
            "prep_seconds": prep, "stage_seconds": stages, "nightly_wall_seconds": wall,
            "peak_rss_bytes": peak, "driver_memory": args.driver_memory, "table_bytes": sizes,
        }, indent=2))
    kind = "an ordinary night (the night before ran first)" if args.ordinary else "the first scored night"
    kind += ", in a fresh process" if args.fresh_process else ""
    print(f"\n{args.events:,} events, {args.entities} users, {args.days} days; nightly for {last}, {kind} "
          f"({row.events_read:,} events that night, {row.windows:,} windows), 2 cores")
    print("preparation (untimed for the nightly): " + ", ".join(f"{k} {v:.0f} s" for k, v in prep.items()))
    print("| stage | seconds | share |")
    print("|---|---|---|")
    for k, v in stages.items():
        if k != "total":
            print(f"| {k} | {v:.1f} | {v / stages['total']:.0%} |")
    print(f"| total (nightly) | {stages['total']:.1f} | 100% |")
    print(f"nightly wall time including session start: {wall:.1f} s; peak RSS of the process tree "
          f"{peak['nightly'] / 2**30:.1f} GiB (whole run {max(peak.values()) / 2**30:.1f} GiB)")


if __name__ == "__main__":
    main()
