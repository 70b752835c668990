"""Benchmark: validate + discretize + window, adspark (Spark local[2]) vs pandas vs DuckDB.

The same computation on the same generated events and the same 2 cores:
validate (null key/time, out-of-range time, null/NaN/inf/negative measures, exact duplicates),
aggregate per user and 1h bucket (count, sum/mean/min/max of two measures, counts of 9 category
values + other and 3 channels), pad every active user-day (activity lookback 2 days) to 24
buckets, fit robust scaling per user on the first 7 days, cut 24-bucket windows with stride 6
(scaled + raw values) and write them to Parquet (adspark: Delta).

Each method runs in its own process; its peak memory is the peak RSS of its whole process tree
(the JVM and Python workers included for Spark), sampled every 50 ms. adspark is timed warm: a
first pass over one day loads the JVM classes and Python workers, then the full range is timed.

Usage: ``python benchmarks/featurize.py [--events 1000000 10000000] [--methods spark pandas duckdb]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DAYS = 30
START = dt.date(2026, 1, 5)
FIT_TO = START + dt.timedelta(days=6)
W, S, LOOKBACK = 24, 6, 2
MEASURES = ("amount", "latency_ms")


def _config(workdir: Path, events: int) -> dict:
    import yaml

    data = yaml.safe_load((ROOT / "conf" / "demo.yaml").read_text())
    data["storage"]["warehouse"] = str(workdir / "wh")
    data["spark"].update({"master": "local[2]", "shuffle_partitions": 4, "driver_memory": "6g"})
    data["generate"].update(
        {"entities": max(10, events // (DAYS * 80)), "days": DAYS, "events": events,
         "start": START.isoformat()}
    )
    data["window"]["scaling"].update({"fit_from": START.isoformat(), "fit_to": FIT_TO.isoformat()})
    return data


# ---------------------------------------------------------------- data preparation (untimed)
def prepare(workdir: Path, events: int) -> None:
    """Generate the events once (Delta for adspark, the same rows as Parquet for the others)."""
    import yaml

    from adspark.cli import main

    conf = workdir / "conf.yaml"
    conf.write_text(yaml.safe_dump(_config(workdir, events)))
    assert main(["generate", "--conf", str(conf)]) == 0
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    spark.read.format("delta").load(str(workdir / "wh" / "adspark" / "events")).write.parquet(
        str(workdir / "events.parquet")
    )


# ---------------------------------------------------------------- adspark
def run_spark(workdir: Path) -> dict:
    """discretize + window through the public jobs (warm)."""
    from adspark.cli import main

    conf = str(workdir / "conf.yaml")
    end = START + dt.timedelta(days=DAYS - 1)
    warm_day = START.isoformat()
    assert main(["discretize", "--conf", conf, "--from", warm_day]) == 0
    assert main(["window", "--conf", conf, "--from", warm_day]) == 0
    shutil.rmtree(workdir / "wh" / "adspark" / "scaler_stats", ignore_errors=True)
    t0 = time.perf_counter()
    assert main(["discretize", "--conf", conf, "--from", START.isoformat(), "--to", end.isoformat()]) == 0
    t1 = time.perf_counter()
    assert main(["window", "--conf", conf, "--from", START.isoformat(), "--to", end.isoformat()]) == 0
    t2 = time.perf_counter()
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    n = spark.read.format("delta").load(str(workdir / "wh" / "adspark" / "windows")).count()
    return {"discretize_s": t1 - t0, "window_s": t2 - t1, "windows": n}


# ---------------------------------------------------------------- pandas
def _vocab(cat_series) -> list[str]:
    return list(cat_series.value_counts().sort_index().sort_values(ascending=False, kind="stable").index[:9])


def run_pandas(workdir: Path) -> dict:
    """The same pipeline in pandas + numpy, single process."""
    import pandas as pd
    from numpy.lib.stride_tricks import sliding_window_view

    t0 = time.perf_counter()
    ev = pd.read_parquet(workdir / "events.parquet")
    ok = ev["user_id"].notna() & (ev["user_id"].str.strip() != "") & ev["event_time"].notna()
    ok &= ev["event_time"].between(pd.Timestamp("2000-01-01"), pd.Timestamp("2100-01-01"))
    for m in MEASURES:
        v = ev[m]
        ok &= v.notna() & np.isfinite(v) & (v >= 0)
    dup = ev.duplicated(keep="first")
    ok &= ~dup
    acc = ev[ok]
    rejected = int((~ok).sum())
    bucket = acc["event_time"].dt.floor("h")
    vocab = _vocab(acc["category"])
    frame = pd.DataFrame({"entity": acc["user_id"].to_numpy(), "bucket_start": bucket.to_numpy(),
                          "event_count": 1.0})
    for m in MEASURES:
        frame[m] = acc[m].to_numpy()
    for v in vocab:
        frame[f"category__{v}"] = (acc["category"].to_numpy() == v).astype(float)
    frame["category__other"] = (~acc["category"].isin(vocab)).to_numpy().astype(float)
    for c in ("web", "mobile", "api"):
        frame[f"channel__{c}"] = (acc["channel"].to_numpy() == c).astype(float)
    frame["channel__other"] = (~acc["channel"].isin(["web", "mobile", "api"])).to_numpy().astype(float)
    g = frame.groupby(["entity", "bucket_start"], sort=True)
    sums = g.sum()
    agg = pd.DataFrame({"event_count": sums["event_count"]})
    for m in MEASURES:
        agg[f"{m}_sum"] = sums[m]
    for c in sums.columns:
        if "__" in c:
            agg[c] = sums[c]
    for m in MEASURES:
        agg[f"{m}_mean"] = g[m].mean()
        agg[f"{m}_min"] = g[m].min()
        agg[f"{m}_max"] = g[m].max()
    # pad active entity-days
    days = agg.reset_index()[["entity", "bucket_start"]]
    days["day"] = days["bucket_start"].dt.normalize()
    days = days[["entity", "day"]].drop_duplicates()
    spread = pd.concat([days.assign(day=days["day"] + pd.Timedelta(days=k)) for k in range(LOOKBACK + 1)])
    spread = spread[spread["day"] < pd.Timestamp(START + dt.timedelta(days=DAYS))]
    spread = spread.drop_duplicates().reset_index(drop=True)
    grid = spread.loc[spread.index.repeat(24)].copy()
    hours = np.tile(np.arange(24), len(spread)).astype("timedelta64[h]")
    grid["bucket_start"] = grid["day"].to_numpy() + hours
    full = agg.reindex(pd.MultiIndex.from_frame(grid[["entity", "bucket_start"]]).union(agg.index))
    zero = [c for c in full.columns if not c.endswith(("_mean", "_min", "_max"))]
    full[zero] = full[zero].fillna(0.0)
    full = full.sort_index()
    t1 = time.perf_counter()
    names = list(full.columns)
    fit = full[full.index.get_level_values(1) <= pd.Timestamp(FIT_TO) + pd.Timedelta(hours=23)]
    q = fit.groupby(level=0).quantile([0.25, 0.5, 0.75])
    med = q.xs(0.5, level=1)
    iqr = q.xs(0.75, level=1) - q.xs(0.25, level=1)
    std = fit.groupby(level=0).std(ddof=0)
    scale = iqr.where(iqr > 1e-9, std.where(std > 1e-9, 1.0)).fillna(1.0)
    out_scaled, out_raw, out_ent, out_start = [], [], [], []
    for entity, part in full.groupby(level=0, sort=True):
        times = part.index.get_level_values(1)
        raw = part.to_numpy(np.float64)
        c = med.loc[entity].to_numpy() if entity in med.index else np.zeros(len(names))
        s = scale.loc[entity].to_numpy() if entity in scale.index else np.ones(len(names))
        scaled = np.nan_to_num((raw - np.nan_to_num(c)) / s).astype(np.float32)
        idx = times.asi8 // 3_600_000_000_000
        if len(idx) < W:
            continue
        ends = idx[W - 1:]
        keep = ((ends - idx[: len(idx) - W + 1]) == W - 1) & (ends % S == S - 1)
        out_scaled.append(sliding_window_view(scaled, (W, len(names)))[:, 0][keep].reshape(int(keep.sum()), -1))
        out_raw.append(sliding_window_view(np.nan_to_num(raw).astype(np.float32), (W, len(names)))[:, 0][keep]
                       .reshape(int(keep.sum()), -1))
        out_ent += [entity] * int(keep.sum())
        out_start.append(times[: len(idx) - W + 1][keep])
    import pyarrow as pa
    import pyarrow.parquet as pq

    vals = np.concatenate(out_scaled)
    raws = np.concatenate(out_raw)
    width = vals.shape[1]
    table = pa.table({
        "entity": out_ent,
        "window_start": pa.array(np.concatenate([t.to_numpy() for t in out_start])),
        "values": pa.FixedSizeListArray.from_arrays(pa.array(vals.ravel()), width),
        "raw_values": pa.FixedSizeListArray.from_arrays(pa.array(raws.ravel()), width),
    })
    pq.write_table(table, workdir / "pandas_windows.parquet")
    t2 = time.perf_counter()
    return {"discretize_s": t1 - t0, "window_s": t2 - t1, "windows": len(vals), "rejected": rejected}


# ---------------------------------------------------------------- DuckDB
def run_duckdb(workdir: Path) -> dict:
    """The same pipeline in DuckDB SQL (2 threads)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads TO 2")
    src = str(workdir / "events.parquet")
    t0 = time.perf_counter()
    con.execute(f"""
      CREATE TABLE acc AS
      SELECT * EXCLUDE (rn) FROM (
        SELECT *, row_number() OVER (PARTITION BY event_id, event_time, user_id, amount, latency_ms,
                                     category, channel, event_date) AS rn
        FROM read_parquet('{src}')
        WHERE user_id IS NOT NULL AND trim(user_id) <> '' AND event_time IS NOT NULL
          AND event_time BETWEEN TIMESTAMP '2000-01-01' AND TIMESTAMP '2100-01-01'
          AND amount IS NOT NULL AND isfinite(amount) AND amount >= 0
          AND latency_ms IS NOT NULL AND isfinite(latency_ms) AND latency_ms >= 0)
      WHERE rn = 1""")
    vocab = [r[0] for r in con.execute(
        "SELECT category FROM acc GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 9").fetchall()]
    cats = ", ".join(f"sum(CASE WHEN category = '{v}' THEN 1 ELSE 0 END)::DOUBLE AS \"category__{v}\""
                     for v in vocab)
    vlist = ", ".join(f"'{v}'" for v in vocab)
    chans = ", ".join(f"sum(CASE WHEN channel = '{c}' THEN 1 ELSE 0 END)::DOUBLE AS channel__{c}"
                      for c in ("web", "mobile", "api"))
    stats = ", ".join(f"avg({m}) AS {m}_mean, min({m}) AS {m}_min, max({m}) AS {m}_max" for m in MEASURES)
    con.execute(f"""
      CREATE TABLE agg AS SELECT user_id AS entity, date_trunc('hour', event_time) AS bucket_start,
        count(*)::DOUBLE AS event_count, sum(amount) AS amount_sum, sum(latency_ms) AS latency_ms_sum,
        {cats}, sum(CASE WHEN category IN ({vlist}) THEN 0 ELSE 1 END)::DOUBLE AS category__other,
        {chans}, sum(CASE WHEN channel IN ('web','mobile','api') THEN 0 ELSE 1 END)::DOUBLE AS channel__other,
        {stats}
      FROM acc GROUP BY 1, 2""")
    end = START + dt.timedelta(days=DAYS)
    con.execute(f"""
      CREATE TABLE features AS
      WITH days AS (SELECT DISTINCT entity, date_trunc('day', bucket_start) AS day FROM agg),
      active AS (SELECT DISTINCT entity, day + INTERVAL (k) DAY AS day
                 FROM days, range(0, {LOOKBACK + 1}) t(k)
                 WHERE day + INTERVAL (k) DAY < TIMESTAMP '{end}'),
      grid AS (SELECT entity, day + INTERVAL (h) HOUR AS bucket_start FROM active, range(0, 24) t(h))
      SELECT g.entity, g.bucket_start, a.* EXCLUDE (entity, bucket_start) FROM grid g
      LEFT JOIN agg a USING (entity, bucket_start)""")
    cols = [r[0] for r in con.execute("DESCRIBE features").fetchall()][2:]
    zero = [c for c in cols if not c.endswith(("_mean", "_min", "_max"))]
    con.execute("UPDATE features SET " + ", ".join(f'"{c}" = coalesce("{c}", 0)' for c in zero))
    t1 = time.perf_counter()
    q = ", ".join(
        f'quantile_cont("{c}", 0.5) AS "m_{c}", '
        f'coalesce(nullif(quantile_cont("{c}", 0.75) - quantile_cont("{c}", 0.25), 0), '
        f'nullif(stddev_pop("{c}"), 0), 1) AS "s_{c}"' for c in cols)
    con.execute(f"""CREATE TABLE stats AS SELECT entity, {q} FROM features
                    WHERE bucket_start < TIMESTAMP '{FIT_TO + dt.timedelta(days=1)}' GROUP BY entity""")
    scaled = ", ".join(f'coalesce((f."{c}" - coalesce(s."m_{c}", 0)) / coalesce(s."s_{c}", 1), 0)::FLOAT'
                       for c in cols)
    raw = ", ".join(f'coalesce(f."{c}", 0)::FLOAT' for c in cols)
    out = str(workdir / "duckdb_windows.parquet")
    con.execute(f"""
      COPY (
        WITH v AS (
          SELECT f.entity, f.bucket_start, epoch(f.bucket_start)::BIGINT // 3600 AS idx,
                 [{scaled}] AS sv, [{raw}] AS rv
          FROM features f LEFT JOIN stats s USING (entity)),
        w AS (
          SELECT entity, idx,
                 first(bucket_start) OVER win AS window_start, first(idx) OVER win AS first_idx,
                 flatten(list(sv) OVER win) AS "values", flatten(list(rv) OVER win) AS raw_values
          FROM v WINDOW win AS (PARTITION BY entity ORDER BY idx ROWS BETWEEN {W - 1} PRECEDING AND CURRENT ROW))
        SELECT entity, window_start, "values", raw_values FROM w
        WHERE idx - first_idx = {W - 1} AND idx % {S} = {S - 1}
      ) TO '{out}' (FORMAT PARQUET)""")
    t2 = time.perf_counter()
    n = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
    return {"discretize_s": t1 - t0, "window_s": t2 - t1, "windows": n}


METHODS = {"spark": run_spark, "pandas": run_pandas, "duckdb": run_duckdb}


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for q in procs:
        try:
            total += q.memory_info().rss
        except psutil.Error:  # the process ended between listing and reading: nothing to add
            continue
    return total


def measure(method: str, workdir: Path) -> dict:
    """Run one method in a child process; return its result plus peak tree RSS and wall time."""
    result_file = workdir / f"{method}.json"
    cmd = [sys.executable, __file__, "--child", method, "--workdir", str(workdir)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _tree_rss(proc.pid))
            time.sleep(0.05)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    _, err = proc.communicate()
    stop.set()
    thread.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{err[-4000:]}")
    out = json.loads(result_file.read_text())
    out["peak_rss_mb"] = peak / 2**20
    out["process_s"] = time.perf_counter() - t0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--child", choices=list(METHODS))
    ap.add_argument("--workdir", type=Path)
    args = ap.parse_args()
    if args.child:
        res = METHODS[args.child](args.workdir)
        (args.workdir / f"{args.child}.json").write_text(json.dumps(res))
        return
    rows = []
    for n in args.events:
        workdir = Path(tempfile.mkdtemp(prefix=f"adspark-bench-{n}-"))
        try:
            _prepare_child(workdir, n)
            for method in args.methods:
                r = measure(method, workdir)
                r.update(method=method, events=n)
                rows.append(r)
                print(f"  {n:>11,} events  {method:<7} discretize {r['discretize_s']:7.1f} s  "
                      f"window {r['window_s']:7.1f} s  peak {r['peak_rss_mb']:7.0f} MiB  "
                      f"windows {r['windows']:,}", flush=True)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    _report(rows)


def _prepare_child(workdir: Path, n: int) -> None:
    code = ("import sys; from pathlib import Path; sys.argv=['x']; "
            "import importlib.util as u; s=u.spec_from_file_location('fz', %r); m=u.module_from_spec(s); "
            "s.loader.exec_module(m); m.prepare(Path(%r), %d)" % (__file__, str(workdir), n))
    subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env={**os.environ})


def _report(rows: list[dict]) -> None:
    print("\nevents       method   total s  events/s    vs pandas  vs duckdb  peak MiB")
    by = {(r["events"], r["method"]): r for r in rows}
    def seconds(events: int, method: str) -> float | None:
        other = by.get((events, method))
        return other["discretize_s"] + other["window_s"] if other else None

    for r in rows:
        total = r["discretize_s"] + r["window_s"]
        ratios = []
        for other in ("pandas", "duckdb"):
            t = seconds(r["events"], other)
            ratios.append(f"{t / total:8.2f}x" if t is not None else "       -")
        print(f"{r['events']:>11,}  {r['method']:<7} {total:8.1f} {r['events'] / total:9,.0f}   "
              f"{ratios[0]}  {ratios[1]}  {r['peak_rss_mb']:8.0f}")
    print("(ratios: other method's time / this method's time; > 1 means this one is faster)")


if __name__ == "__main__":
    main()
